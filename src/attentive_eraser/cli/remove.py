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
        from ..removal import RemovalRequest, prepare, run
        from ..selection import SelectionRequest

        if top_k is not None and not (object_text or "").strip():
            # --top-k ranks the matches of the words; with clicks or a box alone it would do nothing
            message = f"{top_k} is given but no --object: it keeps the K best matches of the words"
            raise imaging.InputError("top-k", message)
        selection = SelectionRequest.parse(points, negative_points, box, object_text, segmenter, top_k)
        request = RemovalRequest(image, mask, selection, options, resize_mask=resize_mask)
        inputs = [image] if mask is None else [image, mask]

        def check_outputs(size: tuple[int, int]) -> None:
            # Everything is checked before any model work (a segmenter's too): output, mask file, device.
            check_output(output, inputs=inputs, overwrite=overwrite, size=size)
            if save_mask is not None:
                check_mask_output(save_mask, output, inputs=inputs, overwrite=overwrite, size=size)
            check_device(options.device)

        with quiet_third_party(quiet):
            prepared = prepare(request, device=options.device, on_decoded=check_outputs)
            from ..api import load_pipeline

            # A killed earlier run may have left its temporary file beside OUTPUT: ours to remove, unless it
            # is an input of this run (an input may be named like a temporary; it is never deleted).
            imaging.remove_stale_temporaries(output, protect=inputs)
            pipe = load_pipeline(
                options.model,
                method=options.method,
                device=options.device,
                dtype=options.dtype,
                config=options.config,
            )
            pipe.set_progress_bar_config(disable=quiet, leave=False)
            result = run(pipe, [prepared])[0][0]
        saved = imaging.save_image(result, output, protect=inputs)
        if save_mask is not None:
            white = np.where(prepared.mask, 255, 0).astype(np.uint8)  # (H, W): an "L" image
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
