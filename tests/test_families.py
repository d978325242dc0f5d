"""The backbone seam: one registry of families, their rules, and pipelines that read their backbone."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from attentive_eraser import AttentiveEraserDIPPipeline, AttentiveEraserSIPPipeline
from attentive_eraser.api import DEMO_MODEL
from attentive_eraser.families import (
    FAMILIES,
    FOLDER_SETTINGS,
    family_named,
    family_of_checkpoint_keys,
    family_of_config,
    family_of_hub_id,
    folder_preset,
)
from attentive_eraser.settings import PRESETS

CONFIGS = [
    ({"addition_embed_type": "text_time", "cross_attention_dim": 2048}, "sdxl"),
    ({"cross_attention_dim": 768, "sample_size": 64}, "sd15"),
    ({"cross_attention_dim": 1024, "use_linear_projection": True, "sample_size": 64}, "sd21"),
    ({"cross_attention_dim": 1024, "use_linear_projection": True, "sample_size": 96}, "sd21-768"),
    ({"cross_attention_dim": 32, "sample_size": 8}, "sd15"),  # no rule: the fallback
]


@pytest.mark.parametrize(("config", "expected"), CONFIGS)
def test_config_rules(config: dict[str, object], expected: str) -> None:
    assert family_of_config(config).name == expected


def test_single_file_keys_pick_the_most_specific_family() -> None:
    unet = "model.diffusion_model.input_blocks.0.0.weight"
    assert family_of_checkpoint_keys([unet, "conditioner.embedders.1.model.x"]).name == "sdxl"  # type: ignore[union-attr]
    assert family_of_checkpoint_keys([unet, "cond_stage_model.model.x"]).name == "sd21"  # type: ignore[union-attr]
    assert family_of_checkpoint_keys([unet, "cond_stage_model.transformer.x"]).name == "sd15"  # type: ignore[union-attr]
    assert family_of_checkpoint_keys(["something.else"]) is None


def test_every_family_has_a_preset_pipelines_and_a_layer_pattern() -> None:
    assert set(FAMILIES) == set(PRESETS)
    for family in FAMILIES.values():
        assert family.preset.name == family.name
        for method in ("sip", "dip"):
            cls = family.backbone.pipeline_class(method)  # type: ignore[arg-type]
            assert cls.backbone is family.backbone
    with pytest.raises(ValueError, match="method='ddim' must be 'sip' or 'dip'"):
        FAMILIES["sd15"].backbone.pipeline_class("ddim")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="family='flux' is unknown"):
        family_named("flux")
    assert family_of_hub_id("stabilityai/stable-diffusion-xl-base-1.0").name == "sdxl"  # type: ignore[union-attr]
    assert family_of_hub_id("someone/else") is None


def test_the_demo_preset_travels_with_its_folder(tmp_path: Path) -> None:
    """The diffusers way (from_pretrained) gets the preset remove() uses: the folder names it."""
    assert folder_preset(DEMO_MODEL) == PRESETS["demo"]
    pipe = AttentiveEraserSIPPipeline.from_pretrained(str(DEMO_MODEL))
    assert pipe.preset == PRESETS["demo"] and pipe.preset.removal_guidance_scale == 15.0
    # without the file the same weights get the SD preset at the UNet's resolution (s = 9)
    bare = tmp_path / "bare"
    shutil.copytree(DEMO_MODEL, bare, ignore=shutil.ignore_patterns(FOLDER_SETTINGS, "training"))
    plain = AttentiveEraserDIPPipeline.from_pretrained(str(bare))
    assert plain.preset.family != "demo" and plain.preset.removal_guidance_scale == 9.0


@pytest.mark.parametrize(
    ("text", "message"),
    [("{broken", "is not valid JSON"), (json.dumps({"preset": "sd99"}), "names preset='sd99'")],
)
def test_a_damaged_folder_preset_is_refused_by_name(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / FOLDER_SETTINGS).write_text(text)
    with pytest.raises(ValueError, match=message):
        folder_preset(tmp_path)
    assert folder_preset(tmp_path / "missing") is None


def test_the_eraser_acts_on_the_layers_the_backbone_names(tiny_sd15_dir: Path) -> None:
    """A backbone naming fewer layers changes the result: the pipeline reads the pattern from it."""
    pipe = AttentiveEraserSIPPipeline.from_pretrained(str(tiny_sd15_dir))
    pipe.set_progress_bar_config(disable=True)
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    mask = np.zeros((64, 64), dtype=bool)
    mask[16:48, 16:48] = True

    def run() -> np.ndarray:
        generator = torch.Generator().manual_seed(0)
        out = pipe(
            image, mask, num_inference_steps=4, generator=generator, output_type="np", paste_back=False
        )
        return np.asarray(out.images[0])

    full = run()
    pipe.backbone = replace(
        pipe.backbone, eraser_layers=r"up_blocks\.1\.attentions\.0\.transformer_blocks\.0\.attn1\.processor"
    )
    fewer = run()
    assert not np.array_equal(full, fewer)
    pipe.backbone = replace(pipe.backbone, eraser_layers=r"no\.such\.layer")
    with pytest.raises(ValueError, match="matches no attention layer"):
        run()
