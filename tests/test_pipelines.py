"""End to end on tiny random models, against independent loops.

SIP and DIP for SD 1.5 / 2.1 (v-prediction) / XL.

Inputs are non-square and are not multiples of 64 (77x130 px; working size 64x128 at ``resolution=96``), so
the latent grid is 8x16 and the token grids 16x8, 8x4, 4x2. The reference loops below are written from
the paper's recipes (docs/method.md) with their own DDIM arithmetic and schedule; they share only the
stock modules (VAE, text encoder, UNet) with the package.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import pytest
import reference
import torch
from diffusers import DDIMScheduler, EulerDiscreteScheduler, PNDMScheduler

from attentive_eraser import api, imaging
from attentive_eraser.core.attention import AttentiveEraserAttnProcessor
from attentive_eraser.pipelines import (
    AttentiveEraserDIPPipeline,
    AttentiveEraserSDXLDIPPipeline,
    AttentiveEraserSDXLSIPPipeline,
    AttentiveEraserSIPPipeline,
)
from attentive_eraser.pipelines.dip import DIPMixin
from attentive_eraser.pipelines.sip import SIPMixin
from attentive_eraser.settings import NON_CALL_FIELDS, PRESETS, Preset, preset_field_names
from attentive_eraser.testing.tiny import build_components

RESOLUTION = 96
ORIGINAL = (77, 130)  # (width, height): odd, non-square
WORKING = (64, 128)  # what imaging.working_size makes of it at RESOLUTION
STEPS = 5

CLASSES = {
    "sd": (AttentiveEraserSIPPipeline, AttentiveEraserDIPPipeline),
    "sdxl": (AttentiveEraserSDXLSIPPipeline, AttentiveEraserSDXLDIPPipeline),
}


# ------------------------------------------------------------------------------------------ helpers
def _image(seed: int, size: tuple[int, int] = ORIGINAL) -> PIL.Image.Image:
    """A smooth random RGB picture of ``size`` (width, height)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (size[1] // 8 + 2, size[0] // 8 + 2, 3), dtype=np.uint8)
    smooth = PIL.Image.fromarray(coarse).resize(size, PIL.Image.Resampling.BICUBIC)
    noise = rng.integers(-20, 21, (size[1], size[0], 3))
    return PIL.Image.fromarray(np.clip(np.asarray(smooth, dtype=np.int64) + noise, 0, 255).astype(np.uint8))


def _box(top: int, left: int, bottom: int, right: int, size: tuple[int, int] = ORIGINAL) -> np.ndarray:
    mask = np.zeros((size[1], size[0]), dtype=bool)
    mask[top:bottom, left:right] = True
    return mask


def _pipes(family: str, prediction_type: str | None = None) -> dict[str, Any]:
    sip_class, dip_class = CLASSES["sdxl" if family == "sdxl" else "sd"]
    sip = sip_class(**build_components(family, seed=0, prediction_type=prediction_type))
    dip = dip_class(**sip.components)  # shares the modules
    for pipe in (sip, dip):
        pipe.set_progress_bar_config(disable=True)
    return {"sip": sip, "dip": dip}


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def sd15() -> dict[str, Any]:
    return _pipes("sd15")


@pytest.fixture(scope="module")
def sd21v() -> dict[str, Any]:
    return _pipes("sd21", "v_prediction")


@pytest.fixture(scope="module")
def sdxl() -> dict[str, Any]:
    return _pipes("sdxl")


@pytest.fixture(scope="module")
def all_pipes(sd15: dict[str, Any], sd21v: dict[str, Any], sdxl: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {"sd15": sd15, "sd21v": sd21v, "sdxl": sdxl}


def _run(pipe: Any, method: str, image: Any, mask: Any, *, seed: int | None = 0, **kwargs: Any) -> Any:
    """A pipeline call with the tests' defaults (5 steps, working size 64x128)."""
    options: dict[str, Any] = {"num_inference_steps": STEPS, "resolution": RESOLUTION}
    if method == "sip":
        options["strength"] = 0.8
        if seed is not None:
            options["generator"] = _generator(seed)
    options.update(kwargs)
    return pipe(image, mask, **options)


# ------------------------------------------------------------------------ independent DDIM reference
def _alphas_cumprod() -> torch.Tensor:
    """The paper's DDIM: scaled-linear betas from 0.00085 to 0.012 over 1000 steps, float64."""
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


ALPHAS = _alphas_cumprod()
FINAL_ALPHA = ALPHAS[0]  # set_alpha_to_one=False


def _schedule(num_steps: int, strength: float, steps_offset: int) -> list[int]:
    """DDIM "leading" timesteps, truncated by strength: 50/0.8/offset 1 -> 781, 761, ..., 1."""
    ratio = 1000 // num_steps
    timesteps = [index * ratio + steps_offset for index in reversed(range(num_steps))]
    run = min(int(num_steps * strength), num_steps)
    return timesteps[num_steps - run :]


def _alpha(t: int) -> torch.Tensor:
    return ALPHAS[t] if t >= 0 else FINAL_ALPHA


def _x0_eps(
    output: torch.Tensor, sample: torch.Tensor, alpha: torch.Tensor, prediction_type: str
) -> tuple[torch.Tensor, torch.Tensor]:
    output, sample = output.double(), sample.double()
    if prediction_type == "epsilon":
        return (sample - (1 - alpha).sqrt() * output) / alpha.sqrt(), output
    # v = sqrt(a) eps - sqrt(1 - a) x0
    return alpha.sqrt() * sample - (1 - alpha).sqrt() * output, alpha.sqrt() * output + (
        1 - alpha
    ).sqrt() * sample


def _ddim_step(
    output: torch.Tensor, t: int, sample: torch.Tensor, ratio: int, prediction_type: str
) -> torch.Tensor:
    """eta = 0 DDIM step from t to t - ratio."""
    x0, eps = _x0_eps(output, sample, _alpha(t), prediction_type)
    alpha_prev = _alpha(t - ratio)
    return (alpha_prev.sqrt() * x0 + (1 - alpha_prev).sqrt() * eps).float()


def _noised(z0: torch.Tensor, noise: torch.Tensor, t: int) -> torch.Tensor:
    a = ALPHAS[t]
    return (a.sqrt() * z0.double() + (1 - a).sqrt() * noise.double()).float()


def _empty_prompt_embeds(pipe: Any) -> torch.Tensor:
    ids = pipe.tokenizer(
        [""],
        padding="max_length",
        max_length=pipe.tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids
    return pipe.text_encoder(ids)[0]


def _pixels(image: PIL.Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]


def _latent_mask(mask: np.ndarray) -> torch.Tensor:
    h, w = mask.shape[0] // 8, mask.shape[1] // 8
    return torch.from_numpy(reference.latent_object_mask(mask, (h, w)).astype(np.float32))[None, None]


@contextmanager
def _reference_eraser(
    unet: Any, mask: np.ndarray, suppression_scale: float, suppressing: Any
) -> Iterator[None]:
    """The eager reference processor on every decoder self-attention layer of ``unet``.

    The layers are found by module path.
    """
    latent = (mask.shape[0] // 8, mask.shape[1] // 8)
    tokens = {}
    for level in range(4):
        objects = torch.from_numpy(reference.token_object_mask(mask, latent, level))[None]
        tokens[objects.shape[1]] = objects
    processor = reference.ReferenceEraserProcessor(tokens, suppression_scale, suppressing)
    original = dict(unet.attn_processors)
    patched = {
        name: processor if name.startswith("up_blocks.") and name.endswith(".attn1.processor") else p
        for name, p in original.items()
    }
    unet.set_attn_processor(patched)
    try:
        yield
    finally:
        unet.set_attn_processor(dict(original))


def _sarg_prediction(
    pipe: Any,
    z: torch.Tensor,
    t: int,
    embeds: torch.Tensor,
    mask: np.ndarray,
    scale: float,
    suppression_scale: float,
    suppress: bool,
) -> torch.Tensor:
    """Eq. 18 with the eager reference: one UNet call on [z, z], the second half erased."""
    if scale == 0.0:
        return pipe.unet(z, t, encoder_hidden_states=embeds).sample
    with _reference_eraser(pipe.unet, mask, suppression_scale, lambda: suppress):
        output = pipe.unet(torch.cat([z, z]), t, encoder_hidden_states=torch.cat([embeds, embeds])).sample
    plain, erased = output.chunk(2)
    return plain + scale * (erased - plain)


@torch.no_grad()
def _reference_sip(
    pipe: Any,
    image: PIL.Image.Image,
    mask: np.ndarray,
    seed: int,
    num_steps: int,
    strength: float,
    removal_guidance_scale: float = 0.0,
    suppression_scale: float = 0.3,
    suppression_steps: int = 10,
) -> torch.Tensor:
    """Blended latent diffusion (SIP) with SARG from the eager reference; image at the working size."""
    prediction_type = pipe.scheduler.config.prediction_type
    generator = _generator(seed)
    posterior = pipe.vae.encode(_pixels(image)).latent_dist
    # the random draws in order: the VAE posterior sample, then one noise of the latent shape
    z0 = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator)
    z0 = z0 * pipe.vae.config.scaling_factor
    noise = torch.randn(z0.shape, generator=generator)
    m = _latent_mask(mask)
    timesteps = _schedule(num_steps, strength, steps_offset=1)
    ratio = 1000 // num_steps
    embeds = _empty_prompt_embeds(pipe)
    z = _noised(z0, noise, timesteps[0])  # the whole image is noised, object included
    for i, t in enumerate(timesteps):
        output = _sarg_prediction(
            pipe,
            z,
            t,
            embeds,
            mask,
            removal_guidance_scale,
            suppression_scale,
            suppress=i < suppression_steps,
        )
        z = _ddim_step(output, t, z, ratio, prediction_type)
        background = _noised(z0, noise, timesteps[i + 1]) if i + 1 < len(timesteps) else z0
        z = m * z + (1 - m) * background
    return z


@torch.no_grad()
def _reference_dip(
    pipe: Any, image: PIL.Image.Image, mask: np.ndarray, num_steps: int
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """DiffEdit-style DIP (s = 0): DDIM inversion over the sampling schedule, then blended sampling."""
    prediction_type = pipe.scheduler.config.prediction_type
    z0 = pipe.vae.encode(_pixels(image)).latent_dist.mean * pipe.vae.config.scaling_factor
    m = _latent_mask(mask)
    timesteps = _schedule(num_steps, 1.0, steps_offset=1)
    ratio = 1000 // num_steps
    embeds = _empty_prompt_embeds(pipe)
    # inversion: from z0 (at the final alpha) up through t_n, ..., t_1; the UNet is read at the target t
    trajectory: list[torch.Tensor] = [z0] * len(timesteps)
    z, alpha_from = z0, FINAL_ALPHA
    for index in reversed(range(len(timesteps))):
        t = timesteps[index]
        output = pipe.unet(z, t, encoder_hidden_states=embeds).sample
        x0, eps = _x0_eps(output, z, alpha_from, prediction_type)
        z = (ALPHAS[t].sqrt() * x0 + (1 - ALPHAS[t]).sqrt() * eps).float()
        trajectory[index] = z
        alpha_from = ALPHAS[t]
    z = trajectory[0]
    for i, t in enumerate(timesteps):
        z = m * z + (1 - m) * trajectory[i]
        output = pipe.unet(z, t, encoder_hidden_states=embeds).sample
        z = _ddim_step(output, t, z, ratio, prediction_type)
    return m * z + (1 - m) * z0, trajectory


# --------------------------------------------------------------------------------------- smoke runs
def test_working_size_is_non_square() -> None:
    assert imaging.working_size(ORIGINAL, RESOLUTION) == WORKING
    assert imaging.working_size(WORKING, RESOLUTION) == WORKING


@pytest.mark.parametrize("family", ["sd15", "sd21v", "sdxl"])
@pytest.mark.parametrize("method", ["sip", "dip"])
def test_runs_and_returns_original_size(
    all_pipes: dict[str, dict[str, Any]], family: str, method: str
) -> None:
    pipe = all_pipes[family][method]
    mask = _box(40, 20, 90, 60)
    result = _run(pipe, method, _image(0), mask)
    assert len(result.images) == 1
    image = result.images[0]
    assert isinstance(image, PIL.Image.Image) and image.size == ORIGINAL and image.mode == "RGB"
    assert len(result.masks) == 1 and result.masks[0].shape == (ORIGINAL[1], ORIGINAL[0])
    assert result.masks[0].dtype == bool and result.masks[0][mask].all()
    # latents at the non-square working size: (1, 4, 128 / 8, 64 / 8)
    latents = _run(pipe, method, _image(0), mask, output_type="latent").images
    assert latents.shape == (1, 4, WORKING[1] // 8, WORKING[0] // 8) and torch.isfinite(latents).all()
    array = _run(pipe, method, _image(0), mask, output_type="np").images
    assert array.shape == (1, ORIGINAL[1], ORIGINAL[0], 3) and array.dtype == np.float32
    assert 0.0 <= array.min() and array.max() <= 1.0


def test_sip_seed_determinism(sd15: dict[str, Any]) -> None:
    mask = _box(40, 20, 90, 60)
    first = _run(sd15["sip"], "sip", _image(0), mask, seed=123, output_type="np", paste_back=False).images
    again = _run(sd15["sip"], "sip", _image(0), mask, seed=123, output_type="np", paste_back=False).images
    other = _run(sd15["sip"], "sip", _image(0), mask, seed=321, output_type="np", paste_back=False).images
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_dip_is_deterministic_without_generator(all_pipes: dict[str, dict[str, Any]], family: str) -> None:
    pipe = all_pipes[family]["dip"]
    assert "generator" not in inspect.signature(type(pipe).__call__).parameters
    mask = _box(40, 20, 90, 60)
    torch.manual_seed(1)
    first = _run(pipe, "dip", _image(0), mask, output_type="np", paste_back=False).images
    torch.manual_seed(2)  # the global RNG must not matter
    second = _run(pipe, "dip", _image(0), mask, output_type="np", paste_back=False).images
    assert np.array_equal(first, second)


@pytest.mark.parametrize("method", ["sip", "dip"])
@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_sarg_changes_the_object_region_only(
    all_pipes: dict[str, dict[str, Any]], family: str, method: str
) -> None:
    pipe = all_pipes[family][method]
    mask = _box(40, 8, 96, 56, size=WORKING)
    image = _image(3, size=WORKING)
    guided = _run(
        pipe, method, image, mask, removal_guidance_scale=9.0, mask_dilation=0, output_type="latent"
    ).images
    plain = _run(
        pipe, method, image, mask, removal_guidance_scale=0.0, mask_dilation=0, output_type="latent"
    ).images
    inside = _latent_mask(mask).bool().expand_as(guided)
    assert (guided - plain)[inside].abs().max() > 1e-2
    # the last blend puts z0 back outside the mask whatever s is
    assert torch.equal(guided[~inside], plain[~inside])


# ------------------------------------------------------------------------- s = 0 is the plain method
@pytest.mark.parametrize("family", ["sd15", "sd21v"])
def test_sip_without_sarg_is_blended_latent_diffusion(
    all_pipes: dict[str, dict[str, Any]], family: str
) -> None:
    pipe = all_pipes[family]["sip"]
    image = _image(4, size=WORKING)  # already at the working size: no resampling to mirror
    mask = _box(37, 9, 91, 43, size=WORKING)  # not aligned to the 8 px latent cells
    for num_steps, strength in ((STEPS, 0.8), (10, 0.5)):
        got = _run(
            pipe,
            "sip",
            image,
            mask,
            seed=7,
            num_inference_steps=num_steps,
            strength=strength,
            removal_guidance_scale=0.0,
            mask_dilation=0,
            output_type="latent",
        ).images
        expected = _reference_sip(pipe, image, mask, seed=7, num_steps=num_steps, strength=strength)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family", ["sd15", "sd21v"])
def test_sip_with_sarg_matches_the_eager_reference(all_pipes: dict[str, dict[str, Any]], family: str) -> None:
    """SARG end to end: [plain, erased] in one UNet call.

    AAS on every decoder self-attention, SS for T_SS steps.
    """
    pipe = all_pipes[family]["sip"]
    image = _image(8, size=WORKING)
    mask = _box(37, 9, 91, 43, size=WORKING)
    knobs = {"removal_guidance_scale": 9.0, "suppression_scale": 0.3, "suppression_steps": 2}
    got = _run(pipe, "sip", image, mask, seed=7, mask_dilation=0, output_type="latent", **knobs).images
    expected = _reference_sip(pipe, image, mask, seed=7, num_steps=STEPS, strength=0.8, **knobs)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    unguided = _reference_sip(pipe, image, mask, seed=7, num_steps=STEPS, strength=0.8)
    assert (got - unguided).abs().max() > 1e-2  # the comparison can tell guided from unguided


@pytest.mark.parametrize("family", ["sd15", "sd21v"])
def test_dip_without_sarg_is_inversion_then_blended_sampling(
    all_pipes: dict[str, dict[str, Any]], family: str
) -> None:
    pipe = all_pipes[family]["dip"]
    image = _image(5, size=WORKING)
    mask = _box(37, 9, 91, 43, size=WORKING)
    got = _run(
        pipe, "dip", image, mask, removal_guidance_scale=0.0, mask_dilation=0, output_type="latent"
    ).images
    expected, trajectory = _reference_dip(pipe, image, mask, STEPS)
    inversion = pipe.invert(image, num_inference_steps=STEPS, resolution=RESOLUTION)
    assert [int(t) for t in inversion.timesteps] == _schedule(STEPS, 1.0, 1)
    assert len(inversion.trajectory) == STEPS
    # DDIM near t = 1000 divides by sqrt(alpha) ~ 0.07 and the random UNet is far from smooth: float32
    # rounding (the package) against float64 (this reference) grows to ~7e-6 on the trajectory and ~6e-5
    # on the result (measured; latents are up to ~4). A wrong timestep or mask is off by 1e-1 or more.
    for ours, theirs in zip(trajectory, inversion.trajectory, strict=False):
        torch.testing.assert_close(theirs, ours, atol=3e-5, rtol=1e-5)
    torch.testing.assert_close(got, expected, atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize("removal_guidance_scale", [0.0, 9.0])
def test_dip_background_follows_the_trajectory(sd15: dict[str, Any], removal_guidance_scale: float) -> None:
    """Before each UNet call the background is the trajectory latent; after the loop it is z0 (DIP)."""
    pipe = sd15["dip"]
    image = _image(6, size=WORKING)
    mask = _box(48, 16, 64, 32, size=WORKING)  # a tiny object: 2x2 latent cells
    inversion = pipe.invert(image, num_inference_steps=STEPS, resolution=RESOLUTION)
    unet_inputs: list[torch.Tensor] = []
    handle = pipe.unet.register_forward_pre_hook(lambda module, args: unet_inputs.append(args[0].clone()))
    try:
        latents = _run(
            pipe,
            "dip",
            image,
            mask,
            removal_guidance_scale=removal_guidance_scale,
            mask_dilation=0,
            output_type="latent",
        ).images
    finally:
        handle.remove()
    outside = ~_latent_mask(mask).bool().expand_as(latents)
    assert int((~outside).sum()) == 4 * 4
    assert torch.equal(latents[outside], inversion.latents[outside])
    sampling_inputs = unet_inputs[-STEPS:]  # the first calls are the inversion's
    for i, sample in enumerate(sampling_inputs):
        for half in sample.split(1):  # [plain, erased] (or just plain when s = 0)
            assert torch.equal(half[outside], inversion.trajectory[i][outside])


# ----------------------------------------------------------------------------- DDIM inversion accuracy
@pytest.fixture(scope="module")
def x_independent_dip() -> AttentiveEraserDIPPipeline:
    """Tiny SD whose UNet output does not depend on its input latents (conv_in weights zeroed).

    A random tiny UNet is far from the smooth function DDIM inversion assumes: inverting and resampling
    its latents misses them by 170-1900 % (measured, 10-50 steps), so no tolerance could tell a correct
    inversion from a misaligned one. With ``eps(x, t) = f(t)`` DDIM inversion is exact, while reading the
    UNet at a neighbouring timestep, or starting from the wrong trajectory entry, misses by 100-350 %
    (measured with such deliberate bugs in a scratch copy).
    """
    components = build_components("sd15", seed=0)
    with torch.no_grad():
        components["unet"].conv_in.weight.zero_()
    pipe = AttentiveEraserDIPPipeline(**components)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize(("num_steps", "strength"), [(20, 1.0), (25, 0.6)])
def test_dip_inversion_then_plain_sampling_reconstructs(
    x_independent_dip: AttentiveEraserDIPPipeline, num_steps: int, strength: float
) -> None:
    pipe = x_independent_dip
    inversion = pipe.invert(
        _image(7, size=WORKING), num_inference_steps=num_steps, strength=strength, resolution=RESOLUTION
    )
    timesteps = [int(t) for t in inversion.timesteps]
    assert timesteps == _schedule(num_steps, strength, 1)
    embeds = _empty_prompt_embeds(pipe)
    ratio = 1000 // num_steps
    with torch.no_grad():
        z = inversion.trajectory[0]
        for t in timesteps:  # plain DDIM sampling: no mask, stock UNet
            z = _ddim_step(pipe.unet(z, t, encoder_hidden_states=embeds).sample, t, z, ratio, "epsilon")
    error = float((z - inversion.latents).norm() / inversion.latents.norm())
    assert error < 1e-3, f"relative reconstruction error {error:.2e}"
    # and the inversion really moved: the start of sampling is far from z0
    assert float((inversion.trajectory[0] - inversion.latents).norm() / inversion.latents.norm()) > 1.0


# ---------------------------------------------------------------------------------------- batches
@pytest.mark.parametrize("removal_guidance_scale", [0.0, 9.0])
def test_sip_batch_equals_one_by_one(sd15: dict[str, Any], removal_guidance_scale: float) -> None:
    pipe = sd15["sip"]
    images = [_image(10), _image(11)]
    masks = [_box(40, 20, 90, 60), _box(0, 0, 50, 40)]
    common = {
        "removal_guidance_scale": removal_guidance_scale,
        "output_type": "latent",
        "num_inference_steps": STEPS,
        "strength": 0.8,
        "resolution": RESOLUTION,
    }
    batched = pipe(images, masks, generator=[_generator(1), _generator(2)], **common).images
    singles = [pipe(images[i], masks[i], generator=_generator(i + 1), **common).images for i in range(2)]
    assert batched.shape[0] == 2
    torch.testing.assert_close(batched, torch.cat(singles), atol=1e-5, rtol=1e-4)
    assert not torch.allclose(singles[0], singles[1])


def test_dip_batch_equals_one_by_one(sdxl: dict[str, Any]) -> None:
    pipe = sdxl["dip"]
    images = [_image(12), _image(13)]
    masks = [_box(40, 20, 90, 60), _box(60, 30, 130, 77)]
    common = {"output_type": "latent", "num_inference_steps": STEPS, "resolution": RESOLUTION}
    batched = pipe(images, masks, **common).images
    singles = [pipe(images[i], masks[i], **common).images for i in range(2)]
    # batched convolutions round differently (z0 differs by ~2e-7) and inversion + sampling of a random
    # UNet amplify that to ~8e-4 (measured); a sample given another's mask or latents is off by ~1
    torch.testing.assert_close(batched, torch.cat(singles), atol=4e-3, rtol=1e-3)
    assert (batched[0] - singles[1][0]).abs().max() > 0.1


def test_num_images_per_prompt_with_one_generator_per_seed(sd15: dict[str, Any]) -> None:
    pipe = sd15["sip"]
    image, mask = _image(14), _box(40, 20, 90, 60)
    seeds = (123, 321, 777)  # the paper's stability seeds
    common = {
        "output_type": "latent",
        "num_inference_steps": STEPS,
        "strength": 0.8,
        "resolution": RESOLUTION,
    }
    several = pipe(image, mask, num_images_per_prompt=3, generator=[_generator(s) for s in seeds], **common)
    assert several.images.shape[0] == 3 and len(several.masks) == 3
    singles = torch.cat([pipe(image, mask, generator=_generator(s), **common).images for s in seeds])
    torch.testing.assert_close(several.images, singles, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(singles[0], singles[1])


def test_generator_list_length_is_checked(sd15: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="generator"):
        sd15["sip"](
            _image(0),
            _box(40, 20, 90, 60),
            num_images_per_prompt=2,
            generator=[_generator(0)],
            num_inference_steps=2,
            resolution=RESOLUTION,
        )


# ------------------------------------------------------------------------------------- paste-back
def _far_from(mask: np.ndarray, distance: float) -> np.ndarray:
    """Pixels farther than ``distance`` (Euclidean) from every mask pixel."""
    rows, cols = np.nonzero(mask)
    yy, xx = np.mgrid[: mask.shape[0], : mask.shape[1]]
    nearest = np.full(mask.shape, np.inf)
    for r, c in zip(rows, cols, strict=False):
        nearest = np.minimum(nearest, (yy - r) ** 2 + (xx - c) ** 2)
    return nearest > distance**2


@pytest.mark.parametrize("method", ["sip", "dip"])
def test_paste_back_keeps_far_pixels_bit_identical(sd15: dict[str, Any], method: str) -> None:
    pipe = sd15[method]
    image = _image(15)
    mask = _box(50, 25, 80, 50)
    dilation, feather = 2, 3
    scale = ORIGINAL[0] / WORKING[0]  # working pixels -> original pixels
    far = _far_from(mask, (dilation + feather) * scale + 2)
    original = np.asarray(image)
    pasted = np.asarray(
        _run(pipe, method, image, mask, mask_dilation=dilation, feather_radius=feather).images[0]
    )
    raw = np.asarray(
        _run(
            pipe, method, image, mask, mask_dilation=dilation, feather_radius=feather, paste_back=False
        ).images[0]
    )
    assert far.sum() > 0.8 * far.size
    assert np.array_equal(pasted[far], original[far])
    assert not np.array_equal(pasted[mask], original[mask])  # the object region was regenerated
    assert np.array_equal(pasted[mask], raw[mask])  # on the mask the pasted result is the raw decode
    assert not np.array_equal(raw[far], original[far])  # the raw decode does not keep the original


# ------------------------------------------------------------------------- SS only for T_SS steps
@pytest.mark.parametrize("method", ["sip", "dip"])
def test_every_decoder_layer_matches_the_reference_and_ss_stops_after_t_ss(
    sd15: dict[str, Any], method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside a real run, each eraser layer's output is the eager reference.

    AAS at every step, SS in the first T_SS.
    """
    pipe = sd15[method]
    image, mask = _image(16, size=WORKING), _box(37, 9, 91, 43, size=WORKING)
    latent = (WORKING[1] // 8, WORKING[0] // 8)
    objects = {
        level: torch.from_numpy(reference.token_object_mask(mask, latent, level)) for level in range(3)
    }
    levels = {int(tokens.numel()): level for level, tokens in objects.items()}  # 128, 32, 8 tokens
    num_steps, t_ss = 10, 3
    runs = 8 if method == "sip" else 10
    step = [0]  # advanced by the step callback, independently of the pipeline's own counter
    records: list[tuple[int, int, int, float, float]] = []
    real_call = AttentiveEraserAttnProcessor.__call__

    def checking_call(
        self: AttentiveEraserAttnProcessor, attn: Any, hidden_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> torch.Tensor:
        out = real_call(self, attn, hidden_states, *args, **kwargs)
        batch, num_tokens = hidden_states.shape[:2]
        level = levels[num_tokens]
        layout = torch.zeros(batch, num_tokens, dtype=torch.bool)
        layout[batch // 2 :] = objects[level]  # [plain, erased]
        suppress = step[0] < t_ss
        expected = reference.attention_module_forward(attn, hidden_states, layout, 0.3, suppress)
        contrast = reference.attention_module_forward(attn, hidden_states, layout, 0.3, not suppress)
        records.append(
            (
                step[0],
                level,
                self.state.step_index,
                float((out.double() - expected).abs().max()),
                float((out.double() - contrast).abs().max()),
            )
        )
        return out

    monkeypatch.setattr(AttentiveEraserAttnProcessor, "__call__", checking_call)
    states: list[tuple[int, int, bool]] = []

    def callback(pipeline: Any, i: int, t: int, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        processors = [
            p for p in pipeline.unet.attn_processors.values() if isinstance(p, AttentiveEraserAttnProcessor)
        ]
        assert len(processors) == 9
        state = processors[0].state
        states.append((i, state.step_index, state.suppressing))
        step[0] = i + 1
        return tensors

    _run(
        pipe,
        method,
        image,
        mask,
        num_inference_steps=num_steps,
        suppression_steps=t_ss,
        suppression_scale=0.3,
        mask_dilation=0,
        callback_on_step_end=callback,
        output_type="latent",
    )
    assert states == [(i, i, i < t_ss) for i in range(runs)]
    # 9 decoder self-attention layers per step, 3 per grid, and the state's step is the loop's
    assert [r[0] for r in records] == [i for i in range(runs) for _ in range(9)]
    assert all(r[2] == r[0] for r in records)
    assert sorted(r[1] for r in records[:9]) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    worst = max(r[3] for r in records)
    assert worst < 1e-4, f"a layer differs from the eager reference by {worst:.2e}"
    # the contrast (SS flipped) is far off, so the test can tell SS on from SS off at every step
    assert min(r[4] for r in records) > 1e-3
    assert not any(isinstance(p, AttentiveEraserAttnProcessor) for p in pipe.unet.attn_processors.values())

    records.clear()
    _run(pipe, method, image, mask, removal_guidance_scale=0.0, output_type="latent")
    assert records == []  # s = 0: no eraser at all


# -------------------------------------------------------------------------------- presets and DDIM
def test_preset_fields_are_call_parameters() -> None:
    fields = set(preset_field_names())
    assert NON_CALL_FIELDS <= fields
    call_fields = fields - NON_CALL_FIELDS
    assert call_fields  # e.g. removal_guidance_scale, suppression_scale, ...
    for mixin in (SIPMixin, DIPMixin):
        parameters = inspect.signature(mixin.__call__).parameters
        missing = sorted(call_fields - set(parameters))
        assert not missing, f"{mixin.__name__}.__call__ lacks {missing}"
        for name in call_fields:
            assert parameters[name].default is None  # None -> the preset's value
    for name in PRESETS:
        assert set(PRESETS[name].call_kwargs("sip")) == call_fields
        assert set(PRESETS[name].call_kwargs("dip")) == call_fields


@pytest.mark.parametrize("name", ["sd15", "sd21", "sdxl"])
def test_presets_are_the_papers(name: str) -> None:
    preset = PRESETS[name]
    assert isinstance(preset, Preset)
    assert preset.removal_guidance_scale == 9.0
    assert preset.suppression_scale == 0.3
    assert preset.suppression_steps == 10
    assert preset.num_inference_steps == 50 and preset.strength == 0.8
    assert preset.dip_num_inference_steps == 50 and preset.dip_strength == 1.0
    assert (
        preset.call_kwargs("dip")["num_inference_steps"] == 50
        and preset.call_kwargs("dip")["strength"] == 1.0
    )
    expected = {"sd15": (512, 2, 1), "sd21": (512, 2, 1), "sdxl": (1024, 15, 0)}[name]
    assert (preset.resolution, preset.mask_dilation, preset.steps_offset) == expected
    assert preset.feather_radius == 15
    with pytest.raises(dataclasses.FrozenInstanceError):
        preset.suppression_scale = 1.0  # type: ignore[misc]  # frozen


@pytest.mark.parametrize("family", ["sd15", "sd21", "sdxl"])
def test_scheduler_is_ddim_with_spec_settings(family: str) -> None:
    components = build_components(
        family, seed=0, prediction_type="v_prediction" if family == "sd21" else None
    )
    given_offset = 1
    if family == "sdxl":
        components["scheduler"] = EulerDiscreteScheduler(
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="scaled_linear",
            steps_offset=given_offset,
            timestep_spacing="leading",
        )
    else:
        components["scheduler"] = PNDMScheduler(
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="scaled_linear",
            skip_prk_steps=True,
            steps_offset=0,
            set_alpha_to_one=True,
            prediction_type="v_prediction" if family == "sd21" else "epsilon",
        )
    sip_class, dip_class = CLASSES["sdxl" if family == "sdxl" else "sd"]
    for cls in (sip_class, dip_class):
        pipe = cls(**components)
        scheduler = pipe.scheduler
        assert type(scheduler) is DDIMScheduler
        config = scheduler.config
        assert (config.beta_start, config.beta_end, config.beta_schedule) == (0.00085, 0.012, "scaled_linear")
        assert config.clip_sample is False and config.set_alpha_to_one is False
        assert config.steps_offset == (0 if family == "sdxl" else 1)
        assert config.prediction_type == ("v_prediction" if family == "sd21" else "epsilon")
        torch.testing.assert_close(scheduler.alphas_cumprod.double(), ALPHAS, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(
    ("family", "expected"),
    [
        ("sd15", list(range(781, 0, -20))),
        ("sdxl", list(range(780, -1, -20))),
    ],
)
def test_sip_runs_the_papers_timesteps(
    all_pipes: dict[str, dict[str, Any]], family: str, expected: list[int]
) -> None:
    pipe = all_pipes[family]["sip"]
    assert len(expected) == 40 and expected == _schedule(50, 0.8, 0 if family == "sdxl" else 1)
    pipe.scheduler.set_timesteps(50)
    timesteps, _ = pipe.get_timesteps(50, 0.8, torch.device("cpu"))
    assert [int(t) for t in timesteps] == expected
    seen: list[int] = []

    def callback(pipeline: Any, i: int, t: int, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        seen.append(t)
        return tensors

    # the preset defaults (50 steps, strength 0.8) at the tiny models' native 64 px
    pipe(
        _image(17, size=(64, 64)),
        _box(20, 20, 40, 40, size=(64, 64)),
        generator=_generator(0),
        callback_on_step_end=callback,
        output_type="latent",
    )
    assert seen == expected


# ------------------------------------------------------------------------------------ one-call API
@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_api_remove_round_trip(family: str, request: pytest.FixtureRequest) -> None:
    folder: Path = request.getfixturevalue(f"tiny_{family}_dir")
    image = _image(18)
    mask = _box(40, 20, 90, 60)
    try:
        result = api.remove(image, mask, model=str(folder), num_inference_steps=4, progress=False)
        again = api.remove(image, mask, model=str(folder), num_inference_steps=4, progress=False)
        pipe = api.load_pipeline(str(folder))
    finally:
        api.clear_cache()
    expected_class = AttentiveEraserSDXLSIPPipeline if family == "sdxl" else AttentiveEraserSIPPipeline
    assert type(pipe) is expected_class
    assert isinstance(result, PIL.Image.Image) and result.size == ORIGINAL and result.mode == "RGB"
    assert np.array_equal(np.asarray(result), np.asarray(again))  # seed 123 by default
    preset = pipe.preset
    scale = ORIGINAL[0] / imaging.working_size(ORIGINAL, preset.resolution)[0]
    far = _far_from(mask, (preset.mask_dilation + preset.feather_radius) * scale + 2)
    assert np.array_equal(np.asarray(result)[far], np.asarray(image)[far])
    assert not np.array_equal(np.asarray(result)[mask], np.asarray(image)[mask])


def test_api_remove_dip(tiny_sd15_dir: Path) -> None:
    try:
        result = api.remove(
            _image(19),
            _box(40, 20, 90, 60),
            model=str(tiny_sd15_dir),
            method="dip",
            num_inference_steps=3,
            progress=False,
        )
    finally:
        api.clear_cache()
    assert result.size == ORIGINAL


def test_detect_family_on_tiny_folders(tiny_sd15_dir: Path, tiny_sd21_dir: Path, tiny_sdxl_dir: Path) -> None:
    assert api.detect_family(tiny_sd15_dir) == "sd15"
    assert api.detect_family(str(tiny_sdxl_dir)) == "sdxl"
    # the tiny SD 2.1 has no 1024-wide cross-attention, the mark of real SD 2.x: an SD 1/2 family either way
    assert api.detect_family(tiny_sd21_dir) in ("sd15", "sd21")


@pytest.mark.parametrize(
    ("config", "family"),
    [
        ({"cross_attention_dim": 768, "sample_size": 64}, "sd15"),
        ({"cross_attention_dim": 1024, "sample_size": 64}, "sd21"),
        ({"cross_attention_dim": 1024, "sample_size": 96}, "sd21-768"),
        ({"cross_attention_dim": 2048, "sample_size": 128, "addition_embed_type": "text_time"}, "sdxl"),
    ],
)
def test_detect_family_on_real_configs(tmp_path: Path, config: dict[str, Any], family: str) -> None:
    (tmp_path / "unet").mkdir()
    (tmp_path / "unet" / "config.json").write_text(
        json.dumps({"_class_name": "UNet2DConditionModel", **config})
    )
    assert api.detect_family(tmp_path) == family


def test_detect_family_rejects_a_non_pipeline_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="model="):
        api.detect_family(tmp_path)


# ------------------------------------------------------------------------------------ validation
@pytest.mark.parametrize("method", ["sip", "dip"])
@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"strength": 0}, "strength=0"),
        ({"strength": 0.0}, "strength=0.0"),
        ({"strength": 1.5}, "strength=1.5"),
        ({"suppression_scale": 2.0}, "suppression_scale=2.0"),
        ({"suppression_scale": -0.1}, "suppression_scale=-0.1"),
        ({"num_inference_steps": 0}, "num_inference_steps=0"),
        ({"num_inference_steps": 2.5}, "num_inference_steps=2.5"),
        ({"removal_guidance_scale": -1.0}, "removal_guidance_scale=-1.0"),
        ({"removal_guidance_scale": math.nan}, "removal_guidance_scale=nan"),
        ({"suppression_steps": -1}, "suppression_steps=-1"),
        ({"output_type": "tensor"}, "output_type='tensor'"),
    ],
)
def test_invalid_arguments_are_named(
    sd15: dict[str, Any], method: str, kwargs: dict[str, Any], argument: str
) -> None:
    with pytest.raises(ValueError) as error:
        _run(sd15[method], method, _image(0), _box(40, 20, 90, 60), **kwargs)
    assert argument in str(error.value)


@pytest.mark.parametrize("method", ["sip", "dip"])
def test_invalid_masks_are_named(sd15: dict[str, Any], method: str) -> None:
    pipe = sd15[method]
    with pytest.raises(ValueError, match=r"^mask_image: .*selects no pixels"):
        _run(pipe, method, _image(0), np.zeros((ORIGINAL[1], ORIGINAL[0]), dtype=bool))
    with pytest.raises(ValueError, match=r"^mask_image: .*77x130"):
        _run(pipe, method, _image(0), np.ones((64, 64), dtype=bool))
    with pytest.raises(ValueError, match=r"^mask_image: .*whole"):
        _run(pipe, method, _image(0), np.ones((ORIGINAL[1], ORIGINAL[0]), dtype=bool))
    with pytest.raises(ValueError, match=r"mask_image\[1\]"):
        _run(pipe, method, [_image(0), _image(1)], [_box(40, 20, 90, 60), np.zeros((130, 77), dtype=bool)])
    with pytest.raises(ValueError, match="mask_image"):
        _run(pipe, method, [_image(0), _image(1)], [_box(40, 20, 90, 60)])


def test_api_remove_validates(tiny_sd15_dir: Path) -> None:
    with pytest.raises(ValueError, match="^mask"):
        api.remove(_image(0), np.zeros((ORIGINAL[1], ORIGINAL[0]), dtype=bool), model=str(tiny_sd15_dir))
    with pytest.raises(ValueError, match="seed"):
        api.remove(_image(0), _box(40, 20, 90, 60), model=str(tiny_sd15_dir), seed=-1)
    with pytest.raises(ValueError, match="method"):
        try:
            api.remove(_image(0), _box(40, 20, 90, 60), model=str(tiny_sd15_dir), method="fast")  # type: ignore[arg-type]
        finally:
            api.clear_cache()
