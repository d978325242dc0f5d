"""Loading images and masks: formats, alpha, size limits checked before decoding, mask validation."""

from __future__ import annotations

import contextlib
import numbers
import os
import pathlib
import threading
import warnings
from collections.abc import Iterator

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .common import InputError, PathLike, check_size, one_line, rgb_or_rgba
from .geometry import resize_nearest

# Alpha below this (on a 0..255 scale) counts as transparent, i.e. as the object to remove.
_ALPHA_THRESHOLD = 128

#: largest image (width x height) read by default. Checked from the file's header before decoding: a few
#: hundred kilobytes of PNG can declare 90 megapixels, and decoding plus the float copies of the
#: pipeline and paste-back then need gigabytes. Raise it with ``max_pixels`` (``--max-pixels``).
DEFAULT_MAX_PIXELS = 50_000_000


def _pixel_counts(pixels: int, limit: int) -> tuple[str, str]:
    """``pixels`` and ``limit`` in words that tell them apart: exact pixels for limits under 0.1 megapixels,
    else megapixels with as many decimals as it takes for the image to read larger than the limit."""
    if limit < 100_000:
        return f"{pixels} pixels", f"{limit} pixels"
    limit_text = f"{limit / 1e6:.6f}".rstrip("0").rstrip(".")
    for decimals in range(1, 7):
        pixels_text = f"{pixels / 1e6:.{decimals}f}"
        if float(pixels_text) > float(limit_text):
            break
    return f"{pixels_text} megapixels", limit_text


def check_pixels(size: tuple[int, int], max_pixels: int | None, argument: str) -> None:
    """Raise :class:`InputError` when an image of ``size`` (width, height) exceeds ``max_pixels``."""
    if max_pixels is None:
        return
    width, height = size
    if width * height > max_pixels:
        pixels, limit = _pixel_counts(width * height, max_pixels)
        raise InputError(
            argument,
            f"{width}x{height} is {pixels}, more than the limit of {limit} "
            "(raise it with --max-pixels / max_pixels)",
        )


#: serialises the rare opens that lift Pillow's own bomb limit (a module global of Pillow's)
_PILLOW_LIMIT_LOCK = threading.Lock()


@contextlib.contextmanager
def _pillow_limit(max_pixels: int | None) -> Iterator[None]:
    """Let ``max_pixels`` decide instead of Pillow's ``MAX_IMAGE_PIXELS``, for one open.

    Pillow warns above its limit (about 89 megapixels, a ``DecompressionBombWarning`` with its source line)
    and refuses above twice it; ours is checked right after, from the same header, and is the one a user
    sets. The warning is silenced; the global is lifted only when ``max_pixels`` allows more than Pillow
    would, under a lock, and restored in ``finally``.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        pillow_limit = Image.MAX_IMAGE_PIXELS
        if pillow_limit is None or (max_pixels is not None and max_pixels <= 2 * pillow_limit):
            yield
            return
        with _PILLOW_LIMIT_LOCK:
            Image.MAX_IMAGE_PIXELS = None
            try:
                yield
            finally:
                Image.MAX_IMAGE_PIXELS = pillow_limit


def _check_max_pixels(max_pixels: object) -> int | None:
    if max_pixels is None:
        return None
    if not isinstance(max_pixels, numbers.Integral) or isinstance(max_pixels, bool) or max_pixels < 1:
        raise InputError(
            "max_pixels", f"expected a positive whole number of pixels or None, got {max_pixels!r}"
        )
    return int(max_pixels)


def _open_file(path: PathLike, argument: str, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open an image file, check its declared size, decode every pixel, close it.

    The image comes back turned upright by its EXIF orientation.
    """
    max_pixels = _check_max_pixels(max_pixels)
    file = pathlib.Path(path)
    try:
        exists, is_file = file.exists(), file.is_file()
    except OSError as error:  # e.g. a name longer than the file system allows
        raise InputError(argument, f"cannot read {str(file)!r}: {one_line(error)}") from error
    if not exists:
        raise InputError(argument, f"file not found: {str(file)!r}")
    if not is_file:
        raise InputError(argument, f"not a file: {str(file)!r}")
    try:
        with _pillow_limit(max_pixels), Image.open(file) as opened:
            check_pixels(opened.size, max_pixels, argument)  # the header only: nothing decoded yet
            opened.load()
            # exif_transpose returns a new in-memory image, so nothing refers to the file afterwards.
            return ImageOps.exif_transpose(opened)
    except InputError:
        raise  # already names the argument and says what is wrong
    except (OSError, ValueError, SyntaxError, UnidentifiedImageError, Image.DecompressionBombError) as error:
        raise InputError(argument, f"cannot read an image from {str(file)!r}: {one_line(error)}") from error


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


def load_image(
    source: PathLike | Image.Image, *, argument: str = "image", max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> Image.Image:
    """Load an image as "RGB" or "RGBA" (files: EXIF-oriented, fully read, handle closed).

    A file declaring more than ``max_pixels`` pixels (``None``: no limit) is refused before decoding.
    """
    # PIL images are taken as given (no EXIF transpose): the caller already decided their orientation,
    # and their pixels are in memory already (callers check their size with check_pixels).
    image = _as_pil(source, argument, "a file path or a PIL image", max_pixels)
    return rgb_or_rgba(image)


def split_alpha(image: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """Split any image into its RGB colour and its "L" alpha channel (None when it has no alpha)."""
    # An opaque alpha channel is still returned, so that an RGBA input gives an RGBA output.
    image = rgb_or_rgba(image)
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
    width, height = check_size(size, "size")
    if mask.shape != (height, width):
        if not resize:
            raise InputError(
                argument,
                f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is {width}x{height} (width x height);"
                " supply a mask of the image's size or enable mask resizing",
            )
        mask = resize_nearest(mask, (width, height))
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
