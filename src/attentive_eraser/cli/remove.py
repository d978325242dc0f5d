"""``remove``: one image, its mask or a selection, one result; ``demo``: the built-in example, offline."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
import numpy as np
from PIL import Image

from .. import imaging
from ..runtime import check_device, quiet_third_party
from .options import (
    PATH,
    check_mask_output,
    check_output,
    input_errors,
    removal_options,
    removal_request,
    selection_options,
)

DEMO_OUTPUT = "attentive_eraser_demo.png"


def _object_mask(
    picture: Image.Image,
    mask: Path | None,
    *,
    resize_mask: bool,
    max_pixels: int | None = imaging.DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """The object mask (a boolean array), read from MASK, or from the image's transparency without MASK."""
    width, height = picture.size
    if mask is None:
        _, alpha = imaging.split_alpha(picture)
        if alpha is None:
            raise imaging.InputError(
                "mask", "no MASK given and the image has no alpha channel (transparent pixels = the object)"
            )
        return imaging.mask_from_alpha(alpha)
    object_mask = imaging.load_mask(mask, max_pixels=max_pixels)
    if object_mask.shape != (height, width):
        if not resize_mask:
            mask_height, mask_width = object_mask.shape
            message = f"size {mask_width}x{mask_height} differs from the image's {width}x{height}"
            raise imaging.InputError("mask", f"{message} (use --resize-mask)")
        object_mask = imaging.load_mask(object_mask, size=(width, height), resize=True)  # as api.remove would
    return object_mask


@click.command("remove")
@click.argument("image", type=PATH)
@click.argument("mask", type=PATH, required=False)
@click.option(
    "-o",
    "--output",
    type=PATH,
    required=True,
    help="Result file; its extension picks the format (.png, .jpg, .webp, .bmp, .tif).",
)
@removal_options
@selection_options
@click.option("--resize-mask", is_flag=True, help="Resize a MASK whose size differs from IMAGE's; else fail.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists (an input is never replaced).")
def remove_command(
    image: Path,
    mask: Path | None,
    output: Path,
    resize_mask: bool,
    quiet: bool,
    overwrite: bool,
    points: tuple[str, ...] = (),
    negative_points: tuple[str, ...] = (),
    box: str | None = None,
    object_text: str | None = None,
    segmenter: str | None = None,
    top_k: int | None = None,
    save_mask: Path | None = None,
    **settings: Any,
) -> None:
    """Remove the object under MASK from IMAGE and write the result to OUTPUT.

    MASK is white (non-zero) on the object to remove. Without MASK, the transparent pixels of IMAGE are
    the object, or the object is selected: clicked (--point X,Y), boxed (--box) or named (--object).
    The result has the size of IMAGE; by default only the masked area (and a feathered band around it)
    changes. Knobs left unset take the preset of the model that runs: the defaults shown are the built-in
    demo model's (no --model), then, where they differ, the Stable Diffusion families' (sd15, sd21,
    sd21-768, sdxl) that a checkpoint of that family takes.
    """
    with input_errors():
        options = removal_request(settings, progress=not quiet)
        # Everything is checked before any model work: files, sizes, output, settings, device.
        picture = imaging.load_image(image, max_pixels=options.max_pixels)
        from ..selection import SelectionRequest

        if top_k is not None and not (object_text or "").strip():
            # --top-k ranks the matches of the words; with clicks or a box alone it would do nothing
            message = f"{top_k} is given but no --object: it keeps the K best matches of the words"
            raise imaging.InputError("top-k", message)
        selection = SelectionRequest.parse(points, negative_points, box, object_text, segmenter, top_k)
        object_mask: np.ndarray | None = None
        if selection is None or mask is not None:
            object_mask = _object_mask(picture, mask, resize_mask=resize_mask, max_pixels=options.max_pixels)
        if object_mask is not None and selection is None:
            imaging.validate_mask(object_mask)
        resolution = options.get("resolution")
        if resolution is not None:
            imaging.check_resolution(picture.size, resolution)
        inputs = [image] if mask is None else [image, mask]
        check_output(output, inputs=inputs, overwrite=overwrite, size=picture.size)
        if save_mask is not None:
            check_mask_output(save_mask, output, inputs=inputs, overwrite=overwrite, size=picture.size)
        with quiet_third_party(quiet):
            check_device(options.device)
            if selection is not None:
                selected = selection.select(picture, device=options.device)
                object_mask = selected if object_mask is None else object_mask | selected
                imaging.validate_mask(object_mask)
            from ..api import remove

            # A killed earlier run may have left its temporary file beside OUTPUT: ours to remove, unless it
            # is an input of this run (an input may be named like a temporary; it is never deleted).
            imaging.remove_stale_temporaries(output, protect=inputs)
            # Without MASK, remove() takes the mask from the alpha channel and returns an opaque image.
            # (A selection is a mask given separately: IMAGE's alpha is kept, as with MASK.)
            given = mask is not None or selection is not None
            result = remove(picture, object_mask if given else None, **options.remove_kwargs())
        saved = imaging.save_image(result, output, protect=inputs)
        if save_mask is not None:
            assert object_mask is not None  # MASK, the alpha channel or the selection gave one
            white = np.where(object_mask, 255, 0).astype(np.uint8)  # (H, W): an "L" image
            imaging.save_image(Image.fromarray(white), save_mask, protect=inputs, lossless=True)
    click.echo(str(saved))


@click.command("demo")
@click.option(
    "-o",
    "--output",
    type=PATH,
    default=DEMO_OUTPUT,
    show_default=True,
    help="Where to write the figure (replaced if it exists).",
)
@click.option(
    "--model",
    default=None,
    metavar="ID|DIR|FILE",
    help="Weights to run the demo with (hub id, diffusers folder or .safetensors file). "
    "Default: the built-in default model.",
)
@click.option(
    "--device",
    default=None,
    metavar="DEVICE",
    help="cpu, cuda, cuda:1, mps, ... Default: CUDA, else MPS, else CPU.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def demo_command(output: Path, model: str | None, device: str | None, quiet: bool) -> None:
    """Erase the object of a built-in example scene, offline, and write a side-by-side figure.

    Panels: the input with the mask outlined, the raw output, the output pasted back.
    """
    start = time.perf_counter()
    with input_errors():
        check_output(output, overwrite=True)
        with quiet_third_party(quiet):
            check_device(device)
            from ..demo import run_demo

            imaging.remove_stale_temporaries(output)
            figure = run_demo(model=model, device=device, progress=not quiet)
        saved = imaging.save_image(figure, output)
    click.echo(f"{saved} ({time.perf_counter() - start:.1f} s)")
