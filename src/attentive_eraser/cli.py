"""The ``attentive-eraser`` command line: ``remove`` an object from one image, or run the ``demo``.

Bad input exits with code 2 and one ``error: ...`` line on stderr naming the argument; anything else
that goes wrong is a bug and keeps its traceback (exit code 1). torch and diffusers are imported inside
the commands, after the inputs have been checked, so ``--help`` is instant and bad input fails fast.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import click
import numpy as np
from PIL import Image

from . import __version__, imaging
from .runtime import check_device as _check_device
from .runtime import quiet_third_party as _quiet_third_party

F = TypeVar("F", bound=Callable[..., Any])

DEMO_OUTPUT = "attentive_eraser_demo.png"


class _Group(click.Group):
    """A click group that reports every usage error as a single ``error: ...`` line (exit code 2)."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:  # type: ignore[override]
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            # Non-standalone mode hands click's exceptions to us instead of printing usage + hint + error.
            exit_code = super().main(*args, standalone_mode=False, **kwargs)
        except getattr(click.exceptions, "NoArgsIsHelpError", ()) as error:  # bare group: show the help
            error.show()
            sys.exit(error.exit_code)
        except click.ClickException as error:
            click.echo(f"error: {' '.join(error.format_message().split())}", err=True)
            sys.exit(error.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(exit_code if isinstance(exit_code, int) else 0)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="attentive-eraser")
def main() -> None:
    """Training-free object removal with Stable Diffusion: Attentive Eraser (AAAI 2025)."""


# --------------------------------------------------------------------------------------------------
# The removal settings: api.remove's keyword arguments, as typed on the command line


@dataclass(frozen=True)
class RemovalOptions:
    """Model, method and knobs of one removal run; field names are :func:`attentive_eraser.api.remove`'s.

    ``None`` takes the model's preset.
    """

    model: str | None = None
    config: str | None = None
    method: Literal["sip", "dip"] = "sip"
    seed: int = 123
    num_inference_steps: int | None = None
    strength: float | None = None
    removal_guidance_scale: float | None = None
    suppression_scale: float | None = None
    suppression_steps: int | None = None
    mask_dilation: int | None = None
    feather_radius: float | None = None
    resolution: int | None = None
    strategy: Literal["resize", "crop"] = "resize"
    paste_back: bool = True
    device: str | None = None
    dtype: str | None = None
    progress: bool = True
    max_pixels: int | None = imaging.DEFAULT_MAX_PIXELS

    def remove_kwargs(self) -> dict[str, Any]:
        return asdict(self)


class _FiniteFloatRange(click.FloatRange):
    """A float range that also refuses ``nan`` and ``inf`` (click's own range lets ``nan`` through)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


# Upper bounds match the pipelines' own checks, so out-of-range values fail before a model loads.
# Defaults are written into the help: ``None`` means "the model's preset", which click cannot show.
_REMOVAL_OPTIONS: tuple[Callable[[F], F], ...] = (
    click.option(
        "--model",
        default=None,
        metavar="ID|DIR|FILE",
        help="Stable Diffusion 1.x/2.x/XL weights: a hub id, a local diffusers folder or a .safetensors "
        "file. Default: the built-in default model.",
    ),
    click.option(
        "--config",
        default=None,
        metavar="DIR",
        help="For a single-file --model: a local diffusers folder of the same family whose configs to use "
        "(needed offline; online they are fetched).",
    ),
    click.option(
        "--method",
        type=click.Choice(["sip", "dip"], case_sensitive=False),
        default="sip",
        help="sip: stochastic inpainting (seeded); dip: deterministic inpainting from a DDIM inversion. "
        "Default: sip.",
    ),
    click.option(
        "--seed",
        type=click.IntRange(min=0),
        default=123,
        help="Seed of SIP's noise; DIP is deterministic and ignores it. Default: 123.",
    ),
    click.option(
        "--steps",
        "num_inference_steps",
        type=click.IntRange(1, 1000),
        default=None,
        help="T_I: DDIM steps of the full schedule (num_inference_steps). Default: the preset's, 50.",
    ),
    click.option(
        "--strength",
        type=_FiniteFloatRange(0.0, 1.0, min_open=True),
        default=None,
        help="Share of the schedule that is run (0.8: the last 40 of 50 steps). Default: 0.8 SIP, 1.0 DIP.",
    ),
    click.option(
        "--removal-guidance-scale",
        type=_FiniteFloatRange(0.0, 100.0),
        default=None,
        help="s (Eq. 18): strength of Self-Attention Redirection Guidance; 0 turns SARG off. Default: 9.",
    ),
    click.option(
        "--suppression-scale",
        type=_FiniteFloatRange(0.0, 1.0),
        default=None,
        help="λ (Eq. 13): Similarity Suppression factor on the object queries' logits. Default: 0.3.",
    ),
    click.option(
        "--suppression-steps",
        type=click.IntRange(0, 1000),
        default=None,
        help="T_SS: Similarity Suppression applies during the first T_SS denoising steps. Default: 10.",
    ),
    click.option(
        "--dilate",
        "mask_dilation",
        type=click.IntRange(0, 1024),
        default=None,
        help="Grow the mask outwards by this many pixels at the working resolution (mask_dilation). "
        "Default: the preset's, 2 on SD, 15 on SDXL.",
    ),
    click.option(
        "--feather",
        "feather_radius",
        type=_FiniteFloatRange(0.0, 1024.0),
        default=None,
        help="Width of the feathered paste-back band, in pixels at the working resolution "
        "(feather_radius). Default: the preset's, 15.",
    ),
    click.option(
        "--resolution",
        type=click.IntRange(64, 8192),
        default=None,
        help="Working resolution: the image is processed at about RESOLUTION² pixels, aspect ratio kept. "
        "Default: the model's native size (512 SD, 1024 SDXL).",
    ),
    click.option(
        "--strategy",
        type=click.Choice(["resize", "crop"], case_sensitive=False),
        default="resize",
        help="resize: process the whole image at the working resolution; crop: process only a window "
        "around the mask (2x its box, at least RESOLUTION² pixels) and paste it back at full resolution "
        "- better for large photos with small objects. Default: resize.",
    ),
    click.option(
        "--no-paste-back",
        "paste_back",
        flag_value=False,
        default=True,
        help="Write the raw decode (as the paper's metrics do) instead of pasting the original pixels "
        "back outside the feathered mask.",
    ),
    click.option(
        "--device",
        default=None,
        metavar="DEVICE",
        help="Where to run: cpu, cuda, cuda:1, mps, ... Default: CUDA, else MPS, else CPU.",
    ),
    click.option(
        "--dtype",
        type=click.Choice(["fp32", "fp16", "bf16"], case_sensitive=False),
        default=None,
        help="Precision of the model. Default: fp16 on a GPU, fp32 on the CPU.",
    ),
    click.option(
        "--max-pixels",
        type=click.IntRange(min=1),
        default=imaging.DEFAULT_MAX_PIXELS,
        metavar="N",
        help="Refuse images (and masks) of more than N pixels, checked from the file header before "
        f"decoding. Default: {imaging.DEFAULT_MAX_PIXELS:,} (50 megapixels).".replace(",", " "),
    ),
)


#: how to select the object instead of (or besides) painting MASK (attentive_eraser.selection)
_SELECTION_OPTIONS: tuple[Callable[[F], F], ...] = (
    click.option(
        "--point",
        "points",
        multiple=True,
        metavar="X,Y",
        help="A click on the object, in pixels of IMAGE from its top-left corner; repeat for its parts. "
        "MASK becomes optional.",
    ),
    click.option(
        "--exclude",
        "negative_points",
        multiple=True,
        metavar="X,Y",
        help="A click on what must stay (a negative point); repeat as needed.",
    ),
    click.option(
        "--box", "box", default=None, metavar="X0,Y0,X1,Y1", help="A box around the object, in pixels."
    ),
    click.option(
        "--object",
        "object_text",
        default=None,
        metavar="TEXT",
        help='The object in words ("the red car"); needs a --segmenter with a detector.',
    ),
    click.option(
        "--segmenter",
        default=None,
        metavar="SPEC",
        help="Who turns the selection into a mask: classic (no weights; the default), sam:<hub id or "
        "folder>, either + detector:<hub id or folder> (OWLv2, Grounding DINO) for --object.",
    ),
    click.option(
        "--top-k",
        "top_k",
        type=click.IntRange(min=1),
        default=None,
        metavar="K",
        help="With --object: only the K best-scoring matches (default: every match, united).",
    ),
    click.option(
        "--save-mask",
        type=click.Path(path_type=Path),
        default=None,
        metavar="PATH",
        help="Also write the mask used (selection and MASK united; white = removed) to PATH (.png).",
    ),
)


def selection_options(command: F) -> F:
    """Add the ``--point``/``--exclude``/``--box``/``--object``/``--segmenter``/``--top-k``/``--save-mask``
    options to a click command."""
    for option in reversed(_SELECTION_OPTIONS):
        command = option(command)
    return command


def removal_options(command: F) -> F:
    """Add the options of :class:`RemovalOptions` (each named like its field) to a click command."""
    for option in reversed(_REMOVAL_OPTIONS):
        command = option(command)
    return command


# --------------------------------------------------------------------------------------------------
# Checks and error mapping


def _raised_by_this_package(error: BaseException) -> bool:
    """True when the innermost frame of ``error``'s traceback is code of this package."""
    frame = error.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    module = "" if frame is None else str(frame.tb_frame.f_globals.get("__name__", ""))
    return module.partition(".")[0] == __package__


@contextlib.contextmanager
def _input_errors() -> Iterator[None]:
    """Turn the package's input validation errors into a one-line usage error (exit code 2).

    The package rejects bad arguments with a ``ValueError`` naming the argument (``imaging.InputError`` for
    files, images and masks). A ``ValueError`` raised elsewhere (torch, diffusers) is not the user's
    mistake and keeps its traceback.
    """
    try:
        yield
    except ValueError as error:
        if not (isinstance(error, imaging.InputError) or _raised_by_this_package(error)):
            raise
        raise click.UsageError(str(error)) from error


def _output_bytes(size: tuple[int, int]) -> int:
    """Generous upper bound of an encoded result of ``size``: uncompressed RGBA plus headers."""
    width, height = size
    return 4 * width * height + 2**20


def _check_output(
    output: Path, *, inputs: Sequence[Path] = (), overwrite: bool = False, size: tuple[int, int] | None = None
) -> None:
    """Refuse, before any work, an output that ``imaging.save_image`` could not or should not write.

    Nothing is created: the name lengths, the folder (no parent may be a file; it must accept a new file)
    and, given the image ``size``, the free space are checked by :func:`imaging.check_output_path`.
    """
    if output.suffix.lower() not in imaging.SAVE_FORMATS:
        extension, choices = output.suffix or "(none)", ", ".join(imaging.SAVE_FORMATS)
        message = f"unsupported extension {extension!r} in {str(output)!r}; use one of {choices}"
        raise imaging.InputError("output", message)
    imaging.check_output_path(output, needed_bytes=0 if size is None else _output_bytes(size))
    for source in inputs:
        if imaging.same_file(output, source):
            raise imaging.InputError("output", f"{str(output)!r} is an input file; the input is never overwritten")
    if output.is_dir():
        raise imaging.InputError("output", f"{str(output)!r} is a directory, not a file path")
    if output.exists() and not overwrite:
        raise imaging.InputError("output", f"{str(output)!r} already exists (use --overwrite to replace it)")


def _object_mask(
    picture: Image.Image,
    mask: Path | None,
    *,
    resize_mask: bool,
    max_pixels: int | None = imaging.DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """The object mask, read from MASK, or from the image's transparency when there is no MASK."""
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


# --------------------------------------------------------------------------------------------------
# Commands

_PATH = click.Path(path_type=Path)


@main.command("remove")
@click.argument("image", type=_PATH)
@click.argument("mask", type=_PATH, required=False)
@click.option(
    "-o",
    "--output",
    type=_PATH,
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
    changes.
    """
    options = RemovalOptions(**settings, progress=not quiet)
    with _input_errors():
        # Everything is checked before any model work: files, sizes, output, settings, device.
        picture = imaging.load_image(image, max_pixels=options.max_pixels)
        from .selection import SelectionRequest

        selection = SelectionRequest.parse(points, negative_points, box, object_text, segmenter, top_k)
        object_mask: np.ndarray | None = None
        if selection is None or mask is not None:
            object_mask = _object_mask(picture, mask, resize_mask=resize_mask, max_pixels=options.max_pixels)
        if selection is None:
            imaging.validate_mask(object_mask)
        if options.resolution is not None:
            imaging.check_resolution(picture.size, options.resolution)
        inputs = [image] if mask is None else [image, mask]
        _check_output(output, inputs=inputs, overwrite=overwrite, size=picture.size)
        if save_mask is not None:
            _check_mask_output(save_mask, output, inputs=inputs, overwrite=overwrite, size=picture.size)
        with _quiet_third_party(quiet):
            _check_device(options.device)
            if selection is not None:
                selected = selection.select(picture, device=options.device)
                object_mask = selected if object_mask is None else object_mask | selected
                imaging.validate_mask(object_mask)
            from .api import remove

            # A killed earlier run may have left its temporary file beside OUTPUT: ours to remove.
            imaging.remove_stale_temporaries(output)
            # Without MASK, remove() takes the mask from the alpha channel and returns an opaque image.
            # (A selection is a mask given separately: IMAGE's alpha is kept, as with MASK.)
            given = mask is not None or selection is not None
            result = remove(picture, object_mask if given else None, **options.remove_kwargs())
        saved = imaging.save_image(result, output, protect=inputs)
        if save_mask is not None:
            white = np.where(object_mask, 255, 0).astype(np.uint8)  # (H, W): an "L" image
            imaging.save_image(Image.fromarray(white), save_mask, protect=inputs)
    click.echo(str(saved))


def _check_mask_output(
    path: Path, output: Path, *, inputs: Sequence[Path], overwrite: bool, size: tuple[int, int]
) -> None:
    """``--save-mask PATH``: a lossless format, not OUTPUT, not an input, not an existing file (unless
    --overwrite), in a folder that accepts it."""
    if path.suffix.lower() not in (".png", ".bmp", ".tif", ".tiff", ".webp"):
        raise imaging.InputError(
            "save-mask", f"{str(path)!r} needs a lossless extension (.png, .bmp, .tif, .webp)"
        )
    if imaging.same_file(path, output):
        raise imaging.InputError("save-mask", f"{str(path)!r} is also the OUTPUT; give the mask its own file")
    try:
        _check_output(path, inputs=inputs, overwrite=overwrite, size=size)
    except imaging.InputError as error:
        raise imaging.InputError("save-mask", error.message) from None


@main.command("demo")
@click.option(
    "-o",
    "--output",
    type=_PATH,
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
    with _input_errors():
        _check_output(output, overwrite=True)
        with _quiet_third_party(quiet):
            _check_device(device)
            from .demo import run_demo

            imaging.remove_stale_temporaries(output)

            figure = run_demo(model=model, device=device, progress=not quiet)
        saved = imaging.save_image(figure, output)
    click.echo(f"{saved} ({time.perf_counter() - start:.1f} s)")


@main.command("serve")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; 0.0.0.0 exposes the app to the network.",
)
@click.option(
    "--port", type=click.IntRange(1, 65535), default=7860, show_default=True, help="Port to listen on."
)
@click.option(
    "--model",
    "models",
    multiple=True,
    metavar="ID|DIR|FILE",
    help="Weights to offer (hub id, diffusers folder or .safetensors file); repeat to offer several, the "
    "first is preselected. Requests can only choose among these. Default: the built-in default model.",
)
@click.option(
    "--device",
    default=None,
    metavar="DEVICE",
    help="cpu, cuda, cuda:1, mps, ... Default: CUDA, else MPS, else CPU.",
)
@click.option(
    "--max-file-size",
    default="20mb",
    show_default=True,
    metavar="SIZE",
    help="Largest upload accepted (e.g. 20mb, 500kb).",
)
@click.option(
    "--max-pixels",
    type=click.IntRange(min=1),
    default=imaging.DEFAULT_MAX_PIXELS,
    show_default=True,
    metavar="N",
    help="Refuse photos and masks of more than N pixels (checked before decoding).",
)
@click.option(
    "--segmenter",
    default=None,
    metavar="SPEC",
    help="Who turns clicks and words into masks: classic (no weights; the default), sam:<hub id or "
    "folder>, either + detector:<hub id or folder> for the 'object to remove' text box.",
)
def serve_command(
    host: str,
    port: int,
    models: tuple[str, ...],
    device: str | None,
    max_file_size: str,
    max_pixels: int,
    segmenter: str | None = None,
) -> None:
    """Start the web app (paint, remove, compare, download) and its HTTP API on HOST:PORT.

    Needs the app extra: pip install "attentive-eraser[app]". Removals run one at a time in a queue.
    """
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise click.UsageError('the web app needs Gradio: pip install "attentive-eraser[app]"') from None
    with _input_errors():
        from .app import check_server_options, serve

        check_server_options(host, port, max_file_size)  # before anything is loaded
        with _quiet_third_party():
            _check_device(device)
        serve(
            host=host,
            port=port,
            models=list(models) or [None],
            device=device,
            max_file_size=max_file_size,
            max_pixels=max_pixels,
            segmenter=segmenter,
        )


# Commands kept in their own modules register themselves on ``main`` when imported.
from . import batch as _batch  # noqa: E402,F401

if __name__ == "__main__":  # pragma: no cover
    main()
