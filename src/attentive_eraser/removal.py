"""The one removal path under every surface: a typed request, then ``prepare`` and ``run``.

``remove()``, the CLI, the batch runner and the web app all build a :class:`RemovalRequest` and call the
two steps here, so a photo, its mask and a seed give the same pixels whichever way they come in:

* :func:`prepare` decodes the image (refusing files over the pixel limit from their header), takes the
  object mask from the mask, the selection (clicks, a box, words) and, when neither is given, the image's
  transparent pixels, and makes every check that needs no diffusion model;
* :func:`run` calls an eraser pipeline once for a batch of prepared requests (each with one or more
  seeds), with progress and cancellation through diffusers' step callback, and gives each result back
  the input's alpha channel and colour profile.

Loading the pipeline is the caller's (each surface caches its own); nothing here writes a file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from . import imaging
from .selection import SelectionRequest
from .settings import RemovalOptions, check_flag, check_seed

ImageSource = str | os.PathLike | Image.Image
MaskSource = str | os.PathLike | Image.Image | np.ndarray
#: diffusers' ``callback_on_step_end(pipeline, step, timestep, tensors) -> tensors``
StepCallback = Callable[[Any, int, Any, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class RemovalRequest:
    """One removal: the image, where the object is, and how to remove it.

    ``mask`` (white = object) and ``selection`` are united when both are given; with neither, the image's
    transparent pixels are the object and the result is opaque. Otherwise an alpha channel of the image is
    carried to the result. ``seeds`` are the candidates SIP makes in one batch (default: ``options.seed``
    alone); DIP is deterministic and makes one result whatever they are.
    """

    image: ImageSource
    mask: MaskSource | None = None
    selection: SelectionRequest | None = None
    options: RemovalOptions = field(default_factory=RemovalOptions)
    seeds: tuple[int, ...] = ()
    #: resize a mask of another size to the image's (nearest neighbour); else such a mask is refused
    resize_mask: bool = False

    def __post_init__(self) -> None:
        check_flag("resize_mask", self.resize_mask)
        seeds = tuple(check_seed(seed, "seeds") for seed in self.seeds) or (self.options.seed,)
        if len(set(seeds)) != len(seeds):
            raise imaging.InputError("seeds", f"{list(self.seeds)!r} repeats a seed")
        object.__setattr__(self, "seeds", seeds)

    @property
    def candidates(self) -> tuple[int | None, ...]:
        """The seed of each result this request makes (``None``: DIP's one deterministic result)."""
        return (None,) if self.options.method == "dip" else self.seeds


@dataclass(frozen=True)
class PreparedRemoval:
    """A request with its pixels: what :func:`run` needs, every check passed."""

    request: RemovalRequest
    #: the image, RGB, upright (EXIF orientation applied)
    picture: Image.Image
    #: ``(H, W)`` bool, True on the object
    mask: np.ndarray
    #: the alpha channel the results carry (``None``: opaque results)
    alpha: Image.Image | None
    icc_profile: bytes | None


def prepare(
    request: RemovalRequest,
    *,
    device: Any = None,
    on_decoded: Callable[[tuple[int, int]], None] | None = None,
) -> PreparedRemoval:
    """Decode ``request``'s image and mask, run its selection, and check everything a model does not need.

    ``on_decoded(size)`` runs once the image is decoded and before a segmenter loads (the CLI checks the
    output's free space there). ``device`` is where a selection's segmenter runs.
    """
    options = request.options
    resolution = options.get("resolution")
    picture, alpha = imaging.split_alpha(imaging.load_image(request.image, max_pixels=options.max_pixels))
    imaging.check_pixels(picture.size, options.max_pixels, "image")
    icc_profile = picture.info.get("icc_profile") or None
    object_mask: np.ndarray | None = None
    if request.mask is None and request.selection is None:
        if alpha is None:
            raise imaging.InputError(
                "mask", "no mask given and the image has no alpha channel to take one from"
            )
        object_mask, alpha = imaging.mask_from_alpha(alpha), None  # the transparent region is filled
    elif request.mask is not None:
        object_mask = imaging.load_mask(request.mask, max_pixels=options.max_pixels)
        width, height = picture.size
        if object_mask.shape != (height, width):
            if not request.resize_mask:
                raise imaging.InputError(
                    "mask",
                    f"size {object_mask.shape[1]}x{object_mask.shape[0]} differs from the image's "
                    f"{width}x{height} (use --resize-mask, or resize_mask=True in Python)",
                )
            object_mask = imaging.load_mask(object_mask, size=picture.size, resize=True)
    if object_mask is not None and request.selection is None:
        imaging.validate_mask(object_mask)
    if resolution is not None:
        imaging.check_resolution(picture.size, resolution)
    if on_decoded is not None:
        on_decoded(picture.size)
    if request.selection is not None:
        selected = request.selection.select(picture, device=device)
        object_mask = selected if object_mask is None else object_mask | selected
    assert object_mask is not None
    imaging.validate_mask(object_mask)
    return PreparedRemoval(request, picture, object_mask, alpha, icc_profile)


def run(
    pipe: Any,
    batch: Sequence[PreparedRemoval],
    *,
    callback: StepCallback | None = None,
) -> list[list[Image.Image]]:
    """Remove the object of every prepared request in one pipeline call; the results per request.

    Every request of ``batch`` must share its options but the seed (the batch runner groups them so) and
    make as many candidates. SIP's noise comes from one CPU generator per candidate, seeded with its seed
    alone, so a result does not depend on its batch-mates or the device. ``callback`` is diffusers'
    ``callback_on_step_end`` (progress, cancellation by setting ``pipeline._interrupt``).
    """
    if not batch:
        return []
    import torch

    options = batch[0].request.options
    counts = {len(entry.request.candidates) for entry in batch}
    if len(counts) != 1:
        raise ValueError(f"every request of a batch must make as many candidates, got {sorted(counts)}")
    per_image = counts.pop()
    kwargs: dict[str, Any] = options.call_knobs()
    if options.method == "sip":
        kwargs["num_images_per_prompt"] = per_image
        kwargs["generator"] = [
            torch.Generator(device="cpu").manual_seed(seed) for entry in batch for seed in entry.request.seeds
        ]
    if callback is not None:
        kwargs["callback_on_step_end"] = callback
    output = pipe(
        [entry.picture for entry in batch],
        [entry.mask for entry in batch],
        paste_back=options.paste_back,
        strategy=options.strategy,
        **kwargs,
    )
    results = []
    for index, entry in enumerate(batch):
        images = output.images[index * per_image : (index + 1) * per_image]
        results.append([_finish(image, entry) for image in images])
    return results


def _finish(image: Image.Image, entry: PreparedRemoval) -> Image.Image:
    """The input's alpha channel and colour profile on a result (what ``save_image`` writes)."""
    result = imaging.merge_alpha(image, entry.alpha)
    if entry.icc_profile:
        result.info["icc_profile"] = entry.icc_profile
    return result
