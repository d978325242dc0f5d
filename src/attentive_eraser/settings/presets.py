"""Per-family defaults (:class:`Preset`, :data:`PRESETS`), the paper's DDIM settings and the fast settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from ..imaging.common import InputError
from .knobs import KNOB_NAMES, Method


def ddim_config(steps_offset: int) -> dict[str, Any]:
    """The DDIM scheduler settings of the paper's runs (SD's noise schedule, "leading" spacing)."""
    return {
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "clip_sample": False,
        "set_alpha_to_one": False,
        "steps_offset": steps_offset,
        "timestep_spacing": "leading",
    }


@dataclass(frozen=True)
class Preset:
    """Defaults for one model family. Field names match the pipelines' ``__call__`` parameters."""

    name: str
    family: str
    #: native working resolution (pixels); the working size keeps the input's aspect ratio at this area
    resolution: int
    #: SIP: steps of the full DDIM schedule and the share of it that is run (0.8 -> last 40 of 50)
    num_inference_steps: int = 50
    strength: float = 0.8
    #: paper's s (Eq. 18, SARG)
    removal_guidance_scale: float = 9.0
    #: paper's λ (Eq. 13, Similarity Suppression)
    suppression_scale: float = 0.3
    #: paper's T_SS, counted in denoising steps actually run
    suppression_steps: int = 10
    #: outward mask dilation in pixels at the working resolution (reference: blur + threshold)
    mask_dilation: int = 2
    #: width of the feathered paste-back band, pixels at the working resolution
    feather_radius: int = 15
    #: DDIM ``steps_offset`` used by the reference (1 for SD 1.x/2.x, 0 for SDXL)
    steps_offset: int = 1
    #: DIP runs the whole schedule: 50 inversion + 50 sampling steps
    dip_num_inference_steps: int = 50
    dip_strength: float = 1.0
    #: the sampler, paper: DDIM; DIP samples with DDIM always (its inversion is DDIM's)
    scheduler: str = "ddim"
    #: FreeU factors (b1, b2, s1, s2) or None; SD 2.1's are available but off by default
    freeu: tuple[float, float, float, float] | None = None

    def call_kwargs(self, method: Method = "sip") -> dict[str, Any]:
        """Keyword arguments for a pipeline ``__call__`` (SIP or DIP) taken from this preset.

        Every knob but ``resolution`` (the pipelines take it from :attr:`resolution` when not given); a
        ``dip_<knob>`` field replaces the knob's value for DIP.
        """
        return {name: value for name, value in self.for_method(method).items() if name != "resolution"}

    def for_method(self, method: Method = "sip") -> dict[str, Any]:
        """Every knob's value (:data:`KNOBS` names) for ``method``, DIP's own where the preset has one."""
        values = {name: getattr(self, name) for name in KNOB_NAMES}
        if method == "dip":
            for name in KNOB_NAMES:
                values[name] = getattr(self, f"dip_{name}", values[name])
        return values

    def scheduler_overrides(self) -> dict[str, Any]:
        """DDIM settings of the paper's runs (the model's own ``prediction_type`` is kept)."""
        return ddim_config(self.steps_offset)

    def asdict(self) -> dict[str, Any]:
        return asdict(self)


SD21_FREEU = (1.4, 1.6, 0.9, 0.2)

PRESETS: dict[str, Preset] = {
    "sd15": Preset(name="sd15", family="sd15", resolution=512),
    "sd21": Preset(name="sd21", family="sd21", resolution=512),
    "sd21-768": Preset(
        name="sd21-768", family="sd21-768", resolution=768, mask_dilation=3, feather_radius=22
    ),
    "sdxl": Preset(
        name="sdxl", family="sdxl", resolution=1024, mask_dilation=15, feather_radius=15, steps_offset=0
    ),
    # the embedded demo model (64 px procedural scenes): the paper's knobs but s; 2 px dilation as the
    # reference uses at 512 px (at 64 px one VAE latent cell is 4 px: a 1 px ring leaves object colour in the
    # kept latents).
    # s = 15: this small model's SARG signal is weaker than Stable Diffusion's; chosen on held-out seeds
    # 10_000_600+, disjoint from the benchmark's scenes (60 scenes: s = 9 / 15 left the object in 22 / 13 %)
    "demo": Preset(
        name="demo",
        family="demo",
        resolution=64,
        mask_dilation=2,
        feather_radius=2,
        removal_guidance_scale=15.0,
    ),
}

#: every preset field that is not a keyword of :meth:`Preset.call_kwargs` (``resolution`` is a knob, but the
#: pipelines take it from the preset's field when it is not given)
NON_CALL_FIELDS = frozenset({f.name for f in fields(Preset)} - set(KNOB_NAMES)) | {"resolution"}


def get_preset(name: str) -> Preset:
    """The preset called ``name`` (``sd15``, ``sd21``, ``sd21-768``, ``sdxl``, …)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise InputError.from_text(f"preset={name!r} is unknown; choose one of {sorted(PRESETS)}") from None


def preset_field_names() -> list[str]:
    return [f.name for f in fields(Preset)]


#: ``fast`` settings (``--fast``, ``fast=True``, the app's toggle), per method: knob values that replace the
#: preset's (explicit knobs still win). Chosen from the measured quality-versus-cost curve
#: (``benchmarks/steps_quality.py``, ``docs/performance.md``): SIP with DPM-Solver++ at 19 x 0.8 = 15 UNet
#: evaluations (default 40) and DIP with 15 inversion + 15 sampling steps = 30 (default 100) both stay
#: within the default's 95 % interval of reappearance and in-mask PSNR. T_SS keeps the preset's share.
FAST_KNOBS: dict[str, dict[str, Any]] = {
    "sip": {"num_inference_steps": 19, "suppression_steps": 4, "scheduler": "dpm++"},
    "dip": {"num_inference_steps": 15, "suppression_steps": 3},
}


def knob_values(method: str, knobs: Mapping[str, Any], *, fast: bool = False) -> dict[str, Any]:
    """The knobs a call sets: ``knobs``' non-``None`` values over ``method``'s ``fast`` ones (if asked)."""
    given = {name: value for name, value in knobs.items() if value is not None}
    return {**(FAST_KNOBS[method] if fast else {}), **given}
