"""Loading a model's weights from a hub id or a local folder, every failure as one ``InputError``.

Offline (``HF_HUB_OFFLINE=1``) a hub id must already be in the cache; a folder must hold ``config.json``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .. import imaging

Loaded = TypeVar("Loaded")


def source_error(
    argument: str, spec: str, source: str, error: BaseException | None = None
) -> imaging.InputError:
    """The error for weights that are neither here nor fetchable (saying whether offline mode is why)."""
    names = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    offline = any(os.environ.get(name, "") not in ("", "0") for name in names)
    detail = f" ({type(error).__name__})" if error is not None else ""
    where = "the hub is unreachable in offline mode (HF_HUB_OFFLINE=1)" if offline else "could not be fetched"
    return imaging.InputError(
        argument,
        f"{spec!r}: the weights {source!r} are not on this machine and "
        f"{where}{detail}; download them once (huggingface-cli download {source}) or pass a "
        "local folder",
    )


def check_source(argument: str, spec: str, source: str) -> Path | str:
    """A local folder holding ``config.json``, or a hub id; anything else raises ``InputError``."""
    if not source:
        raise imaging.InputError(
            argument, f"{spec!r} names no model: give a hub id or a local folder after the ':'"
        )
    path = Path(source).expanduser()
    if path.exists():
        if not path.is_dir():
            raise imaging.InputError(
                argument,
                f"{spec!r}: {source!r} is a file; give the model's folder "
                "(config.json, model.safetensors, processor files)",
            )
        if not (path / "config.json").is_file():
            raise imaging.InputError(argument, f"{spec!r}: the folder {source!r} has no config.json")
        return path
    if not re.fullmatch(r"[A-Za-z0-9][\w.\-]*/[\w.\-]+", source):
        raise imaging.InputError(
            argument, f"{spec!r}: {source!r} is neither a local folder nor a hub id (owner/name)"
        )
    return source


def load_pretrained(argument: str, spec: str, source: str, loader: Callable[[str], Loaded]) -> Loaded:
    """``loader(source)`` with missing weights, offline mode or damaged files as one ``InputError``."""
    checked = check_source(argument, spec, source)
    try:
        return loader(str(checked))
    except OSError as error:
        if isinstance(checked, Path):
            message = " ".join(str(error).split())[:200]
            raise imaging.InputError(argument, f"{spec!r}: cannot load {source!r}: {message}") from None
        raise source_error(argument, spec, source, error) from None
    except ImportError as error:
        raise imaging.InputError(
            argument, f"{spec!r}: {source!r} needs a missing package: {' '.join(str(error).split())[:200]}"
        ) from None
    except (ValueError, KeyError) as error:
        raise imaging.InputError(
            argument,
            f"{spec!r}: {source!r} could not be loaded "
            f"({type(error).__name__}: {' '.join(str(error).split())[:200]})",
        ) from None


def resolve_device(device: Any) -> Any:
    """The torch device ``device`` names (``None``: the best one here)."""
    from .. import runtime

    return runtime.resolve_device(device)
