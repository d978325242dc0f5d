"""The input side of the eraser pipelines: images and masks loaded, checked, brought to the working size."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import PIL.Image
import torch

from .. import imaging
from ..imaging import InputError

ImageInput = PIL.Image.Image | Sequence[PIL.Image.Image]
MaskInput = PIL.Image.Image | np.ndarray | Sequence[PIL.Image.Image | np.ndarray]
Strategy = Literal["resize", "crop"]


@dataclass
class EraserInputs:
    """Images and masks prepared at the working size. ``B`` = images × ``num_images_per_prompt``."""

    originals: list[PIL.Image.Image]  # B RGB images at their original size
    masks: list[np.ndarray]  # B boolean masks at the original size, undilated
    working_size: tuple[int, int]  # (width, height)
    image: torch.Tensor  # (B, 3, H, W) in [-1, 1]
    mask: torch.Tensor  # (B, 1, H, W) in {0, 1}, dilated
    #: "crop" strategy: the (left, top, right, bottom) window of each original that was processed
    windows: list[tuple[int, int, int, int]] | None = None

    @property
    def batch_size(self) -> int:
        return len(self.originals)


def _to_pixels(picture: PIL.Image.Image, size: tuple[int, int]) -> torch.Tensor:
    """An RGB image resized to ``size`` as a ``(3, H, W)`` tensor in [-1, 1], the VAE's input range."""
    resized = np.asarray(imaging.resize_image(picture, size), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(resized).permute(2, 0, 1)


def _as_bool_mask(item: Any, size: tuple[int, int], argument: str) -> np.ndarray:
    """``item`` as a bool ``(H, W)`` mask of ``size``: a bool array of that shape is taken as it is (only
    read, never written: a copy of a 50 MP mask is 50 MB), anything else goes through ``load_mask``."""
    if isinstance(item, np.ndarray) and item.dtype == np.bool_ and item.shape == (size[1], size[0]):
        return item
    return imaging.load_mask(item, size=size, argument=argument)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _available_memory(device: torch.device) -> int | None:
    """Bytes free for tensors on ``device`` (CUDA: the driver's count; CPU: MemAvailable), else None."""
    if device.type == "cuda" and torch.cuda.is_available():
        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except (RuntimeError, AssertionError):  # pragma: no cover - driver trouble
            return None
    if device.type == "cpu":
        try:
            with open("/proc/meminfo", encoding="ascii") as meminfo:
                for line in meminfo:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            return None
    return None


def estimate_vae_memory(vae: Any, working_size: tuple[int, int], batch_size: int, dtype: torch.dtype) -> int:
    """Rough peak bytes of the VAE at full resolution: a few (batch, C0, H, W) activations at once.

    C0 is the VAE's first block width (128 on SD); the encoder and decoder each hold about six such
    tensors at the working resolution (input, norms, convolutions, residual), the largest part of a run.
    """
    width, height = working_size
    channels = int(vae.config.block_out_channels[0])
    return 6 * batch_size * channels * width * height * torch.finfo(dtype).bits // 8


def prepare_inputs(
    image: ImageInput,
    mask_image: MaskInput,
    *,
    resolution: int,
    mask_dilation: int,
    num_images_per_prompt: int,
    strategy: Strategy,
    size_multiple: int,
    check_memory: Callable[[tuple[int, int], int], None],
) -> EraserInputs:
    """Body of :meth:`~.base.EraserPipelineMixin.prepare_eraser_inputs`: working sizes are multiples of
    ``size_multiple``; ``check_memory(working_size, batch_size)`` raises when the VAE pass cannot fit."""
    if strategy not in ("resize", "crop"):
        raise InputError.from_text(f"strategy={strategy!r} must be 'resize' or 'crop'")
    images = [imaging.split_alpha(imaging.load_image(item))[0] for item in _as_list(image)]
    masks = _as_list(mask_image)
    if len(masks) != len(images):
        raise InputError.from_text(f"mask_image has {len(masks)} masks for {len(images)} images")
    sizes = {item.size for item in images}
    if len(sizes) != 1:
        raise InputError.from_text(f"image: all images of one call must share a size, got {sorted(sizes)}")
    size = images[0].size
    bool_masks = []
    for index, item in enumerate(masks):
        argument = "mask_image" if len(masks) == 1 else f"mask_image[{index}]"
        mask = _as_bool_mask(item, size, argument)
        imaging.validate_mask(mask, argument=argument)
        bool_masks.append(mask)
    sources, source_masks, windows = images, bool_masks, None
    if strategy == "crop":
        window = imaging.context_window(bool_masks, resolution)
        windows = [imaging.place_window(mask, window) for mask in bool_masks]
        sources = [picture.crop(box) for picture, box in zip(images, windows, strict=False)]
        source_masks = [
            mask[top:bottom, left:right]
            for mask, (left, top, right, bottom) in zip(bool_masks, windows, strict=False)
        ]
    imaging.check_resolution(size, resolution)
    working = imaging.working_size(sources[0].size, resolution, multiple=size_multiple)
    check_memory(working, len(images) * num_images_per_prompt)
    pixels, mask_pixels = [], []
    for picture, mask in zip(sources, source_masks, strict=False):
        pixels.append(_to_pixels(picture, working))
        dilated = imaging.dilate_mask(imaging.resize_mask(mask, working), mask_dilation)
        mask_pixels.append(torch.from_numpy(dilated.astype(np.float32))[None])
    repeat = num_images_per_prompt
    return EraserInputs(
        originals=[picture for picture in images for _ in range(repeat)],
        masks=[mask for mask in bool_masks for _ in range(repeat)],
        working_size=working,
        image=torch.stack(pixels).repeat_interleave(repeat, dim=0),
        mask=torch.stack(mask_pixels).repeat_interleave(repeat, dim=0),
        windows=None if windows is None else [box for box in windows for _ in range(repeat)],
    )
