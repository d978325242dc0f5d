"""Distributed batch runs: 2 CPU processes under torchrun equal a 1-process run, file for file.

``accelerate launch --cpu --num_processes 2`` starts one process on this machine, so the processes are
started with ``torchrun`` (``python -m torch.distributed.run``); the runner joins them through
``accelerate.PartialState(cpu=True)``. Every run is a subprocess with one thread per process, so float
summation order — hence every output byte — is the same in all runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow  # real processes over torchrun

FAST = ["--resolution", "64", "--batch-size", "2", "--quiet"]
ENVIRONMENT = {
    **os.environ,
    "OMP_NUM_THREADS": "1",
    "OMP_WAIT_POLICY": "PASSIVE",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}


def batch(
    *args: object, processes: int = 1, wait: bool = True
) -> subprocess.CompletedProcess | subprocess.Popen:
    launcher = (
        [sys.executable, "-m", "attentive_eraser"]
        if processes == 1
        else [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            str(processes),
            "-m",
            "attentive_eraser",
        ]
    )
    command = [*launcher, "batch", *[str(arg) for arg in args]]
    if not wait:
        return subprocess.Popen(
            command,
            env=ENVIRONMENT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    return subprocess.run(command, env=ENVIRONMENT, capture_output=True, text=True, timeout=300)


def report(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "batch-report.jsonl").read_text().splitlines()]


def outputs(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.suffix == ".png" and not path.name.startswith(".")
    }


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """11 good items of two sizes (so batches of different sizes) and one unreadable image."""
    root = tmp_path_factory.mktemp("distributed") / "in"
    (root / "sub").mkdir(parents=True)
    for index in range(11):
        width, height = (96, 64) if index % 3 == 0 else (64, 64)
        folder = root / "sub" if index % 4 == 0 else root
        rng = np.random.default_rng(index)
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(
            folder / f"img{index:02d}.png"
        )
        mask = np.zeros((height, width), np.uint8)
        mask[16 + index : 40, 20:44] = 255
        Image.fromarray(mask).save(folder / f"img{index:02d}_mask.png")
    (root / "zz_broken.png").write_bytes(b"not an image")
    Image.fromarray(mask).save(root / "zz_broken_mask.png")
    return root


@pytest.fixture(scope="module")
def reference(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 1-process run."""
    out = tmp_path_factory.mktemp("one") / "out"
    completed = batch(source, "-o", out, "--steps", "4", *FAST)
    assert completed.returncode == 1, completed.stdout + completed.stderr  # zz_broken.png fails
    return out


def test_two_processes_equal_one_file_for_file(source: Path, reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    completed = batch(source, "-o", out, "--steps", "4", *FAST, processes=2)
    log = completed.stdout + completed.stderr
    assert completed.returncode != 0, log  # the failed item makes every process exit 1
    assert "12 items: 11 done, 0 skipped, 1 failed" in log and "2 processes" in log

    assert outputs(out) == outputs(reference)  # same names, same bytes
    assert len(outputs(out)) == 11
    records = report(out)
    assert [r["id"] for r in records] == sorted(r["id"] for r in records)  # merged, sorted
    assert len({r["id"] for r in records}) == len(records) == 12  # each item exactly once
    done = [r for r in records if r["status"] == "done"]
    assert {r["rank"] for r in done} == {0, 1}  # both processes worked...
    by_output: dict[str, set[int]] = {}
    for r in done:
        by_output.setdefault(r["output"], set()).add(r["rank"])
    assert all(len(ranks) == 1 for ranks in by_output.values())  # ...and never on the same file
    assert [r["status"] for r in records if r["id"] == "zz_broken.png"] == ["failed"]
    assert not [path for path in out.rglob(".*")]  # no report parts, no temporary files left
    # the reference's report agrees on seeds: they depend on the item only
    assert {r["id"]: r["seed"] for r in records} == {r["id"]: r["seed"] for r in report(reference)}


def test_a_crashed_process_loses_only_its_work_in_flight(
    source: Path, reference: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    # More steps make each item take a moment, so the kill lands mid-run.
    run = batch(source, "-o", out, "--steps", "20", *FAST, processes=2, wait=False)
    deadline = time.monotonic() + 120
    while not any(out.rglob("img*.png")) and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    workers = subprocess.run(["pgrep", "-P", str(run.pid)], capture_output=True, text=True).stdout.split()
    assert workers, "torchrun's workers were not found"
    os.kill(int(workers[-1]), signal.SIGKILL)  # one worker dies; torchrun then stops the other
    log, _ = run.communicate(timeout=120)
    assert run.returncode != 0, log
    finished = set(outputs(out))
    assert finished and len(finished) < 11, finished  # some work survived, some was lost
    for name in finished:
        with Image.open(out / name) as image:
            image.load()  # atomic writes: whatever exists is whole

    completed = batch(source, "-o", out, "--steps", "20", *FAST, processes=2)
    records = report(out)
    assert completed.returncode != 0  # zz_broken.png still fails
    assert {r["id"] for r in records if r["status"] == "skipped"} == finished
    assert len([r for r in records if r["status"] == "done"]) == 11 - len(finished)
    assert len(outputs(out)) == 11 and not [path for path in out.rglob(".*")]
