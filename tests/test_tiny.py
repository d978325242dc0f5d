"""The tiny offline models: tokenizer, determinism, real block topology, save/load round trip, CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline, StableDiffusionPipeline, StableDiffusionXLPipeline
from diffusers.models.attention import BasicTransformerBlock
from transformers import CLIPTokenizer

from attentive_eraser.testing.tiny import build_components, build_tokenizer, main, save_tiny_model

FAMILIES = ("sd15", "sd21", "sdxl")
PIPELINES: dict[str, type[DiffusionPipeline]] = {
    "sd15": StableDiffusionPipeline,
    "sd21": StableDiffusionPipeline,
    "sdxl": StableDiffusionXLPipeline,
}


def _modules(components: dict[str, Any]) -> dict[str, torch.nn.Module]:
    """The components that hold weights."""
    return {name: value for name, value in components.items() if isinstance(value, torch.nn.Module)}


def _count_blocks(module: torch.nn.Module) -> int:
    """Number of transformer blocks below ``module``."""
    return sum(isinstance(child, BasicTransformerBlock) for child in module.modules())


def _run(pipeline: DiffusionPipeline, height: int = 64, width: int = 64) -> np.ndarray:
    """A 2-step run with a fixed generator; images as (B, H, W, 3) floats."""
    pipeline.set_progress_bar_config(disable=True)
    generator = torch.Generator().manual_seed(0)
    return pipeline(
        "", num_inference_steps=2, height=height, width=width, generator=generator, output_type="np"
    ).images


# --- tokenizer ---------------------------------------------------------------------------------------


def test_tokenizer_vocabulary_and_padding() -> None:
    tokenizer = build_tokenizer()
    assert len(tokenizer) == 514
    assert tokenizer.model_max_length == 77
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    assert tokenizer.pad_token_id == eos and bos != eos

    ids = tokenizer(["", "background"], padding="max_length", max_length=77, truncation=True).input_ids
    assert ids[0] == [bos] + [eos] * 76
    # One token per character; the last one carries the end-of-word mark.
    word = tokenizer.convert_ids_to_tokens(ids[1][1:11])
    assert word == [*"backgroun", "d</w>"]
    assert ids[1][11:] == [eos] * 66
    # Byte-level: any text encodes without unknown tokens and decodes back (lower-cased, as CLIP does).
    text = "A red ball, é!"
    encoded = tokenizer(text).input_ids
    decoded = tokenizer.decode(encoded, skip_special_tokens=True)
    assert decoded.replace(" ", "") == text.lower().replace(" ", "")


def test_tokenizer_round_trip(tmp_path: Path) -> None:
    tokenizer = build_tokenizer()
    tokenizer.save_pretrained(tmp_path)
    loaded = CLIPTokenizer.from_pretrained(tmp_path)
    prompts = ["", "background", "a photo of a cat"]
    kwargs: dict[str, Any] = {"padding": "max_length", "max_length": 77, "truncation": True}
    assert loaded(prompts, **kwargs).input_ids == tokenizer(prompts, **kwargs).input_ids
    assert loaded.get_vocab() == tokenizer.get_vocab()
    assert loaded.model_max_length == 77


# --- weights -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_same_seed_same_weights_other_seed_differs(family: str) -> None:
    first = _modules(build_components(family, seed=3))
    again = _modules(build_components(family, seed=3))
    other = _modules(build_components(family, seed=4))
    assert first.keys() == again.keys() == other.keys()
    for name in first:
        state, state_again, state_other = (m[name].state_dict() for m in (first, again, other))
        assert state.keys() == state_again.keys()
        assert all(torch.equal(state[key], state_again[key]) for key in state), name
        # Some tensors (norm weights, zero biases) are seed-independent; random ones must change.
        assert any(not torch.equal(state[key], state_other[key]) for key in state), name


def test_building_leaves_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_components("sd15", seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="family"):
        build_components("sd3")
    with pytest.raises(ValueError, match="prediction_type"):
        build_components("sd15", prediction_type="sample")


# --- topology ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "down", "mid", "up"),
    [("sd15", 6, 1, 9), ("sd21", 6, 1, 9), ("sdxl", 24, 10, 36)],
)
def test_transformer_block_counts_match_real_models(family: str, down: int, mid: int, up: int) -> None:
    unet = build_components(family)["unet"]
    assert sum(_count_blocks(block) for block in unet.down_blocks) == down
    assert _count_blocks(unet.mid_block) == mid
    assert sum(_count_blocks(block) for block in unet.up_blocks) == up
    # The decoder self-attention layers the method hooks, found by name as the processors are.
    decoder_self_attention = [
        name for name in unet.attn_processors if name.startswith("up_blocks.") and ".attn1." in name
    ]
    assert len(decoder_self_attention) == up


def test_family_specific_configs() -> None:
    sd15, sd21, sdxl = (build_components(family) for family in FAMILIES)
    assert not sd15["unet"].config.use_linear_projection
    assert sd21["unet"].config.use_linear_projection and sdxl["unet"].config.use_linear_projection
    assert sd21["unet"].config.attention_head_dim == (1, 2, 4, 4)
    assert sdxl["unet"].config.cross_attention_dim == 64
    assert sdxl["unet"].config.addition_embed_type == "text_time"
    assert sd15["scheduler"].config.steps_offset == 1 and sdxl["scheduler"].config.steps_offset == 0
    assert sd15["vae"].config.scaling_factor == pytest.approx(0.18215)
    assert sdxl["vae"].config.scaling_factor == pytest.approx(0.13025) and sdxl["vae"].config.force_upcast
    assert len(sd15["vae"].config.block_out_channels) == 4  # vae_scale_factor 8
    assert build_components("sd21")["scheduler"].config.prediction_type == "epsilon"
    assert build_components("sd21", prediction_type="v_prediction")["scheduler"].config.prediction_type == (
        "v_prediction"
    )


@pytest.mark.parametrize(("height", "width"), [(64, 64), (64, 128)])
def test_sdxl_components_run_any_aspect(height: int, width: int) -> None:
    pipeline = StableDiffusionXLPipeline(**build_components("sdxl"), add_watermarker=False)
    images = _run(pipeline, height, width)
    assert images.shape == (1, height, width, 3)
    assert np.isfinite(images).all() and images.std() > 0


# --- saving and loading ------------------------------------------------------------------------------


def test_sd15_round_trip_gives_identical_outputs(tiny_sd15_dir: Path) -> None:
    built = StableDiffusionPipeline(**build_components("sd15"), requires_safety_checker=False)
    loaded = StableDiffusionPipeline.from_pretrained(tiny_sd15_dir)
    assert (tiny_sd15_dir / "tokenizer" / "tokenizer.json").is_file()
    assert next((tiny_sd15_dir / "unet").glob("*.safetensors"), None) is not None
    expected = _run(built, 64, 128)
    assert expected.shape == (1, 64, 128, 3)
    np.testing.assert_array_equal(_run(loaded, 64, 128), expected)


def test_sdxl_round_trip_gives_identical_outputs(tiny_sdxl_dir: Path) -> None:
    built = StableDiffusionXLPipeline(**build_components("sdxl"), add_watermarker=False)
    loaded = StableDiffusionXLPipeline.from_pretrained(tiny_sdxl_dir, add_watermarker=False)
    assert isinstance(loaded.tokenizer_2, CLIPTokenizer)
    np.testing.assert_array_equal(_run(loaded), _run(built))


def test_refuses_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        save_tiny_model(tmp_path)
    assert not (tmp_path / "model_index.json").exists()
    assert save_tiny_model(tmp_path, overwrite=True) == tmp_path
    assert (tmp_path / "model_index.json").is_file() and (tmp_path / "notes.txt").read_text() == "keep me"


# --- command line ------------------------------------------------------------------------------------


def test_cli_writes_loadable_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "sd21-v"
    assert main([str(target), "--family", "sd21", "--seed", "1", "--prediction-type", "v_prediction"]) == 0
    out = capsys.readouterr().out
    assert str(target) in out and "parameters" in out
    pipeline = StableDiffusionPipeline.from_pretrained(target)
    assert pipeline.scheduler.config.prediction_type == "v_prediction"
    assert pipeline.unet.config.use_linear_projection
    expected = build_components("sd21", seed=1)["unet"].state_dict()
    assert all(torch.equal(value, expected[key]) for key, value in pipeline.unet.state_dict().items())

    # A second write into the now non-empty folder is refused with a message, not a traceback.
    assert main([str(target), "--family", "sd15"]) == 1
    assert "overwrite" in capsys.readouterr().err
