"""The batch runner: sources, masks, metadata, resumption, seeds, reports, dry runs and batching.

Everything runs on the built-in tiny model, 4 steps at 64 px working size, images of 48-96 px.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import RecordingPipeline
from click.testing import CliRunner, Result
from PIL import Image, ImageCms

from attentive_eraser import api
from attentive_eraser.cli import main
from attentive_eraser.runner import item_seed, list_items, read_report
from attentive_eraser.settings import FAST_KNOBS, RemovalOptions

FAST = ["--steps", "4", "--resolution", "64", "--quiet"]
ORIENTATION, MAKE = 0x0112, 0x010F


def invoke(*args: object) -> Result:
    return CliRunner().invoke(main, [str(arg) for arg in args])


def box_mask(width: int, height: int) -> np.ndarray:
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[height // 2 : height // 2 + height // 4, width // 2 : width // 2 + width // 4] = 255
    return mask


def write_image(path: Path, width: int, height: int, seed: int, *, mode: str = "RGB", **save: object) -> None:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(height, width, len(mode)), dtype=np.uint8)
    if mode == "RGBA":
        pixels[:, :, 3] = np.linspace(40, 255, width, dtype=np.uint8)[None, :]  # a real alpha gradient
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, mode).save(path, **save)


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Good items of three kinds and four bad ones, masks beside the images as ``{stem}_mask.png``."""
    root = tmp_path / "in"
    write_image(root / "a.png", 96, 64, 0)
    write_image(root / "b.png", 96, 64, 1)  # same size as a.png: one batch
    write_image(root / "sub" / "c.png", 96, 64, 2, mode="RGBA")
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # stored 64x48, shown (and processed) upright as 48x64
    exif[MAKE] = "AE-Test"
    write_image(root / "photo.jpg", 64, 48, 3, exif=exif.tobytes(), icc_profile=srgb_profile(), quality=95)
    for name, (width, height) in {"a": (96, 64), "b": (96, 64), "sub/c": (96, 64), "photo": (48, 64)}.items():
        Image.fromarray(box_mask(width, height)).save(root / f"{name}_mask.png")
    # bad items: unreadable image, empty mask, mask of another size, no mask at all
    (root / "broken.png").write_bytes(b"not an image")
    Image.fromarray(box_mask(96, 64)).save(root / "broken_mask.png")
    write_image(root / "empty.png", 96, 64, 4)
    Image.fromarray(np.zeros((64, 96), np.uint8)).save(root / "empty_mask.png")
    write_image(root / "wrong.png", 96, 64, 5)
    Image.fromarray(box_mask(40, 40)).save(root / "wrong_mask.png")
    write_image(root / "lonely.png", 96, 64, 6)
    return root


GOOD = ["a.png", "b.png", "photo.jpg", "sub/c.png"]
BAD = {
    "broken.png": "cannot read",
    "empty.png": "selects no pixels",
    "wrong.png": "40x40",
    "lonely.png": "no mask",
}


def test_folder_run_reports_every_item_and_keeps_format_size_metadata_alpha(
    folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = invoke("batch", folder, "-o", out, *FAST)
    assert result.exit_code == 1, result.output  # some items failed
    records = {record["id"]: record for record in read_report(out / "batch-report.jsonl")}
    assert sorted(records) == sorted(GOOD + list(BAD))  # masks are not items
    for name in GOOD:
        assert records[name]["status"] == "done", records[name]
        assert records[name]["seed"] == item_seed(name, 123)
    for name, reason in BAD.items():
        assert records[name]["status"] == "failed" and reason in records[name]["reason"], records[name]
        assert not (out / name).exists()
    # one call for the readable 96x64 items (empty.png, in the same batch, fails at loading)
    assert [records[name]["batch_size"] for name in ("a.png", "b.png", "sub/c.png")] == [3, 3, 3]
    assert "8 items: 4 done, 0 skipped, 4 failed" in result.output

    with Image.open(out / "photo.jpg") as photo:
        assert photo.format == "JPEG" and photo.size == (48, 64)  # upright
        assert photo.getexif()[MAKE] == "AE-Test" and photo.getexif()[ORIENTATION] == 1
        with Image.open(folder / "photo.jpg") as original:  # (a fresh profile would carry another date)
            assert photo.info["icc_profile"] == original.info["icc_profile"]
    with Image.open(out / "sub" / "c.png") as cutout, Image.open(folder / "sub" / "c.png") as original:
        assert cutout.mode == "RGBA" and cutout.size == (96, 64)
        assert np.array_equal(np.asarray(cutout)[:, :, 3], np.asarray(original)[:, :, 3])
    with Image.open(out / "a.png") as image:
        assert image.format == "PNG" and image.size == (96, 64)
    assert not list(out.rglob(".*.tmp")) and not list(out.glob(".batch-report*"))


def test_rerun_skips_valid_outputs_and_redoes_partial_ones(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert invoke("batch", folder, "-o", out, *FAST).exit_code == 1
    before = {name: (out / name).stat().st_mtime_ns for name in GOOD}
    # a crash mid-write leaves at worst a temporary file; a truncated output can come from elsewhere
    (out / "b.png").write_bytes((out / "b.png").read_bytes()[:100])
    stale = out / ".a.png.deadbeef0000.tmp"
    stale.write_bytes(b"half")
    result = invoke("batch", folder, "-o", out, *FAST)
    assert result.exit_code == 1  # the bad items still fail
    records = {record["id"]: record for record in read_report(out / "batch-report.jsonl")}
    assert records["b.png"]["status"] == "done"
    assert {records[name]["status"] for name in ("a.png", "photo.jpg", "sub/c.png")} == {"skipped"}
    assert all(
        (out / name).stat().st_mtime_ns == before[name] for name in ("a.png", "photo.jpg", "sub/c.png")
    )
    assert not stale.exists()
    with Image.open(out / "b.png") as redone:
        redone.load()
    # --overwrite redoes everything
    result = invoke("batch", folder, "-o", out, "--overwrite", *FAST)
    assert {r["status"] for r in read_report(out / "batch-report.jsonl") if r["id"] in GOOD} == {"done"}


def test_single_item_equals_remove_with_its_seed(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke("batch", folder, "-o", out, "--batch-size", "1", "--limit", "1", *FAST)
    assert result.exit_code == 0, result.output
    [record] = read_report(out / "batch-report.jsonl")
    assert record["id"] == "a.png" and record["batch_size"] == 1
    expected = api.remove(
        folder / "a.png",
        folder / "a_mask.png",
        seed=item_seed("a.png", 123),
        num_inference_steps=4,
        resolution=64,
        progress=False,
    )
    with Image.open(out / "a.png") as written:
        assert np.array_equal(np.asarray(written), np.asarray(expected))


def test_batched_items_match_one_by_one_up_to_rounding(folder: Path, tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    assert invoke("batch", folder, "-o", one, "--batch-size", "1", "--limit", "2", *FAST).exit_code == 0
    assert invoke("batch", folder, "-o", two, "--batch-size", "2", "--limit", "2", *FAST).exit_code == 0
    assert [r["batch_size"] for r in read_report(two / "batch-report.jsonl")] == [2, 2]
    for name in ("a.png", "b.png"):
        with Image.open(one / name) as a, Image.open(two / name) as b:
            difference = np.abs(np.asarray(a).astype(int) - np.asarray(b).astype(int))
        assert difference.max() <= 2  # the same noise per item; float summation order differs in a batch


def test_seeds_depend_on_the_item_not_on_order_or_limit(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    items = list_items(folder, out)
    assert [item.seed for item in items if item.id == "b.png"] == [item_seed("b.png", 123)]
    assert item_seed("b.png", 123) != item_seed("a.png", 123) != item_seed("a.png", 124)
    rows = [
        {
            "image": f"{folder.name}/{name}",
            "mask": f"{folder.name}/{Path(name).stem}_mask.png",
            "output": name,
        }
        for name in ("b.png", "a.png")
    ]
    manifest = tmp_path / "list.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    by_manifest = {item.id: item.seed for item in list_items(manifest, out)}
    assert by_manifest == {"a.png": item_seed("a.png", 123), "b.png": item_seed("b.png", 123)}
    fixed = list_items(manifest, out, base_seed=777, fixed_seed=True)
    assert {item.seed for item in fixed} == {777}


def test_csv_manifest_with_per_item_seed_and_knobs_and_one_mask_for_all(tmp_path: Path) -> None:
    write_image(tmp_path / "x.png", 80, 64, 0)
    write_image(tmp_path / "y.webp", 80, 64, 1, lossless=True)
    Image.fromarray(box_mask(80, 64)).save(tmp_path / "mask.png")
    manifest = tmp_path / "jobs.csv"
    manifest.write_text(
        "image,output,seed,removal_guidance_scale,method\n"
        "x.png,results/x1.png,5,0,sip\n"
        "x.png,results/x2.png,,,dip\n"
        "y.webp,,,,\n"
    )
    out = tmp_path / "out"
    result = invoke("batch", manifest, "-o", out, "--masks", tmp_path / "mask.png", *FAST)
    assert result.exit_code == 0, result.output
    records = {record["id"]: record for record in read_report(out / "batch-report.jsonl")}
    assert set(records) == {"results/x1.png", "results/x2.png", "y.webp"}
    assert records["results/x1.png"]["seed"] == 5
    assert all(record["status"] == "done" for record in records.values())
    expected = api.remove(
        tmp_path / "x.png",
        tmp_path / "mask.png",
        seed=5,
        removal_guidance_scale=0,
        num_inference_steps=4,
        resolution=64,
        progress=False,
    )
    with Image.open(out / "results" / "x1.png") as written:
        assert np.array_equal(np.asarray(written), np.asarray(expected))
    with Image.open(out / "y.webp") as webp:
        assert webp.format == "WEBP"


def test_manifest_errors(tmp_path: Path) -> None:
    manifest = tmp_path / "jobs.csv"
    manifest.write_text("image,mask,guidance\nx.png,m.png,3\n")
    result = invoke("batch", manifest, "-o", tmp_path / "out", *FAST)
    assert result.exit_code == 2 and "unknown column" in result.output and "guidance" in result.output
    manifest.write_text("image,mask,strength\nx.png,m.png,strong\nx.png,m.png,0.5\n")
    items = list_items(manifest, tmp_path / "out")
    assert "strength" in items[0].error or "could not convert" in items[0].error  # bad cell: that item fails
    assert "also the output" in items[1].error  # two rows, one output
    result = invoke("batch", tmp_path / "nowhere", "-o", tmp_path / "out", *FAST)
    assert result.exit_code == 2 and "does not exist" in result.output
    result = invoke("batch", tmp_path, "-o", tmp_path, *FAST)
    assert result.exit_code == 2 and "contains SOURCE" in result.output


def test_masks_folder_and_pattern(tmp_path: Path) -> None:
    write_image(tmp_path / "images" / "p.png", 64, 64, 0)
    write_image(tmp_path / "images" / "deep" / "q.png", 64, 64, 1)
    (tmp_path / "masks" / "deep").mkdir(parents=True)
    Image.fromarray(box_mask(64, 64)).save(tmp_path / "masks" / "p.png")
    Image.fromarray(box_mask(64, 64)).save(tmp_path / "masks" / "deep" / "q.png")
    items = list_items(tmp_path / "images", tmp_path / "out", masks=tmp_path / "masks")
    assert [(item.id, item.mask) for item in items] == [
        ("deep/q.png", tmp_path / "masks" / "deep" / "q.png"),
        ("p.png", tmp_path / "masks" / "p.png"),
    ]
    Image.fromarray(box_mask(64, 64)).save(tmp_path / "masks" / "p-obj.png")
    items = list_items(
        tmp_path / "images", tmp_path / "out", masks=tmp_path / "masks", mask_pattern="{stem}-obj.png"
    )
    assert items[1].mask == tmp_path / "masks" / "p-obj.png" and "not found" in items[0].error
    items = list_items(
        tmp_path / "images", tmp_path / "out", masks=tmp_path / "masks", mask_pattern="{stem}*"
    )
    assert "ambiguous" in items[1].error


def test_dry_run_writes_nothing_and_lists_the_plan(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke("batch", folder, "-o", out, "--dry-run", *FAST)
    assert result.exit_code == 1  # some items would fail
    assert not out.exists()
    assert "run   a.png" in result.output and "FAIL  empty.png" in result.output
    assert "8 items: 4 to run in 3 batches, 0 skipped, 4 would fail" in result.output
    result = invoke("batch", folder, "-o", out, "--dry-run", "--limit", "2", *FAST)
    assert result.exit_code == 0 and "2 items: 2 to run in 1 batches" in result.output


@pytest.mark.slow
def test_python_dash_m_entry_point(tmp_path: Path) -> None:
    environment = {**os.environ, "HF_HUB_OFFLINE": "1"}
    completed = subprocess.run(
        [sys.executable, "-m", "attentive_eraser", "batch", "--help"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
    )
    assert completed.returncode == 0 and "--mask-pattern" in completed.stdout


def test_a_model_that_cannot_load_stops_the_run_with_one_error(folder: Path, tmp_path: Path) -> None:
    result = invoke("batch", folder, "-o", tmp_path / "out", "--model", tmp_path / "no-such-model", *FAST)
    assert result.exit_code == 2 and "no-such-model" in result.output


def test_a_mask_folder_inside_the_source_is_not_listed_as_images(tmp_path: Path) -> None:
    write_image(tmp_path / "p.png", 64, 64, 0)
    (tmp_path / "masks").mkdir()
    Image.fromarray(box_mask(64, 64)).save(tmp_path / "masks" / "p.png")
    items = list_items(tmp_path, tmp_path / "out", masks=tmp_path / "masks")
    assert [(item.id, item.error) for item in items] == [("p.png", None)]


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> RecordingPipeline:
    pipe = RecordingPipeline()
    monkeypatch.setattr(api, "load_pipeline", lambda *args, **kwargs: pipe)
    return pipe


def test_fast_reaches_the_pipeline_and_explicit_knobs_win(
    recording: RecordingPipeline, tmp_path: Path
) -> None:
    write_image(tmp_path / "in" / "a.png", 64, 64, 0)
    Image.fromarray(box_mask(64, 64)).save(tmp_path / "in" / "a_mask.png")
    result = invoke("batch", tmp_path / "in", "-o", tmp_path / "fast", "--fast", "-q")
    assert result.exit_code == 0, result.output
    [call] = recording.calls
    assert {name: call.get(name) for name in FAST_KNOBS["sip"]} == FAST_KNOBS["sip"]
    result = invoke("batch", tmp_path / "in", "-o", tmp_path / "steps", "--fast", "--steps", "9", "-q")
    assert result.exit_code == 0, result.output
    assert recording.calls[-1] == {**recording.calls[0], "num_inference_steps": 9}


def test_manifest_scheduler_and_fast_columns(recording: RecordingPipeline, tmp_path: Path) -> None:
    write_image(tmp_path / "x.png", 64, 64, 0)
    Image.fromarray(box_mask(64, 64)).save(tmp_path / "m.png")
    manifest = tmp_path / "jobs.csv"
    manifest.write_text(
        "image,mask,output,scheduler,fast,method\n"
        "x.png,m.png,dpm.png,DPM++,,\n"
        "x.png,m.png,fast.png,ddim,yes,\n"
        "x.png,m.png,dip.png,,true,dip\n"
        "x.png,m.png,euler.png,euler,,\n"
        "x.png,m.png,maybe.png,,maybe,\n"
    )
    items = {item.id: item for item in list_items(manifest, tmp_path / "out")}
    options = RemovalOptions(knobs={"num_inference_steps": 4})
    assert items["dpm.png"].settings(options).call_knobs() == {"num_inference_steps": 4, "scheduler": "dpm++"}
    assert (
        items["fast.png"].settings(options).fast
        and items["fast.png"].settings(options).get("scheduler") == "ddim"
    )
    assert items["euler.png"].error.startswith("manifest line 5: scheduler='euler' must be one of")
    assert items["maybe.png"].error == "manifest line 6: fast='maybe' must be true or false"

    result = invoke("batch", manifest, "-o", tmp_path / "out", "--steps", "4", "-q")
    assert result.exit_code == 1, result.output  # the two bad rows fail, the others run
    records = {record["id"]: record for record in read_report(tmp_path / "out" / "batch-report.jsonl")}
    assert {name: record["status"] for name, record in records.items()} == {
        "dip.png": "done",
        "dpm.png": "done",
        "euler.png": "failed",
        "fast.png": "done",
        "maybe.png": "failed",
    }
    assert "scheduler=" in records["euler.png"]["reason"] and "fast=" in records["maybe.png"]["reason"]
    dip, dpm, fast = recording.calls  # in id order
    assert dpm["scheduler"] == "dpm++" and dpm["num_inference_steps"] == 4
    # --steps (explicit) wins over fast; the row's own scheduler wins over fast's dpm++
    assert fast == {**dpm, "scheduler": "ddim", "suppression_steps": FAST_KNOBS["sip"]["suppression_steps"]}
    assert dip["suppression_steps"] == FAST_KNOBS["dip"]["suppression_steps"] and "scheduler" not in dip
