"""What both training stages share: their seeds, the result they report, and the step loop.

The loop logs every step's loss, runs the stage's validations, times the steps, and saves and resumes the
stage's checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .checkpoints import Checkpoints, StageState
from .log import LossLog

#: stage ids: each stage draws its weights, data and noise from seeds derived from (seed, stage id)
VAE_STAGE, UNET_STAGE, TEXT_STAGE, SAMPLES_STAGE = 1, 2, 3, 4
#: the mean step time leaves out these first steps (allocations, lazy initialisation)
_TIMING_WARMUP_STEPS = 3
#: validations per stage (written to the loss log)
_VALIDATIONS = 10


def stage_seed(seed: int, stage: int) -> int:
    """A 32-bit seed for one stage of the run ``seed``; stages get independent streams."""
    return int(np.random.SeedSequence([seed, stage]).generate_state(1)[0])


@dataclass
class StageResult:
    """What one training stage reports (saved into ``training_config.json``)."""

    steps: int = 0
    seconds: float = 0.0
    seconds_per_step: float | None = None
    #: the loss averaged over about the last 20 steps (exponential moving average, 0.95)
    final_loss: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)


def run_steps(
    name: str,
    steps: int,
    step_fn: Callable[[], float],
    log: LossLog,
    progress: bool,
    validate: Callable[[int], dict[str, float]] | None = None,
    resumed: dict[str, Any] | None = None,
    save: Callable[[dict[str, Any]], None] | None = None,
    save_every: int = 0,
) -> StageResult:
    """Call ``step_fn`` ``steps`` times with a progress bar, logging every loss and timing the steps.

    ``resumed`` (the ``progress`` part of a checkpoint) continues after its step; ``save(progress)`` is
    called every ``save_every`` steps with what ``resumed`` needs.
    """
    result = StageResult(steps=steps)
    smoothed: float | None = None
    durations = []
    first, done_seconds = 1, 0.0
    if resumed is not None:
        first = int(resumed["step"]) + 1
        smoothed = resumed["smoothed"]
        done_seconds = float(resumed["seconds"])
        result.metrics = dict(resumed["metrics"])
    start = time.perf_counter()
    bar = tqdm(
        range(first, steps + 1),
        desc=name,
        disable=not progress,
        dynamic_ncols=True,
        initial=first - 1,
        total=steps,
    )
    for step in bar:
        tick = time.perf_counter()
        loss = step_fn()
        durations.append(time.perf_counter() - tick)
        smoothed = loss if smoothed is None else 0.95 * smoothed + 0.05 * loss
        log.write(stage=name, step=step, loss=loss, seconds=round(durations[-1], 4))
        bar.set_postfix(loss=f"{smoothed:.4f}")
        if validate is not None and (step % max(1, steps // _VALIDATIONS) == 0 or step == steps):
            metrics = validate(step)
            log.write(stage=name, step=step, **metrics)
            result.metrics = metrics
        if save is not None and save_every and (step % save_every == 0 or step == steps):
            save(
                {
                    "step": step,
                    "smoothed": smoothed,
                    "metrics": result.metrics,
                    "seconds": done_seconds + time.perf_counter() - start,
                }
            )
    bar.close()
    result.seconds = done_seconds + time.perf_counter() - start
    timed = durations[_TIMING_WARMUP_STEPS:] or durations
    result.seconds_per_step = float(np.mean(timed)) if timed else None
    result.final_loss = smoothed
    return result


def run_stage(
    name: str,
    steps: int,
    step_fn: Callable[[], float],
    log: LossLog,
    progress: bool,
    validate: Callable[[int], dict[str, float]],
    state: StageState,
    checkpoints: Checkpoints | None,
) -> StageResult:
    """:func:`run_steps` for the stage ``name``; with ``checkpoints``, it continues from the stage's
    checkpoint (when resuming and one exists) and saves ``state`` every ``checkpoints.every`` steps."""
    if checkpoints is None:
        return run_steps(name, steps, step_fn, log, progress, validate)
    resumed = state.restore(checkpoints.load(name))

    def save(done: dict[str, Any]) -> None:
        checkpoints.save(name, state.state_dict(done))

    return run_steps(
        name,
        steps,
        step_fn,
        log,
        progress,
        validate,
        resumed=resumed,
        save=save,
        save_every=checkpoints.every,
    )
