"""The removal benchmark's methods (its rows): pipeline runs with fixed knobs, classical inpainters and
two references (the ground truth through the VAE, the input itself)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from attentive_eraser.runtime import require_extra
from attentive_eraser.testing.scene_cases import RemovalCase as Case

from .common import PROGRAM

#: SIP guidance scales of ``--sweep``; those already in the table are not rerun
SWEEP_SCALES = (0.0, 3.0, 9.0, 20.0)
#: pixel radius of OpenCV's inpainting neighbourhood (its documented typical value)
OPENCV_RADIUS = 3

Kind = Literal["sip", "dip", "classical"]


@dataclass(frozen=True)
class Method:
    """One table row: a pipeline run with fixed knobs, or a function of the case (inpainter, reference)."""

    key: str
    label: str  # the table's row name
    short: str  # the grid's column title
    kind: Kind
    call: dict[str, Any] = field(default_factory=dict)  # pipeline __call__ knobs
    fill: Callable[[Case], np.ndarray] | None = None  # case -> (H, W, 3) uint8 result

    @property
    def stochastic(self) -> bool:
        return self.kind == "sip"


def telea(case: Case) -> np.ndarray:
    import cv2

    return cv2.inpaint(case.image, case.region.astype(np.uint8), OPENCV_RADIUS, cv2.INPAINT_TELEA)


def navier_stokes(case: Case) -> np.ndarray:
    import cv2

    return cv2.inpaint(case.image, case.region.astype(np.uint8), OPENCV_RADIUS, cv2.INPAINT_NS)


def biharmonic(case: Case) -> np.ndarray:
    require_extra(PROGRAM, "skimage")  # checked by main() before any work; here for other callers
    from skimage.restoration import inpaint_biharmonic

    filled = inpaint_biharmonic(case.image.astype(np.float64) / 255.0, case.region, channel_axis=-1)
    return np.clip(np.rint(filled * 255.0), 0, 255).astype(np.uint8)


def keep_input(case: Case) -> np.ndarray:
    """Reference: the object left where it is (reappearance 100 %, the floor of every metric)."""
    return case.image.copy()


def vae_round_trip(pipe: Any) -> Callable[[Case], np.ndarray]:
    """Reference: the ground truth encoded and decoded by the model's VAE, pasted into the mask.

    No latent-diffusion result can be closer to the ground truth than its own VAE reconstruction (up to
    luck): this row is the ceiling of the diffusion rows' in-mask fidelity.
    """
    import torch

    def fill(case: Case) -> np.ndarray:
        pixels = torch.from_numpy(case.truth).permute(2, 0, 1)[None].float() / 127.5 - 1.0  # (1, 3, H, W)
        with torch.no_grad():
            latents = pipe.encode_image(pixels, None, sample_mode="argmax")
            decoded = np.asarray(pipe.decode_latents_to_images(latents)[0])
        return np.where(case.region[..., None], decoded, case.image)

    return fill


def format_scale(value: float) -> str:
    return f"{value:g}"


def make_methods(
    preset: Any, steps: int, sweep: bool, vae_ceiling: Callable[[Case], np.ndarray] | None = None
) -> list[Method]:
    """The benchmark's rows, their knobs taken from the model's preset (``steps`` overrides its steps)."""
    s, lam, t_ss = preset.removal_guidance_scale, preset.suppression_scale, preset.suppression_steps
    dilation = preset.mask_dilation
    sip = {
        "num_inference_steps": steps,
        "strength": preset.strength,
        "suppression_scale": lam,
        "suppression_steps": t_ss,
        "mask_dilation": dilation,
    }
    dip = {
        "num_inference_steps": steps,
        "strength": preset.dip_strength,
        "suppression_scale": lam,
        "suppression_steps": t_ss,
        "mask_dilation": dilation,
    }
    sarg = f"s={format_scale(s)}, λ={format_scale(lam)}, T_SS={t_ss}"
    methods = [
        Method("sip_sarg", f"SIP + SARG ({sarg})", "SIP+SARG", "sip", {**sip, "removal_guidance_scale": s}),
        Method(
            "sip_plain",
            "SIP w/o SARG (s=0, blended LDM)",
            "SIP s=0",
            "sip",
            {**sip, "removal_guidance_scale": 0.0},
        ),
        Method("dip_sarg", f"DIP + SARG ({sarg})", "DIP+SARG", "dip", {**dip, "removal_guidance_scale": s}),
        Method("dip_plain", "DIP w/o SARG (s=0)", "DIP s=0", "dip", {**dip, "removal_guidance_scale": 0.0}),
        Method(
            "sip_aas_no_ss",
            f"SIP + AAS w/o SS (s={format_scale(s)}, λ=1)",
            "SIP no SS",
            "sip",
            {**sip, "removal_guidance_scale": s, "suppression_scale": 1.0},
        ),
    ]
    if sweep:
        for value in SWEEP_SCALES:
            if value not in (0.0, s):
                methods.append(
                    Method(
                        f"sip_s{format_scale(value)}",
                        f"SIP + SARG, sweep (s={format_scale(value)}, λ={format_scale(lam)}, T_SS={t_ss})",
                        f"SIP s={format_scale(value)}",
                        "sip",
                        {**sip, "removal_guidance_scale": value},
                    )
                )
    methods += [
        Method("telea", "OpenCV Telea", "Telea", "classical", fill=telea),
        Method("navier_stokes", "OpenCV Navier–Stokes", "Navier-Stokes", "classical", fill=navier_stokes),
        Method("biharmonic", "scikit-image biharmonic", "biharmonic", "classical", fill=biharmonic),
    ]
    if vae_ceiling is not None:
        methods.append(
            Method(
                "vae_ceiling",
                "ground truth through the VAE (reference: ceiling)",
                "VAE(truth)",
                "classical",
                fill=vae_ceiling,
            )
        )
    methods.append(
        Method("input", "input, object kept (reference: floor)", "input", "classical", fill=keep_input)
    )
    return methods
