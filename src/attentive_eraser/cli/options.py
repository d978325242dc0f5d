"""The options and checks the commands share: removal settings, object selection, error mapping, outputs.

The knob options are derived from :data:`attentive_eraser.settings.KNOBS` (one ``click.option`` per knob:
its flag, type and range, help with the paper's symbol and the presets' defaults), so a new knob needs no
change here. The parsed options become one :class:`attentive_eraser.settings.RemovalOptions`. The selection
options are derived the same way from :data:`attentive_eraser.selection.SELECTION_FIELDS`.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from .. import imaging
from ..imaging.save import LOSSLESS_FORMATS
from ..selection import SELECTION_FIELDS, SelectionField
from ..settings import (
    DEFAULT_SEED,
    FAST_KNOBS,
    KNOB_NAMES,
    KNOBS,
    METHODS,
    PRESETS,
    STRATEGIES,
    Knob,
    Method,
    Preset,
    RemovalOptions,
    check_seed,
    knob,
    match_choice,
)

F = TypeVar("F", bound=Callable[..., Any])

PATH = click.Path(path_type=Path)


class FiniteFloatRange(click.FloatRange):
    """A float range that also refuses ``nan`` and ``inf`` (click's own range lets ``nan`` through)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


class SchemaChoice(click.Choice):
    """click's choice read by the schema's one rule for choices (:func:`settings.match_choice`: any case,
    surrounding spaces ignored), so ``--scheduler " DPM++"`` means what ``remove(scheduler=" DPM++")``
    does; anything else gets click's own message listing the choices."""

    def __init__(self, choices: Sequence[str]) -> None:
        super().__init__(choices, case_sensitive=False)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        choice = match_choice(value, tuple(map(str, self.choices)))
        return choice if choice is not None else super().convert(value, param, ctx)


class SeedType(click.ParamType):
    """``--seed``: :func:`settings.check_seed`'s rule, the one of every front end (``1.5`` and ``2**63``
    are refused, never rounded or passed on)."""

    name = "integer"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return check_seed(value)
        except ValueError:
            self.fail(f"{value!r} is not a whole number in [0, 2**63).", param, ctx)


# --------------------------------------------------------------------------------------------------
# Knob options, derived from settings.KNOBS

_EQUATION = re.compile(r"\s*\((Eq\. \d+)\)")


def _defaults_of(name: str, presets: Sequence[Preset], all_label: str = "") -> str:
    """The default of knob ``name`` over ``presets``, in words: one value (after ``all_label``), one per
    method (``0.8 SIP, 1.0 DIP``) or one per preset (``sd15/sd21 2, sdxl 15``; per method when they differ
    too)."""
    values = {
        (preset.name, method): str(preset.for_method(cast(Method, method))[name])
        for preset in presets
        for method in METHODS
    }
    lead = f"{all_label} " if all_label else ""
    if len(set(values.values())) == 1:
        return lead + next(iter(values.values()))
    per_method = {method: {values[(preset.name, method)] for preset in presets} for method in METHODS}
    if all(len(method_values) == 1 for method_values in per_method.values()):
        return lead + ", ".join(f"{next(iter(v))} {method.upper()}" for method, v in per_method.items())

    def by_preset(method: str) -> str:
        groups: dict[str, list[str]] = {}
        for preset in presets:
            groups.setdefault(values[(preset.name, method)], []).append(preset.name)
        return ", ".join(f"{'/'.join(names)} {value}" for value, names in groups.items())

    if all(values[(preset.name, "sip")] == values[(preset.name, "dip")] for preset in presets):
        return by_preset("sip")
    return "; ".join(f"{method.upper()}: {by_preset(method)}" for method in METHODS)


def preset_default(name: str) -> str:
    """The default of knob ``name`` in words: the built-in demo model's (what runs without ``--model``),
    then, where they differ, the Stable Diffusion families' presets that a real checkpoint takes, e.g.
    ``15 (demo model; SD 9)`` or ``64 (demo model; sd15/sd21 512, sd21-768 768, sdxl 1024)``."""
    demo = _defaults_of(name, [PRESETS["demo"]])
    stable_diffusion = [preset for preset in PRESETS.values() if preset.family != "demo"]
    if _defaults_of(name, stable_diffusion) == demo:
        return demo
    return f"{demo} (demo model; {_defaults_of(name, stable_diffusion, 'SD')})"


def knob_help(item: Knob) -> str:
    """The help of ``item``'s option: its paper symbol (and equation) first, then its help and default."""
    text, symbol = item.help, item.symbol
    equation = _EQUATION.search(text)
    if equation is not None and symbol:
        text = text[: equation.start()] + text[equation.end() :]
        symbol = f"{symbol} ({equation.group(1)})"
    lead = f"{symbol}: " if symbol else ""
    return f"{lead}{text} Default: {preset_default(item.name)}."


def knob_type(item: Knob) -> click.ParamType:
    """The click type of ``item``: its choices, or its range (floats refuse ``nan`` and ``inf``)."""
    if item.choices:
        return SchemaChoice(item.choices)
    if item.whole:
        return click.IntRange(item.low, item.high, min_open=item.low_open)  # type: ignore[arg-type]
    return FiniteFloatRange(item.low, item.high, min_open=item.low_open)


def knob_option(item: Knob) -> Callable[[F], F]:
    """One ``click.option`` for ``item``: flag ``item.option``, destination ``item.name``, default unset."""
    return click.option(item.option, item.name, type=knob_type(item), default=None, help=knob_help(item))


def _fast_help() -> str:
    def listed(method: str) -> str:
        return " ".join(f"{knob(name).option} {value}" for name, value in FAST_KNOBS[method].items())

    return (
        f"Fewer UNet evaluations (SIP: DPM-Solver++, {listed('sip')}; DIP: fewer inversion and sampling "
        f"steps, {listed('dip')}); explicit knobs still win."
    )


# Ranges match the pipelines' own checks (the knob schema), so out-of-range values fail before a model
# loads. ``None`` means "the model's preset", which click cannot show: the defaults are written into the help.
_HEAD_OPTIONS: tuple[Callable[[F], F], ...] = (
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
        type=SchemaChoice(METHODS),
        default="sip",
        help="sip: stochastic inpainting (seeded); dip: deterministic inpainting from a DDIM inversion. "
        "Default: sip.",
    ),
    click.option(
        "--seed",
        type=SeedType(),
        default=DEFAULT_SEED,
        help="Seed of SIP's noise, in [0, 2**63); DIP is deterministic and ignores it. "
        f"Default: {DEFAULT_SEED}.",
    ),
)
_KNOB_OPTIONS: tuple[Callable[[F], F], ...] = (
    *(knob_option(item) for item in KNOBS),
    click.option("--fast", is_flag=True, default=False, help=_fast_help()),
)
_TAIL_OPTIONS: tuple[Callable[[F], F], ...] = (
    click.option(
        "--strategy",
        type=SchemaChoice(STRATEGIES),
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
        type=SchemaChoice(["fp32", "fp16", "bf16"]),
        default=None,
        help="Precision of the model. Default: fp16 on a GPU, fp32 on the CPU.",
    ),
    click.option(
        "--max-pixels",
        type=click.IntRange(min=1),
        default=imaging.DEFAULT_MAX_PIXELS,
        metavar="N",
        help="Refuse images (and masks) of more than N pixels, checked from the file header before "
        f"decoding. Default: {imaging.DEFAULT_MAX_PIXELS:_} (50 megapixels).".replace("_", " "),
    ),
)


def removal_options(command: F) -> F:
    """Add the options of :class:`RemovalOptions` to a click command: model, method and seed, one per
    knob of :data:`KNOBS`, ``--fast``, then strategy, paste-back, device, precision and the pixel limit."""
    for option in reversed((*_HEAD_OPTIONS, *_KNOB_OPTIONS, *_TAIL_OPTIONS)):
        command = option(command)
    return command


def removal_request(params: dict[str, Any], *, progress: bool) -> RemovalOptions:
    """The :class:`RemovalOptions` of a command's parsed :func:`removal_options` (``params`` is consumed)."""
    knobs = {name: params.pop(name) for name in KNOB_NAMES if name in params}
    return RemovalOptions(**params, knobs=knobs, progress=progress)


#: the extensions ``--save-mask`` takes: formats written without changing a pixel (JPEG has no such mode)
MASK_SUFFIXES: tuple[str, ...] = tuple(
    suffix for suffix, file_format in imaging.SAVE_FORMATS.items() if file_format in LOSSLESS_FORMATS
)

#: the parameter of a command that receives a selection field: the field's name, but ``object_text`` for the
#: words (``object`` would shadow the builtin, ``text`` would not say what the words are)
_DESTINATIONS = {"text": "object_text"}


def selection_option(item: SelectionField) -> Callable[[F], F]:
    """One ``click.option`` for ``item``: its flag and its aliases' (``--negative-point``, ``--exclude``),
    its help with every field named by its flag. The value stays text (a list of texts when repeated):
    :meth:`SelectionRequest.parse` reads it, with the rules and messages of every surface."""
    flags = {field.name: field.option for field in SELECTION_FIELDS}
    return click.option(
        *item.options,
        _DESTINATIONS.get(item.name, item.name),
        multiple=item.repeated,
        default=None,
        metavar=item.metavar,
        help=item.describe(flags),
    )


#: how to select the object instead of (or besides) painting MASK: one option per selection field
#: (attentive_eraser.selection.SELECTION_FIELDS), then where to write the mask used
_SELECTION_OPTIONS: tuple[Callable[[F], F], ...] = (
    *(selection_option(item) for item in SELECTION_FIELDS),
    click.option(
        "--save-mask",
        type=PATH,
        default=None,
        metavar="PATH",
        help="Also write the mask used (selection and MASK united; white = removed) to PATH, losslessly "
        f"({', '.join(MASK_SUFFIXES)}; WebP in its lossless mode).",
    ),
)


def selection_options(command: F) -> F:
    """Add an option per selection field (``--point``, ``--negative-point``/``--exclude``, ``--box``,
    ``--object``, ``--segmenter``, ``--top-k``), then ``--save-mask``, to a click command."""
    for option in reversed(_SELECTION_OPTIONS):
        command = option(command)
    return command


# --------------------------------------------------------------------------------------------------
# Checks and error mapping


@contextlib.contextmanager
def input_errors() -> Iterator[None]:
    """Turn the package's input errors (:class:`imaging.InputError`, from every layer) into a one-line usage
    error (exit code 2). Any other exception is not the user's mistake and keeps its traceback."""
    try:
        yield
    except imaging.InputError as error:
        raise click.UsageError(str(error)) from error


def _output_bytes(size: tuple[int, int]) -> int:
    """Generous upper bound of an encoded result of ``size``: uncompressed RGBA plus headers."""
    width, height = size
    return 4 * width * height + 2**20


def check_output(
    output: Path, *, inputs: Sequence[Path] = (), overwrite: bool = False, size: tuple[int, int] | None = None
) -> None:
    """Refuse, before any work, an output that ``imaging.save_image`` could not or should not write.

    Nothing is created. :func:`imaging.check_output_path` checks the name lengths, the folder (no parent
    may be a file; it must accept a new file) and, given the image ``size``, the free space; the extension,
    the inputs and the folder-as-output are save_image's own refusals, found here before the model runs;
    an existing file needs ``overwrite``.
    """
    if output.suffix.lower() not in imaging.SAVE_FORMATS:
        extension, choices = output.suffix or "(none)", ", ".join(imaging.SAVE_FORMATS)
        message = f"unsupported extension {extension!r} in {str(output)!r}; use one of {choices}"
        raise imaging.InputError("output", message)
    imaging.check_output_path(output, needed_bytes=0 if size is None else _output_bytes(size))
    for source in inputs:
        if imaging.same_file(output, source):
            raise imaging.InputError(
                "output", f"{str(output)!r} is an input file; the input is never overwritten"
            )
    if output.is_dir():
        raise imaging.InputError("output", f"{str(output)!r} is a directory, not a file path")
    if output.exists() and not overwrite:
        raise imaging.InputError("output", f"{str(output)!r} already exists (use --overwrite to replace it)")


def check_mask_output(
    path: Path, output: Path, *, inputs: Sequence[Path], overwrite: bool, size: tuple[int, int]
) -> None:
    """``--save-mask PATH``: a lossless format, not OUTPUT, not an input, not an existing file (unless
    --overwrite), in a folder that accepts it."""
    if path.suffix.lower() not in MASK_SUFFIXES:
        raise imaging.InputError(
            "save-mask", f"{str(path)!r} needs a lossless extension ({', '.join(MASK_SUFFIXES)})"
        )
    if imaging.same_file(path, output):
        raise imaging.InputError("save-mask", f"{str(path)!r} is also the OUTPUT; give the mask its own file")
    try:
        check_output(path, inputs=inputs, overwrite=overwrite, size=size)
    except imaging.InputError as error:
        raise imaging.InputError("save-mask", error.message) from None
