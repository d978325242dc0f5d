"""Where and how quietly the models run: device and precision resolution, third-party log levels, extras.

Shared by the one-call API, object selection, the batch runner, the CLI, the web app, the benchmarks and the
scripts. No click; torch is imported when a device or a precision is resolved, not before. Nothing here runs
at import time: the quieting applies inside :func:`quiet_third_party` only.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .imaging.common import InputError

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: device types the pipelines run on (``meta`` holds no data; others lack the kernels we need)
SUPPORTED_DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu")

#: ``dtype`` names accepted everywhere (``--dtype``, ``dtype=``) -> torch dtype attribute
_DTYPE_NAMES = {
    "fp32": "float32",
    "float32": "float32",
    "fp16": "float16",
    "float16": "float16",
    "half": "float16",
    "bf16": "bfloat16",
    "bfloat16": "bfloat16",
}


def mps_available() -> bool:
    """True when this torch build has Apple's MPS backend and the machine offers it."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    return mps is not None and bool(mps.is_available())


def accelerator_available() -> bool:
    """True when CUDA or Apple MPS is present (the batch runner then lets accelerate use it)."""
    import torch

    return bool(torch.cuda.is_available()) or mps_available()


def _check_available(device: torch.device, given: object) -> None:
    """Refuse a device type we do not run on, or one this machine does not have."""
    import torch

    if device.type not in SUPPORTED_DEVICE_TYPES:
        raise InputError.from_text(
            f"device={given!r} is not supported; use cpu, cuda, cuda:N, mps or xpu (where present)"
        )
    if device.type == "cpu":
        return
    if device.type == "mps":
        if not mps_available():
            raise InputError.from_text(f"device={given!r} is not available on this machine (no Apple MPS)")
        return
    backend = getattr(torch, device.type, None)  # torch.cuda, torch.xpu
    count = backend.device_count() if backend is not None and backend.is_available() else 0
    if (device.index or 0) >= count:
        raise InputError.from_text(
            f"device={given!r} is not available: this machine has {count} {device.type.upper()} device(s)"
        )


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as given (checked: a supported type this machine has), or the best available.

    The best available is CUDA, then Apple MPS, then CPU.
    """
    import torch

    if device is not None:
        try:
            resolved = torch.device(device)
        except (RuntimeError, TypeError, ValueError) as error:
            message = " ".join(str(error).split())
            raise InputError.from_text(f"device={device!r} is not a valid torch device ({message})") from None
        _check_available(resolved, device)
        return resolved
    if torch.cuda.is_available():
        return torch.device("cuda")
    if mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def check_device(device: str | None) -> None:
    """Refuse a device we do not run on (``meta``, ``vulkan``, …) or that this machine does not have."""
    if device is not None:
        resolve_device(device)  # raises ValueError naming the device


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """``dtype`` as given (``fp32``/``fp16``/``bf16`` or a torch dtype), else fp16 on GPUs and fp32 on CPU."""
    import torch

    if dtype is None:
        return torch.float32 if device.type == "cpu" else torch.float16
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        name = _DTYPE_NAMES[str(dtype).lower()]
    except KeyError:
        raise InputError.from_text(f"dtype={dtype!r} is not one of {sorted(_DTYPE_NAMES)}") from None
    return getattr(torch, name)


@contextlib.contextmanager
def quiet_third_party(quiet: bool = False) -> Iterator[None]:
    """Hide transformers' and diffusers' notices while the block runs (e.g. the missing-torchvision one).

    With ``quiet``, their progress bars ("Loading pipeline components", weight loading) are hidden too.
    """
    import diffusers.utils.logging as diffusers_logging
    import transformers

    previous = transformers.logging.get_verbosity()
    previous_diffusers = diffusers_logging.get_verbosity()
    bars = (transformers.utils.logging.is_progress_bar_enabled(), diffusers_logging.is_progress_bar_enabled())
    transformers.logging.set_verbosity_error()
    diffusers_logging.set_verbosity_error()
    if quiet:
        transformers.utils.logging.disable_progress_bar()
        diffusers_logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(previous)
        diffusers_logging.set_verbosity(previous_diffusers)
        if quiet:
            if bars[0]:
                transformers.utils.logging.enable_progress_bar()
            if bars[1]:
                diffusers_logging.enable_progress_bar()


#: optional modules -> the extra of pyproject.toml that installs them (the package alone needs none)
OPTIONAL_MODULES: dict[str, str] = {
    "torchmetrics": "eval",
    "skimage": "eval",
    "matplotlib": "eval",
    "gradio": "app",
    "pytest": "test",
    "playwright": "test",
    "ruff": "test",
    "mypy": "test",
}


class MissingExtraError(ImportError):
    """An optional module is not installed; the message (one line) names the extra that installs it."""


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a finder that refuses it, or a module object without a spec
        return False


def check_extra(program: str, *modules: str) -> None:
    """Raise :class:`MissingExtraError` when one of ``modules`` (keys of :data:`OPTIONAL_MODULES`) is absent.

    ``program`` is what needs them, as the user called it (``benchmarks/removal_quality.py``, ``eval``).
    Checked before any work, so a missing extra never ends a long run in a traceback.
    """
    for module in modules:
        extra = OPTIONAL_MODULES[module]
        if not _importable(module):
            raise MissingExtraError(
                f"{program} needs the {extra!r} extra ({module} is not installed): "
                f"pip install -e '.[{extra}]'",
                name=module,
            )


def require_extra(program: str, *modules: str) -> None:
    """:func:`check_extra` for scripts: a missing module exits with code 2 and one ``error:`` line."""
    try:
        check_extra(program, *modules)
    except MissingExtraError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
