"""Measuring a call: peak memory, the clock, and variants timed in interleaved turns."""

from __future__ import annotations

import gc
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import torch


class PeakMemory:
    """Peak memory of this process during a call: CPU resident set (Linux), or the CUDA allocator's peak."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._sampler: threading.Thread | None = None
        self._sampled = 0
        self._stop = threading.Event()
        self.method = "torch.cuda.max_memory_allocated" if device.type == "cuda" else self._cpu_method()

    @staticmethod
    def _cpu_method() -> str:
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")  # 5 = reset the resident-set high-water mark (Linux >= 4.0)
            return "RSS high-water mark (/proc/self/status VmHWM, reset per call)"
        except OSError:
            return "RSS sampled every 2 ms"

    @staticmethod
    def _status(field_name: str) -> int:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) * 1024
        return 0

    @staticmethod
    def _rss() -> int:
        try:
            return PeakMemory._status("VmRSS")
        except OSError:  # not Linux
            import resource

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def current(self) -> int:
        if self.device.type == "cuda":
            return torch.cuda.memory_allocated(self.device)
        return self._rss()

    def reset(self) -> None:
        """Start a new peak at the current usage."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        elif self.method.startswith("RSS high"):
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
        else:
            self._stop.clear()
            self._sampled = self._rss()
            self._sampler = threading.Thread(target=self._sample, daemon=True)
            self._sampler.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self._sampled = max(self._sampled, self._rss())

    def peak(self) -> int:
        """Peak bytes since :meth:`reset`."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            return torch.cuda.max_memory_allocated(self.device)
        if self.method.startswith("RSS high"):
            return self._status("VmHWM")
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join()
        return max(self._sampled, self._rss())


@dataclass(frozen=True)
class Clock:
    """What "seconds" means in the tables."""

    name: str
    read: Callable[[], float]


#: CPU time of the whole process (user + system, every thread): what a step costs the machine, hardly
#: affected by other programs competing for the cores (their time is not counted, unlike wall time)
PROCESS_TIME = Clock("CPU time of this process (user + system, all threads)", time.process_time)
WALL_TIME = Clock("wall-clock time", time.perf_counter)


@dataclass(frozen=True)
class Setup:
    """Where and how everything is measured."""

    device: torch.device
    dtype: torch.dtype
    memory: PeakMemory
    clock: Clock

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


@dataclass
class Variant:
    """One way of running a step: a context that installs its processors, and the call to time."""

    context: Callable[[], AbstractContextManager[Any]]
    call: Callable[[], torch.Tensor | None]


@dataclass
class Measurement:
    #: per call, on the setup's clock
    seconds: list[float] = field(default_factory=list)
    #: per call, wall-clock
    wall: list[float] = field(default_factory=list)
    #: highest absolute peak over the timed calls
    peak: int = 0
    #: highest (peak - usage before the call) over the timed calls
    working: int = 0
    output: torch.Tensor | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def wall_median(self) -> float:
        return statistics.median(self.wall)


def measure(
    variants: dict[str, Variant], *, repeats: int, warmup: Sequence[str], setup: Setup
) -> dict[str, Measurement]:
    """Time each variant ``repeats`` times in rotating order, after a warm-up call of each ``warmup`` one."""
    results = {name: Measurement() for name in variants}
    names = list(variants)
    rounds: list[tuple[bool, list[str]]] = [(False, list(warmup))]
    for index in range(repeats):
        shift = index % len(names)
        rounds.append((True, names[shift:] + names[:shift]))  # a b c, b c a, c a b, ...
    gc.collect()  # once: tensors are freed by reference counting, and a full collection takes ~0.2 s
    with torch.inference_mode():
        for timed, order in rounds:
            for name in order:
                variant, result = variants[name], results[name]
                with variant.context():
                    setup.synchronize()
                    before = setup.memory.current()
                    setup.memory.reset()
                    start, wall_start = setup.clock.read(), time.perf_counter()
                    output = variant.call()
                    setup.synchronize()
                    elapsed, wall = setup.clock.read() - start, time.perf_counter() - wall_start
                    peak = setup.memory.peak()
                if timed:
                    result.seconds.append(elapsed)
                    result.wall.append(wall)
                    result.peak = max(result.peak, peak)
                    result.working = max(result.working, peak - before)
                result.output = None if output is None else output.float().cpu()
                del output
    return results


def time_call(call: Callable[[], Any], setup: Setup) -> float:
    """Seconds of one call of ``call`` on the setup's clock."""
    setup.synchronize()
    start = setup.clock.read()
    call()
    setup.synchronize()
    return setup.clock.read() - start
