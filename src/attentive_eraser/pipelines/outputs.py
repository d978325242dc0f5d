"""The output side of the eraser pipelines: output dataclasses, results brought back to the original sizes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import PIL.Image
import torch
from diffusers.utils import BaseOutput

from .. import imaging
from .inputs import EraserInputs


@dataclass
class AttentiveEraserPipelineOutput(BaseOutput):
    """Output of the eraser pipelines.

    Args:
        images: the results at each input's original size: PIL images, or an ``(B, H, W, 3)`` float array
            in [0, 1] for ``output_type="np"``, or latents for ``output_type="latent"``.
        masks: the (dilated) object masks used, boolean ``(H, W)`` arrays at each input's original size.
    """

    images: list[PIL.Image.Image] | np.ndarray | torch.Tensor
    masks: list[np.ndarray]


@dataclass
class DIPInversionOutput(BaseOutput):
    """Output of :meth:`~.dip.DIPMixin.invert`.

    Args:
        latents: clean latents ``z0`` ``(B, C, h, w)``.
        trajectory: ``[z_{t_1}, …, z_{t_n}]``, the inverted latent before each sampling step.
        timesteps: the sampling timesteps ``t_1 > … > t_n`` the trajectory is aligned with.
    """

    latents: torch.Tensor
    trajectory: list[torch.Tensor]
    timesteps: torch.Tensor


def _as_float_batch(pictures: Sequence[PIL.Image.Image]) -> np.ndarray:
    """``(B, H, W, 3)`` float32 in [0, 1] of same-size RGB images, filled in place: one float copy."""
    width, height = pictures[0].size
    batch = np.empty((len(pictures), height, width, 3), dtype=np.float32)
    for index, picture in enumerate(pictures):
        batch[index] = np.asarray(picture)
    return np.divide(batch, np.float32(255.0), out=batch)


def restore_originals(
    decoded: list[PIL.Image.Image] | None,
    inputs: EraserInputs,
    *,
    paste_back: bool,
    mask_dilation: int,
    feather_radius: float,
) -> tuple[list[PIL.Image.Image], list[np.ndarray]]:
    """``(pictures, masks)``: ``decoded`` resized to each input's original size (or crop window), the
    original pasted back; the masks dilated at the original size. No pictures when ``decoded`` is None."""
    windows = inputs.windows or [(0, 0, *original.size) for original in inputs.originals]
    out_masks: list[np.ndarray] = []
    pictures: list[PIL.Image.Image] = []
    for index, (original, mask, box) in enumerate(zip(inputs.originals, inputs.masks, windows, strict=False)):
        region_size = (box[2] - box[0], box[3] - box[1])
        scale = imaging.output_scale(region_size, inputs.working_size)
        out_mask = imaging.dilate_mask(mask, round(mask_dilation * scale))
        out_masks.append(out_mask)
        if decoded is None:
            continue
        result = imaging.resize_image(decoded[index], region_size)
        if paste_back:
            # The whole image is pasted onto as it is: a crop of all of it would be one more copy.
            region = original if region_size == original.size else original.crop(box)
            region_mask = out_mask[box[1] : box[3], box[0] : box[2]]
            feather = feather_radius * scale
            result = imaging.paste_back(  # result is ours (a fresh resize): write into it
                region, result, region_mask, feather_radius=feather, overwrite_generated=True
            )
        if region_size != original.size:
            whole = original.copy()
            whole.paste(result, box[:2])
            result = whole
        pictures.append(result)
    return pictures, out_masks
