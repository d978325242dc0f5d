"""SIP's samplers (DDIM, DPM-Solver++), the ``fast`` settings and their checks, on tiny random models."""

from __future__ import annotations

from typing import Any

import numpy as np
import PIL.Image
import pytest
import torch

from attentive_eraser import api
from attentive_eraser.core.masks import latent_mask
from attentive_eraser.pipelines import AttentiveEraserDIPPipeline, AttentiveEraserSIPPipeline
from attentive_eraser.pipelines.base import truncated_timesteps
from attentive_eraser.settings import FAST_KNOBS, RemovalOptions, knob_values
from attentive_eraser.testing.tiny import build_components

SIZE = (64, 64)


def _scene() -> tuple[PIL.Image.Image, np.ndarray]:
    rng = np.random.default_rng(3)
    coarse = rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)
    image = PIL.Image.fromarray(coarse).resize(SIZE, PIL.Image.Resampling.BICUBIC)
    mask = np.zeros((SIZE[1], SIZE[0]), dtype=bool)
    mask[20:44, 16:40] = True
    return image, mask


@pytest.fixture(scope="module")
def pipes() -> dict[str, Any]:
    sip = AttentiveEraserSIPPipeline(**build_components("sd15", seed=0))
    dip = AttentiveEraserDIPPipeline(**sip.components)
    for pipe in (sip, dip):
        pipe.set_progress_bar_config(disable=True)
    return {"sip": sip, "dip": dip}


def _run(pipe: Any, **kwargs: Any) -> torch.Tensor:
    image, mask = _scene()
    generator = torch.Generator().manual_seed(7)
    return pipe(
        image, mask, num_inference_steps=5, resolution=64, generator=generator, output_type="latent", **kwargs
    ).images


def _count_unet_calls(pipe: Any) -> tuple[list[int], Any]:
    calls: list[int] = []
    handle = pipe.unet.register_forward_pre_hook(lambda module, args: calls.append(1))
    return calls, handle


@pytest.mark.parametrize("scheduler", ["ddim", "dpm++"])
def test_one_unet_evaluation_per_step_run(pipes: dict[str, Any], scheduler: str) -> None:
    calls, handle = _count_unet_calls(pipes["sip"])
    try:
        _run(pipes["sip"], strength=0.8, scheduler=scheduler)  # the last int(5 * 0.8) = 4 steps
    finally:
        handle.remove()
    assert len(calls) == 4


def test_dpm_solver_differs_from_ddim_and_is_seeded(pipes: dict[str, Any]) -> None:
    ddim = _run(pipes["sip"])
    dpm = _run(pipes["sip"], scheduler="dpm++")
    again = _run(pipes["sip"], scheduler="dpm++")
    assert torch.equal(dpm, again)
    assert not torch.allclose(ddim, dpm, atol=1e-4)
    assert torch.isfinite(dpm).all()


def test_explicit_ddim_is_the_default_path(pipes: dict[str, Any]) -> None:
    assert torch.equal(_run(pipes["sip"]), _run(pipes["sip"], scheduler="ddim"))


@pytest.mark.parametrize("scheduler", ["ddim", "dpm++"])
def test_background_latents_end_exactly_at_the_image_latents(pipes: dict[str, Any], scheduler: str) -> None:
    pipe = pipes["sip"]
    image, mask = _scene()
    latents = _run(pipe, scheduler=scheduler)
    inputs = pipe.prepare_eraser_inputs(
        image, mask, resolution=64, mask_dilation=pipe.preset.mask_dilation, num_images_per_prompt=1
    )
    # the run's first draw from the generator is the VAE posterior sample: redraw it
    image_latents = pipe.encode_image(inputs.image, torch.Generator().manual_seed(7), sample_mode="sample")
    outside = latent_mask(inputs.mask, tuple(latents.shape[-2:])) == 0  # (1, 1, h, w)
    outside = outside.expand_as(latents)
    assert outside.any() and (~outside).any()
    assert torch.equal(latents[outside], image_latents[outside])


def test_ddim_truncation_matches_diffusers_img2img(pipes: dict[str, Any]) -> None:
    pipe = pipes["sip"]
    for steps, strength in ((50, 0.8), (13, 0.8), (5, 1.0), (7, 0.3)):
        ours = truncated_timesteps(pipe.scheduler, steps, strength, "cpu")
        pipe.scheduler.set_timesteps(steps)
        theirs, _ = pipe.get_timesteps(steps, strength, "cpu")
        assert torch.equal(ours, theirs)


def test_dpm_solver_schedule_shares_ddim_noise_levels(pipes: dict[str, Any]) -> None:
    pipe = pipes["sip"]
    solver = pipe.sampling_scheduler("dpm++")
    assert torch.equal(solver.alphas_cumprod, pipe.scheduler.alphas_cumprod)
    assert solver.config.algorithm_type == "dpmsolver++" and solver.config.solver_order == 2
    assert pipe.sampling_scheduler("ddim") is pipe.scheduler
    timesteps = truncated_timesteps(solver, 25, 0.8, "cpu")
    assert len(timesteps) == 20


def test_dip_refuses_another_sampler(pipes: dict[str, Any]) -> None:
    image, mask = _scene()
    with pytest.raises(ValueError, match=r"^scheduler='dpm\+\+': DIP samples with DDIM only"):
        pipes["dip"](image, mask, scheduler="dpm++", num_inference_steps=2, resolution=64)


def test_unknown_sampler_is_refused_naming_it(pipes: dict[str, Any]) -> None:
    image, mask = _scene()
    with pytest.raises(ValueError, match=r"^scheduler='euler' must be one of 'ddim', 'dpm\+\+'"):
        pipes["sip"](image, mask, scheduler="euler", num_inference_steps=2, resolution=64)
    with pytest.raises(ValueError, match=r"^scheduler='euler'"):
        RemovalOptions(knobs={"scheduler": "euler"})


def test_fast_values_sit_under_explicit_knobs() -> None:
    assert knob_values("sip", {"num_inference_steps": None}, fast=True) == FAST_KNOBS["sip"]
    assert knob_values("sip", {"num_inference_steps": 40}, fast=True)["num_inference_steps"] == 40
    assert knob_values("dip", {}, fast=True) == FAST_KNOBS["dip"]
    assert knob_values("sip", {"strength": 0.5}) == {"strength": 0.5}
    options = RemovalOptions(method="dip", fast=True, knobs={"suppression_steps": 1})
    assert options.call_knobs() == {**FAST_KNOBS["dip"], "suppression_steps": 1}


def test_fast_sip_needs_at_most_20_unet_evaluations_and_dip_40() -> None:
    sip = FAST_KNOBS["sip"]
    assert int(sip["num_inference_steps"] * sip.get("strength", 0.8)) <= 20
    dip = FAST_KNOBS["dip"]
    assert 2 * int(dip["num_inference_steps"] * dip.get("strength", 1.0)) <= 40
    assert dip.get("scheduler", "ddim") == "ddim"


class _Recorder:
    """Stands in for a pipeline: records the call's keyword arguments, returns the image."""

    def __init__(self) -> None:
        self.kwargs: dict[str, Any] = {}

    def set_progress_bar_config(self, **_: Any) -> None:
        pass

    def __call__(self, image: PIL.Image.Image, mask: np.ndarray, **kwargs: Any) -> Any:
        self.kwargs = kwargs
        return type("Output", (), {"images": [image]})()


@pytest.mark.parametrize("method", ["sip", "dip"])
def test_remove_fast_reaches_the_pipeline(monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    recorder = _Recorder()
    monkeypatch.setattr(api, "load_pipeline", lambda *args, **kwargs: recorder)
    image, mask = _scene()
    api.remove(image, mask, method=method, fast=True, progress=False)
    for name, value in FAST_KNOBS[method].items():
        assert recorder.kwargs[name] == value
    api.remove(image, mask, method=method, fast=True, num_inference_steps=30, progress=False)
    assert recorder.kwargs["num_inference_steps"] == 30
    api.remove(image, mask, method=method, progress=False)
    assert not set(FAST_KNOBS[method]) & set(recorder.kwargs)  # default: the preset's, nothing forced


def test_remove_refuses_dip_with_dpm_before_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_model(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(api, "load_pipeline", no_model)
    image, mask = _scene()
    with pytest.raises(ValueError, match=r"^scheduler='dpm\+\+': DIP samples with DDIM only"):
        api.remove(image, mask, method="dip", scheduler="dpm++")
    with pytest.raises(ValueError, match="^fast="):
        api.remove(image, mask, fast="yes")  # type: ignore[arg-type]
