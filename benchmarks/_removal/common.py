"""What the removal benchmarks share around a run: paths, seeds, loading the pipelines, the closing line."""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
#: how the error lines name this script
PROGRAM = "benchmarks/removal_quality.py"
DEFAULT_SEEDS = (123, 321, 777)


def shown(path: Path) -> str:
    """``path`` relative to the repository when inside it (tables stay the same on every machine)."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def default_model() -> Path:
    import attentive_eraser

    return Path(attentive_eraser.__file__).resolve().parent / "demo_model"


def load_pipelines(model: Path, threads: int | None, preset: str | None = None) -> tuple[Any, Any] | None:
    """SIP and DIP pipelines (sharing weights) of ``model`` on the CPU, the libraries quiet; ``None`` (after
    an ``error:`` line) when ``model`` is not a diffusers folder. ``threads`` sets torch's and OpenCV's."""
    import cv2
    import torch
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    from attentive_eraser.api import load_pipeline

    if threads is not None:
        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)
    # Loading bars and deprecation chatter are not what the benchmarks report.
    diffusers_logging.disable_progress_bar()
    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    logging.getLogger("attentive_eraser").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)
    if not (model / "model_index.json").is_file():
        print(
            f"error: no diffusers model at {model} (train the demo model, or pass --model DIR)",
            file=sys.stderr,
        )
        return None
    sip = load_pipeline(model, method="sip", device="cpu", dtype="fp32")
    dip = load_pipeline(model, method="dip", device="cpu", dtype="fp32")  # shares sip's weights
    for pipe in (sip, dip):
        pipe.set_progress_bar_config(disable=True)
        if preset is not None:
            from attentive_eraser.settings import get_preset

            pipe.preset = get_preset(preset)
    return sip, dip


def announce(table: str, written: Sequence[Path], seconds: float) -> None:
    """Print ``table``, then (on stderr) the files written and how long the run took."""
    print(table, end="")
    print(f"\nwrote {', '.join(map(str, written))} in {seconds:.1f} s", file=sys.stderr)
