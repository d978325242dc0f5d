"""The web app and its HTTP API: paint over an object, click Remove, compare, download.

``attentive-eraser serve`` (or :func:`serve`) starts it on 127.0.0.1. Gradio (the ``app`` extra) is imported
only when the app is built, so importing this module is cheap and works without it.

Two layers:

* :class:`EraserService` — everything but the page: photo and mask handling, the mask preview, running
  the pipeline for several seeds with per-step progress and cancellation, writing the results. Plain
  Python, no Gradio.
* :func:`build_app` — the Gradio page around it, and the named HTTP endpoint ``/remove``.

What a request may name: files it uploaded (Gradio keeps them in its upload folder; the service refuses
any path outside it), one of the models the server was started with, and numbers. It never names a path
on the server; every file the app writes goes into a temporary folder of its own. One removal runs at a
time (Gradio's queue with a concurrency limit of 1, and a lock behind it), so concurrent users wait in
line instead of competing for the model.
"""

# No ``from __future__ import annotations`` here: Gradio reads the event handlers' annotations
# (gr.Request, gr.SelectData) at run time, and the closures' local ``gr`` must be evaluated then.
import errno
import ipaddress
import logging
import math
import re
import shutil
import socket
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PIL import Image

from . import imaging
from .selection import SelectionRequest
from .settings import PRESETS, Preset

if TYPE_CHECKING:  # pragma: no cover
    import gradio as gr

logger = logging.getLogger(__name__)

__all__ = [
    "EraserService",
    "RemovalRun",
    "RemovalSettings",
    "build_app",
    "check_remove_request",
    "check_server_options",
    "launch",
    "parse_file_size",
    "parse_seeds",
    "serve",
]

Method = Literal["sip", "dip"]
Strategy = Literal["resize", "crop"]
#: step callback of the service: ``progress(done, total, description)``
ProgressFn = Callable[[int, int, str], None]

#: the dropdown label of ``model=None``, the embedded default model
BUILTIN_MODEL = "built-in default model"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
DEFAULT_MAX_FILE_SIZE = "20mb"
MAX_SEEDS = 8
#: longest side of the mask preview sent to the browser
PREVIEW_SIDE = 1024
#: photo loads and mask previews that may decode uploads at the same time (each holds a full photo)
PREVIEW_CONCURRENCY = 1

# Pillow format -> the extension results are written with (the upload's own spelling wins if it agrees).
_SUFFIX_OF_FORMAT = {
    "PNG": ".png",
    "JPEG": ".jpg",
    "MPO": ".jpg",
    "WEBP": ".webp",
    "BMP": ".bmp",
    "TIFF": ".tif",
}
# What every browser displays; other results get a PNG copy for the page.
_BROWSER_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp"})
# Overlay colours of the mask preview: painted, added by dilation, blended back by paste-back.
_PAINTED, _DILATED, _BLENDED = (255, 45, 85), (255, 200, 0), (60, 170, 255)
_BRUSH_COLOUR = ("#ff2d55", 0.55)

_KNOBS = (
    "num_inference_steps",
    "strength",
    "removal_guidance_scale",
    "suppression_scale",
    "suppression_steps",
    "mask_dilation",
    "feather_radius",
    "resolution",
)
#: the page's sliders, (minimum, maximum, step); the HTTP API accepts the same ranges
_SLIDERS: dict[str, tuple[float, float, float]] = {
    "num_inference_steps": (1, 200, 1),
    "strength": (0.05, 1.0, 0.05),
    "removal_guidance_scale": (0.0, 30.0, 0.5),
    "suppression_scale": (0.0, 1.0, 0.05),
    "suppression_steps": (0, 200, 1),
    "mask_dilation": (0, 64, 1),
    "feather_radius": (0, 64, 1),
    "resolution": (64, 2048, 64),
}
_WHOLE_KNOBS = frozenset({"num_inference_steps", "suppression_steps", "mask_dilation", "resolution"})
#: the parameters of the ``/remove`` endpoint, in order
REMOVE_PARAMETERS = (
    "image",
    "mask",
    "model",
    "method",
    "seeds",
    *_KNOBS,
    "paste_back",
    "strategy",
)
#: optional trailing parameters of ``/remove`` that select the object (clicks, a box, words); a request
#: without them is one with none
SELECTION_PARAMETERS = ("points", "exclude", "box", "object")
#: clicks on the mask preview: markers drawn for the object's and the excluded ones
_CLICK_COLOURS = {"points": (40, 220, 90), "exclude": (20, 20, 20)}
_FILE_SIZE = re.compile(r"^\s*(\d+)\s*(b|kb|mb|gb|tb)?\s*$", re.IGNORECASE)
_FILE_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}


# --------------------------------------------------------------------------------------------------
# Requests and results


def parse_seeds(text: str | int | Sequence[int], *, limit: int = MAX_SEEDS) -> tuple[int, ...]:
    """Seeds from ``"123, 321 777"`` (or an int, or a list): distinct, in order, each in ``[0, 2**63)``."""
    if isinstance(text, bool):
        raise imaging.InputError("seeds", f"expected whole numbers, got {text!r}")
    if isinstance(text, int):
        parts: list[Any] = [text]
    elif isinstance(text, str):
        parts = [part for part in re.split(r"[\s,;]+", text.strip()) if part]
    else:
        parts = list(text)
    seeds: list[int] = []
    for part in parts:
        try:
            seed = int(part)
        except (TypeError, ValueError):
            raise imaging.InputError("seeds", f"{part!r} is not a whole number") from None
        if not 0 <= seed < 2**63 or isinstance(part, bool) or (isinstance(part, float) and part != seed):
            raise imaging.InputError("seeds", f"{part!r} is not a whole number in [0, 2**63)")
        if seed not in seeds:
            seeds.append(seed)
    if not seeds:
        raise imaging.InputError("seeds", "give at least one seed, e.g. 123 or 123, 321, 777")
    if len(seeds) > limit:
        raise imaging.InputError("seeds", f"{len(seeds)} seeds given; at most {limit} run at once")
    return tuple(seeds)


def parse_file_size(size: str | int | None) -> int | None:
    """Bytes of an upload limit like ``"20mb"``, ``"500 kb"`` or ``1048576`` (``None``: no limit)."""
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, (int, str)):
        raise imaging.InputError("max_file_size", f"expected a size such as 20mb or 500kb, got {size!r}")
    if isinstance(size, int):
        if size < 1:
            raise imaging.InputError("max_file_size", f"{size!r} must be a positive number of bytes")
        return size
    match = _FILE_SIZE.match(size)
    if match is None:
        raise imaging.InputError("max_file_size", f"{size!r} is not a size such as 20mb, 500kb or 1gb")
    number = int(match.group(1)) * _FILE_UNITS[(match.group(2) or "b").lower()]
    if number < 1:
        raise imaging.InputError("max_file_size", f"{size!r} must be more than 0 bytes")
    return number


def check_server_options(host: str, port: int | None, max_file_size: str | int | None) -> None:
    """Refuse, before any model is loaded, options the server could not start with.

    The host must be an address (or a name that resolves to one) of this machine, the port free to bind
    there, the upload limit a size.
    """
    parse_file_size(max_file_size)
    if not isinstance(host, str) or not host.strip():
        raise imaging.InputError("host", f"{host!r} is not an address")
    try:
        addresses = [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        if re.fullmatch(r"[\d.]+", host):  # dotted numbers that are no IPv4 address: no DNS lookup
            raise imaging.InputError("host", f"{host!r} is not a valid IP address") from None
        try:
            found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise imaging.InputError(
                "host", f"{host!r} is neither an IP address nor a name this machine resolves"
            ) from None
        addresses = sorted({str(entry[4][0]) for entry in found})
    if port is None:
        return
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise imaging.InputError("port", f"{port!r} is not a port number from 1 to 65535")
    address = addresses[0]
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the web server binds
        try:
            probe.bind((address, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise imaging.InputError("port", f"{port} is already in use on {host}") from None
            if error.errno == errno.EADDRNOTAVAIL:
                raise imaging.InputError("host", f"{host!r} is not an address of this machine") from None
            if error.errno in (errno.EACCES, errno.EPERM):
                raise imaging.InputError("port", f"{port} on {host} needs privileges this user lacks") from None
            raise imaging.InputError(
                "host", f"cannot listen on {host}:{port} ({' '.join(str(error).split())})"
            ) from None


def _shown(value: Any) -> str:
    """``repr`` of a request value, cut to one short line."""
    text = " ".join(repr(value).split())
    return text if len(text) <= 80 else text[:77] + "..."


def check_remove_request(service: "EraserService", values: Sequence[Any]) -> None:
    """Check the raw values of a ``/remove`` request before the web framework touches them.

    Raises :class:`imaging.InputError` naming the parameter and its value: a missing value, a file that is not
    an upload (or not a file reference at all), a model the server does not offer, text where a number
    belongs, a number outside its slider, a fraction for a whole number, a flag that is not true/false.
    """
    if len(values) < len(REMOVE_PARAMETERS):
        missing = ", ".join(REMOVE_PARAMETERS[len(values) :])
        raise imaging.InputError(
            "data", f"expected {len(REMOVE_PARAMETERS)} values, got {len(values)} (missing: {missing})"
        )
    given = dict(zip(REMOVE_PARAMETERS, values, strict=False))
    for name in ("image", "mask"):
        value = given[name]
        if value is None:
            if name == "image":
                raise imaging.InputError("image", "upload a photo first")
            continue
        path = value.get("path") if isinstance(value, dict) else None
        if not isinstance(path, str) or not path:
            raise imaging.InputError(
                name,
                f"{_shown(value)} is not an uploaded file (expected {{'path': <the name "
                "/gradio_api/upload returned>, 'meta': {'_type': 'gradio.FileData'}})",
            )
        service.check_upload(path, name)
    if not isinstance(given["model"], str) or given["model"] not in service.models:
        service._model(given["model"] if isinstance(given["model"], str) else _shown(given["model"]))
    if given["method"] not in ("sip", "dip"):
        raise imaging.InputError("method", f"{_shown(given['method'])} must be 'sip' or 'dip'")
    if not isinstance(given["seeds"], (str, int, list)):
        raise imaging.InputError("seeds", f"{_shown(given['seeds'])} is not a list of seeds such as '123, 321'")
    parse_seeds(given["seeds"], limit=service.max_seeds)
    for name in _KNOBS:
        value = given[name]
        low, high, _ = _SLIDERS[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise imaging.InputError(name, f"{_shown(value)} is not a number")
        if name in _WHOLE_KNOBS and value != int(value):
            raise imaging.InputError(name, f"{_shown(value)} is not a whole number")
        if not low <= value <= high:
            raise imaging.InputError(name, f"{_shown(value)} is out of range [{low:g}, {high:g}]")
    if not isinstance(given["paste_back"], bool):
        raise imaging.InputError("paste_back", f"{_shown(given['paste_back'])} must be true or false")
    if given["strategy"] not in ("resize", "crop"):
        raise imaging.InputError("strategy", f"{_shown(given['strategy'])} must be 'resize' or 'crop'")
    selection_of_request(list(values[len(REMOVE_PARAMETERS) :]))


def selection_of_request(values: Sequence[Any]) -> SelectionRequest | None:
    """The selection of a ``/remove`` request's trailing values (``points``, ``exclude``: ``"X,Y;X,Y"``;
    ``box``: ``"X0,Y0,X1,Y1"``; ``object``: words; missing or empty: not set), or ``None``."""
    given = dict(zip(SELECTION_PARAMETERS, values, strict=False))
    for name, value in given.items():
        if value is not None and not isinstance(value, str):
            raise imaging.InputError(name, f"{_shown(value)} is not text (e.g. '120,80;130,90' for points)")
    return SelectionRequest.parse(
        given.get("points") or "",
        given.get("exclude") or "",
        given.get("box"),
        given.get("object"),
        names=("points", "exclude", "box"),
    )


@dataclass(frozen=True)
class RemovalSettings:
    """Model, method and knobs of one request; knob names are the pipelines' ``__call__`` arguments.

    ``None`` knobs take the model's preset. ``model`` is a label of :attr:`EraserService.model_labels`.
    """

    model: str = BUILTIN_MODEL
    method: Method = "sip"
    seeds: tuple[int, ...] = (123,)
    num_inference_steps: int | None = None
    strength: float | None = None
    removal_guidance_scale: float | None = None
    suppression_scale: float | None = None
    suppression_steps: int | None = None
    mask_dilation: int | None = None
    feather_radius: float | None = None
    resolution: int | None = None
    paste_back: bool = True
    strategy: Strategy = "resize"

    def call_kwargs(self) -> dict[str, Any]:
        """The pipeline keyword arguments that are set (preset defaults are left to the pipeline)."""
        knobs = {name: getattr(self, name) for name in _KNOBS}
        kwargs = {name: value for name, value in knobs.items() if value is not None}
        return {**kwargs, "paste_back": bool(self.paste_back), "strategy": self.strategy}


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


# --------------------------------------------------------------------------------------------------
# The service: everything but the page


class EraserService:
    """Runs removals for the app and the API; holds the models, the temporary folder, cancel requests.

    ``models`` are what the server offers (fixed at start; ``None`` is the embedded default model); the
    first is the default. Files the service reads must lie under an allowed root (its own folder and
    whatever :meth:`allow_root` adds: Gradio's upload folder), so no request can make it open a path of
    its choosing. Results older than ``keep_seconds`` are deleted when a new request comes in.
    """

    def __init__(
        self,
        models: Sequence[str | None] = (None,),
        *,
        device: str | None = None,
        dtype: str | None = None,
        max_seeds: int = MAX_SEEDS,
        keep_seconds: float = 3600.0,
        max_pixels: int | None = imaging.DEFAULT_MAX_PIXELS,
        segmenter: str | None = None,
    ) -> None:
        if not models:
            models = (None,)
        #: who turns clicks and words into masks (a spec of attentive_eraser.selection; None: classic)
        self.segmenter = segmenter
        self.models: dict[str, str | None] = {}
        for model in models:
            source = None if model is None else str(model)
            self.models[BUILTIN_MODEL if source is None else source] = source
        self.device = device
        self.dtype = dtype
        self.max_seeds = int(max_seeds)
        self.max_pixels = max_pixels
        self.keep_seconds = float(keep_seconds)
        self.workdir = Path(tempfile.mkdtemp(prefix="attentive-eraser-app-")).resolve()
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.workdir), True)
        self._roots: list[Path] = [self.workdir]
        self._run_lock = threading.Lock()  # one removal at a time, whatever the web framework does
        self._load_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._cancelled: set[str] = set()
        self._loaded: set[tuple[str, str]] = set()

    # ---------------------------------------------------------------- models
    @property
    def model_labels(self) -> list[str]:
        return list(self.models)

    @property
    def default_model(self) -> str:
        return next(iter(self.models))

    def _model(self, label: str) -> str | None:
        if label not in self.models:
            choices = ", ".join(repr(name) for name in self.models)
            raise imaging.InputError("model", f"{label!r} is not offered by this server; choose one of {choices}")
        return self.models[label]

    def pipeline(self, label: str, method: Method = "sip") -> Any:
        """The (cached) pipeline of a model label and method, loaded on first use."""
        from .api import load_pipeline

        if method not in ("sip", "dip"):
            raise imaging.InputError("method", f"{method!r} must be 'sip' or 'dip'")
        model = self._model(label)
        with self._load_lock:
            pipe = load_pipeline(model, method=method, device=self.device, dtype=self.dtype)
            pipe.set_progress_bar_config(disable=True)
            self._loaded.add((label, method))
        return pipe

    def preset(self, label: str) -> Preset:
        """The preset of a model; a model not loaded yet is not loaded for this (its family's preset)."""
        model = self._model(label)
        if model is None or (label, "sip") in self._loaded or (label, "dip") in self._loaded:
            method: Method = "dip" if (label, "dip") in self._loaded else "sip"
            return self.pipeline(label, method).preset
        from .api import detect_family

        try:
            return PRESETS[detect_family(model)]
        except (ValueError, KeyError):
            return PRESETS["sd15"]

    def size_multiple(self, label: str) -> int:
        """What the model's working sizes are multiples of (SD: 64, SDXL: 32), as its pipeline rounds them."""
        model = self._model(label)
        if model is None or (label, "sip") in self._loaded or (label, "dip") in self._loaded:
            return int(getattr(self.pipeline(label, "sip"), "size_multiple", 64))
        return 32 if self.preset(label).family == "sdxl" else 64

    def knob_defaults(self, label: str, method: Method = "sip") -> dict[str, Any]:
        """The knob values a request gets when it sets none: the model's preset for ``method``."""
        preset = self.preset(label)
        return {**preset.call_kwargs(method), "resolution": preset.resolution}

    # ---------------------------------------------------------------- files
    def allow_root(self, folder: str | Path) -> None:
        """Also accept files under ``folder`` (the web framework's own upload folder)."""
        self._roots.append(Path(folder).resolve())

    def check_upload(self, path: str | Path, argument: str) -> Path:
        """``path`` resolved, if it is a file under an allowed root; else :class:`imaging.InputError`."""
        resolved = Path(path).resolve()
        if not any(resolved.is_relative_to(root) for root in self._roots):
            raise imaging.InputError(argument, f"{_shown(str(path))} is not a file uploaded to this server")
        if not resolved.is_file():
            raise imaging.InputError(argument, "the uploaded file is gone (uploads expire); upload it again")
        return resolved

    def load_photo(self, path: str | Path) -> Photo:
        """Read an uploaded photo: EXIF-oriented colour, alpha, output format and name."""
        file = self.check_upload(path, "image")
        image = imaging.load_image(file, max_pixels=self.max_pixels)  # refused from the header when too large
        picture, alpha = imaging.split_alpha(image)
        try:
            with Image.open(file) as opened:
                file_format, icc = opened.format, opened.info.get("icc_profile")
        except OSError:  # pragma: no cover - load_image has just read it
            file_format, icc = None, None
        suffix = _SUFFIX_OF_FORMAT.get(file_format or "", ".png")
        if imaging.SAVE_FORMATS.get(file.suffix.lower()) == imaging.SAVE_FORMATS[suffix]:
            suffix = file.suffix.lower()  # keep .jpeg / .tiff spellings
        return Photo(picture, alpha, suffix, _safe_stem(file.name), icc if isinstance(icc, bytes) else None)

    def new_job_folder(self) -> Path:
        """A fresh folder for one request's files; folders older than ``keep_seconds`` are deleted."""
        cutoff = time.time() - self.keep_seconds
        for old in self.workdir.glob("job-*"):
            try:
                if old.stat().st_mtime < cutoff:
                    shutil.rmtree(old, ignore_errors=True)
            except OSError:
                pass
        return Path(tempfile.mkdtemp(prefix="job-", dir=self.workdir))

    # ---------------------------------------------------------------- masks
    def combined_mask(
        self, size: tuple[int, int], layers: Sequence[Image.Image] = (), upload: str | Path | None = None
    ) -> tuple[np.ndarray, str]:
        """The object mask at ``size``: painted layers ∪ uploaded mask, and a note on what was resized."""
        width, height = size
        mask = np.zeros((height, width), dtype=bool)
        notes = []
        for layer in layers:
            if layer is None:
                continue
            painted = imaging.load_mask(layer, argument="painted mask")
            if painted.shape != mask.shape:
                painted = imaging.resize_mask(painted, size)
            mask |= painted
        if upload is not None:
            uploaded = imaging.load_mask(self.check_upload(upload, "mask"), max_pixels=self.max_pixels)
            if uploaded.shape != mask.shape:
                notes.append(f"uploaded mask resized from {uploaded.shape[1]}×{uploaded.shape[0]}")
                uploaded = imaging.load_mask(uploaded, size=size, resize=True)
            mask |= uploaded
        return mask, "; ".join(notes)

    def select(self, photo: Photo, selection: SelectionRequest | None) -> np.ndarray | None:
        """The mask ``selection`` (clicks, box, words) picks in ``photo``, with the server's segmenter."""
        if selection is None:
            return None
        spec = selection.segmenter or self.segmenter
        from dataclasses import replace

        return replace(selection, segmenter=spec).select(photo.picture, device=self.device)

    def write_mask(self, mask: np.ndarray, stem: str) -> str:
        """Save a mask as a black-and-white PNG in a new job folder; returns its path."""
        path = self.new_job_folder() / f"{stem}_mask.png"
        imaging.save_image(Image.fromarray(mask.astype(np.uint8) * 255), path)
        return str(path)

    def prepare_mask(
        self,
        image: str | None,
        layers: Sequence[Image.Image] = (),
        upload: str | None = None,
        *,
        session: str = "",
        selection: SelectionRequest | None = None,
    ) -> str | None:
        """The mask a Remove click sends: painted ∪ uploaded, as a PNG path; ``None`` = the photo's alpha.

        Also forgets an earlier cancel request of ``session``: a new click starts afresh.
        """
        with self._state_lock:
            self._cancelled.discard(session)
        if image is None:
            raise imaging.InputError("image", "upload a photo first")
        photo = self.load_photo(image)
        mask, _ = self.combined_mask(photo.picture.size, layers, upload)
        if selection is not None:
            mask |= self.select(photo, selection)
        if not mask.any():
            if photo.alpha is not None and imaging.mask_from_alpha(photo.alpha).any():
                return None  # like remove(): the transparent pixels are the object
            raise imaging.InputError("mask", "paint over the object to remove (or upload a mask) first")
        imaging.validate_mask(mask)
        return self.write_mask(mask, photo.stem)

    def preview(
        self,
        image: str | None,
        layers: Sequence[Image.Image] = (),
        upload: str | None = None,
        *,
        model: str | None = None,
        mask_dilation: int | None = None,
        feather_radius: float | None = None,
        resolution: int | None = None,
        strategy: Strategy = "resize",
        paste_back: bool = True,
        selection: SelectionRequest | None = None,
    ) -> tuple[Image.Image | None, str]:
        """The photo with the mask, its dilation and the paste-back band drawn over it, and a caption.

        Mirrors what the pipeline does at the photo's size: dilation and feather are given at the working
        resolution and scaled by (processed width / working width), as in ``finish``.
        """
        if image is None:
            return None, "Upload a photo, then paint over the object."
        photo = self.load_photo(image)
        size = photo.picture.size
        mask, note = self.combined_mask(size, layers, upload)
        if selection is not None:
            mask |= self.select(photo, selection)
        if not mask.any():
            if photo.alpha is not None and imaging.mask_from_alpha(photo.alpha).any():
                mask, note = imaging.mask_from_alpha(photo.alpha), "mask taken from the photo's transparency"
            else:
                return _shrink(photo.picture), "Paint over the object to remove (or upload a mask)."
        label = model or self.default_model
        defaults = self.knob_defaults(label)
        dilation = int(defaults["mask_dilation"] if mask_dilation is None else mask_dilation)
        feather = float(defaults["feather_radius"] if feather_radius is None else feather_radius)
        resolution = int(defaults["resolution"] if resolution is None else resolution)
        if strategy == "crop":
            region = imaging.context_window([mask], resolution)
        else:
            region = size
        working = imaging.working_size(region, resolution, multiple=self.size_multiple(label))
        scale = region[0] / working[0]
        grown = imaging.dilate_mask(mask, round(dilation * scale))
        blended = imaging.feather_alpha(grown, feather * scale) > 0 if paste_back else np.ones_like(grown)
        overlay = _overlay(photo.picture, mask, grown, blended)
        if selection is not None:
            overlay = _mark_clicks(overlay, size, selection)
        share = 100.0 * mask.mean()
        parts = [
            f"Mask: {int(mask.sum()):,} px ({share:.1f} % of {size[0]}×{size[1]}).",
            (
                f"Working size {working[0]}×{working[1]}: dilation {dilation} px there = "
                f"{round(dilation * scale)} px here (yellow)."
            ),
            (
                f"Paste-back band {feather * scale:.0f} px (blue); pixels outside it are kept bit-identical."
                if paste_back
                else "No paste-back: the whole image is the raw decode."
            ),
        ]
        if note:
            parts.append(note.capitalize() + ".")
        return overlay, " ".join(parts)

    # ---------------------------------------------------------------- removal
    def cancel(self, session: str) -> None:
        """Ask the removal of ``session`` (running or queued) to stop at its next step."""
        with self._state_lock:
            self._cancelled.add(session)

    def _is_cancelled(self, session: str) -> bool:
        with self._state_lock:
            return session in self._cancelled

    def _take_cancel(self, session: str) -> bool:
        with self._state_lock:
            cancelled = session in self._cancelled
            self._cancelled.discard(session)
            return cancelled

    def remove(
        self,
        image: str | Path,
        mask: str | Path | None,
        settings: RemovalSettings,
        *,
        session: str = "",
        progress: ProgressFn | None = None,
        selection: SelectionRequest | None = None,
    ) -> RemovalRun:
        """Erase the object under ``mask`` for each seed, in one batched call; write the results.

        ``mask=None`` takes the photo's transparent pixels as the object (the result is then opaque);
        otherwise a photo's alpha channel is carried to the results. DIP is deterministic: one result.
        """
        import torch

        photo = self.load_photo(image)
        alpha = photo.alpha
        if mask is None and selection is None:
            if alpha is None:
                raise imaging.InputError("mask", "no mask given and the photo has no transparent pixels")
            object_mask, alpha = imaging.mask_from_alpha(alpha), None
        elif mask is not None:
            object_mask = imaging.load_mask(
                self.check_upload(mask, "mask"), size=photo.picture.size, max_pixels=self.max_pixels
            )
        if selection is not None:  # clicks, a box or words: the photo's alpha is kept, as with a mask
            selected = self.select(photo, selection)
            object_mask = selected if mask is None else object_mask | selected
        imaging.validate_mask(object_mask)
        seeds = parse_seeds(settings.seeds, limit=self.max_seeds)
        if settings.strategy not in ("resize", "crop"):
            raise imaging.InputError("strategy", f"{settings.strategy!r} must be 'resize' or 'crop'")
        if not isinstance(settings.paste_back, (bool, np.bool_)):
            raise imaging.InputError("paste_back", f"{settings.paste_back!r} must be True or False")
        if settings.resolution is not None:
            imaging.check_resolution(photo.picture.size, settings.resolution)

        with self._run_lock:
            if self._take_cancel(session):
                return RemovalRun(status="Cancelled before it started.", cancelled=True)
            start = time.perf_counter()
            pipe = self.pipeline(settings.model, settings.method)
            kwargs = settings.call_kwargs()
            if settings.method == "sip":
                kwargs["num_images_per_prompt"] = len(seeds)
                kwargs["generator"] = [torch.Generator(device="cpu").manual_seed(seed) for seed in seeds]
                labels: list[int | None] = list(seeds)
            else:
                labels = [None]
                if progress is not None:
                    progress(0, 0, "DDIM inversion…")
            done = [0, 0]

            def on_step(pipeline: Any, index: int, timestep: int, tensors: dict[str, Any]) -> dict[str, Any]:
                total = int(getattr(pipeline, "_num_timesteps", 0) or 0)
                done[:] = [index + 1, total]
                if progress is not None:
                    progress(index + 1, total, f"Denoising step {index + 1}/{total}")
                if self._is_cancelled(session):
                    pipeline._interrupt = True  # the pipeline stops before its next step
                return tensors

            output = pipe(photo.picture, object_mask, callback_on_step_end=on_step, **kwargs)
            if self._take_cancel(session):
                return RemovalRun(status=f"Cancelled after step {done[0]} of {done[1]}.", cancelled=True)
            seconds = time.perf_counter() - start

        folder = self.new_job_folder()
        display_suffix = photo.suffix if photo.suffix in _BROWSER_SUFFIXES else ".png"
        before = folder / f"{photo.stem}{display_suffix}"
        imaging.save_image(imaging.merge_alpha(photo.picture, alpha), before)
        candidates = []
        for label, result in zip(labels, output.images, strict=True):
            result = imaging.merge_alpha(result, alpha)
            if photo.icc_profile:
                result.info["icc_profile"] = photo.icc_profile
            name = photo.stem + "_erased" + ("" if label is None or len(labels) == 1 else f"_seed{label}")
            path = imaging.save_image(result, folder / f"{name}{photo.suffix}")
            display = path
            if photo.suffix != display_suffix:  # e.g. TIFF: the page shows a PNG copy
                display = imaging.save_image(result, folder / f"{name}{display_suffix}")
            candidates.append(Candidate(label, str(path), str(display)))
        width, height = photo.picture.size
        count = f"{len(candidates)} candidates" if len(candidates) > 1 else "1 result"
        status = (
            f"Done in {seconds:.1f} s: {count} at {width}×{height} ({settings.method.upper()}, "
            f"{done[0]} denoising steps). Download saves {photo.suffix.lstrip('.').upper()} at the photo's "
            "size."
        )
        if len(candidates) > 1:
            status += " Click a candidate to compare and download it."
        return RemovalRun(candidates, str(before), status)


def _shrink(image: Image.Image, side: int = PREVIEW_SIDE) -> Image.Image:
    """A copy no larger than ``side`` on its longest side, for showing in the page."""
    scale = side / max(image.size)
    if scale >= 1:
        return image.copy()
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return imaging.resize_image(image, size)


def _overlay(picture: Image.Image, mask: np.ndarray, grown: np.ndarray, blended: np.ndarray) -> Image.Image:
    """Tint the painted mask, the ring dilation adds and the paste-back band over the photo."""
    pixels = np.asarray(picture.convert("RGB"), dtype=np.float32)
    out = pixels.copy()
    for region, colour, weight in (
        (blended & ~grown, _BLENDED, 0.35),
        (grown & ~mask, _DILATED, 0.6),
        (mask, _PAINTED, 0.6),
    ):
        out[region] = (1 - weight) * pixels[region] + weight * np.asarray(colour, dtype=np.float32)
    return _shrink(Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8)))


def _mark_clicks(overlay: Image.Image, size: tuple[int, int], selection: SelectionRequest) -> Image.Image:
    """Draw the clicks on the (shrunk) preview: a ringed dot, green on the object, black for exclusions."""
    from PIL import ImageDraw

    marked = overlay.convert("RGB")
    draw = ImageDraw.Draw(marked)
    scale = marked.width / size[0]
    radius = max(2.0, marked.width / 100)
    for name, points in (("points", selection.points), ("exclude", selection.negative_points)):
        for x, y in points:
            cx, cy = (x + 0.5) * scale, (y + 0.5) * scale
            draw.ellipse(
                (cx - radius, cy - radius, cx + radius, cy + radius),
                fill=_CLICK_COLOURS[name],
                outline=(255, 255, 255),
                width=max(1, round(radius / 3)),
            )
    return marked


def _click_on_preview(index: Sequence[float], photo_size: tuple[int, int]) -> tuple[int, int]:
    """A click at ``index`` (x, y) on the preview, shrunk to ``PREVIEW_SIDE``, in the photo's pixels."""
    width, height = photo_size
    scale = max(1.0, max(photo_size) / PREVIEW_SIDE)
    x = min(width - 1, max(0, int(float(index[0]) * scale)))
    y = min(height - 1, max(0, int(float(index[1]) * scale)))
    return x, y


# --------------------------------------------------------------------------------------------------
# The page


def _example_pairs(folder: Path) -> list[tuple[str, str, str]]:
    """Copy the bundled examples into ``folder`` (the web framework serves files from there only).

    Returns ``(photo, mask, name)`` triples.
    """
    source = resources.files("attentive_eraser") / "assets" / "examples"
    pairs = []
    folder.mkdir(parents=True, exist_ok=True)
    for item in sorted(source.iterdir(), key=lambda entry: entry.name):
        name = item.name
        if "_mask" in name or Path(name).suffix.lower() not in imaging.SAVE_FORMATS:
            continue
        mask = source / f"{Path(name).stem}_mask.png"
        if not mask.is_file():
            continue
        photo_copy, mask_copy = folder / name, folder / mask.name
        photo_copy.write_bytes(item.read_bytes())
        mask_copy.write_bytes(mask.read_bytes())
        pairs.append((str(photo_copy), str(mask_copy), Path(name).stem))
    return pairs


_HELP = {
    "model": "Weights the server was started with (attentive-eraser serve --model …). "
    "Changing it resets the knobs below to its preset.",
    "method": "SIP: stochastic inpainting (blended latent diffusion), one result per seed. "
    "DIP: deterministic, from a DDIM inversion of the photo; seeds are ignored.",
    "seeds": "SIP's noise seeds, separated by commas: one candidate per seed, computed together as one "
    "batch (at most {max_seeds}).",
    "num_inference_steps": "T_I: DDIM steps of the full schedule (num_inference_steps).",
    "strength": "Share of the schedule that is run: SIP 0.8 = the last 40 of 50 steps; DIP runs all (1.0).",
    "removal_guidance_scale": "s (Eq. 18): strength of Self-Attention Redirection Guidance; 0 turns it off.",
    "suppression_scale": "λ (Eq. 13): Similarity Suppression factor on the object queries' logits.",
    "suppression_steps": "T_SS: Similarity Suppression applies during the first T_SS denoising steps.",
    "mask_dilation": "Grow the mask outwards by this many pixels at the working resolution.",
    "feather_radius": "Width of the feathered paste-back band, pixels at the working resolution.",
    "resolution": "Working resolution: the model sees about this² pixels, aspect ratio kept.",
    "paste_back": "Keep the original pixels outside the (feathered) mask; off = the raw decode everywhere.",
    "strategy": "resize: process the whole photo at the working resolution. crop: only a window around the "
    "mask (2× its box), pasted back at full resolution — for large photos with small objects.",
}

_CSS = """
#status { min-height: 2.5em; }
#preview-info { font-size: 0.9em; }
"""


def build_app(
    models: Sequence[str | None] = (None,),
    *,
    device: str | None = None,
    dtype: str | None = None,
    max_seeds: int = MAX_SEEDS,
    queue_size: int = 16,
    defaults: Mapping[str, Any] | None = None,
    service: EraserService | None = None,
    segmenter: str | None = None,
) -> "gr.Blocks":
    """The Gradio page (and its HTTP API) around an :class:`EraserService`.

    ``models``: what the page offers (``None`` = the embedded default); the first is selected.
    ``defaults`` overrides initial knob values (``num_inference_steps``, ``seeds``, ``method``, …).
    Launch it with :func:`launch`, which sets the upload size limit; the queue (one removal at a
    time, at most ``queue_size`` waiting) is set up here. ``segmenter`` turns clicks and words into
    masks (a spec of :func:`attentive_eraser.selection.load_segmenter`; default ``classic``).
    """
    import gradio as gr
    from gradio.utils import get_upload_folder

    service = service or EraserService(
        models, device=device, dtype=dtype, max_seeds=max_seeds, segmenter=segmenter
    )
    service.allow_root(get_upload_folder())
    initial: dict[str, Any] = {
        "method": "sip",
        "seeds": "123",
        "paste_back": True,
        "strategy": "resize",
        **service.knob_defaults(service.default_model),
        **dict(defaults or {}),
    }
    unknown = set(initial) - {*_KNOBS, "method", "seeds", "paste_back", "strategy"}
    if unknown:
        raise ValueError(f"defaults={sorted(unknown)!r} are not knobs of the app")
    examples = _example_pairs(service.workdir / "examples")

    def _range(name: str) -> tuple[float, float]:
        return _SLIDERS[name][0], _SLIDERS[name][1]

    class CheckedBlocks(gr.Blocks):
        """Blocks whose ``/remove`` requests are checked, raw, before Gradio processes them.

        Gradio's own failures (a refused path, text for a number, a missing value) reach the client as an
        error without a message; checked first, each names the parameter and the value instead.
        """

        async def preprocess_data(self, block_fn: Any, inputs: Any, *args: Any, **kwargs: Any) -> Any:
            if getattr(block_fn, "api_name", None) != "remove":
                return await super().preprocess_data(block_fn, inputs, *args, **kwargs)
            with user_errors():
                check_remove_request(service, list(inputs or []))
            # the selection fields are optional: a request without them (15 values) selects nothing
            full = len(REMOVE_PARAMETERS) + len(SELECTION_PARAMETERS)
            inputs = [*inputs, *[""] * (full - len(inputs))]
            try:
                return await super().preprocess_data(block_fn, inputs, *args, **kwargs)
            except gr.Error:
                raise
            except Exception as error:
                found = re.search(r"at index (\d+)", str(error))
                index = int(found.group(1)) if found else -1
                name = REMOVE_PARAMETERS[index] if 0 <= index < len(REMOVE_PARAMETERS) else "data"
                value = _shown(inputs[index]) if 0 <= index < len(inputs) else "the request"
                message = f"{name}: {value} could not be read ({type(error).__name__})"
                raise gr.Error(message, print_exception=False) from error

    @contextmanager
    def user_errors() -> Iterator[None]:
        """Show the package's input errors (a ValueError naming the argument) as a message in the page."""
        try:
            yield
        except ValueError as error:
            raise gr.Error(str(error), print_exception=False) from error

    def session_of(request: gr.Request | None) -> str:
        return str(getattr(request, "session_hash", None) or "")

    def layers_of(editor: dict[str, Any] | None) -> list[Image.Image]:
        return [layer for layer in (editor or {}).get("layers") or [] if layer is not None]

    with CheckedBlocks(title="Attentive Eraser", analytics_enabled=False, delete_cache=(1800, 3600)) as app:
        gr.Markdown(
            "# Attentive Eraser\n"
            "Remove an object from a photo with Stable Diffusion, no training "
            "(*Attentive Eraser*, Sun et al., AAAI 2025). "
            "**1** upload a photo · **2** paint over the object (or upload a mask) · **3** Remove · "
            "**4** compare, pick a candidate and download it at the photo's size and format."
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=1):
                photo = gr.File(label="1. Photo", file_types=["image"], type="filepath", elem_id="photo")
                editor = gr.ImageEditor(
                    label="2. Paint over the object (brush / eraser; size: the ◎ tool)",
                    type="pil",
                    image_mode="RGBA",
                    format="png",
                    sources=(),
                    transforms=(),
                    layers=False,
                    brush=gr.Brush(default_size="auto", colors=[_BRUSH_COLOUR], color_mode="fixed"),
                    eraser=gr.Eraser(default_size="auto"),
                    height=420,
                    elem_id="editor",
                    placeholder="Upload a photo above (or pick an example below), then paint here.",
                )
                with gr.Group(elem_id="selection"):
                    click_mode = gr.Radio(
                        [("add to the object", "points"), ("exclude (keep)", "exclude")],
                        value="points",
                        label="…or click the object on the mask preview: clicks",
                        elem_id="click-mode",
                    )
                    with gr.Row():
                        clicked = gr.Textbox(label="Object clicks (x,y; …)", elem_id="points", max_lines=1)
                        excluded = gr.Textbox(label="Excluded clicks", elem_id="exclude", max_lines=1)
                    with gr.Row():
                        object_text = gr.Textbox(
                            label="…or the object to remove, in words (Enter)",
                            elem_id="object",
                            max_lines=1,
                            placeholder="the red car (needs a server started with a detector)",
                        )
                        clear_clicks = gr.Button("Clear clicks", size="sm", elem_id="clear-clicks")
                mask_upload = gr.File(
                    label="…or upload a mask (white = remove; painted strokes are added to it)",
                    file_types=["image"],
                    type="filepath",
                    elem_id="mask-upload",
                )
                example_gallery = gr.Gallery(
                    value=[(photo_path, name) for photo_path, _, name in examples],
                    label="Examples: click one",
                    columns=3,
                    height=140,
                    allow_preview=False,
                    object_fit="contain",
                    elem_id="examples",
                    interactive=False,
                    buttons=[],
                )
            with gr.Column(scale=1):
                preview = gr.Image(
                    label="Mask preview (click it to select): red mask · yellow dilation · blue paste-back",
                    type="pil",
                    format="png",
                    interactive=False,
                    height=300,
                    elem_id="preview",
                )
                preview_info = gr.Markdown(elem_id="preview-info")
                with gr.Accordion("Settings", open=True):
                    with gr.Row():
                        model = gr.Dropdown(
                            service.model_labels,
                            value=service.default_model,
                            label="Model",
                            info=_HELP["model"],
                            elem_id="model",
                        )
                        method = gr.Radio(
                            [("SIP (stochastic)", "sip"), ("DIP (deterministic)", "dip")],
                            value=initial["method"],
                            label="Method",
                            info=_HELP["method"],
                            elem_id="method",
                        )
                    seeds = gr.Textbox(
                        value=str(initial["seeds"]),
                        label="Seeds",
                        info=_HELP["seeds"].format(max_seeds=service.max_seeds),
                        elem_id="seeds",
                    )
                    with gr.Row():
                        steps = gr.Slider(
                            *_range("num_inference_steps"),
                            value=initial["num_inference_steps"],
                            label="Steps (T_I)",
                            info=_HELP["num_inference_steps"],
                            elem_id="steps",
                        )
                        strength = gr.Slider(
                            *_range("strength"),
                            value=initial["strength"],
                            label="Strength",
                            info=_HELP["strength"],
                            elem_id="strength",
                        )
                    with gr.Row():
                        guidance = gr.Slider(
                            *_range("removal_guidance_scale"),
                            value=initial["removal_guidance_scale"],
                            label="Guidance s",
                            info=_HELP["removal_guidance_scale"],
                            elem_id="guidance",
                        )
                        suppression = gr.Slider(
                            *_range("suppression_scale"),
                            value=initial["suppression_scale"],
                            label="Suppression λ",
                            info=_HELP["suppression_scale"],
                            elem_id="suppression",
                        )
                        suppression_steps = gr.Slider(
                            *_range("suppression_steps"),
                            value=initial["suppression_steps"],
                            label="T_SS",
                            info=_HELP["suppression_steps"],
                            elem_id="suppression-steps",
                        )
                    with gr.Row():
                        dilation = gr.Slider(
                            *_range("mask_dilation"),
                            value=initial["mask_dilation"],
                            label="Mask dilation (px)",
                            info=_HELP["mask_dilation"],
                            elem_id="dilation",
                        )
                        feather = gr.Slider(
                            *_range("feather_radius"),
                            value=initial["feather_radius"],
                            label="Feather (px)",
                            info=_HELP["feather_radius"],
                            elem_id="feather",
                        )
                        resolution = gr.Slider(
                            *_range("resolution"),
                            value=initial["resolution"],
                            label="Resolution",
                            info=_HELP["resolution"],
                            elem_id="resolution",
                        )
                    with gr.Row():
                        paste_back = gr.Checkbox(
                            value=initial["paste_back"],
                            label="Paste back",
                            info=_HELP["paste_back"],
                            elem_id="paste-back",
                        )
                        strategy = gr.Radio(
                            ["resize", "crop"],
                            value=initial["strategy"],
                            label="Strategy",
                            info=_HELP["strategy"],
                            elem_id="strategy",
                        )
                with gr.Row():
                    remove_button = gr.Button("3. Remove", variant="primary", elem_id="remove")
                    cancel_button = gr.Button("Cancel", variant="stop", elem_id="cancel")
                status = gr.Markdown(label="Status", elem_id="status")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1):
                comparison = gr.ImageSlider(
                    label="Before / after",
                    type="filepath",
                    interactive=False,
                    elem_id="comparison",
                    max_height=600,
                )
            with gr.Column(scale=1):
                gallery = gr.Gallery(
                    label="Candidates",
                    columns=4,
                    fit_columns=False,
                    height="auto",
                    allow_preview=False,
                    object_fit="contain",
                    interactive=False,
                    elem_id="candidates",
                )
                download = gr.DownloadButton("Download the result", variant="primary", elem_id="download")
                mask_used = gr.File(label="Mask used", interactive=False, elem_id="mask-used")
        candidates = gr.State([])
        # /remove's selection fields for HTTP clients; the page puts its selection into the mask instead
        api_selection = [gr.Textbox(value="", visible=False) for _ in SELECTION_PARAMETERS]

        # ---- events: loading and previewing (light, not serialised behind removals)
        def show_photo(image: str | None) -> Any:
            if image is None:
                return None
            with user_errors():
                return service.load_photo(image).picture

        def pick_example(event: gr.SelectData) -> tuple[str, str]:
            photo_path, mask_path, _ = examples[event.index]
            return photo_path, mask_path

        def update_preview(
            image: str | None,
            editor_value: dict[str, Any] | None,
            upload: str | None,
            model_label: str,
            dilation_px: float,
            feather_px: float,
            resolution_px: float,
            strategy_name: Strategy,
            paste: bool,
            points: str = "",
            exclude: str = "",
            words: str = "",
        ) -> tuple[Any, str]:
            with user_errors():
                selection = SelectionRequest.parse(
                    points or "", exclude or "", None, words, names=("points", "exclude", "box")
                )
                return service.preview(
                    image,
                    layers_of(editor_value),
                    upload,
                    model=model_label,
                    mask_dilation=int(dilation_px),
                    feather_radius=float(feather_px),
                    resolution=int(resolution_px),
                    strategy=strategy_name,
                    paste_back=bool(paste),
                    selection=selection,
                )

        def add_click(
            image: str | None, points: str, exclude: str, mode: str, event: gr.SelectData
        ) -> tuple[str, str]:
            if image is None or event.index is None:
                return points, exclude
            with user_errors():
                x, y = _click_on_preview(event.index, service.load_photo(image).picture.size)
            if mode == "exclude":
                return points, "; ".join(part for part in ((exclude or "").strip(), f"{x},{y}") if part)
            return "; ".join(part for part in ((points or "").strip(), f"{x},{y}") if part), exclude

        def model_defaults(model_label: str, method_name: Method) -> list[Any]:
            with user_errors():
                values = service.knob_defaults(model_label, method_name)
            return [values[name] for name in _KNOBS]

        def method_defaults(model_label: str, method_name: Method) -> list[Any]:
            with user_errors():
                values = service.knob_defaults(model_label, method_name)
            return [values["num_inference_steps"], values["strength"]]

        light = {"concurrency_limit": None, "api_visibility": "private", "show_progress": "hidden"}
        # Reading a photo and drawing the preview decode the whole upload: a few at once, not one per
        # click, and in their own group, so they never wait behind a removal.
        decoding = {**light, "concurrency_limit": PREVIEW_CONCURRENCY, "concurrency_id": "decode"}
        photo.change(show_photo, photo, editor, **decoding)
        example_gallery.select(pick_example, None, [photo, mask_upload], **light)
        gr.on(
            [
                photo.change,
                editor.change,
                mask_upload.change,
                model.change,
                dilation.change,
                feather.change,
                resolution.change,
                strategy.change,
                paste_back.change,
                clicked.change,
                excluded.change,
                object_text.submit,
            ],
            update_preview,
            [
                photo,
                editor,
                mask_upload,
                model,
                dilation,
                feather,
                resolution,
                strategy,
                paste_back,
                clicked,
                excluded,
                object_text,
            ],
            [preview, preview_info],
            trigger_mode="always_last",
            **decoding,
        )
        preview.select(add_click, [photo, clicked, excluded, click_mode], [clicked, excluded], **light)
        clear_clicks.click(lambda: ("", ""), None, [clicked, excluded], **light)
        photo.change(lambda: ("", "", ""), None, [clicked, excluded, object_text], **light)
        knob_sliders = [
            steps,
            strength,
            guidance,
            suppression,
            suppression_steps,
            dilation,
            feather,
            resolution,
        ]
        model.input(model_defaults, [model, method], knob_sliders, **light)
        method.input(method_defaults, [model, method], [steps, strength], **light)

        # ---- events: removal (serialised by the queue), cancel, picking a candidate
        def prepare(
            image: str | None,
            editor_value: dict[str, Any] | None,
            upload: str | None,
            points: str,
            exclude: str,
            words: str,
            request: gr.Request,
        ) -> str | None:
            with user_errors():
                selection = SelectionRequest.parse(
                    points or "", exclude or "", None, words, names=("points", "exclude", "box")
                )
                return service.prepare_mask(
                    image,
                    layers_of(editor_value),
                    upload,
                    session=session_of(request),
                    selection=selection,
                )

        def remove(
            image: str,
            mask: str | None,
            model: str,
            method: Method,
            seeds: str,
            num_inference_steps: int,
            strength: float,
            removal_guidance_scale: float,
            suppression_scale: float,
            suppression_steps: int,
            mask_dilation: int,
            feather_radius: float,
            resolution: int,
            paste_back: bool,
            strategy: Strategy,
            points: str,
            exclude: str,
            box: str,
            object: str,
            request: gr.Request,
            progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio's idiom)
        ) -> tuple[Any, ...]:
            """Remove the object under `mask` (white = remove; None: the image's transparent pixels).

            Or select it (united with `mask` when both are given): `points` clicks on it ("x,y; x,y", in
            pixels), `exclude` clicks on what must stay, `box` "x0,y0,x1,y1", `object` its name in words
            (with a server started with a detector). One result per seed (SIP; DIP gives one), in the
            image's size and format. Returns the candidates (gallery), the before/after pair of the first,
            its file, a status line.
            """
            if image is None:
                raise gr.Error("image: upload a photo first", print_exception=False)

            def report(done: int, total: int, description: str) -> None:
                progress((done, total) if total else 0.0, desc=description)

            with user_errors():
                settings = RemovalSettings(
                    model=model,
                    method=method,
                    seeds=parse_seeds(seeds, limit=service.max_seeds),
                    num_inference_steps=int(num_inference_steps),
                    strength=float(strength),
                    removal_guidance_scale=float(removal_guidance_scale),
                    suppression_scale=float(suppression_scale),
                    suppression_steps=int(suppression_steps),
                    mask_dilation=int(mask_dilation),
                    feather_radius=float(feather_radius),
                    resolution=int(resolution),
                    paste_back=paste_back,
                    strategy=strategy,
                )
                selection = selection_of_request([points, exclude, box, object])
                run = service.remove(
                    image, mask, settings, session=session_of(request), progress=report, selection=selection
                )
            if run.cancelled:
                return gr.skip(), gr.skip(), gr.skip(), run.status, gr.skip()
            first = run.candidates[0]
            return (
                [(item.display, item.caption) for item in run.candidates],
                (run.before, first.display),
                first.result,
                run.status,
                [
                    {
                        "before": run.before,
                        "result": item.result,
                        "display": item.display,
                        "caption": item.caption,
                    }
                    for item in run.candidates
                ],
            )

        def cancel(request: gr.Request) -> str:
            service.cancel(session_of(request))
            return "Cancelling…"

        def pick(items: list[dict[str, str]], event: gr.SelectData) -> tuple[Any, ...]:
            if not items or not 0 <= event.index < len(items):
                return gr.skip(), gr.skip(), gr.skip()
            item = items[event.index]
            if not Path(item["result"]).is_file():
                raise gr.Error("This result has expired; run the removal again.", print_exception=False)
            return (item["before"], item["display"]), item["result"], f"Showing {item['caption']}."

        remove_button.click(
            prepare, [photo, editor, mask_upload, clicked, excluded, object_text], mask_used, **light
        ).success(
            remove,
            [
                photo,
                mask_used,
                model,
                method,
                seeds,
                steps,
                strength,
                guidance,
                suppression,
                suppression_steps,
                dilation,
                feather,
                resolution,
                paste_back,
                strategy,
                *api_selection,
            ],
            [gallery, comparison, download, status, candidates],
            api_name="remove",
            show_progress_on=[comparison, status],
        )
        cancel_button.click(cancel, None, status, queue=False, api_name="cancel")
        gallery.select(pick, candidates, [comparison, download, status], **light)
    app.queue(default_concurrency_limit=1, max_size=queue_size)
    app.eraser_service = service  # type: ignore[attr-defined]  # for callers and tests
    return app


def launch(
    app: "gr.Blocks",
    *,
    host: str = DEFAULT_HOST,
    port: int | None = DEFAULT_PORT,
    max_file_size: str | int | None = DEFAULT_MAX_FILE_SIZE,
    block: bool = True,
    quiet: bool = False,
) -> str:
    """Start serving ``app``; returns its URL. ``block=False`` returns at once (stop with ``app.close()``)."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("Serving on %s: anyone who can reach this address can use the app.", host)
    _, url, _ = app.launch(
        server_name=host,
        server_port=port,
        max_file_size=max_file_size,
        ssr_mode=False,
        share=False,
        inbrowser=False,
        show_error=False,
        prevent_thread_lock=not block,
        quiet=quiet,
    )
    return str(url)


def serve(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    models: Sequence[str | None] = (None,),
    *,
    device: str | None = None,
    dtype: str | None = None,
    max_file_size: str | int | None = DEFAULT_MAX_FILE_SIZE,
    block: bool = True,
    max_pixels: int | None = imaging.DEFAULT_MAX_PIXELS,
    segmenter: str | None = None,
) -> "gr.Blocks":
    """Check the options, load the first model (a bad one fails now, not at the first click), serve the app.

    Host, port and upload limit are checked before anything is loaded.
    """
    from .api import detect_family

    check_server_options(host, port, max_file_size)
    service = EraserService(
        models or (None,), device=device, dtype=dtype, max_pixels=max_pixels, segmenter=segmenter
    )
    if segmenter is not None:  # a wrong spec, or weights missing offline, fail now
        from .selection import load_segmenter

        load_segmenter(segmenter, device=device)
    service.pipeline(service.default_model, "sip")
    for model in list(service.models.values())[1:]:  # loaded on first use; a typo should fail now
        if model is not None:
            detect_family(model)
    app = build_app(service=service)
    launch(app, host=host, port=port, max_file_size=max_file_size, block=block)
    return app
