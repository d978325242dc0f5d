"""The app's requests and results: :class:`RemovalSettings` is one request, :class:`RemovalRun` what it
produced (its :class:`Candidate` results), :class:`Photo` an uploaded photo."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from ..settings import Method, RemovalOptions, Strategy
from .requests import BUILTIN_MODEL, MAX_SEEDS, knobs_of_request, parse_seeds


@dataclass(frozen=True)
class RemovalSettings:
    """One request of the app: a model label, the seeds, and everything else as :class:`RemovalOptions`.

    ``model`` is a label of :attr:`EraserService.model_labels` (never a path); ``seeds`` run together as
    one batch (SIP; DIP makes one result). The knobs live in ``options.knobs`` (unset: the model's preset;
    ``options.fast``: the fast values under them). ``options.model`` and ``options.seed`` are not used,
    nor its device, dtype and pixel limit: those are the server's.
    """

    model: str = BUILTIN_MODEL
    seeds: tuple[int, ...] = (123,)
    options: RemovalOptions = field(default_factory=RemovalOptions)

    @classmethod
    def of(
        cls,
        model: str = BUILTIN_MODEL,
        seeds: Sequence[int] = (123,),
        *,
        method: Method = "sip",
        fast: bool = False,
        paste_back: bool = True,
        strategy: Strategy = "resize",
        **knobs: Any,
    ) -> RemovalSettings:
        """Settings from knob keywords (:data:`settings.KNOBS` names; an unknown or bad one raises)."""
        options = RemovalOptions(
            method=method, knobs=knobs, fast=fast, paste_back=paste_back, strategy=strategy
        )
        return cls(model=model, seeds=tuple(seeds), options=options)

    @classmethod
    def of_request(
        cls,
        values: Mapping[str, Any],
        *,
        max_seeds: int = MAX_SEEDS,
        defaults: Mapping[str, Any] | None = None,
    ) -> RemovalSettings:
        """The settings of a checked ``/remove`` request (``values`` by parameter name; the knobs as
        :func:`requests.knobs_of_request` reads them, ``defaults`` the page's initial values)."""
        options = RemovalOptions(
            method=values.get("method", "sip"),
            knobs=knobs_of_request(values, defaults),
            fast=bool(values.get("fast") or False),
            paste_back=values.get("paste_back", True),
            strategy=values.get("strategy", "resize"),
        )
        seeds = parse_seeds(values.get("seeds", "123"), limit=max_seeds)
        return cls(model=values.get("model", BUILTIN_MODEL), seeds=seeds, options=options)

    @property
    def method(self) -> Method:
        return self.options.method

    @property
    def strategy(self) -> Strategy:
        return self.options.strategy

    @property
    def paste_back(self) -> bool:
        return self.options.paste_back

    def call_kwargs(self) -> dict[str, Any]:
        """The pipeline keyword arguments that are set (preset defaults are left to the pipeline)."""
        return {**self.options.call_knobs(), "paste_back": bool(self.paste_back), "strategy": self.strategy}


@dataclass(frozen=True)
class Candidate:
    """One result: ``result`` in the photo's size and format (to download), ``display`` for the page."""

    seed: int | None
    result: str
    display: str

    @property
    def caption(self) -> str:
        return "DIP (deterministic)" if self.seed is None else f"seed {self.seed}"


@dataclass(frozen=True)
class RemovalRun:
    """What one removal request produced."""

    candidates: list[Candidate] = field(default_factory=list)
    before: str | None = None  # the photo as the page shows it, for the before/after comparison
    status: str = ""
    cancelled: bool = False


@dataclass(frozen=True)
class Photo:
    """An uploaded photo: colour (EXIF-oriented RGB), alpha, and how to name and write its results."""

    picture: Image.Image
    alpha: Image.Image | None
    suffix: str  # the upload's format when Pillow can write it, else .png
    stem: str  # a safe file-name stem taken from the upload's name
    icc_profile: bytes | None = None


def _safe_stem(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name).stem).strip("._")[:64]
    return stem or "image"
