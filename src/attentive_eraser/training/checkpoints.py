"""Checkpoints: a stage's training state, written atomically, and read back to resume a killed run."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data import SceneBatches
from .optim import ExponentialMovingAverage


@dataclass(frozen=True)
class Checkpoints:
    """Where a run keeps its training state, how often it saves it, and whether to continue from it."""

    folder: Path
    every: int = 250
    resume: bool = False

    def path(self, stage: str) -> Path:
        return self.folder / f"{stage}.pt"

    def load(self, stage: str) -> dict[str, Any] | None:
        """The saved state of ``stage`` when resuming and one exists (tensors and plain values only)."""
        path = self.path(stage)
        if not self.resume or not path.is_file():
            return None
        return torch.load(path, map_location="cpu", weights_only=True)

    def save(self, stage: str, state: dict[str, Any]) -> None:
        """Write ``state`` atomically: a killed run never leaves a half-written checkpoint."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(stage)
        partial = path.with_name(path.name + ".partial")
        torch.save(state, partial)
        os.replace(partial, path)

    def saved_step(self, stage: str) -> int:
        """The step of ``stage``'s checkpoint (0 without one); loads the checkpoint, so call it once."""
        state = self.load(stage)
        return 0 if state is None else int(state["progress"]["step"])


def _numpy_state(rng: np.random.Generator) -> dict[str, Any]:
    """A numpy generator's state as plain values (its 128-bit integers as strings: safe to load)."""
    state = rng.bit_generator.state
    return {
        "bit_generator": state["bit_generator"],
        "state": str(state["state"]["state"]),
        "inc": str(state["state"]["inc"]),
        "has_uint32": state["has_uint32"],
        "uinteger": state["uinteger"],
    }


def _set_numpy_state(rng: np.random.Generator, saved: dict[str, Any]) -> None:
    rng.bit_generator.state = {
        "bit_generator": saved["bit_generator"],
        "state": {"state": int(saved["state"]), "inc": int(saved["inc"])},
        "has_uint32": saved["has_uint32"],
        "uinteger": saved["uinteger"],
    }


@dataclass(frozen=True)
class StageState:
    """The live objects of a training stage that its checkpoint saves and restores."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LambdaLR
    generator: torch.Generator
    batches: SceneBatches
    #: the EMA of the weights (the UNet stage's; None for the VAE)
    ema: ExponentialMovingAverage[Any] | None = None

    def state_dict(self, progress: dict[str, Any]) -> dict[str, Any]:
        """The checkpoint: the live objects' states and ``progress`` (what ``run_steps`` resumes from)."""
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "generator": self.generator.get_state(),
            "scenes": _numpy_state(self.batches.rng),
            "progress": progress,
        }
        if self.ema is not None:
            state.update(ema=self.ema.model.state_dict(), ema_updates=self.ema.updates)
        return state

    def restore(self, saved: dict[str, Any] | None) -> dict[str, Any] | None:
        """Load a checkpoint into the live objects; returns its ``progress`` part (None: a fresh start)."""
        if saved is None:
            return None
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.schedule.load_state_dict(saved["schedule"])
        self.generator.set_state(saved["generator"])
        _set_numpy_state(self.batches.rng, saved["scenes"])
        if self.ema is not None:
            self.ema.model.load_state_dict(saved["ema"])
            self.ema.updates = int(saved["ema_updates"])
        return saved["progress"]
