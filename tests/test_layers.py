"""Layer selection by module name and exception-safe install/restore of the eraser processors."""

from __future__ import annotations

from typing import Any

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import Attention

from attentive_eraser.core.attention import AttentiveEraserAttnProcessor, EraserState
from attentive_eraser.core.layers import eraser_attention, select_layers
from attentive_eraser.pipelines import AttentiveEraserDIPPipeline, AttentiveEraserSIPPipeline
from attentive_eraser.testing.tiny import build_components

EXPECTED_COUNTS = {"sd15": 9, "sd21": 9, "sdxl": 36}


@pytest.fixture(scope="module")
def unets() -> dict[str, UNet2DConditionModel]:
    return {family: build_components(family, seed=0)["unet"] for family in EXPECTED_COUNTS}


def _decoder_self_attention(unet: UNet2DConditionModel) -> list[str]:
    """Processor names of the self-attention modules under ``up_blocks``, found from the module tree."""
    names = []
    for name, module in unet.named_modules():
        if isinstance(module, Attention) and name.startswith("up_blocks.") and name.endswith(".attn1"):
            assert not module.is_cross_attention
            names.append(f"{name}.processor")
    return names


@pytest.mark.parametrize("family", sorted(EXPECTED_COUNTS))
def test_select_layers_is_the_decoder_self_attention(
    unets: dict[str, UNet2DConditionModel], family: str
) -> None:
    unet = unets[family]
    names = select_layers(unet)
    assert len(names) == EXPECTED_COUNTS[family]
    assert len(set(names)) == len(names)
    assert sorted(names) == sorted(_decoder_self_attention(unet))
    for name in names:
        assert name.startswith("up_blocks.") and name.endswith(".attn1.processor")
        assert "attn2" not in name and "down_blocks" not in name and "mid_block" not in name
    # every other self-attention layer (encoder, mid block) exists and is left out
    all_self = [n for n in unet.attn_processors if n.endswith("attn1.processor")]
    assert any(n.startswith("down_blocks") for n in all_self) and any(
        n.startswith("mid_block") for n in all_self
    )


@pytest.mark.parametrize("pattern", [r"nothing\.matches", r"up_blocks\.\d+\.attn1"])
def test_select_layers_raises_naming_the_pattern(
    unets: dict[str, UNet2DConditionModel], pattern: str
) -> None:
    with pytest.raises(ValueError) as error:
        select_layers(unets["sd15"], pattern)
    assert repr(pattern) in str(error.value)  # the message quotes the pattern as written


def test_select_layers_custom_pattern(unets: dict[str, UNet2DConditionModel]) -> None:
    names = select_layers(
        unets["sdxl"], r"up_blocks\.0\.attentions\.0\.transformer_blocks\.\d+\.attn1\.processor"
    )
    assert len(names) == 10


@pytest.mark.parametrize("family", sorted(EXPECTED_COUNTS))
def test_eraser_attention_installs_and_restores_identity(
    unets: dict[str, UNet2DConditionModel], family: str
) -> None:
    unet = unets[family]
    original = dict(unet.attn_processors)
    expected = set(_decoder_self_attention(unet))
    state = EraserState()
    with eraser_attention(unet, state) as names:
        assert set(names) == expected
        inside = unet.attn_processors
        assert set(inside) == set(original)
        for name, processor in inside.items():
            if name in expected:
                assert isinstance(processor, AttentiveEraserAttnProcessor) and processor.state is state
            else:
                assert processor is original[name]
    _assert_restored(unet, original)


def _assert_restored(unet: UNet2DConditionModel, original: dict[str, Any]) -> None:
    now = unet.attn_processors
    assert set(now) == set(original)
    assert all(now[name] is original[name] for name in original)
    assert not any(isinstance(p, AttentiveEraserAttnProcessor) for p in now.values())


def test_eraser_attention_restores_on_exception(unets: dict[str, UNet2DConditionModel]) -> None:
    unet = unets["sdxl"]
    original = dict(unet.attn_processors)
    with pytest.raises(RuntimeError, match="boom"):
        with eraser_attention(unet, EraserState()):
            assert any(isinstance(p, AttentiveEraserAttnProcessor) for p in unet.attn_processors.values())
            raise RuntimeError("boom")
    _assert_restored(unet, original)


def test_eraser_attention_bad_pattern_leaves_unet_untouched(unets: dict[str, UNet2DConditionModel]) -> None:
    unet = unets["sd15"]
    original = dict(unet.attn_processors)
    with pytest.raises(ValueError, match="no_such_layer"):
        with eraser_attention(unet, EraserState(), pattern="no_such_layer"):
            pass
    _assert_restored(unet, original)


class _FailAtCall:
    """Forward hook on the UNet's last layer that raises at its ``fail_at``-th call (1-based)."""

    def __init__(self, unet: UNet2DConditionModel, fail_at: int) -> None:
        self.unet, self.fail_at, self.calls = unet, fail_at, 0
        self.eraser_installed_when_failing: bool | None = None

    def __call__(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        self.calls += 1
        if self.calls == self.fail_at:
            self.eraser_installed_when_failing = any(
                isinstance(p, AttentiveEraserAttnProcessor) for p in self.unet.attn_processors.values()
            )
            raise RuntimeError("UNet failed mid-run")


@pytest.mark.parametrize("pipeline_class", [AttentiveEraserSIPPipeline, AttentiveEraserDIPPipeline])
def test_pipeline_error_mid_run_restores_processors(pipeline_class: type) -> None:
    pipe = pipeline_class(**build_components("sd15", seed=0))
    pipe.set_progress_bar_config(disable=True)
    original = dict(pipe.unet.attn_processors)
    image = PIL.Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    mask = np.zeros((64, 64), dtype=bool)
    mask[16:40, 20:44] = True
    steps = 5
    seeded: dict[str, Any] = (
        {}
        if pipeline_class is AttentiveEraserDIPPipeline
        else {"generator": torch.Generator().manual_seed(0)}
    )
    # DIP first inverts (5 UNet calls with the stock processors); fail at the 3rd sampling step
    fail_at = 3 + (steps if pipeline_class is AttentiveEraserDIPPipeline else 0)
    hook = _FailAtCall(pipe.unet, fail_at)
    handle = pipe.unet.conv_out.register_forward_hook(hook)
    try:
        with pytest.raises(RuntimeError, match="UNet failed mid-run"):
            pipe(image, mask, num_inference_steps=steps, strength=1.0, removal_guidance_scale=9.0, **seeded)
    finally:
        handle.remove()
    assert hook.eraser_installed_when_failing is True  # the failure really happened inside the eraser run
    _assert_restored(pipe.unet, original)
    # and the pipeline still works afterwards
    result = pipe(image, mask, num_inference_steps=2, strength=1.0, output_type="latent")
    assert torch.isfinite(result.images).all()
    _assert_restored(pipe.unet, original)
