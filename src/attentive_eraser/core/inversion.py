"""DDIM inversion for the deterministic inpainting pipeline (DIP, DiffEdit style; docs/method.md).

The trajectory is computed over exactly the timesteps that sampling will use, so the background
latents substituted at each sampling step are the ones sampling expects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


def split_prediction(
    model_output: torch.Tensor, sample: torch.Tensor, alpha_prod: torch.Tensor, prediction_type: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x0, eps)`` from a UNet output of the given ``prediction_type`` at noise level ``alpha_prod``."""
    beta_prod = 1 - alpha_prod
    if prediction_type == "epsilon":
        eps = model_output
        x0 = (sample - beta_prod.sqrt() * eps) / alpha_prod.sqrt()
    elif prediction_type == "v_prediction":
        x0 = alpha_prod.sqrt() * sample - beta_prod.sqrt() * model_output
        eps = alpha_prod.sqrt() * model_output + beta_prod.sqrt() * sample
    elif prediction_type == "sample":
        x0 = model_output
        eps = (sample - alpha_prod.sqrt() * x0) / beta_prod.sqrt()
    else:
        raise ValueError(f"prediction_type={prediction_type!r} is not supported")
    return x0, eps


def ddim_inversion_step(
    model_output: torch.Tensor,
    sample: torch.Tensor,
    alpha_prod_from: torch.Tensor,
    alpha_prod_to: torch.Tensor,
    prediction_type: str,
) -> torch.Tensor:
    """One deterministic DDIM step (eta = 0) from noise level ``alpha_prod_from`` up to ``alpha_prod_to``."""
    x0, eps = split_prediction(model_output, sample, alpha_prod_from, prediction_type)
    return alpha_prod_to.sqrt() * x0 + (1 - alpha_prod_to).sqrt() * eps


def ddim_invert(
    predict: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    latents: torch.Tensor,
    timesteps: Sequence[int] | torch.Tensor,
    alphas_cumprod: torch.Tensor,
    final_alpha_cumprod: torch.Tensor,
    prediction_type: str,
    progress: Callable[[], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[torch.Tensor]:
    """Invert clean latents ``z0`` along the sampling schedule ``timesteps`` (descending, as sampling runs).

    ``predict(z, t)`` is the UNet's output at timestep ``t``. Returns the latents ``[z_{t_1}, …, z_{t_n}]``
    aligned with ``timesteps`` (``result[i]`` is the latent sampling sees before its step ``i``). The start
    ``z0`` sits at ``final_alpha_cumprod``, where a DDIM sampling run ends. When ``should_stop()`` turns
    True the inversion stops early; the levels not reached keep the last latent computed.
    """
    steps = [int(t) for t in timesteps]
    trajectory: list[torch.Tensor] = [latents] * len(steps)
    sample = latents
    alpha_from = final_alpha_cumprod.to(latents.device, torch.float32)
    for index in reversed(range(len(steps))):
        if should_stop is not None and should_stop():
            trajectory[: index + 1] = [sample] * (index + 1)
            break
        t = steps[index]
        alpha_to = alphas_cumprod[t].to(latents.device, torch.float32)
        # the UNet is evaluated at the target timestep on the current, less noisy latent
        model_output = predict(sample, torch.tensor(t, device=latents.device))
        sample = ddim_inversion_step(
            model_output.float(), sample.float(), alpha_from, alpha_to, prediction_type
        ).to(latents.dtype)
        trajectory[index] = sample
        alpha_from = alpha_to
        if progress is not None:
            progress()
    return trajectory
