"""Regression tests of the batch runner's hardening: inputs never deleted, concurrent runs, manifest cells.

Each block names the defect it guards against; every test failed on the code before its fix. Models are
the embedded demo model (a few steps at 64 px) or a recording stand-in where only the plan matters.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_helpers import RecordingPipeline, invoke, one_error_line
from PIL import Image

import attentive_eraser
from attentive_eraser import api, imaging
from attentive_eraser.runner import list_items, make_plan, read_report
from attentive_eraser.runner.lock import BatchLock, lock_path
from attentive_eraser.runner.sources import parse_cell
from attentive_eraser.settings import RemovalOptions

FAST = ["--steps", "4", "--resolution", "64", "--quiet"]
STALE = "0123456789ab"  # 12 hex digits: the shape of save_image's temporary names


def write_image(path: Path, size: tuple[int, int] = (64, 64), seed: int = 0) -> Path:
    width, height = size
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="PNG")  # PNG whatever the name (names mimic temporaries)
    return path


def write_mask(path: Path, size: tuple[int, int] = (64, 64)) -> Path:
    width, height = size
    path.parent.mkdir(parents=True, exist_ok=True)
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[height // 4 : height // 2, width // 4 : width // 2] = 255
    Image.fromarray(mask).save(path, format="PNG")
    return path


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> RecordingPipeline:
    pipe = RecordingPipeline()
    monkeypatch.setattr(api, "load_pipeline", lambda *args, **kwargs: pipe)
    return pipe


# ----------------------------------------------------------------------------------------------------
# 1. an input named like a stale temporary of the output was read, then deleted by the clean-up


def test_1_stale_temporaries_never_lists_an_input_by_name_link_or_inode(tmp_path: Path) -> None:
    target = tmp_path / "o.png"
    named = write_image(tmp_path / f".o.png.{STALE}.tmp")
    elsewhere = write_image(tmp_path / "photos" / "scene.png", seed=1)
    linked = tmp_path / ".o.png.aaaaaaaaaaaa.tmp"
    linked.symlink_to(elsewhere)
    hard = tmp_path / ".o.png.bbbbbbbbbbbb.tmp"
    os.link(elsewhere, hard)
    stale = tmp_path / ".o.png.cccccccccccc.tmp"
    stale.write_bytes(b"half a file")
    assert imaging.stale_temporaries(target) == sorted([named, linked, hard, stale])  # by name alone
    assert imaging.stale_temporaries(target, protect=[named, elsewhere]) == [stale]
    assert imaging.remove_stale_temporaries(target, protect=[named, elsewhere]) == [stale]
    assert named.is_file() and linked.is_symlink() and hard.is_file() and not stale.exists()


def test_1_remove_keeps_an_input_named_like_a_temporary_of_its_output(tmp_path: Path) -> None:
    image = write_image(tmp_path / f".o.png.{STALE}.tmp")
    mask = write_mask(tmp_path / ".o.png.dddddddddddd.tmp")
    stale = tmp_path / ".o.png.eeeeeeeeeeee.tmp"
    stale.write_bytes(b"left by a killed run")
    data = image.read_bytes(), mask.read_bytes()
    result = invoke("remove", image, mask, "-o", tmp_path / "o.png", *FAST)
    assert result.exit_code == 0, result.output
    assert (image.read_bytes(), mask.read_bytes()) == data  # both inputs intact
    assert not stale.exists()  # a real leftover still goes
    with Image.open(tmp_path / "o.png") as written:
        assert written.size == (64, 64)


def manifest_of_temporary_inputs(tmp_path: Path) -> tuple[Path, Path, dict[str, Path]]:
    """A manifest whose image, mask and --masks file lie in OUTPUT_DIR, named like stale temporaries."""
    out = tmp_path / "out"
    inputs = {
        "image": write_image(out / f".a.png.{STALE}.tmp"),
        "mask": write_mask(out / f".a.png.{STALE[::-1]}.tmp"),
        "masks": write_mask(out / f".b.png.{STALE}.tmp"),
        "hardlinked": out / ".b.png.ffffffffffff.tmp",
    }
    write_image(tmp_path / "b.png", seed=2)
    os.link(tmp_path / "b.png", inputs["hardlinked"])  # the same file as b.png, another name
    manifest = tmp_path / "jobs.jsonl"
    rows = [
        {"image": f"out/{inputs['image'].name}", "mask": f"out/{inputs['mask'].name}", "output": "a.png"},
        {"image": "b.png", "output": "b.png"},  # its mask: the --masks file
    ]
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return manifest, out, inputs


def test_1_the_planners_clean_up_skips_every_input_of_the_run(tmp_path: Path) -> None:
    manifest, out, inputs = manifest_of_temporary_inputs(tmp_path)
    stale = out / ".a.png.aaaaaaaaaaaa.tmp"
    stale.write_bytes(b"left by a killed run")
    data = {name: path.read_bytes() for name, path in inputs.items()}
    items = list_items(manifest, out, masks=inputs["masks"])
    assert [item.error for item in items] == [None, None]
    plan = make_plan(items, RemovalOptions(), inputs=[manifest, inputs["masks"]])
    assert plan.pending == 2
    assert {name: path.read_bytes() for name, path in inputs.items()} == data
    assert not stale.exists()


def test_1_batch_keeps_inputs_named_like_temporaries(recording: RecordingPipeline, tmp_path: Path) -> None:
    manifest, out, inputs = manifest_of_temporary_inputs(tmp_path)
    data = {name: path.read_bytes() for name, path in inputs.items()}
    result = invoke("batch", manifest, "-o", out, "--masks", inputs["masks"], *FAST)
    assert result.exit_code == 0, result.output
    assert len(recording.calls) == 2
    assert {name: path.read_bytes() for name, path in inputs.items()} == data
    assert {record["status"] for record in read_report(out / "batch-report.jsonl")} == {"done"}


def test_1_an_input_named_like_a_report_part_is_refused_or_kept(
    recording: RecordingPipeline, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    write_image(tmp_path / "a.png")
    part = write_mask(out / ".batch-report.jsonl.part-00000-of-00001")  # the exact part a run writes
    manifest = tmp_path / "jobs.csv"
    manifest.write_text(f"image,mask\na.png,out/{part.name}\n")
    data = part.read_bytes()
    line = one_error_line(invoke("batch", manifest, "-o", out, *FAST))
    assert "report" in line and part.name in line and "never overwritten" in line
    assert part.read_bytes() == data and not recording.calls

    # named like a stale part of another run: the merge's clean-up of stale parts leaves it alone
    other = part.rename(out / ".batch-report.jsonl.part-00001-of-00002")
    manifest.write_text(f"image,mask\na.png,out/{other.name}\n")
    result = invoke("batch", manifest, "-o", out, *FAST)
    assert result.exit_code == 0, result.output
    assert other.read_bytes() == data
    assert [record["status"] for record in read_report(out / "batch-report.jsonl")] == ["done"]


# ----------------------------------------------------------------------------------------------------
# 2. two batch runs on one OUTPUT_DIR shared one report part, no lock: an empty report, a traceback,
#    every item computed twice


ENVIRONMENT = {
    **os.environ,
    "OMP_NUM_THREADS": "1",
    "OMP_WAIT_POLICY": "PASSIVE",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}


def folder_source(root: Path, count: int) -> Path:
    """``count`` 64x64 images with their masks beside them (``{stem}_mask.png``)."""
    for index in range(count):
        write_image(root / f"img{index}.png", seed=index)
        write_mask(root / f"img{index}_mask.png")
    return root


def summary_counts(stdout: str) -> dict[str, int]:
    """The counts of the summary line ``N items: D done, S skipped, F failed in ...``."""
    [line] = [line for line in stdout.splitlines() if " items: " in line]
    words = line.replace(",", "").split()
    return {"total": int(words[0]), **{words[i + 1]: int(words[i]) for i in (2, 4, 6)}}


def test_2_two_real_concurrent_batches_compute_each_item_once(tmp_path: Path) -> None:
    source, out = folder_source(tmp_path / "in", 6), tmp_path / "out"
    before = {path.name: path.read_bytes() for path in source.iterdir()}
    command = [sys.executable, "-m", "attentive_eraser", "batch", str(source), "-o", str(out)]
    command += ["--steps", "20", "--resolution", "64", "--quiet"]  # a few seconds of work: the runs overlap
    runs = [
        subprocess.Popen(command, env=ENVIRONMENT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    finished = [run.communicate(timeout=600) for run in runs]
    codes = [run.returncode for run in runs]
    for (stdout, stderr), code in zip(finished, codes, strict=True):
        assert "Traceback" not in stdout + stderr, stderr
        if code == 2:  # refused before any work: one line naming the folder and the holder
            [line] = stderr.strip().splitlines()
            assert line.startswith("error: output-dir: another batch is writing to") and "pid " in line
            assert not stdout
        else:
            assert code == 0, stderr
    done = [
        summary_counts(stdout)["done"] for (stdout, _), code in zip(finished, codes, strict=True) if code == 0
    ]
    # Whether the second run was refused (the usual case) or started after the first had ended (it then
    # skips everything), each item was computed exactly once.
    assert sum(done) == 6, (codes, finished)
    records = read_report(out / "batch-report.jsonl")
    assert sorted(record["id"] for record in records) == [f"img{index}.png" for index in range(6)]
    assert {record["status"] for record in records} <= {"done", "skipped"}
    for index in range(6):
        with Image.open(out / f"img{index}.png") as written:
            written.load()
    assert not [path for path in out.iterdir() if path.name.startswith(".")]  # no lock, part or temporary
    assert {path.name: path.read_bytes() for path in source.iterdir()} == before


def test_2_a_held_lock_refuses_a_second_run_with_the_holders_pid(
    recording: RecordingPipeline, tmp_path: Path
) -> None:
    source, out = folder_source(tmp_path / "in", 2), tmp_path / "out"
    lock = BatchLock([(out, "output-dir")])
    try:
        line = one_error_line(invoke("batch", source, "-o", out, *FAST))
        assert f"another batch is writing to {str(out)!r} (pid {os.getpid()})" in line
        assert not recording.calls and not (out / "batch-report.jsonl").exists()
        assert lock_path(out).read_text().split()[0] == str(os.getpid())  # the holder's lock untouched
    finally:
        lock.release()
    assert not lock_path(out).exists()
    result = invoke("batch", source, "-o", out, *FAST)
    assert result.exit_code == 0, result.output
    assert len(recording.calls) == 2 and not lock_path(out).exists()


def test_2_a_report_folder_is_locked_too(recording: RecordingPipeline, tmp_path: Path) -> None:
    source, reports = folder_source(tmp_path / "in", 1), tmp_path / "reports"
    lock = BatchLock([(reports, "report")])
    try:
        line = one_error_line(
            invoke("batch", source, "-o", tmp_path / "out", "--report", reports / "r.jsonl", *FAST)
        )
    finally:
        lock.release()
    assert line.startswith("error: report: another batch is writing to") and not recording.calls


def test_2_a_lock_left_by_a_dead_process_is_taken_over(recording: RecordingPipeline, tmp_path: Path) -> None:
    source, out = folder_source(tmp_path / "in", 2), tmp_path / "out"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    out.mkdir()
    lock_path(out).write_text(f"{dead.stdout.strip()} {socket.gethostname()}\n")  # a killed run's leftover
    result = invoke("batch", source, "-o", out, *FAST)
    assert result.exit_code == 0, result.output
    assert len(recording.calls) == 2 and not lock_path(out).exists()


def test_2_a_refused_distributed_run_stops_every_process(tmp_path: Path) -> None:
    source, out = folder_source(tmp_path / "in", 2), tmp_path / "out"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    command += ["-m", "attentive_eraser", "batch", str(source), "-o", str(out), *FAST]
    lock = BatchLock([(out, "output-dir")])
    try:
        # The main process is refused; the other must not wait forever for the plan (timeout: a hang).
        completed = subprocess.run(command, env=ENVIRONMENT, capture_output=True, text=True, timeout=300)
    finally:
        lock.release()
    log = completed.stdout + completed.stderr
    assert completed.returncode != 0, log
    # torchrun reports its failed workers with its own traceback; none comes from this package
    assert str(Path(attentive_eraser.__file__).parent) not in log, log
    assert log.count("error: output-dir: another batch is writing to") == 2, log  # one line per process
    assert not (out / "batch-report.jsonl").exists()


# ----------------------------------------------------------------------------------------------------
# 3. one bad manifest cell crashed the whole batch with a traceback, also under --dry-run


def _refuse_to_load(*args: object, **kwargs: object) -> None:
    raise AssertionError("a dry run must not load a model")


def run_and_dry_run(
    manifest: Path, out: Path, monkeypatch: pytest.MonkeyPatch, pipe: RecordingPipeline
) -> tuple[dict[str, dict[str, Any]], str]:
    """The report of a run (by id) and the output of a dry run of ``manifest``; neither has a traceback."""
    monkeypatch.setattr(api, "load_pipeline", _refuse_to_load)
    dry = invoke("batch", manifest, "-o", out, "--dry-run", *FAST)
    assert dry.exit_code == 1 and isinstance(dry.exception, SystemExit), dry.output  # not a crash
    assert "Traceback" not in dry.output and not out.exists()
    monkeypatch.setattr(api, "load_pipeline", lambda *args, **kwargs: pipe)
    result = invoke("batch", manifest, "-o", out, *FAST)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    return {record["id"]: record for record in read_report(out / "batch-report.jsonl")}, dry.output


def test_3_bad_jsonl_cells_fail_their_row_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    write_image(tmp_path / "x.png")
    write_mask(tmp_path / "m.png")
    bad_rows = {
        "huge-float-seed.png": '"seed": 1e999',
        "list-seed.png": '"seed": [1]',
        "fraction-seed.png": '"seed": 1.5',
        "number-mask.png": '"mask": 7',
        "nul-mask.png": '"mask": "m\\u0000.png"',
        "infinite-strength.png": '"strength": 1e999',
        "huge-int-scale.png": '"removal_guidance_scale": 1' + "0" * 400,
        "dict-method.png": '"method": {"sip": 1}',
        "nested-points.png": '"points": [[1, [2]]]',
    }
    lines = ['{"image": "x.png", "mask": "m.png", "output": "good.png"}']
    for name, cell in bad_rows.items():
        given = '"image": "x.png"' if cell.startswith('"mask"') else '"image": "x.png", "mask": "m.png"'
        lines.append(f'{{{given}, "output": "{name}", {cell}}}')
    lines.append('{"image": 5, "mask": "m.png", "output": "number-image.png"}')
    manifest = tmp_path / "jobs.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    pipe = RecordingPipeline()
    records, dry = run_and_dry_run(manifest, tmp_path / "out", monkeypatch, pipe)
    assert records["good.png"]["status"] == "done" and len(pipe.calls) == 1
    assert "run   good.png" in dry
    columns = {name: cell.split('"')[1] for name, cell in bad_rows.items()} | {"number-image.png": "image"}
    for name, column in columns.items():
        record = records[name]
        assert record["status"] == "failed", record
        assert record["reason"].startswith("manifest line ") and f"{column}" in record["reason"], record
        assert f"FAIL  {name}  (manifest line" in dry
        assert len(record["reason"]) < 300  # one short line, however long the cell
    assert "must be a whole number in [0, 2**63)" in records["fraction-seed.png"]["reason"]


def test_3_bad_csv_cells_fail_their_row_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    write_image(tmp_path / "x.png")
    write_mask(tmp_path / "m.png")
    manifest = tmp_path / "jobs.csv"
    manifest.write_text(
        "image,mask,output\n"
        "x.png,m.png,good.png\n"
        f"x.png,m.png,{'y' * 140_000}.png\n"  # over the csv module's 131072 characters
        "x\0.png,m.png,nul.png\n"
        f"x.png,m.png,{'z' * 5000}.png\n"  # readable, but longer than any path
        "x.png,m.png,after.png\n"
    )
    pipe = RecordingPipeline()
    records, dry = run_and_dry_run(manifest, tmp_path / "out", monkeypatch, pipe)
    assert {name: records[name]["status"] for name in ("good.png", "after.png")} == {
        "good.png": "done",
        "after.png": "done",
    }
    assert len(pipe.calls) == 2
    huge = records["jobs.csv line 3"]  # the reader could not read it: the row is named by its line
    assert huge["status"] == "failed" and "manifest line 3: not a CSV row" in huge["reason"], huge
    assert "131072" in huge["reason"] and "FAIL  jobs.csv line 3" in dry
    nul = records["nul.png"]
    assert nul["status"] == "failed" and "manifest line 4: image=" in nul["reason"] and "NUL" in nul["reason"]
    long = records["jobs.csv line 5"]  # its output cell is unusable: named by its line too
    assert long["reason"] == "manifest line 5: output: a cell of 5004 characters (at most 4096)"
    assert len(records) == 5


def test_3_one_cell_parser_reads_csv_text_and_jsonl_values_alike() -> None:
    assert parse_cell("seed", "5") == parse_cell("seed", 5) == 5
    assert parse_cell("strength", " 0.5 ") == parse_cell("strength", 0.5) == 0.5
    assert parse_cell("box", "1,2,3,4") == parse_cell("box", [1, 2, 3, 4]) == "1,2,3,4"
    assert parse_cell("points", "1,2;3,4") == parse_cell("points", [[1, 2], [3, 4]])
    for column, value in [
        ("seed", "1.5"),
        ("seed", 1.5),
        ("seed", True),
        ("image", ["a.png"]),
        ("box", [True]),
    ]:
        with pytest.raises(ValueError, match=f"^{column}"):
            parse_cell(column, value)


# ----------------------------------------------------------------------------------------------------
# 7. manifest seeds and per-row settings were checked only after the model had loaded, if at all


def test_7_manifest_seeds_follow_removes_rule_at_listing(tmp_path: Path) -> None:
    write_image(tmp_path / "x.png")
    write_mask(tmp_path / "m.png")
    manifest = tmp_path / "jobs.csv"
    manifest.write_text(
        "image,mask,output,seed\n"
        "x.png,m.png,fraction.png,1.5\n"
        f"x.png,m.png,huge.png,{10**22}\n"
        "x.png,m.png,negative.png,-1\n"
        "x.png,m.png,plain.png, 42 \n"
    )
    items = {item.id: item for item in list_items(manifest, tmp_path / "out")}
    with pytest.raises(ValueError) as huge:
        api.remove(tmp_path / "x.png", tmp_path / "m.png", seed=10**22)  # refused before any model loads
    assert items["fraction.png"].error == "manifest line 2: seed='1.5' must be a whole number in [0, 2**63)"
    rule = " must be a whole number in [0, 2**63)"  # remove()'s words, before its model loads
    assert str(huge.value) == f"seed={10**22}{rule}"
    assert items["huge.png"].error == f"manifest line 3: {huge.value}"  # the very same message
    assert items["negative.png"].error == f"manifest line 4: seed=-1{rule}"
    assert items["plain.png"].error is None and items["plain.png"].seed == 42


def test_7_dip_sampler_and_steps_are_checked_while_planning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write_image(tmp_path / "x.png")
    write_mask(tmp_path / "m.png")
    manifest = tmp_path / "jobs.csv"
    manifest.write_text(
        "image,mask,output,method,scheduler,num_inference_steps,strength\n"
        "x.png,m.png,dip-dpm.png,dip,dpm++,,\n"
        "x.png,m.png,one-step.png,,,1,\n"  # 1 x the preset's 0.8: no step
        "x.png,m.png,low-strength.png,,,4,0.2\n"
        "x.png,m.png,fine.png,,,4,0.25\n"
    )
    with pytest.raises(ValueError) as sampler:
        api.remove(tmp_path / "x.png", tmp_path / "m.png", method="dip", scheduler="dpm++")
    pipe = api.load_pipeline(None)  # the demo model: the pipeline's own check, for its message
    with pytest.raises(ValueError) as steps:
        pipe.resolve_settings("sip", {"num_inference_steps": 1})
    items = list_items(manifest, tmp_path / "out")
    plan = make_plan(items, RemovalOptions(), clean=False)
    reasons = {result.id: result.reason for result in plan.settled}
    assert reasons["dip-dpm.png"] == str(sampler.value)
    assert reasons["one-step.png"] == str(steps.value)
    assert reasons["low-strength.png"] == "strength=0.2 with num_inference_steps=4 runs no denoising step"
    assert [item.id for batch in plan.batches for item in batch] == ["fine.png"]
    # the dry run says so without a model
    monkeypatch.setattr(api, "load_pipeline", _refuse_to_load)
    result = invoke("batch", manifest, "-o", tmp_path / "out", "--dry-run", "--resolution", "64")
    assert result.exit_code == 1 and "FAIL  dip-dpm.png  (scheduler='dpm++'" in result.output
    assert "3 would fail" in result.output


def test_7_the_command_lines_own_seed_and_sampler_are_refused_before_listing(tmp_path: Path) -> None:
    write_image(tmp_path / "in" / "x.png")
    write_mask(tmp_path / "in" / "x_mask.png")
    line = one_error_line(
        invoke("batch", tmp_path / "in", "-o", tmp_path / "out", "--method", "dip", "--scheduler", "dpm++")
    )
    assert "scheduler='dpm++'" in line and "DDIM" in line
    line = one_error_line(
        invoke("batch", tmp_path / "in", "-o", tmp_path / "out", "--seed", 10**22, "--fixed-seed")
    )
    assert "--seed" in line and "whole number" in line
    line = one_error_line(
        invoke("batch", tmp_path / "in", "-o", tmp_path / "out", "--steps", "1", "--strength", "0.5")
    )
    assert "runs no denoising step" in line
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------------------------------
# 8. CSV quirks were silent: a repeated header column kept the last one, extra cells were dropped


def test_8_a_repeated_header_column_refuses_the_manifest(tmp_path: Path) -> None:
    manifest = tmp_path / "jobs.csv"
    manifest.write_text("image,mask, image\nx.png,m.png,y.png\n")
    line = one_error_line(invoke("batch", manifest, "-o", tmp_path / "out", *FAST))
    assert "jobs.csv: the header repeats the column(s) ['image']" in line
    assert not (tmp_path / "out").exists()


def test_8_extra_cells_and_repeated_jsonl_keys_fail_their_row(
    recording: RecordingPipeline, tmp_path: Path
) -> None:
    write_image(tmp_path / "x.png")
    write_mask(tmp_path / "m.png")
    manifest = tmp_path / "jobs.csv"
    manifest.write_text("image,mask,output\nx.png,m.png,a.png,extra\nx.png,m.png,b.png\nx.png,m.png\n")
    result = invoke("batch", manifest, "-o", tmp_path / "out", *FAST)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    records = {record["id"]: record for record in read_report(tmp_path / "out" / "batch-report.jsonl")}
    assert records["jobs.csv line 2"]["reason"] == "manifest line 2: 4 cells, but the header has 3 columns"
    assert records["b.png"]["status"] == records["x.png"]["status"] == "done"  # a short row: cells not set

    lines = '{"image": "x.png", "mask": "m.png", "output": "c.png", "output": "d.png"}\n'
    (tmp_path / "jobs.jsonl").write_text(lines)
    [item] = list_items(tmp_path / "jobs.jsonl", tmp_path / "out2")
    assert item.id == "jobs.jsonl line 1" and item.error == "manifest line 1: repeats the key(s) ['output']"
