"""One removal request as every surface builds it (:class:`RemovalOptions`), and checks that need presets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from ..imaging.common import InputError
from ..imaging.load import DEFAULT_MAX_PIXELS
from .knobs import (
    DEFAULT_SEED,
    Method,
    Strategy,
    canonical_knobs,
    check_flag,
    check_method,
    check_sampler,
    check_seed,
    check_strategy,
    knob,
)
from .presets import PRESETS, knob_values


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
