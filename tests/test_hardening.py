"""Regression tests of issue 10 (hostile-user hardening), one block per numbered defect.

Each test failed on the code before the fix. The wide bad-input corpus lives in test_bad_input_corpus.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from attentive_eraser import api, io
from attentive_eraser.batch import list_items, read_report, run_batch
from attentive_eraser.cli import RemovalOptions, main

FAST = ["--steps", "4", "--resolution", "64", "--quiet"]


def invoke(*args: object) -> Result:
    return CliRunner().invoke(main, [str(arg) for arg in args])


def one_error_line(result: Result) -> str:
    """The single ``error: ...`` line of a refused command (exit code 2, no traceback)."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def write_pair(folder: Path, stem: str, size: tuple[int, int] = (96, 64), seed: int = 0) -> tuple[Path, Path]:
    """``stem.png`` (noise) and ``stem_mask.png`` (a box) in ``folder``."""
    width, height = size
    folder.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[height // 2 : height // 2 + height // 4, width // 2 : width // 2 + width // 4] = 255
    image, mask_path = folder / f"{stem}.png", folder / f"{stem}_mask.png"
    Image.fromarray(pixels).save(image)
    Image.fromarray(mask).save(mask_path)
    return image, mask_path


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative name -> bytes): to prove nothing was changed or added."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*"))
            if path.is_file()}


def _no_model(*args: object, **kwargs: object) -> None:
    raise AssertionError("a model was loaded for input that should have been refused first")


# ----------------------------------------------------------------------------------------------------
# 1. --report is never an input, an output or a folder


@pytest.mark.parametrize("target", ["image", "mask", "manifest", "folder", "output"])
def test_1_report_path_never_overwrites_an_input_and_is_checked_first(
    target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "in"
    write_pair(source, "a")
    write_pair(source, "b", seed=1)
    manifest = source / "jobs.csv"
    manifest.write_text("image,mask\na.png,a_mask.png\nb.png,b_mask.png\n")
    out = tmp_path / "out"
    (tmp_path / "folder").mkdir()
    report = {"image": source / "b.png", "mask": source / "b_mask.png", "manifest": manifest,
              "folder": tmp_path / "folder", "output": out / "a.png"}[target]
    monkeypatch.setattr(api, "load_pipeline", _no_model)
    before = snapshot(tmp_path)
    line = one_error_line(invoke("batch", manifest, "-o", out, "--report", report, *FAST))
    assert "report" in line and str(report) in line
    assert snapshot(tmp_path) == before  # inputs intact; no .merging, .part-* or output file
    assert not out.exists()


def test_1_run_batch_refuses_an_input_as_report(tmp_path: Path) -> None:
    image, _ = write_pair(tmp_path, "a")
    items = list_items(tmp_path, tmp_path / "out")
    data = image.read_bytes()
    with pytest.raises(io.InputError, match="report"):
        run_batch(items, RemovalOptions(), report_path=image, progress=False)
    assert image.read_bytes() == data


# ----------------------------------------------------------------------------------------------------
# 2. an output that is another row's input


@pytest.mark.parametrize("overwrite", [False, True])
def test_2_an_output_that_is_another_rows_input_fails_that_row(overwrite: bool, tmp_path: Path) -> None:
    write_pair(tmp_path, "x")
    write_pair(tmp_path, "y", seed=1)
    manifest = tmp_path / "jobs.csv"
    # results go into the manifest's own folder: row 1's output is row 2's image, row 3's its mask
    manifest.write_text("image,mask,output\nx.png,x_mask.png,y.png\ny.png,y_mask.png,y_out.png\n"
                        "x.png,x_mask.png,y_mask.png\n")
    inputs = {name: (tmp_path / name).read_bytes() for name in ("x.png", "y.png", "x_mask.png", "y_mask.png")}
    result = invoke("batch", manifest, "-o", tmp_path, *FAST, *(["--overwrite"] if overwrite else []))
    assert result.exit_code == 1, result.output
    records = {record["id"]: record for record in read_report(tmp_path / "batch-report.jsonl")}
    for name in ("y.png", "y_mask.png"):
        assert records[name]["status"] == "failed" and "never overwritten" in records[name]["reason"]
    assert records["y_out.png"]["status"] == "done"
    assert {name: (tmp_path / name).read_bytes() for name in inputs} == inputs


# ----------------------------------------------------------------------------------------------------
# 3. symbolic links inside OUTPUT_DIR


def test_3_outputs_through_a_symlink_out_of_the_output_folder_are_refused(tmp_path: Path) -> None:
    source, out, elsewhere = tmp_path / "in", tmp_path / "out", tmp_path / "elsewhere"
    write_pair(source, "a")
    write_pair(source / "sub", "c", seed=2)
    elsewhere.mkdir()
    out.mkdir()
    (out / "sub").symlink_to(elsewhere, target_is_directory=True)
    (out / "link").symlink_to(elsewhere, target_is_directory=True)
    result = invoke("batch", source, "-o", out, *FAST)
    assert result.exit_code == 1, result.output
    records = {record["id"]: record for record in read_report(out / "batch-report.jsonl")}
    assert records["a.png"]["status"] == "done"
    assert records["sub/c.png"]["status"] == "failed" and "outside OUTPUT_DIR" in records["sub/c.png"]["reason"]
    manifest = source / "jobs.jsonl"
    manifest.write_text(json.dumps({"image": "a.png", "mask": "a_mask.png", "output": "link/x.png"}) + "\n")
    result = invoke("batch", manifest, "-o", out, *FAST)
    assert result.exit_code == 1, result.output
    [record] = read_report(out / "batch-report.jsonl")
    assert record["status"] == "failed" and "outside OUTPUT_DIR" in record["reason"]
    assert list(elsewhere.iterdir()) == []


# ----------------------------------------------------------------------------------------------------
# 4. a killed remove leaves its temporary file: the next run removes it


def test_4_remove_cleans_up_the_temporary_file_of_a_killed_run(tmp_path: Path) -> None:
    image, mask = write_pair(tmp_path, "a")
    output = tmp_path / "result" / "out.png"
    output.parent.mkdir()
    stale = output.parent / ".out.png.0123456789ab.tmp"
    stale.write_bytes(b"half a PNG")
    unrelated = output.parent / ".other.png.0123456789ab.tmp"  # another output's: not ours
    unrelated.write_bytes(b"keep")
    result = invoke("remove", image, mask, "-o", output, *FAST)
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in output.parent.iterdir()) == [unrelated.name, "out.png"]
