"""Cancelling a run: the interrupt flag stops SIP sampling and DIP's inversion early."""

from __future__ import annotations

import numpy as np
import PIL.Image
import torch

from attentive_eraser import AttentiveEraserDIPPipeline
from attentive_eraser.core.inversion import ddim_invert
from attentive_eraser.testing.tiny import build_components


def test_ddim_invert_stops_when_asked() -> None:
    calls = []

    def predict(sample: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        calls.append(int(t))
        return torch.zeros_like(sample)

    alphas = torch.linspace(0.999, 0.01, 1000)
    latents = torch.ones(1, 4, 2, 2)
    trajectory = ddim_invert(
        predict,
        latents,
        [801, 601, 401, 201, 1],
        alphas,
        alphas[0],
        "epsilon",
        should_stop=lambda: len(calls) >= 2,
    )
    assert calls == [1, 201]  # inverted from the lowest timestep up, stopped after two steps
    assert len(trajectory) == 5 and torch.equal(trajectory[0], trajectory[3])


def test_dip_interrupted_during_inversion_skips_the_rest() -> None:
    pipe = AttentiveEraserDIPPipeline(**build_components("sd15", seed=0))
    pipe.set_progress_bar_config(disable=True)
    calls, cancel_at = 0, 3
    forward = pipe.unet.forward

    def counting_forward(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == cancel_at:
            pipe._interrupt = True
        return forward(*args, **kwargs)

    pipe.unet.forward = counting_forward
    image = PIL.Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    mask = np.zeros((64, 64), bool)
    mask[20:40, 20:40] = True
    pipe(image, mask, num_inference_steps=10)
    assert calls == 3  # 3 inversion steps, then no sampling step at all
    calls, cancel_at = 0, -1
    pipe(image, mask, num_inference_steps=10)  # the next call starts afresh
    assert calls == 20
