"""Everything of the web app but the page: models, uploads, the mask preview, running a removal.

Plain Python, no Gradio. :class:`EraserService` holds the server's models and its temporary folder, reads
only uploaded files, and runs one removal at a time (several seeds in one batch, per-step progress,
cancellation); :class:`RemovalSettings` is one request, :class:`RemovalRun` what it produced.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .. import imaging
from ..removal import PreparedRemoval, RemovalRequest, prepare, run
from ..selection import SelectionRequest
from ..settings import FAST_KNOBS, METHODS, PRESETS, Method, Preset, Strategy
from .preview import draw_preview, shrink
from .requests import BUILTIN_MODEL, MAX_SEEDS, parse_seeds, shown
from .results import Candidate, Photo, RemovalRun, RemovalSettings, _safe_stem

__all__ = ["Candidate", "EraserService", "Photo", "ProgressFn", "RemovalRun", "RemovalSettings", "_safe_stem"]

#: step callback of the service: ``progress(done, total, description)``
ProgressFn = Callable[[int, int, str], None]

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


# --------------------------------------------------------------------------------------------------
# The service


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
        #: who turns clicks and words into masks (a spec of attentive_eraser.selection; None: classic)
        self.segmenter = segmenter
        self.models: dict[str, str | None] = {}
        for model in models or (None,):
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

    def source_of(self, label: str) -> str | None:
        """The model (hub id, folder, file; ``None``: the embedded one) the server offers as ``label``."""
        if label not in self.models:
            choices = ", ".join(repr(name) for name in self.models)
            raise imaging.InputError(
                "model", f"{label!r} is not offered by this server; choose one of {choices}"
            )
        return self.models[label]

    def pipeline(self, label: str, method: Method = "sip") -> Any:
        """The (cached) pipeline of a model label and method, loaded on first use."""
        from ..api import load_pipeline

        if method not in METHODS:
            raise imaging.InputError("method", f"{method!r} must be 'sip' or 'dip'")
        model = self.source_of(label)
        with self._load_lock:
            pipe = load_pipeline(model, method=method, device=self.device, dtype=self.dtype)
            pipe.set_progress_bar_config(disable=True)
            self._loaded.add((label, method))
        return pipe

    def _is_loaded(self, label: str) -> bool:
        return self.source_of(label) is None or any((label, method) in self._loaded for method in METHODS)

    def preset(self, label: str) -> Preset:
        """The preset of a model; a model not loaded yet is not loaded for this (its family's preset)."""
        if self._is_loaded(label):
            method: Method = "dip" if (label, "dip") in self._loaded else "sip"
            return self.pipeline(label, method).preset
        from ..api import detect_family

        try:
            return PRESETS[detect_family(self.source_of(label) or "")]
        except (ValueError, KeyError):
            return PRESETS["sd15"]

    def size_multiple(self, label: str) -> int:
        """What the model's working sizes are multiples of (SD: 64, SDXL: 32), as its pipeline rounds them."""
        if self._is_loaded(label):
            return int(getattr(self.pipeline(label, "sip"), "size_multiple", 64))
        return 32 if self.preset(label).family == "sdxl" else 64

    def knob_defaults(self, label: str, method: Method = "sip", *, fast: bool = False) -> dict[str, Any]:
        """The value of every knob a request gets when it sets none: the model's preset for ``method``
        (with ``fast``, :data:`settings.FAST_KNOBS` over it)."""
        values = self.preset(label).for_method(method)
        return {**values, **(FAST_KNOBS[method] if fast else {})}

    # ---------------------------------------------------------------- files
    def allow_root(self, folder: str | Path) -> None:
        """Also accept files under ``folder`` (the web framework's own upload folder)."""
        self._roots.append(Path(folder).resolve())

    def check_upload(self, path: str | Path, argument: str) -> Path:
        """``path`` resolved, if it is a file under an allowed root; else :class:`imaging.InputError`."""
        resolved = Path(path).resolve()
        if not any(resolved.is_relative_to(root) for root in self._roots):
            raise imaging.InputError(argument, f"{shown(str(path))} is not a file uploaded to this server")
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
        return replace(selection, segmenter=spec).select(photo.picture, device=self.device)

    def _request_mask(
        self,
        photo: Photo,
        layers: Sequence[Image.Image],
        upload: str | Path | None,
        selection: SelectionRequest | None,
    ) -> tuple[np.ndarray, str]:
        """Painted ∪ uploaded ∪ selected, at the photo's size, and the note on resizing."""
        mask, note = self.combined_mask(photo.picture.size, layers, upload)
        selected = self.select(photo, selection)
        if selected is not None:
            mask |= selected
        return mask, note

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
        mask, _ = self._request_mask(photo, layers, upload, selection)
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

        Mirrors what the pipeline does at the photo's size (:func:`preview.draw_preview`); ``None``
        knobs take the model's preset.
        """
        if image is None:
            return None, "Upload a photo, then paint over the object."
        photo = self.load_photo(image)
        mask, note = self._request_mask(photo, layers, upload, selection)
        if not mask.any():
            if photo.alpha is None or not imaging.mask_from_alpha(photo.alpha).any():
                return shrink(photo.picture), "Paint over the object to remove (or upload a mask)."
            mask, note = imaging.mask_from_alpha(photo.alpha), "mask taken from the photo's transparency"
        label = model or self.default_model
        defaults = self.knob_defaults(label)
        given = {"mask_dilation": mask_dilation, "feather_radius": feather_radius, "resolution": resolution}
        values = {name: defaults[name] if value is None else value for name, value in given.items()}
        return draw_preview(
            photo.picture,
            mask,
            mask_dilation=int(values["mask_dilation"]),
            feather_radius=float(values["feather_radius"]),
            resolution=int(values["resolution"]),
            multiple=self.size_multiple(label),
            strategy=strategy,
            paste_back=paste_back,
            selection=selection,
            note=note,
        )

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

    def request(
        self,
        image: str | Path,
        mask: str | Path | None,
        settings: RemovalSettings,
        selection: SelectionRequest | None = None,
    ) -> RemovalRequest:
        """The removal request of a Remove click: uploaded files only, the server's segmenter and limits.

        ``mask=None`` takes the photo's transparent pixels as the object (the result is then opaque);
        otherwise a photo's alpha channel is carried to the results.
        """
        if selection is not None:
            selection = replace(selection, segmenter=selection.segmenter or self.segmenter)
        return RemovalRequest(
            self.check_upload(image, "image"),
            None if mask is None else self.check_upload(mask, "mask"),
            selection,
            replace(settings.options, max_pixels=self.max_pixels),
            seeds=parse_seeds(settings.seeds, limit=self.max_seeds),
        )

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

        The same path as every surface (:mod:`attentive_eraser.removal`); DIP is deterministic: one result.
        """
        photo = self.load_photo(image)
        request = self.request(image, mask, settings, selection)
        prepared = prepare(request, device=self.device)
        with self._run_lock:
            if self._take_cancel(session):
                return RemovalRun(status="Cancelled before it started.", cancelled=True)
            start = time.perf_counter()
            images, done = self._run(prepared, settings, session, progress)
            if self._take_cancel(session):
                return RemovalRun(status=f"Cancelled after step {done[0]} of {done[1]}.", cancelled=True)
            seconds = time.perf_counter() - start
        labels = list(request.candidates)
        return self._write_results(photo, prepared.alpha, labels, images, settings, seconds, done[0])

    def _run(
        self,
        prepared: PreparedRemoval,
        settings: RemovalSettings,
        session: str,
        progress: ProgressFn | None,
    ) -> tuple[list[Image.Image], list[int]]:
        """One pipeline call for every seed: ``(results, [steps done, steps in all])``."""
        pipe = self.pipeline(settings.model, settings.method)
        if settings.method == "dip" and progress is not None:
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

        return run(pipe, [prepared], callback=on_step)[0], done

    def _write_results(
        self,
        photo: Photo,
        alpha: Image.Image | None,
        labels: list[int | None],
        images: Sequence[Image.Image],
        settings: RemovalSettings,
        seconds: float,
        steps: int,
    ) -> RemovalRun:
        """Save the photo (for the comparison) and each result in the photo's format; the status line."""
        folder = self.new_job_folder()
        display_suffix = photo.suffix if photo.suffix in _BROWSER_SUFFIXES else ".png"
        before = folder / f"{photo.stem}{display_suffix}"
        imaging.save_image(imaging.merge_alpha(photo.picture, alpha), before)
        candidates = []
        for label, result in zip(labels, images, strict=True):  # alpha and colour profile carried by run()
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
            f"{steps} denoising steps). Download saves {photo.suffix.lstrip('.').upper()} at the photo's "
            "size."
        )
        if len(candidates) > 1:
            status += " Click a candidate to compare and download it."
        return RemovalRun(candidates, str(before), status)
