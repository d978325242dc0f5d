#!/usr/bin/env python
"""Speed and memory of Attentive Eraser, side by side with the authors' eager attention and the plain UNet.

Usage::

    python benchmarks/speed.py [--quick] [--device cpu|cuda] [--dtype fp32|fp16|bf16] [--markdown PATH]
                               [--sdxl-size PX] [--repeats K] [--clock cpu|wall]

Every figure of one table comes from one run, the variants of a row measured in interleaved turns (a, b,
c, then b, c, a, ...) so that a busy machine slows them alike; compare ratios, not absolute seconds. On CPU
the seconds are this process's CPU time (other programs sharing the cores do not inflate it), on CUDA
synchronised wall-clock time.

Rows of the per-step table, for one image at each size:

* **ours**: one SIP step with SARG -- the UNet on ``[plain, erased]`` (batch 2) with the package's processor
  installed by :func:`attentive_eraser.core.layers.eraser_attention`, Similarity Suppression on
  (step 0 < T_SS), a centred box mask of 15 % of the image, then Eq. 18, the DDIM step and the background
  blend;
* **eager**: the same step with :mod:`attentive_eraser.testing.eager_reference` (explicit ``N x N``
  logits, mask added, softmax, lambda-softmax combined row by row -- the authors' way) installed on the
  same decoder layers;
* **floor**: a plain diffusers UNet forward at the same batch of 2 with the stock processor. SARG cannot
  cost less.

The UNets are the real SD 2.1 (base) and SDXL (base 1.0) architectures, built from their published configs
(in ``_speed/models.py``, SDXL's as its changes to SD 2.1's) with random weights -- time and memory do not
depend on weight values -- plus the tiny test models of :mod:`attentive_eraser.testing.tiny`. Nothing is
downloaded.

Memory: on CPU the process's resident-set high-water mark during the call (Linux resets it through
``/proc/self/clear_refs``), on CUDA ``torch.cuda.max_memory_allocated``. Attention's own extra memory is
measured on one decoder self-attention layer at several sizes and set against its formula.

``--quick`` runs the tiny models only, at small sizes (well under a minute on 2 CPU cores); the test suite
runs it and checks that every row is printed -- never a timing.

This file is the command line; the benchmark's parts live in ``_speed/`` (models, measuring, inputs, the
benchmarks, the plan of a run, the report).
"""

from __future__ import annotations

import os

# Before torch loads its OpenMP runtime: spinning workers slow everything on a shared CPU machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import argparse  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _speed.benches import StepRow  # noqa: E402
from _speed.measuring import PROCESS_TIME, WALL_TIME, PeakMemory, Setup  # noqa: E402
from _speed.models import SD21_UNET, SDXL_UNET, build_unet, sd21_components  # noqa: E402
from _speed.plan import make_plan, run_benchmarks  # noqa: E402
from _speed.report import render, write_markdown  # noqa: E402

#: what other benchmarks take from here (``fast_speed.py`` builds the same SD 2.1 UNet)
__all__ = ["SD21_UNET", "SDXL_UNET", "build_unet", "main", "sd21_components"]

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny models at small sizes only (< 1 min on 2 cores)"
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument(
        "--dtype", choices=tuple(DTYPES), default=None, help="default: fp32 on cpu, fp16 on cuda"
    )
    parser.add_argument(
        "--markdown",
        type=Path,
        action="append",
        default=None,
        help="also write the tables to this file (between its speed.py markers if it has them); repeatable",
    )
    parser.add_argument(
        "--sdxl-size",
        type=int,
        default=None,
        help="SDXL image side in pixels (default: 1024 on cuda, 512 on cpu)",
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed repetitions per variant (default: per row)"
    )
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default=None,
        help="cpu: this process's CPU time, robust on a shared machine (default on cpu); "
        "wall: wall-clock time (always on cuda)",
    )
    return parser.parse_args(argv)


def make_setup(args: argparse.Namespace) -> tuple[Setup, str]:
    """The device, dtype, memory meter and clock of this run (and the dtype's name), torch configured."""
    device = torch.device(args.device)
    dtype_name = args.dtype or ("fp16" if device.type == "cuda" else "fp32")
    dtype = DTYPES[dtype_name]
    if device.type == "cpu" and dtype == torch.float16:
        warnings.warn("fp16 on CPU is slow and partly emulated; use fp32 or bf16 there", stacklevel=1)
    torch.set_flush_denormal(True)  # denormals would slow the CPU unevenly across variants
    # The full-grid warning and tqdm chatter are not what this script reports.
    logging.getLogger("attentive_eraser").setLevel(logging.ERROR)
    clock = PROCESS_TIME if device.type == "cpu" and args.clock != "wall" else WALL_TIME
    return Setup(device=device, dtype=dtype, memory=PeakMemory(device), clock=clock), dtype_name


def publish(table: str, headline: StepRow | None, pages: Sequence[Path]) -> None:
    """Print the tables (and the headline's plain ratio lines), and write them into each markdown page."""
    print()
    print(table)
    if headline is not None:
        # plain lines for scripts (the headline row: SD 2.1 at 512², or tiny sd21 in a quick run)
        print(f"ours/floor {headline.ours_over_floor:.3f}")
        print(f"ours/eager {headline.ours_over_eager:.3f}")
    for page in pages:
        write_markdown(page, table)
        print(f"wrote {page}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but CUDA is not available", file=sys.stderr)
        return 2
    setup, dtype_name = make_setup(args)
    plan = make_plan(args, setup.device)
    results = run_benchmarks(plan, setup, quick=args.quick, started=started)
    table = render(
        args=args,
        setup=setup,
        dtype_name=dtype_name,
        results=results,
        notes=plan.notes,
        elapsed=time.perf_counter() - started,
    )
    publish(table, results.headline, args.markdown or ())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
