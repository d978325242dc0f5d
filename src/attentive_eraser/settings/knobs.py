"""The knob schema (:data:`KNOBS`) and the checks of every value a removal takes (knobs, seeds, choices)."""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np

from ..imaging.common import InputError
from ..imaging.load import DEFAULT_MAX_PIXELS  # noqa: F401 -- the pixel limit's default, re-exported

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


def _either(choices: tuple[str, ...]) -> str:
    """``'sip' or 'dip'``: the choices as a message lists them."""
    return " or ".join(repr(choice) for choice in choices)


def check_method(value: Any) -> Method:
    """``value`` as ``"sip"`` or ``"dip"`` (:func:`match_choice`); ``ValueError`` naming it otherwise."""
    method = match_choice(value, METHODS)
    if method is None:
        raise InputError("method", f"{shown_value(value)} must be {_either(METHODS)}", joined_by="=")
    return cast(Method, method)


def check_strategy(value: Any) -> Strategy:
    """``value`` as ``"resize"`` or ``"crop"`` (:func:`match_choice`); ``ValueError`` naming it otherwise."""
    strategy = match_choice(value, STRATEGIES)
    if strategy is None:
        raise InputError("strategy", f"{shown_value(value)} must be {_either(STRATEGIES)}", joined_by="=")
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
