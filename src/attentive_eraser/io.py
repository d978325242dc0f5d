"""Image and mask input/output: loading, size policy, mask morphology, paste-back and saving.

No model code lives here (numpy, Pillow and OpenCV only), so the CLI, the web app and the batch runner
can share it without importing torch.

Conventions used throughout:

* Sizes are ``(width, height)`` like Pillow; mask arrays are ``bool`` of shape ``(height, width)``.
* A mask is ``True`` (white, non-zero) on the object to remove and ``False`` on the background to keep.
* User mistakes raise :class:`InputError` (a ``ValueError``) whose one-line message starts with the
  name of the offending argument.
"""

from __future__ import annotations

import errno
import math
import numbers
import os
import pathlib
import re
import secrets
import shutil
from collections.abc import Iterable, Sequence
from typing import TypeAlias, Union

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

__all__ = [
    "InputError",
    "load_image",
    "split_alpha",
    "mask_from_alpha",
    "load_mask",
    "validate_mask",
    "working_size",
    "resize_image",
    "resize_mask",
    "dilate_mask",
    "feather_alpha",
    "paste_back",
    "merge_alpha",
    "save_image",
    "side_by_side",
    "outline_mask",
    "SAVE_FORMATS",
    "DEFAULT_MAX_PIXELS",
    "check_pixels",
    "check_resolution",
    "check_output_path",
    "stale_temporaries",
    "remove_stale_temporaries",
]

PathLike: TypeAlias = Union[str, "os.PathLike[str]"]

# Output extension -> Pillow format name. Anything else is refused rather than guessed.
SAVE_FORMATS: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}

# Alpha below this (on a 0..255 scale) counts as transparent, i.e. as the object to remove.
_ALPHA_THRESHOLD = 128

#: largest image (width x height) read by default. Checked from the file's header before decoding: a few
#: hundred kilobytes of PNG can declare 90 megapixels, and decoding plus the float copies of the
#: pipeline and paste-back then need gigabytes. Raise it with ``max_pixels`` (``--max-pixels``).
DEFAULT_MAX_PIXELS = 50_000_000

#: working resolutions above this may not exceed the image's own size, sqrt(width x height): upscaling a
#: small image far beyond the largest native size (SDXL's 1024) only costs memory (8192 on a 64 px
#: image asks the VAE for gigabytes)
MAX_UPSCALED_RESOLUTION = 1024

# What save_image names its temporary files: ".<name>.<12 hex digits>.tmp" beside the target.
_TEMPORARY_NAME = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{12}\.tmp$")


class InputError(ValueError):
    """Bad user input. The message names the argument and the offending value, in one line."""

    def __init__(self, argument: str, message: str) -> None:
        self.argument = argument
        self.message = " ".join(str(message).split())  # one line, whatever the cause said
        super().__init__(f"{argument}: {self.message}")

    def __reduce__(self) -> tuple[type[InputError], tuple[str, str]]:
        # The default would call InputError(str(self)) and fail: keep it picklable for worker processes.
        return type(self), (self.argument, self.message)


# --------------------------------------------------------------------------------------------------
# Loading


def _one_line(error: BaseException) -> str:
    """Collapse an exception's text into a single line."""
    return " ".join(str(error).split()) or type(error).__name__


def check_pixels(size: tuple[int, int], max_pixels: int | None, argument: str) -> None:
    """Raise :class:`InputError` when an image of ``size`` (width, height) exceeds ``max_pixels``."""
    if max_pixels is None:
        return
    width, height = size
    if width * height > max_pixels:
        raise InputError(
            argument,
            f"{width}x{height} is {width * height / 1e6:.1f} megapixels, more than the limit of "
            f"{max_pixels / 1e6:g} (raise it with --max-pixels / max_pixels)",
        )


def _check_max_pixels(max_pixels: object) -> int | None:
    if max_pixels is None:
        return None
    if not isinstance(max_pixels, numbers.Integral) or isinstance(max_pixels, bool) or max_pixels < 1:
        raise InputError(
            "max_pixels", f"expected a positive whole number of pixels or None, got {max_pixels!r}"
        )
    return int(max_pixels)


def _open_file(path: PathLike, argument: str, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open an image file, check its declared size, decode every pixel, close it, apply its EXIF orientation."""
    max_pixels = _check_max_pixels(max_pixels)
    file = pathlib.Path(path)
    try:
        exists, is_file = file.exists(), file.is_file()
    except OSError as error:  # e.g. a name longer than the file system allows
        raise InputError(argument, f"cannot read {str(file)!r}: {_one_line(error)}") from error
    if not exists:
        raise InputError(argument, f"file not found: {str(file)!r}")
    if not is_file:
        raise InputError(argument, f"not a file: {str(file)!r}")
    try:
        with Image.open(file) as opened:
            check_pixels(opened.size, max_pixels, argument)  # the header only: nothing decoded yet
            opened.load()
            # exif_transpose returns a new in-memory image, so nothing refers to the file afterwards.
            return ImageOps.exif_transpose(opened)
    except (OSError, ValueError, SyntaxError, UnidentifiedImageError, Image.DecompressionBombError) as error:
        raise InputError(argument, f"cannot read an image from {str(file)!r}: {_one_line(error)}") from error


def _as_pil(
    source: object, argument: str, accepted: str, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> Image.Image:
    """Return ``source`` as a loaded PIL image: open paths, pass images through, refuse anything else."""
    if isinstance(source, Image.Image):
        source.load()
        return source
    if isinstance(source, (str, os.PathLike)):
        return _open_file(source, argument, max_pixels)
    raise InputError(argument, f"expected {accepted}, got {type(source).__name__}")


def _high_depth_to_l(image: Image.Image) -> Image.Image:
    """Map a 16/32-bit integer or float greyscale image to 8-bit "L" by its value range."""
    values = np.asarray(image).astype(np.float64)
    if image.mode.startswith("I;16"):
        scale = 255.0 / 65535.0
    else:
        # "I" and "F" carry no declared range: 0..1 floats, 0..255 or 16-bit data are all common.
        peak = float(values.max(initial=0.0))
        if image.mode == "F" and peak <= 1.0:
            scale = 255.0
        elif peak <= 255.0:
            scale = 1.0
        else:
            scale = 255.0 / 65535.0
    scaled = np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
    return Image.fromarray(scaled)  # uint8 (H, W) -> "L"


def _rgb_or_rgba(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to "RGB", or to "RGBA" when the image carries transparency."""
    if image.mode in ("RGB", "RGBA") and not (image.mode == "RGB" and image.has_transparency_data):
        return image
    if image.mode.startswith("I") or image.mode == "F":
        # Pillow's own conversion clips 16-bit values at 255, which turns most photos white.
        return _high_depth_to_l(image).convert("RGB")
    if image.has_transparency_data:  # RGBA-like modes, and P/L/RGB with a tRNS colour
        return image.convert("RGBA")
    return image.convert("RGB")


def load_image(
    source: PathLike | Image.Image, *, argument: str = "image", max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> Image.Image:
    """Load an image as "RGB" or "RGBA" (files: EXIF-oriented, fully read, handle closed).

    A file declaring more than ``max_pixels`` pixels (``None``: no limit) is refused before decoding.
    """
    # PIL images are taken as given (no EXIF transpose): the caller already decided their orientation,
    # and their pixels are in memory already (callers check their size with check_pixels).
    image = _as_pil(source, argument, "a file path or a PIL image", max_pixels)
    return _rgb_or_rgba(image)


def split_alpha(image: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """Split any image into its RGB colour and its "L" alpha channel (None when it has no alpha)."""
    # An opaque alpha channel is still returned, so that an RGBA input gives an RGBA output.
    image = _rgb_or_rgba(image)
    if image.mode == "RGBA":
        return image.convert("RGB"), image.getchannel("A")
    return image, None


def mask_from_alpha(alpha: Image.Image) -> np.ndarray:
    """Object mask from an alpha channel: transparent pixels (alpha < 128) are the object."""
    if alpha.mode != "L":
        alpha = alpha.getchannel("A") if "A" in alpha.getbands() else alpha.convert("L")
    return np.asarray(alpha) < _ALPHA_THRESHOLD


def _mask_from_array(array: np.ndarray, argument: str) -> np.ndarray:
    """Non-zero rule for arrays: (H, W) or (H, W, 1|3|4) of bool, integers or floats."""
    if array.ndim == 3 and array.shape[2] in (1, 3, 4):
        channels = array
    elif array.ndim == 2:
        channels = array[:, :, None]
    else:
        raise InputError(argument, f"expected an array of shape (H, W) or (H, W, 1|3|4), got {array.shape}")
    if not (array.dtype == np.bool_ or np.issubdtype(array.dtype, np.number)):
        raise InputError(argument, f"expected a bool, integer or float array, got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.complexfloating):
        raise InputError(argument, f"expected a real-valued array, got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise InputError(argument, "array contains NaN or infinite values")
    if channels.shape[2] == 4:
        # Same rule as for RGBA files: fully transparent pixels are background whatever their colour.
        return (channels[:, :, 3] != 0) & (channels[:, :, :3] != 0).any(axis=2)
    return (channels != 0).any(axis=2)


def _mask_from_pil(image: Image.Image) -> np.ndarray:
    """Non-zero rule for PIL masks of any mode."""
    if image.mode == "1":
        return np.asarray(image, dtype=bool).copy()
    if image.mode in ("L", "I", "F") or image.mode.startswith("I;16"):
        if not image.has_transparency_data:
            return np.asarray(image) != 0
    if image.has_transparency_data:
        # Painted strokes on a transparent layer: only pixels that are at least partly opaque and
        # not black count, so the (often white) colour hidden under transparency is ignored.
        rgba = np.asarray(image.convert("RGBA"))
        return (rgba[:, :, 3] != 0) & (rgba[:, :, :3] != 0).any(axis=2)
    # Judge colour, not the stored numbers: P holds palette indices, CMYK and YCbCr encode black as non-zero.
    rgb = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    return (rgb != 0).any(axis=2)


def _check_size(size: object, argument: str) -> tuple[int, int]:
    """Validate a ``(width, height)`` pair of positive integers."""
    if (
        not isinstance(size, (tuple, list))
        or len(size) != 2
        or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0 for v in size)
    ):
        raise InputError(argument, f"expected (width, height) as two positive integers, got {size!r}")
    return int(size[0]), int(size[1])


def load_mask(
    source: PathLike | Image.Image | np.ndarray,
    *,
    size: tuple[int, int] | None = None,
    resize: bool = False,
    argument: str = "mask",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Load an object mask as bool (H, W): any non-zero pixel is the object to remove.

    The rule per input kind:

    * "1", "L", 16-bit and float greyscale: value != 0.
    * RGB, P, CMYK and other colour modes: converted to RGB, any channel != 0 (black is background).
    * RGBA, LA, PA and images with a transparent colour: alpha != 0 and any colour channel != 0,
      i.e. fully transparent pixels are background whatever colour they hide.
    * Arrays (H, W) or (H, W, 1|3|4) of bool, integers or finite floats: the same non-zero rule,
      with the fourth channel treated as alpha.

    Files get their EXIF orientation applied, as :func:`load_image` does. ``size`` is the image's
    ``(width, height)``: a mask of another size raises :class:`InputError` naming both sizes unless
    ``resize`` is true, in which case it is resized with nearest-neighbour sampling (stretching it if
    the aspect ratios differ). Files larger than ``max_pixels`` are refused before decoding.
    """
    if isinstance(source, np.ndarray):
        mask = _mask_from_array(source, argument)
    else:
        accepted = "a file path, a PIL image or a numpy array"
        mask = _mask_from_pil(_as_pil(source, argument, accepted, max_pixels))
    if size is None:
        return mask
    width, height = _check_size(size, "size")
    if mask.shape != (height, width):
        if not resize:
            raise InputError(
                argument,
                f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is {width}x{height} (width x height);"
                " supply a mask of the image's size or enable mask resizing",
            )
        mask = _resize_nearest(mask, (width, height))
    return mask


def validate_mask(mask: np.ndarray, *, argument: str = "mask") -> None:
    """Raise :class:`InputError` unless ``mask`` is a 2-D mask selecting some, but not all, pixels."""
    if not isinstance(mask, np.ndarray) or mask.ndim != 2:
        shape = getattr(mask, "shape", type(mask).__name__)
        raise InputError(argument, f"expected a 2-D (H, W) mask array, got {shape}")
    height, width = mask.shape
    if not mask.any():
        raise InputError(
            argument, f"selects no pixels ({width}x{height} mask is all background); paint the object white"
        )
    if mask.all():
        raise InputError(
            argument,
            f"covers the whole {width}x{height} image; some background must remain to fill the object from",
        )


# --------------------------------------------------------------------------------------------------
# Size policy and resizing


def working_size(
    size: tuple[int, int], resolution: int, *, multiple: int = 64, max_aspect: float = 4.0
) -> tuple[int, int]:
    """Model ``(width, height)``: the input's aspect ratio at an area of about ``resolution``².

    Each side is rounded to the nearest multiple of ``multiple`` (at least one ``multiple``), so the
    result's aspect ratio is the input's within one rounding step. Aspect ratios beyond
    ``max_aspect`` (or below its inverse) are clamped to it: the working image is then stretched, and
    the result is resized back to the input's size, so only the model sees the distortion.
    Examples: (333, 517) at 512 -> (384, 640); (4000, 3000) at 1024 -> (1152, 896).
    """
    width, height = _check_size(size, "size")
    if not isinstance(multiple, numbers.Integral) or isinstance(multiple, bool) or multiple < 1:
        raise InputError("multiple", f"expected a positive integer, got {multiple!r}")
    if not isinstance(resolution, numbers.Integral) or isinstance(resolution, bool) or resolution < multiple:
        raise InputError("resolution", f"expected an integer of at least {multiple}, got {resolution!r}")
    if not isinstance(max_aspect, numbers.Real) or not math.isfinite(max_aspect) or max_aspect < 1:
        raise InputError("max_aspect", f"expected a finite number >= 1, got {max_aspect!r}")
    aspect = min(max(width / height, 1.0 / max_aspect), float(max_aspect))
    scale = math.sqrt(aspect)  # w = r·sqrt(a), h = r/sqrt(a) gives w/h = a and w·h = r²

    def snap(side: float) -> int:
        return max(multiple, int(round(side / multiple)) * multiple)

    return snap(resolution * scale), snap(resolution / scale)


def check_resolution(size: tuple[int, int], resolution: int, *, argument: str = "resolution") -> None:
    """Refuse a working resolution that would upscale ``size`` beyond :data:`MAX_UPSCALED_RESOLUTION`.

    Any resolution up to 1024 is accepted (small inputs are upsampled to the model's native size, as
    diffusion models want); above it, at most the image's own size, sqrt(width x height).
    """
    width, height = _check_size(size, "size")
    own = math.isqrt(width * height)
    limit = max(MAX_UPSCALED_RESOLUTION, own)
    if isinstance(resolution, numbers.Integral) and not isinstance(resolution, bool) and resolution > limit:
        raise InputError(
            argument,
            f"{resolution} would upscale the {width}x{height} image {resolution / max(own, 1):.0f}x; above "
            f"{MAX_UPSCALED_RESOLUTION} the working resolution may not exceed the image's own size ({own})",
        )


def context_window(masks: Sequence[np.ndarray], resolution: int, *, context: float = 2.0) -> tuple[int, int]:
    """``(width, height)`` of a crop around the masks for the ``"crop"`` strategy, one size for all.

    The window has the image's aspect ratio, spans ``context`` times each mask's bounding box (so the
    model sees background around the object) and at least ``resolution``² pixels (so the crop is never
    upsampled), and at most the whole image. Same-size windows let a batch share one working size.
    """
    if not masks:
        raise InputError("mask", "no mask to place a context window around")
    height, width = masks[0].shape
    scale = resolution / math.sqrt(width * height)
    for mask in masks:
        rows, cols = np.nonzero(mask)
        if rows.size:
            box_height, box_width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
            scale = max(scale, context * box_width / width, context * box_height / height)
    scale = min(scale, 1.0)
    return min(width, max(1, round(width * scale))), min(height, max(1, round(height * scale)))


def place_window(mask: np.ndarray, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(left, top, right, bottom)`` box of ``size`` centred on ``mask``'s bounding box, inside the image."""
    height, width = mask.shape
    rows, cols = np.nonzero(mask)
    centre_x = (cols.min() + cols.max() + 1) / 2 if cols.size else width / 2
    centre_y = (rows.min() + rows.max() + 1) / 2 if rows.size else height / 2
    left = int(round(min(max(centre_x - size[0] / 2, 0), width - size[0])))
    top = int(round(min(max(centre_y - size[1] / 2, 0), height - size[1])))
    return left, top, left + size[0], top + size[1]


def resize_image(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize a photo to ``(width, height)`` with Lanczos filtering (never nearest-neighbour)."""
    target = _check_size(size, "size")
    if image.mode in ("1", "P", "PA") or image.mode.startswith("I;16"):
        # Pillow silently falls back to nearest-neighbour for palette and 1-bit images.
        image = _rgb_or_rgba(image) if image.mode != "1" else image.convert("L")
    if image.size == target:
        return image.copy()
    return image.resize(target, Image.Resampling.LANCZOS)


def _nearest_indices(source: int, target: int) -> np.ndarray:
    """Source index of each target pixel centre along one axis (exact integer arithmetic)."""
    # floor((j + 0.5) * source / target) without floating point
    return (2 * np.arange(target, dtype=np.int64) + 1) * source // (2 * target)


def _resize_nearest(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour (pixel-centre) resize of a bool mask to ``(width, height)``."""
    width, height = size
    rows = _nearest_indices(mask.shape[0], height)
    cols = _nearest_indices(mask.shape[1], width)
    return mask[rows[:, None], cols[None, :]]


def _shrink_any(mask: np.ndarray, target: int, axis: int) -> np.ndarray:
    """Downsample along ``axis``: a target pixel is set if any source pixel it overlaps is set."""
    source = mask.shape[axis]
    j = np.arange(target, dtype=np.int64)
    start = j * source // target  # floor(j * s / t)
    stop = -((-(j + 1) * source) // target)  # ceil((j + 1) * s / t)
    counts = np.cumsum(mask, axis=axis, dtype=np.int64)
    counts = np.concatenate([np.zeros_like(np.take(counts, [0], axis=axis)), counts], axis=axis)
    return (np.take(counts, stop, axis=axis) - np.take(counts, start, axis=axis)) > 0


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a bool mask to ``(width, height)``: any-overlap when shrinking, nearest when enlarging.

    Shrinking never loses the object: a target pixel is object if any source pixel under its area is
    (the same as area averaging followed by ``> 0``). Each axis is handled on its own.
    """
    width, height = _check_size(size, "size")
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise InputError("mask", f"expected a 2-D (H, W) mask array, got shape {mask.shape}")
    for axis, target in ((0, height), (1, width)):
        source = mask.shape[axis]
        if target < source:
            mask = _shrink_any(mask, target, axis)
        elif target > source:
            mask = np.take(mask, _nearest_indices(source, target), axis=axis)
    return mask.copy()


# --------------------------------------------------------------------------------------------------
# Mask morphology and compositing


def _disk(radius: int) -> np.ndarray:
    """Euclidean disk structuring element: offsets with dx² + dy² <= radius²."""
    offsets = np.arange(-radius, radius + 1)
    return (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius * radius).astype(np.uint8)


def dilate_mask(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Grow the object outwards by a disk of radius ``pixels`` (0 returns a copy)."""
    if not isinstance(pixels, numbers.Integral) or isinstance(pixels, bool) or pixels < 0:
        raise InputError("mask_dilation", f"expected a non-negative whole number of pixels, got {pixels!r}")
    mask = np.asarray(mask, dtype=bool)
    if pixels == 0:
        return mask.copy()
    import cv2

    # OpenCV's MORPH_ELLIPSE is not a true disk (its rows at dy = ±1 reach dx = ±r), so build one.
    grown = cv2.dilate(mask.astype(np.uint8), _disk(int(pixels)))  # outside the frame counts as background
    return grown.astype(bool)


def feather_alpha(mask: np.ndarray, radius: float) -> np.ndarray:
    """Blend weight, float32 (H, W): 1 on the mask, falling linearly to 0 at ``radius`` pixels outside."""
    if not isinstance(radius, numbers.Real) or not math.isfinite(radius) or radius < 0:
        raise InputError("feather_radius", f"expected a finite number >= 0, got {radius!r}")
    mask = np.asarray(mask, dtype=bool)
    if radius == 0 or not mask.any():
        return mask.astype(np.float32)
    import cv2

    # Exact Euclidean distance from every background pixel to the nearest object pixel (0 on the object).
    distance = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.clip(1.0 - distance / np.float32(radius), 0.0, 1.0).astype(np.float32)


def _check_same_size(image: Image.Image, mask: np.ndarray, argument: str) -> None:
    """Raise unless ``image`` is the mask's size."""
    if mask.ndim != 2 or image.size != (mask.shape[1], mask.shape[0]):
        raise InputError(
            argument,
            f"image is {image.width}x{image.height} but the mask is {mask.shape[-1]}x{mask.shape[0]}"
            " (width x height)",
        )


def paste_back(
    original: Image.Image, generated: Image.Image, mask: np.ndarray, *, feather_radius: float
) -> Image.Image:
    """Keep the original outside the mask: ``a·generated + (1 − a)·original`` with a feathered ``a``.

    Pixels where ``a == 0`` (farther than ``feather_radius`` from the mask) are bit-identical to
    ``original``; pixels on the mask equal ``generated``. Returns RGB.
    """
    mask = np.asarray(mask, dtype=bool)
    _check_same_size(original, mask, "original")
    _check_same_size(generated, mask, "generated")
    weight = feather_alpha(mask, feather_radius)[:, :, None]  # (H, W, 1)
    kept = np.asarray(original.convert("RGB"))
    new = np.asarray(generated.convert("RGB"))
    blended = weight * new.astype(np.float32) + (1.0 - weight) * kept.astype(np.float32)
    blended = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    # Untouched pixels are copied, not recomputed, so they are exact whatever the arithmetic does.
    out = np.where(weight > 0, blended, kept)
    return Image.fromarray(out)  # uint8 (H, W, 3) -> "RGB"


def merge_alpha(image: Image.Image, alpha: Image.Image | None) -> Image.Image:
    """Attach an "L" alpha channel to an RGB image (RGBA out); with ``alpha=None`` return ``image``.

    If the mask came from this alpha (transparent = object), make the removed region opaque before
    merging, or the filled-in pixels stay invisible.
    """
    if alpha is None:
        return image
    if alpha.size != image.size:
        raise InputError(
            "alpha", f"alpha is {alpha.width}x{alpha.height} but the image is {image.width}x{image.height}"
        )
    merged = image.convert("RGB")
    merged.putalpha(alpha if alpha.mode == "L" else alpha.convert("L"))
    return merged


# --------------------------------------------------------------------------------------------------
# Saving


def _is_same_file(a: pathlib.Path, b: pathlib.Path) -> bool:
    """True when two paths name the same file (after resolving links, or by inode when both exist)."""
    if os.path.normcase(a.resolve()) == os.path.normcase(b.resolve()):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


def _mode_for(image: Image.Image, file_format: str) -> Image.Image:
    """Convert ``image`` to a mode the format writes faithfully (JPEG: RGB, alpha dropped)."""
    if file_format == "JPEG":
        return image if image.mode in ("RGB", "L") else _rgb_or_rgba(image).convert("RGB")
    if image.mode in ("RGB", "RGBA", "L"):
        return image
    return _rgb_or_rgba(image)


def save_image(
    image: Image.Image,
    path: PathLike,
    *,
    protect: Iterable[PathLike] = (),
    quality: int = 95,
) -> pathlib.Path:
    """Write ``image`` atomically in the format named by the extension; never over a ``protect`` path.

    Formats: .png, .jpg/.jpeg (alpha dropped), .webp, .bmp, .tif/.tiff. ``quality`` (1-100) applies
    to JPEG and WebP. Missing parent folders are created. The image goes to a temporary file in the
    destination folder, which then replaces ``path`` in one step, so a failure leaves no partial file.
    """
    target = pathlib.Path(path)
    suffix = target.suffix.lower()
    file_format = SAVE_FORMATS.get(suffix)
    if file_format is None:
        choices = ", ".join(SAVE_FORMATS)
        extension = suffix or "(none)"
        message = f"unsupported extension {extension!r} in {str(target)!r}; use one of {choices}"
        raise InputError("output", message)
    if not isinstance(quality, numbers.Integral) or isinstance(quality, bool) or not 1 <= quality <= 100:
        raise InputError("quality", f"expected an integer from 1 to 100, got {quality!r}")
    for protected in protect:
        if _is_same_file(target, pathlib.Path(protected)):
            raise InputError("output", f"refusing to overwrite the input file {str(target)!r}")
    try:
        is_dir = target.is_dir()
    except OSError as error:  # e.g. a name longer than the file system allows
        raise InputError("output", f"cannot write {str(target)!r}: {_one_line(error)}") from error
    if is_dir:
        raise InputError("output", f"is a directory, not a file path: {str(target)!r}")

    image = _mode_for(image, file_format)
    options: dict[str, object] = {}
    if file_format in ("JPEG", "WEBP"):
        options["quality"] = int(quality)
    if file_format == "JPEG":
        options["subsampling"] = 0  # 4:4:4 keeps the colour of thin edited regions
    icc_profile = image.info.get("icc_profile")
    if icc_profile and file_format in ("PNG", "JPEG", "WEBP", "TIFF"):
        options["icc_profile"] = icc_profile

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        message = f"cannot create the folder {str(target.parent)!r}: {_one_line(error)}"
        raise InputError("output", message) from error

    temporary, descriptor = _create_temporary(target)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            image.save(handle, format=file_format, **options)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException as error:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        if isinstance(error, OSError):
            raise InputError("output", f"cannot write {str(target)!r}: {_one_line(error)}") from error
        raise
    return target


def stale_temporaries(target: PathLike) -> list[pathlib.Path]:
    """Temporary files :func:`save_image` left beside ``target`` when it was killed mid-write."""
    target = pathlib.Path(target)
    try:
        entries = list(target.parent.iterdir()) if target.parent.is_dir() else []
    except OSError:
        return []
    found = []
    for entry in entries:
        match = _TEMPORARY_NAME.match(entry.name)
        if match is not None and match.group("name") == target.name and entry.is_file():
            found.append(entry)
    return sorted(found)


def remove_stale_temporaries(target: PathLike) -> list[pathlib.Path]:
    """Delete :func:`stale_temporaries` of ``target``; returns what was deleted."""
    removed = []
    for leftover in stale_temporaries(target):
        try:
            leftover.unlink()
        except FileNotFoundError:
            continue
        except OSError:
            continue  # not ours to delete after all (permissions): leave it
        removed.append(leftover)
    return removed


def _name_max(folder: pathlib.Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def check_output_path(path: PathLike, *, argument: str = "output", needed_bytes: int = 0) -> pathlib.Path:
    """Refuse, before any work, an output path that :func:`save_image` could not write; writes nothing.

    Checks: every name fits the file system (with room for the temporary file's suffix), no parent is
    a file, the nearest existing folder accepts a new file, and it has ``needed_bytes`` free. Folders
    that do not exist yet are not created here (save_image creates them).
    """
    target = pathlib.Path(path)
    ancestor = target.parent
    while True:
        try:
            if ancestor.exists():
                break
        except OSError as error:
            raise InputError(argument, f"cannot use {str(target)!r}: {_one_line(error)}") from error
        if ancestor.parent == ancestor:
            break
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(argument, f"{str(ancestor)!r} is a file, so {str(target)!r} cannot be created in it")
    limit = _name_max(ancestor)
    temporary_extra = len(".") + 1 + 12 + len(".tmp")  # save_image writes ".<name>.<hex>.tmp" first
    for part in target.parts:
        size = len(os.fsencode(part)) + (temporary_extra if part == target.name else 0)
        if size > limit:
            shown = part if len(part) <= 40 else part[:37] + "..."
            raise InputError(
                argument,
                f"the name {shown!r} is too long ({len(os.fsencode(part))} bytes; at most "
                f"{limit - (temporary_extra if part == target.name else 0)} here)",
            )
    probe: pathlib.Path | None = None
    try:
        descriptor = -1
        for _ in range(100):
            probe = ancestor / f".attentive-eraser-probe.{secrets.token_hex(6)}.tmp"
            try:
                descriptor = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                break
            except FileExistsError:
                continue
        os.close(descriptor)
    except OSError as error:
        reason = "read-only" if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM) else error.strerror
        raise InputError(argument, f"cannot write in {str(ancestor)!r} ({reason})") from error
    finally:
        if probe is not None:
            try:
                probe.unlink()
            except OSError:
                pass
    if needed_bytes > 0:
        try:
            free = shutil.disk_usage(ancestor).free
        except OSError:
            free = None
        if free is not None and free < needed_bytes:
            raise InputError(
                argument,
                f"only {free / 2**20:.1f} MiB free in {str(ancestor)!r}; the result needs up to "
                f"{needed_bytes / 2**20:.1f} MiB",
            )
    return target


def _create_temporary(target: pathlib.Path) -> tuple[pathlib.Path, int]:
    """Create a new hidden file beside ``target``; the OS applies the umask, as for a normal file."""
    for _ in range(100):
        candidate = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            descriptor = os.open(candidate, flags, 0o666)
        except FileExistsError:
            continue
        except OSError as error:
            message = f"cannot write in {str(target.parent)!r}: {_one_line(error)}"
            raise InputError("output", message) from error
        return candidate, descriptor
    raise InputError("output", f"cannot create a temporary file in {str(target.parent)!r}")


# --------------------------------------------------------------------------------------------------
# Demo helpers


def side_by_side(
    images: Sequence[Image.Image], *, labels: Sequence[str] | None = None, gap: int = 4
) -> Image.Image:
    """Lay images out left to right on white (top-aligned, unscaled), each with an optional caption above."""
    if len(images) == 0:
        raise InputError("images", "expected at least one image, got none")
    if labels is not None and len(labels) != len(images):
        raise InputError("labels", f"expected {len(images)} labels (one per image), got {len(labels)}")
    if not isinstance(gap, numbers.Integral) or isinstance(gap, bool) or gap < 0:
        raise InputError("gap", f"expected a non-negative integer, got {gap!r}")
    tiles = [_rgb_or_rgba(image).convert("RGB") for image in images]
    tallest = max(tile.height for tile in tiles)

    font: ImageFont.ImageFont | ImageFont.FreeTypeFont | None = None
    band = 0
    if labels is not None and any(labels):
        font = ImageFont.load_default(size=max(12, tallest // 32))
        text_height = max(font.getbbox(label or " ")[3] for label in labels)
        band = int(text_height) + 2 * gap + 4

    width = sum(tile.width for tile in tiles) + gap * (len(tiles) - 1)
    strip = Image.new("RGB", (width, band + tallest), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    left = 0
    for index, tile in enumerate(tiles):
        strip.paste(tile, (left, band))
        if font is not None and labels is not None and labels[index]:
            draw.text((left + 2, gap + 2), labels[index], fill=(0, 0, 0), font=font)
        left += tile.width + gap
    return strip


def outline_mask(
    image: Image.Image,
    mask: np.ndarray,
    *,
    colour: tuple[int, int, int] = (255, 0, 0),
    thickness: int = 2,
) -> Image.Image:
    """Return an RGB copy of ``image`` with the outline of the mask drawn in ``colour``."""
    mask = np.asarray(mask, dtype=bool)
    _check_same_size(image, mask, "image")
    if not isinstance(thickness, numbers.Integral) or isinstance(thickness, bool) or thickness < 1:
        raise InputError("thickness", f"expected a positive integer, got {thickness!r}")
    import cv2

    canvas = np.array(image.convert("RGB"))  # a writable copy; the caller's image is untouched
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(canvas, contours, -1, tuple(int(c) for c in colour), int(thickness))
    return Image.fromarray(canvas)
