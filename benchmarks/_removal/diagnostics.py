"""The removal diagnostics: the SARG signal inside and outside the mask, attention selectivity per grid."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from attentive_eraser.testing.scene_cases import RemovalCase as Case

#: timesteps at which the diagnostics table shows the SARG signal (SIP at 50 steps x 0.8 runs 781 ... 1)
DIAGNOSTIC_TIMESTEPS = (781, 581, 381, 201, 21)
#: timesteps of the attention-selectivity diagnostic (the range where SIP decides what fills the mask)
SELECTIVITY_TIMESTEPS = (781, 581, 381, 201)


def diagnostic_inputs(pipe: Any, cases: Sequence[Case]) -> tuple[Any, Any, Any, Any]:
    """``(latents, noise, masks, context)`` of ``cases``: VAE posterior modes, fixed noise, dilated masks
    ``(N, 1, H, W)`` and the empty prompt's embeddings."""
    import torch

    pixels = (
        torch.from_numpy(np.stack([case.image for case in cases])).permute(0, 3, 1, 2).float() / 127.5 - 1
    )
    masks = torch.from_numpy(np.stack([case.region for case in cases])).float()[:, None]  # (N, 1, H, W)
    with torch.no_grad():
        latents = pipe.encode_image(pixels, None, sample_mode="argmax")
        context = pipe.encode_prompt([""] * len(cases), torch.device("cpu"), 1, False)[0]
    noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(0))
    return latents, noise, masks, context


def diagnose(pipe: Any, cases: Sequence[Case], steps: int, strength: float) -> dict[str, Any]:
    """The SARG signal at every SIP timestep and attention selectivity per grid, on ``cases``."""
    import torch

    from attentive_eraser.core.diagnostics import attention_selectivity, sarg_signal

    latents, noise, masks, context = diagnostic_inputs(pipe, cases)
    pipe.scheduler.set_timesteps(steps)
    timesteps, _ = pipe.get_timesteps(steps, strength, torch.device("cpu"))
    timesteps = [int(t) for t in timesteps]
    signal = sarg_signal(pipe.unet, latents, noise, masks, timesteps, context, pipe.scheduler)
    selectivity = attention_selectivity(
        pipe.unet, latents, noise, masks, SELECTIVITY_TIMESTEPS, context, pipe.scheduler
    )
    return {
        "scenes": len(cases),
        "sarg_signal": signal.as_dict(),
        "attention": selectivity.by_grid(),
        "attention_layers": [
            {
                "layer": layer.layer,
                "grid": list(layer.grid),
                "entropy": layer.entropy,
                "object_to_object": layer.object_to_object,
                "object_share": layer.object_share,
            }
            for layer in selectivity.layers
        ],
        "selectivity_timesteps": list(SELECTIVITY_TIMESTEPS),
    }


def diagnostics_table(diagnostics: dict[str, Any]) -> str:
    """The SARG signal at a few timesteps and the attention selectivity per grid, as markdown."""
    signal = diagnostics["sarg_signal"]
    shown = [t for t in DIAGNOSTIC_TIMESTEPS if t in signal["timesteps"]]
    index = [signal["timesteps"].index(t) for t in shown]
    lines = [
        "| SARG signal ‖ε_erased − ε_plain‖ / ‖ε_plain‖ | "
        + " | ".join(f"t={t}" for t in shown)
        + " | median (all SIP steps) |",
        "|---|" + "---:|" * (len(shown) + 1),
        "| inside the mask | "
        + " | ".join(f"{signal['inside'][i] * 100:.1f} %" for i in index)
        + f" | {signal['median_inside'] * 100:.1f} % |",
        "| outside the mask | "
        + " | ".join(f"{signal['outside'][i] * 100:.1f} %" for i in index)
        + f" | {float(np.median(signal['outside'])) * 100:.1f} % |",
        "| share of the difference inside | "
        + " | ".join(f"{signal['share_inside'][i] * 100:.0f} %" for i in index)
        + f" | {float(np.median(signal['share_inside'])) * 100:.0f} % |",
        "",
        (
            "| decoder self-attention grid | layers | normalised entropy (1 = uniform) | "
            "object → object mass | object share of keys | ratio |"
        ),
        "|---|---:|---:|---:|---:|---:|",
    ]
    for grid, values in diagnostics["attention"].items():
        ratio = values["object_to_object"] / values["object_share"]
        lines.append(
            f"| {grid} | {values['layers']:.0f} | {values['entropy']:.3f} | "
            f"{values['object_to_object'] * 100:.1f} % | {values['object_share'] * 100:.1f} % | "
            f"{ratio:.2f} |"
        )
    steps = ", ".join(map(str, diagnostics["selectivity_timesteps"]))
    lines.append(
        f"\n{diagnostics['scenes']} held-out scenes (the first of the benchmark), the object's dilated "
        f"mask, fixed noise; attention averaged over heads, query rows and t = {steps}.\n"
    )
    return "\n".join(lines)
