#!/usr/bin/env python
"""Seconds per image of the default settings against ``fast`` ones, SIP and DIP, side by side in one run.

Usage::

    python benchmarks/fast_speed.py [--quick] [--sd21-size 512] [--repeats 3] [--threads N]
                                    [--markdown PATH]

Models: the real-size SD 2.1 (base) UNet built from its published config with random weights (time does
not depend on weight values; the VAE and text encoder are the tiny test ones, so the figure is the UNet's
cost, which is nearly all of a run), at ``--sd21-size`` pixels; and the embedded demo model at its 64 px.

Settings: the model's preset (SIP: 50 DDIM steps × 0.8 = 40 UNet evaluations; DIP: 50 inversion + 50
sampling steps = 100) against the same preset with :data:`attentive_eraser.settings.FAST_KNOBS`. Each
call is timed whole (encode, every step, decode, paste-back); the four calls of a model are run in
interleaved turns (a, b, c, d, then d, c, b, a, ...) so that a busy machine slows them alike, and the median
of ``--repeats`` is shown, both as wall-clock time and as this process's CPU time. Compare the ratios.

``--quick`` times the demo model only, once (a smoke run for the tests).
"""

from __future__ import annotations

import os

# Before torch loads its OpenMP runtime: spinning workers slow everything on a shared CPU machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import PIL.Image  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    model: str
    size: int
    method: str
    default_evaluations: int
    fast_evaluations: int
    default_wall: float
    fast_wall: float
    default_cpu: float
    fast_cpu: float

    @property
    def speedup(self) -> float:
        return self.default_wall / self.fast_wall


def evaluations(method: str, knobs: dict[str, Any]) -> int:
    """UNet evaluations of a call: the steps run (SIP), inversion + sampling steps (DIP)."""
    run = min(int(knobs["num_inference_steps"] * knobs["strength"]), knobs["num_inference_steps"])
    return run if method == "sip" else 2 * run


def scene(size: int) -> tuple[PIL.Image.Image, np.ndarray]:
    """A smooth random photo of ``size``² and a centred box mask of 15 % of it."""
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, size=(max(2, size // 16), max(2, size // 16), 3), dtype=np.uint8)
    image = PIL.Image.fromarray(coarse).resize((size, size), PIL.Image.BILINEAR)
    mask = np.zeros((size, size), dtype=bool)
    side = round(size * 0.15**0.5)
    start = (size - side) // 2
    mask[start : start + side, start : start + side] = True
    return image, mask


def _timed(call: Callable[[], Any]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    return time.perf_counter() - wall, time.process_time() - cpu


def bench(name: str, sip: Any, dip: Any, size: int, repeats: int) -> list[Row]:
    import torch

    from attentive_eraser.settings import knob_values

    image, mask = scene(size)
    calls: dict[tuple[str, bool], Callable[[], Any]] = {}
    counts: dict[tuple[str, bool], int] = {}
    for method, pipe in (("sip", sip), ("dip", dip)):
        pipe.set_progress_bar_config(disable=True)
        for fast in (False, True):
            knobs = knob_values(method, {}, fast=fast)
            counts[method, fast] = evaluations(method, {**pipe.preset.for_method(method), **knobs})
            extra = {"generator": torch.Generator().manual_seed(123)} if method == "sip" else {}

            def call(pipe: Any = pipe, knobs: dict[str, Any] = knobs, extra: dict[str, Any] = extra) -> Any:
                return pipe(image, mask, resolution=size, **knobs, **extra)

            calls[method, fast] = call
    order = list(calls)
    times: dict[tuple[str, bool], list[tuple[float, float]]] = {key: [] for key in order}
    for turn in range(repeats):
        for key in order if turn % 2 == 0 else order[::-1]:
            times[key].append(_timed(calls[key]))
    rows = []
    for method in ("sip", "dip"):
        default = times[method, False]
        fast = times[method, True]
        rows.append(
            Row(
                name,
                size,
                method,
                counts[method, False],
                counts[method, True],
                statistics.median(t[0] for t in default),
                statistics.median(t[0] for t in fast),
                statistics.median(t[1] for t in default),
                statistics.median(t[1] for t in fast),
            )
        )
        row = rows[-1]
        print(
            f"  {name} {method.upper()}: default {row.default_wall:.2f} s ({row.default_evaluations} evals), "
            f"fast {row.fast_wall:.2f} s ({row.fast_evaluations} evals), {row.speedup:.2f}x",
            file=sys.stderr,
            flush=True,
        )
    return rows


def render(rows: Sequence[Row], threads: int, repeats: int) -> str:
    lines = [
        "| model | size | method | UNet evaluations, default → fast | wall s / image, default | fast "
        "| speed-up | CPU s / image, default | fast |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.model} | {row.size} px | {row.method.upper()} | {row.default_evaluations} → "
            f"{row.fast_evaluations} | {row.default_wall:.2f} | {row.fast_wall:.2f} | {row.speedup:.2f}× "
            f"| {row.default_cpu:.2f} | {row.fast_cpu:.2f} |"
        )
    lines += [
        "",
        f"Median of {repeats} interleaved run(s) per cell, {threads} torch thread(s); a whole call per image "
        "(encode, steps, decode, paste-back).",
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="the demo model only, one repeat")
    parser.add_argument("--sd21-size", type=int, default=512, help="working size of the SD 2.1 rows (px)")
    parser.add_argument("--repeats", type=int, default=None, help="runs per cell (default 3; quick: 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the table here")
    args = parser.parse_args(argv)
    args.repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.sd21_size < 64 or args.sd21_size % 64:
        parser.error("--sd21-size must be a positive multiple of 64")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()
    from attentive_eraser.api import DEMO_MODEL, load_pipeline
    from attentive_eraser.pipelines import AttentiveEraserDIPPipeline, AttentiveEraserSIPPipeline

    rows: list[Row] = []
    demo_sip = load_pipeline(str(DEMO_MODEL), method="sip", device="cpu", dtype="fp32")
    demo_dip = load_pipeline(str(DEMO_MODEL), method="dip", device="cpu", dtype="fp32")
    rows += bench("demo model", demo_sip, demo_dip, demo_sip.preset.resolution, args.repeats)
    if not args.quick:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from speed import SD21_UNET, build_unet, sd21_components

        components = sd21_components(build_unet(SD21_UNET, torch.device("cpu"), torch.float32))
        sip = AttentiveEraserSIPPipeline(**components)
        dip = AttentiveEraserDIPPipeline(**sip.components)
        rows += bench("SD 2.1 UNet (random weights)", sip, dip, args.sd21_size, args.repeats)
    table = render(rows, torch.get_num_threads(), args.repeats)
    print(table, end="")
    if args.markdown is not None:
        args.markdown.write_text(table, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
