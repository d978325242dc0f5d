"""Image and mask input/output without model code (numpy, Pillow and OpenCV only, never torch).

The CLI, the web app and the batch runner share it. Conventions used throughout:

* Sizes are ``(width, height)`` like Pillow; mask arrays are ``bool`` of shape ``(height, width)``.
* A mask is ``True`` (white, non-zero) on the object to remove and ``False`` on the background to keep.
* User mistakes raise :class:`InputError` (a ``ValueError``) whose one-line message starts with the
  name of the offending argument.

Modules: :mod:`.load` (formats, alpha, size limits, mask validation), :mod:`.geometry` (working sizes,
crop windows, resizing), :mod:`.morphology` (dilation, feathering), :mod:`.compose` (paste-back, figures),
:mod:`.save` (atomic writes that never overwrite an input).
"""

from .common import InputError, PathLike
from .compose import merge_alpha, outline_mask, paste_back, side_by_side
from .geometry import (
    MAX_UPSCALED_RESOLUTION,
    check_resolution,
    context_window,
    output_scale,
    place_window,
    resize_image,
    resize_mask,
    working_size,
)
from .load import (
    DEFAULT_MAX_PIXELS,
    check_pixels,
    load_image,
    load_mask,
    mask_from_alpha,
    split_alpha,
    validate_mask,
)
from .morphology import dilate_mask, feather_alpha
from .save import (
    SAVE_FORMATS,
    check_output_path,
    remove_stale_temporaries,
    same_file,
    save_image,
    stale_temporaries,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MAX_UPSCALED_RESOLUTION",
    "SAVE_FORMATS",
    "InputError",
    "PathLike",
    "check_output_path",
    "check_pixels",
    "check_resolution",
    "context_window",
    "dilate_mask",
    "feather_alpha",
    "load_image",
    "load_mask",
    "mask_from_alpha",
    "merge_alpha",
    "outline_mask",
    "output_scale",
    "paste_back",
    "place_window",
    "remove_stale_temporaries",
    "resize_image",
    "resize_mask",
    "same_file",
    "save_image",
    "side_by_side",
    "split_alpha",
    "stale_temporaries",
    "validate_mask",
    "working_size",
]
