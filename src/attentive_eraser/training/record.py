"""The run record, ``training_config.json``: config, seed, versions, resumptions, and each stage's results."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import TrainingConfig
from .loop import StageResult


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def versions() -> dict[str, str]:
    """Python, the platform, the libraries, the package, and the git commit of the checkout (if any)."""
    import diffusers
    import transformers

    from .. import __version__

    found = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
        "attentive_eraser": __version__,
    }
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if commit.returncode == 0:
            found["git_commit"] = commit.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return found


def read_record(path: Path, config: TrainingConfig) -> dict[str, Any]:
    """The record of the run being resumed, whose config ``config`` must equal."""
    if not path.is_file():
        raise FileNotFoundError(f"nothing to resume: {path} does not exist")
    previous: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if TrainingConfig.from_dict(previous["config"]) != config:
        raise ValueError(f"resume: the config differs from the one in {path}")
    return previous


def new_record(
    config: TrainingConfig,
    device: torch.device,
    vae_from: str | os.PathLike[str] | None,
    command: Sequence[str] | None,
) -> dict[str, Any]:
    """The record of a run as it starts."""
    return {
        "config": config.to_dict(),
        "seed": config.seed,
        "device": str(device),
        "num_threads": torch.get_num_threads(),
        "vae_from": None if vae_from is None else str(vae_from),
        "command": list(command) if command is not None else None,
        "started": _now(),
        "versions": versions(),
    }


def note_resume(
    record: dict[str, Any],
    previous: dict[str, Any],
    command: Sequence[str] | None,
    vae_done: bool,
    unet_step: int,
) -> None:
    """Make ``record`` continue ``previous``: its start and command, and one more ``resumed`` entry."""
    record["started"] = previous["started"]
    record["command"] = previous["command"]
    record["resumed"] = [
        *previous.get("resumed", []),
        {
            "at": _now(),
            "command": list(command) if command is not None else None,
            "vae_done": vae_done,
            "unet_step": unet_step,
        },
    ]


def _folder_megabytes(path: Path) -> float:
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file()) / 1e6


def note_results(
    record: dict[str, Any],
    vae: StageResult,
    unet: StageResult,
    modules: Sequence[tuple[str, torch.nn.Module]],
    model_dir: Path,
) -> None:
    """Add the finish time, the stages' results, the parameter counts and the saved model's size."""
    record["finished"] = _now()
    record["results"] = {
        "vae": asdict(vae),
        "unet": asdict(unet),
        "parameters": {name: sum(p.numel() for p in module.parameters()) for name, module in modules},
        "model_megabytes": round(_folder_megabytes(model_dir), 2),
    }


def write_record(path: Path, record: dict[str, Any]) -> None:
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
