"""The optimisation both stages share: AdamW, the warm-up + cosine learning-rate schedule, and the EMA."""

from __future__ import annotations

import copy
import math
from typing import Generic, TypeVar

import torch

from .config import TrainingConfig


def lr_factor(step: int, total: int, warmup: int, final_fraction: float) -> float:
    """Learning-rate factor: linear warm-up over ``warmup`` steps, then cosine decay to ``final_fraction``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def adamw(
    model: torch.nn.Module, learning_rate: float, weight_decay: float, config: TrainingConfig, total: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW on ``model``'s parameters, with the :func:`lr_factor` schedule over ``total`` steps."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total, config.warmup_steps, config.final_lr_fraction)
    )
    return optimizer, schedule


_Model = TypeVar("_Model", bound=torch.nn.Module)


class ExponentialMovingAverage(Generic[_Model]):
    """An EMA copy of a model's parameters, with the usual warm-up ``min(decay, (1 + n) / (10 + n))``."""

    def __init__(self, model: _Model, decay: float) -> None:
        self.model: _Model = copy.deepcopy(model).requires_grad_(False).eval()
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for average, current in zip(self.model.parameters(), model.parameters(), strict=False):
            average.lerp_(current, 1 - decay)
