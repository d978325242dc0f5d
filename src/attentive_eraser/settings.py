"""Every setting of a removal, defined once: the knob schema, per-family presets, family detection, checks.

* :data:`KNOBS` describes each knob of the pipelines' ``__call__`` (and of :func:`attentive_eraser.remove`):
  its type, valid range or choices, the paper's symbol and its help text. The CLI's options, the web app's
  controls, the batch manifest's columns and every validation are derived from it.
* :class:`Preset` holds each knob's default for one model family (the "paper" values are the paper's
  Appendix C, ``docs/method.md``); :mod:`attentive_eraser.families` tells which family a model is.
* :func:`check_knobs` validates values against the schema, raising ``ValueError`` naming argument and value;
  :func:`canonical_knobs`, :func:`check_method`, :func:`check_strategy` and :func:`check_seed` also return
  what a front end passes on: choices in their listed spelling whatever the case, NumPy numbers as Python
  ones.

No torch, no click: every outer layer imports this module cheaply.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal, cast

import numpy as np

from .imaging.common import InputError
from .imaging.load import DEFAULT_MAX_PIXELS

Family = Literal["sd15", "sd21", "sd21-768", "sdxl", "demo"]
Method = Literal["sip", "dip"]
Strategy = Literal["resize", "crop"]
METHODS: tuple[str, ...] = ("sip", "dip")
STRATEGIES: tuple[str, ...] = ("resize", "crop")


@dataclass(frozen=True)
class Knob:
    """One setting of a removal, a keyword of the pipelines' ``__call__``; a :class:`Preset` has its default.

    ``low``/``high`` bound numbers (``low_open``: ``low`` itself is refused); ``choices`` list the values of
    a text knob. ``slider`` is the web page's ``(minimum, maximum, step)`` (a sub-range of the valid one);
    ``flag`` the command-line option (default ``--`` + the name with dashes).
    """

    name: str
    kind: type  # int, float or str
    help: str
    symbol: str = ""
    label: str = ""
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple[str, ...] = ()
    slider: tuple[float, float, float] | None = None
    flag: str | None = None

    @property
    def option(self) -> str:
        """The command-line flag, e.g. ``--steps``."""
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def whole(self) -> bool:
        return self.kind is int

    def check(self, value: Any) -> None:
        """Raise ``ValueError`` naming this knob and ``value`` unless the value is valid as given.

        Strict: a choice must be spelled as listed (the pipelines' contract). The front ends read what a
        user typed with :meth:`canonical` first, which matches choices regardless of case.
        """
        if self.choices:
            if value not in self.choices:
                raise InputError.from_text(
                    f"{self.name}={value!r} must be one of {', '.join(map(repr, self.choices))}"
                )
        else:
            assert self.low is not None and self.high is not None
            check_number(
                self.name, value, low=self.low, high=self.high, integer=self.whole, low_open=self.low_open
            )

    def canonical(self, value: Any) -> Any:
        """``value`` as the pipelines take it, checked: a choice in its listed spelling (see
        :func:`match_choice`), a number as a Python ``int``/``float`` (NumPy scalars too)."""
        if self.choices:
            choice = match_choice(value, self.choices)
            self.check(value if choice is None else choice)  # None: raises, naming the choices
            return choice
        self.check(value)
        # np.int64 and friends pass the check but must not reach torch, schedulers or JSON reports
        return int(value) if isinstance(value, numbers.Integral) else float(value)

    def parse(self, text: Any) -> Any:
        """A value of this knob from text (a manifest cell, a form field), checked, in canonical form."""
        if isinstance(text, str) and not self.choices:
            text = text.strip()
            try:
                value: Any = int(text) if self.whole else float(text)
            except ValueError:
                kind = "a whole number" if self.whole else "a number"
                raise InputError.from_text(f"{self.name}={text!r} is not {kind}") from None
        else:
            value = text
        return self.canonical(value)


def shown_value(value: Any, limit: int = 60) -> str:
    """``repr(value)`` for a message, cut in the middle when longer than ``limit`` (a 400-digit number)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    keep = (limit - 3) // 2
    return f"{text[:keep]}...{text[-keep:]} ({len(text)} characters)"


def check_number(
    name: str, value: Any, *, low: float, high: float, integer: bool = False, low_open: bool = False
) -> None:
    """Raise ``ValueError`` naming ``name`` and ``value`` unless ``low (<|<=) value <= high``.

    NumPy scalars count as the numbers they hold (``np.int64(5)`` is an integer).
    """
    kind = numbers.Integral if integer else numbers.Real
    refused = InputError.from_text(
        f"{name}={shown_value(value)} must be {'an integer' if integer else 'a finite number'}"
    )
    if isinstance(value, bool) or not isinstance(value, kind):
        raise refused
    # NumPy scalars compare as the Python numbers they hold; whole numbers stay exact however large
    number = int(cast(numbers.Integral, value)) if isinstance(value, numbers.Integral) else float(value)
    if isinstance(number, float) and not math.isfinite(number):
        raise refused
    if number < low or number > high or (low_open and number == low):
        bracket = "(" if low_open else "["
        raise InputError.from_text(f"{name}={shown_value(value)} is out of range {bracket}{low}, {high}]")


def check_flag(name: str, value: object) -> bool:
    """``value`` as a ``bool`` if it is one (NumPy's too); anything else (``"no"``, ``"maybe"``, 1) raises."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise InputError.from_text(f"{name}={value!r} must be True or False")


#: the seed a removal uses when none is given
DEFAULT_SEED = 123
#: seeds are whole numbers in ``[0, SEED_LIMIT)`` (what ``torch.Generator.manual_seed`` takes)
SEED_LIMIT = 2**63


def check_seed(value: Any, argument: str = "seed") -> int:
    """``value`` as a Python ``int`` seed; ``ValueError`` naming ``argument`` unless a whole number in range.

    The one seed rule of every front end: ``remove()``, the CLI, manifest cells and the web app. Text
    (a manifest cell, a form field) is read as a decimal integer; ``1.5``, ``1e999``, ``True`` and lists
    are refused, never rounded.
    """
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"[+-]?[0-9]+", text):
            raise InputError.from_text(f"{argument}={value!r} must be a whole number in [0, 2**63)")
        try:
            value = int(text)
        except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
            raise InputError.from_text(f"{argument}={value!r} must be a whole number in [0, 2**63)") from None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= int(value) < SEED_LIMIT:
        raise InputError.from_text(f"{argument}={value!r} must be a whole number in [0, 2**63)")
    return int(value)


def match_choice(value: Any, choices: tuple[str, ...]) -> str | None:
    """The one of ``choices`` that ``value`` names, or ``None`` when it names none.

    The one rule of every front end for text choices (method, strategy, scheduler): case and surrounding
    spaces do not matter, so ``"DPM++"`` from ``remove()``, ``--scheduler DPM++``, a manifest cell and a web
    request all mean ``"dpm++"``. Anything but text names nothing.
    """
    if isinstance(value, str):
        wanted = value.strip().lower()
        for choice in choices:
            if choice.lower() == wanted:
                return choice
    return None


def check_method(value: Any) -> Method:
    """``value`` as ``"sip"`` or ``"dip"`` (:func:`match_choice`); ``ValueError`` naming it otherwise."""
    method = match_choice(value, METHODS)
    if method is None:
        raise InputError.from_text(f"method={value!r} must be 'sip' or 'dip'")
    return cast(Method, method)


def check_strategy(value: Any) -> Strategy:
    """``value`` as ``"resize"`` or ``"crop"`` (:func:`match_choice`); ``ValueError`` naming it otherwise."""
    strategy = match_choice(value, STRATEGIES)
    if strategy is None:
        raise InputError.from_text(f"strategy={value!r} must be 'resize' or 'crop'")
    return cast(Strategy, strategy)


#: the knobs, in the order the CLI's help and the web page show them
KNOBS: tuple[Knob, ...] = (
    Knob(
        "num_inference_steps",
        int,
        "Steps of the full sampling schedule (SIP runs the last strength × T_I).",
        symbol="T_I",
        label="Steps (T_I)",
        low=1,
        high=1000,
        slider=(1, 200, 1),
        flag="--steps",
    ),
    Knob(
        "strength",
        float,
        "Share of the schedule that is run (0.8: the last 40 of 50 steps; DIP runs all, 1.0).",
        label="Strength",
        low=0.0,
        high=1.0,
        low_open=True,
        slider=(0.05, 1.0, 0.05),
    ),
    Knob(
        "removal_guidance_scale",
        float,
        "Strength of Self-Attention Redirection Guidance (Eq. 18); 0 turns SARG off.",
        symbol="s",
        label="Guidance s",
        low=0.0,
        high=100.0,
        slider=(0.0, 30.0, 0.5),
    ),
    Knob(
        "suppression_scale",
        float,
        "Similarity Suppression factor on the object queries' logits (Eq. 13).",
        symbol="λ",
        label="Suppression λ",
        low=0.0,
        high=1.0,
        slider=(0.0, 1.0, 0.05),
    ),
    Knob(
        "suppression_steps",
        int,
        "Similarity Suppression applies during the first T_SS denoising steps.",
        symbol="T_SS",
        label="T_SS",
        low=0,
        high=1000,
        slider=(0, 200, 1),
    ),
    Knob(
        "mask_dilation",
        int,
        "Grow the mask outwards by this many pixels at the working resolution.",
        label="Mask dilation (px)",
        low=0,
        high=1024,
        slider=(0, 64, 1),
        flag="--dilate",
    ),
    Knob(
        "feather_radius",
        float,
        "Width of the feathered paste-back band, pixels at the working resolution.",
        label="Feather (px)",
        low=0.0,
        high=1024.0,
        slider=(0, 64, 1),
        flag="--feather",
    ),
    Knob(
        "resolution",
        int,
        "Working resolution: the model sees about RESOLUTION² pixels, aspect ratio kept.",
        label="Resolution",
        low=64,
        high=8192,
        slider=(64, 2048, 64),
    ),
    Knob(
        "scheduler",
        str,
        "Sampler: ddim (the paper's, eta = 0) or dpm++ (DPM-Solver++ 2M, for fewer steps; SIP only).",
        label="Sampler",
        choices=("ddim", "dpm++"),
    ),
)
KNOB_NAMES: tuple[str, ...] = tuple(knob.name for knob in KNOBS)
_BY_NAME: dict[str, Knob] = {knob.name: knob for knob in KNOBS}


def knob(name: str) -> Knob:
    """The :class:`Knob` called ``name``."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise InputError.from_text(
            f"{name!r} is not a setting; choose one of {', '.join(KNOB_NAMES)}"
        ) from None


def check_sampler(method: str, scheduler: str | None) -> None:
    """DIP samples with DDIM only: its sampling retraces its DDIM inversion (``None`` = the preset's DDIM)."""
    if method == "dip" and scheduler not in (None, "ddim"):
        raise InputError.from_text(
            f"scheduler={scheduler!r}: DIP samples with DDIM only (its inversion is DDIM's)"
        )


def check_knobs(values: Mapping[str, Any]) -> None:
    """Check each knob of ``values`` that is set (``None`` = the preset's); other names are ignored."""
    for name, value in values.items():
        if value is not None and name in _BY_NAME:
            _BY_NAME[name].check(value)


def canonical_knobs(values: Mapping[str, Any]) -> dict[str, Any]:
    """The knobs of ``values`` that are set (``None`` = the preset's), checked, in canonical form
    (:meth:`Knob.canonical`); an unknown name raises ``ValueError``."""
    return {name: knob(name).canonical(value) for name, value in values.items() if value is not None}


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


@dataclass(frozen=True)
class RemovalOptions:
    """One removal request as every surface builds it (CLI, batch manifest, web app, ``remove()``).

    ``knobs`` maps :data:`KNOBS` names to values (absent or ``None``: the model's preset; ``fast``: the fast
    values first). Validated on construction: a bad knob raises ``ValueError`` naming it and its value.
    """

    model: str | None = None
    config: str | None = None
    method: Method = "sip"
    seed: int = DEFAULT_SEED
    knobs: Mapping[str, Any] | tuple[tuple[str, Any], ...] = field(default_factory=tuple)
    fast: bool = False
    strategy: Strategy = "resize"
    paste_back: bool = True
    device: str | None = None
    dtype: str | None = None
    progress: bool = True
    max_pixels: int | None = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        pairs = self.knobs.items() if isinstance(self.knobs, Mapping) else self.knobs
        values = canonical_knobs(dict(pairs))  # an unknown name or a bad value raises
        object.__setattr__(self, "seed", check_seed(self.seed))
        for flag in ("fast", "paste_back", "progress"):
            object.__setattr__(self, flag, check_flag(flag, getattr(self, flag)))
        object.__setattr__(self, "method", check_method(self.method))
        object.__setattr__(self, "strategy", check_strategy(self.strategy))
        object.__setattr__(self, "knobs", tuple(sorted(values.items())))  # hashable, order-free
        check_call_knobs(self.method, self.call_knobs())  # what the pipeline would refuse once loaded

    def get(self, name: str) -> Any:
        """The value of knob ``name`` this request sets, or ``None`` (the preset's)."""
        return dict(self.knobs).get(knob(name).name)

    def with_knobs(self, values: Mapping[str, Any]) -> RemovalOptions:
        """These options with ``values`` (knob names; ``None`` leaves a knob as it is) set."""
        given = {name: value for name, value in values.items() if value is not None}
        merged = {**dict(self.knobs), **given}
        return replace(self, knobs=merged)

    def call_knobs(self) -> dict[str, Any]:
        """The knobs to pass to a pipeline ``__call__``: the set ones over the fast ones (if asked)."""
        return knob_values(self.method, dict(self.knobs), fast=self.fast)

    def remove_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`attentive_eraser.remove` for this request."""
        kwargs = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "knobs"}
        return {**kwargs, **dict(self.knobs)}


def check_denoising_steps(num_inference_steps: int, strength: float) -> None:
    """SIP and DIP run the last ``int(num_inference_steps * strength)`` steps : one or more."""
    if int(num_inference_steps * strength) < 1:
        raise InputError.from_text(
            f"strength={strength!r} with num_inference_steps={num_inference_steps} runs no denoising step"
        )


def shared_preset_value(method: str, name: str) -> Any:
    """The value every preset gives knob ``name`` for ``method``, or ``None`` where presets differ: what a
    check made before the model (hence its preset) is known can rely on."""
    values = {preset.for_method(method)[name] for preset in PRESETS.values()}  # type: ignore[arg-type]
    return values.pop() if len(values) == 1 else None


def check_call_knobs(method: str, knobs: Mapping[str, Any]) -> None:
    """The checks of one call's knobs that need no model, as the pipelines make them: DIP's sampler, and at
    least one denoising step (a knob left to the preset counts with the value all presets share)."""
    check_sampler(method, knobs.get("scheduler"))
    steps, strength = (
        knobs.get(name) if knobs.get(name) is not None else shared_preset_value(method, name)
        for name in ("num_inference_steps", "strength")
    )
    if steps is not None and strength is not None:
        check_denoising_steps(steps, strength)
