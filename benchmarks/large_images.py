#!/usr/bin/env python
"""Peak memory and wall time of ``attentive-eraser remove`` against the photo's megapixels.

Usage::

    python benchmarks/large_images.py [--quick] [--megapixels 5 12 25 50] [--strategies resize crop]
                                      [--threads 1] [--timeout 1200] [--json PATH]

Each case is one fresh ``python -m attentive_eraser remove IMAGE MASK -o OUT.jpg --strategy S -q`` with
the embedded demo model (no ``--model``) and its preset, exactly as a user runs it: decoding, checks,
model, paste-back at full resolution and the JPEG encode are all inside the figure. This script starts the
child and reaps it with ``os.wait4``, which returns that child's own resource usage: its peak resident set
(``ru_maxrss``), user and system CPU seconds. Wall time is measured around it.

The photos are synthetic and written to a temporary folder: a smooth random landscape upscaled to the
size, a few shapes, grain (so the JPEG holds real detail), and one dark ellipse (the object) covering 3 %
of the area, with its mask as a PNG. A 300x200 photo (0.06 MP) is run first: its peak RSS is the
baseline (interpreter, torch, the model), subtracted in the last column, so what grows with the pixels
shows on its own. ``--quick`` runs the baseline and a 1 MP photo with both strategies (a smoke run).

The machine may be shared: the load average before and after each case is printed beside the figures;
peak RSS does not depend on the load, wall time does (CPU seconds less so).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

BASELINE_SIZE = (300, 200)
#: fraction of the photo the object (and its mask) covers
OBJECT_AREA = 0.03


@dataclass
class Case:
    label: str
    width: int
    height: int
    strategy: str
    wall_s: float
    cpu_s: float
    peak_rss_mib: float
    returncode: int
    load_before: float
    load_after: float

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6


def size_for(megapixels: float) -> tuple[int, int]:
    """A 4:3 ``(width, height)`` of about ``megapixels``, never above it (the default limit is 50 MP)."""
    height = int(math.sqrt(megapixels * 1e6 * 3 / 4))
    width = int(megapixels * 1e6 // height)
    return width, height


def make_photo(size: tuple[int, int], folder: Path, *, seed: int = 0) -> tuple[Path, Path]:
    """Write a synthetic photo (JPEG) of ``size`` and the mask of its object (PNG) into ``folder``."""
    width, height = size
    rng = np.random.default_rng(seed)
    coarse = rng.integers(40, 220, size=(12, 16, 3), dtype=np.uint8)  # (h, w, 3): the landscape's colours
    photo = Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC)
    grain = Image.effect_noise(size, 24).convert("RGB")  # C-level gaussian grain, no float copy here
    photo = Image.blend(photo, grain, 0.15)
    draw = ImageDraw.Draw(photo)
    draw.ellipse((0.08 * width, 0.08 * height, 0.22 * width, 0.28 * height), fill=(250, 230, 150))
    draw.rectangle((0.05 * width, 0.6 * height, 0.35 * width, 0.95 * height), fill=(90, 70, 60))
    # The object: an ellipse of OBJECT_AREA of the photo, pi·a·b = area·W·H with a = 0.12·W.
    centre_x, centre_y, radius_x = 0.62 * width, 0.55 * height, 0.12 * width
    radius_y = OBJECT_AREA * width * height / (math.pi * radius_x)
    box = (centre_x - radius_x, centre_y - radius_y, centre_x + radius_x, centre_y + radius_y)
    draw.ellipse(box, fill=(20, 20, 30))
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).ellipse(box, fill=255)
    stem = f"photo_{width}x{height}"
    image_path, mask_path = folder / f"{stem}.jpg", folder / f"{stem}_mask.png"
    photo.save(image_path, quality=92)
    mask.save(mask_path)
    return image_path, mask_path


def run_case(
    label: str,
    image: Path,
    mask: Path,
    strategy: str,
    folder: Path,
    *,
    threads: int,
    timeout: float,
) -> Case:
    """Run one removal in a fresh interpreter; its peak RSS, CPU seconds and wall time."""
    with Image.open(image) as opened:
        width, height = opened.size
    output = folder / f"{image.stem}_{strategy}_out.jpg"
    command = [sys.executable, "-m", "attentive_eraser", "remove", str(image), str(mask)]
    command += ["-o", str(output), "--strategy", strategy, "--device", "cpu", "-q", "--overwrite"]
    environment = {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "OMP_WAIT_POLICY": "PASSIVE",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    log = folder / f"{image.stem}_{strategy}.log"
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    with open(log, "wb") as errors_file:  # a file, not a pipe: a chatty child can never block on it
        child = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=errors_file)
    deadline = start + timeout
    while True:
        # wait4 with WNOHANG: the child's own rusage once it ends, so a timeout can still kill it.
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid == child.pid:
            break
        if time.perf_counter() > deadline:
            child.kill()
            pid, status, usage = os.wait4(child.pid, 0)
            break
        time.sleep(0.05)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here: tell Popen, so it does not wait
    if child.returncode != 0:
        errors = log.read_text(encoding="utf-8", errors="replace")
        print(f"{label} {strategy}: exit {child.returncode}\n{errors[-2000:]}", file=sys.stderr)
    return Case(
        label=label,
        width=width,
        height=height,
        strategy=strategy,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_mib=usage.ru_maxrss / 1024,  # Linux reports KiB
        returncode=child.returncode,
        load_before=load_before,
        load_after=os.getloadavg()[0],
    )


def markdown(cases: list[Case], baseline: Case) -> str:
    """The table: one row per case, the baseline first."""
    lines = [
        "| MP | size | strategy | wall s | CPU s | peak RSS MiB | above baseline MiB | RGB MiB | load |",
        "|---:|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for case in [baseline, *cases]:
        failed = "" if case.returncode == 0 else f" (exit {case.returncode})"
        above = case.peak_rss_mib - baseline.peak_rss_mib
        lines.append(
            f"| {case.megapixels:.2f} | {case.width}×{case.height} | {case.strategy}{failed} | "
            f"{case.wall_s:.1f} | {case.cpu_s:.1f} | {case.peak_rss_mib:.0f} | "
            f"{'—' if case is baseline else f'{above:.0f}'} | {3 * case.width * case.height / 2**20:.0f} | "
            f"{case.load_before:.1f} → {case.load_after:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="baseline and 1 MP only (a smoke run)")
    parser.add_argument("--megapixels", type=float, nargs="+", default=[5, 12, 25, 50])
    parser.add_argument("--strategies", nargs="+", choices=["resize", "crop"], default=["resize", "crop"])
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of each run (default 1)")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds before a case is killed")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    arguments = parser.parse_args(argv)
    megapixels = [1.0] if arguments.quick else arguments.megapixels

    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {arguments.threads} thread(s); load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    cases: list[Case] = []
    with tempfile.TemporaryDirectory(prefix="large_images_") as temporary:
        folder = Path(temporary)
        options = {"threads": arguments.threads, "timeout": arguments.timeout}
        image, mask = make_photo(BASELINE_SIZE, folder)
        baseline = run_case("baseline", image, mask, "resize", folder, **options)
        print(f"baseline: {baseline.peak_rss_mib:.0f} MiB, {baseline.wall_s:.1f} s", flush=True)
        for value in megapixels:
            image, mask = make_photo(size_for(value), folder)
            for strategy in arguments.strategies:
                case = run_case(f"{value:g} MP", image, mask, strategy, folder, **options)
                cases.append(case)
                print(
                    f"{case.megapixels:.2f} MP {strategy}: {case.wall_s:.1f} s, {case.peak_rss_mib:.0f} MiB",
                    flush=True,
                )
            image.unlink()
            mask.unlink()
    print()
    print(markdown(cases, baseline))
    if arguments.json is not None:
        records = [asdict(case) for case in [baseline, *cases]]
        arguments.json.write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
    return 0 if all(case.returncode == 0 for case in [baseline, *cases]) else 1


if __name__ == "__main__":
    sys.exit(main())
