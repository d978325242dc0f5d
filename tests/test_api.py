"""The one-call API: family detection, device/dtype choice, the pipeline cache, alpha handling."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch
from safetensors.torch import save_file

import attentive_eraser as ae
from attentive_eraser import api


@pytest.mark.parametrize(
    ("key", "family"),
    [
        ("conditioner.embedders.1.model.ln_final.weight", "sdxl"),
        ("cond_stage_model.model.ln_final.weight", "sd21"),
        ("cond_stage_model.transformer.text_model.final_layer_norm.weight", "sd15"),
    ],
)
def test_detect_family_of_single_file_checkpoints(tmp_path, key: str, family: str) -> None:
    path = tmp_path / "model.safetensors"
    save_file({key: torch.zeros(2), "model.diffusion_model.out.0.weight": torch.zeros(2)}, str(path))
    assert api.detect_family(path) == family


def test_detect_family_rejects_unknown_checkpoints_and_files(tmp_path) -> None:
    path = tmp_path / "other.safetensors"
    save_file({"encoder.weight": torch.zeros(2)}, str(path))
    with pytest.raises(ValueError, match="not a Stable Diffusion"):
        api.detect_family(path)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match="notes.txt"):
        api.detect_family(text)
    with pytest.raises(ValueError, match="no unet/config.json"):
        api.detect_family(tmp_path)


def test_detect_family_of_saved_folders_and_known_ids(tiny_sd15_dir, tiny_sdxl_dir) -> None:
    assert api.detect_family(tiny_sd15_dir) == "sd15"
    assert api.detect_family(tiny_sdxl_dir) == "sdxl"
    assert api.detect_family("stabilityai/stable-diffusion-2-1-base") == "sd21"
    assert api.detect_family("stabilityai/stable-diffusion-xl-base-1.0") == "sdxl"


def test_unknown_and_unreachable_models_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="model='no such model' is unknown"):
        api.detect_family("no such model")
    with pytest.raises(ValueError, match="model='someone/absent-model': the weights are not on this machine"):
        api.detect_family("someone/absent-model")


def test_resolve_device_and_dtype() -> None:
    assert api.resolve_device("cpu") == torch.device("cpu")
    assert api.resolve_dtype(None, torch.device("cpu")) == torch.float32
    assert api.resolve_dtype(None, torch.device("cuda")) == torch.float16
    assert api.resolve_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(ValueError, match="dtype='int8'"):
        api.resolve_dtype("int8", torch.device("cpu"))
    with pytest.raises(ValueError, match="device='gpu0'"):
        api.resolve_device("gpu0")


def test_load_pipeline_caches_and_shares_weights_between_methods(tiny_sd15_dir) -> None:
    api.clear_cache()
    sip = ae.load_pipeline(tiny_sd15_dir, method="sip", device="cpu")
    dip = ae.load_pipeline(tiny_sd15_dir, method="dip", device="cpu")
    assert type(sip).__name__ == "AttentiveEraserSIPPipeline"
    assert type(dip).__name__ == "AttentiveEraserDIPPipeline"
    assert dip.unet is sip.unet and dip.vae is sip.vae
    assert ae.load_pipeline(tiny_sd15_dir, method="sip", device="cpu") is sip
    assert type(sip.scheduler).__name__ == "DDIMScheduler"
    api.clear_cache()


def test_load_pipeline_picks_sdxl_classes(tiny_sdxl_dir) -> None:
    pipe = ae.load_pipeline(tiny_sdxl_dir, method="dip", device="cpu", cache=False)
    assert type(pipe).__name__ == "AttentiveEraserSDXLDIPPipeline"
    assert pipe.preset.family == "sdxl"
    with pytest.raises(ValueError, match="method='ddim'"):
        ae.load_pipeline(tiny_sdxl_dir, method="ddim", cache=False)


def _rgba_scene() -> tuple[PIL.Image.Image, np.ndarray]:
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 255, (48, 80, 4), dtype=np.uint8)
    pixels[..., 3] = np.linspace(60, 255, 80, dtype=np.uint8)[None, :]  # a real alpha ramp to carry
    mask = np.zeros((48, 80), bool)
    mask[10:30, 20:50] = True
    return PIL.Image.fromarray(pixels, "RGBA"), mask


def test_remove_carries_the_alpha_channel_of_the_image(tiny_sd15_dir) -> None:
    image, mask = _rgba_scene()
    result = ae.remove(image, mask, model=tiny_sd15_dir, num_inference_steps=4, progress=False, device="cpu")
    assert result.mode == "RGBA" and result.size == image.size
    assert np.array_equal(np.asarray(result)[..., 3], np.asarray(image)[..., 3])


def test_remove_takes_the_mask_from_transparency(tiny_sd15_dir) -> None:
    image, mask = _rgba_scene()
    pixels = np.asarray(image).copy()
    pixels[..., 3] = 255
    pixels[mask, 3] = 0  # the transparent region is the object
    result = ae.remove(
        PIL.Image.fromarray(pixels, "RGBA"),
        None,
        model=tiny_sd15_dir,
        num_inference_steps=4,
        progress=False,
        device="cpu",
    )
    assert result.mode == "RGB" and result.size == image.size
    changed = np.abs(np.asarray(result, dtype=int) - pixels[..., :3].astype(int)).sum(-1) > 0
    assert changed[mask].mean() > 0.9  # the object was repainted
    with pytest.raises(ae.InputError, match="no mask given"):
        ae.remove(image.convert("RGB"), None, model=tiny_sd15_dir, progress=False)


def test_remove_same_seed_same_result_and_seed_validation(tiny_sd15_dir) -> None:
    image, mask = _rgba_scene()
    kwargs = dict(model=tiny_sd15_dir, num_inference_steps=4, progress=False, device="cpu")
    first = np.asarray(ae.remove(image, mask, seed=5, **kwargs))
    assert np.array_equal(first, np.asarray(ae.remove(image, mask, seed=5, **kwargs)))
    assert not np.array_equal(first, np.asarray(ae.remove(image, mask, seed=6, **kwargs)))
    with pytest.raises(ValueError, match="seed=-1"):
        ae.remove(image, mask, seed=-1, **kwargs)
