"""Batch manifests with selection columns (``points``, ``exclude``, ``box``, ``object``, ``segmenter``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

import attentive_eraser as ae
from attentive_eraser.cli import main
from attentive_eraser.runner import items_from_manifest, read_report

SCENE = Path(__file__).resolve().parent.parent / "src" / "attentive_eraser" / "assets" / "demo" / "scene.png"


def _setup(tmp_path: Path) -> Path:
    shutil.copy(SCENE, tmp_path / "scene.png")
    return tmp_path


def test_manifest_cells_become_selections(tmp_path: Path) -> None:
    folder = _setup(tmp_path)
    manifest = folder / "list.jsonl"
    rows = [
        {"image": "scene.png", "output": "a.png", "points": "9,2;12,3", "exclude": "40,40"},
        {"image": "scene.png", "output": "b.png", "points": [[9, 2]], "box": [0, 0, 26, 26]},
        {"image": "scene.png", "output": "c.png", "points": "9"},
        {"image": "scene.png", "output": "d.png", "segmenter": "classic"},
        {"image": "scene.png", "output": "e.png"},
    ]
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    a, b, c, d, e = items_from_manifest(manifest, folder / "out")
    assert a.error is None and a.mask is None
    assert a.selection.points == ((9.0, 2.0), (12.0, 3.0)) and a.selection.negative_points == ((40.0, 40.0),)
    assert b.selection.box == (0.0, 0.0, 26.0, 26.0)
    assert c.error == "manifest line 3: points: '9' is not X,Y (two numbers, in pixels, e.g. 120,80)"
    assert d.error.startswith("manifest line 4: segmenter: 'classic' is given but nothing to select")
    # neither mask nor selection: the image's transparent pixels are the object, as for remove()
    assert e.error is None and e.mask is None and e.selection is None


def test_batch_removes_clicked_objects_like_remove(tmp_path: Path) -> None:
    folder = _setup(tmp_path)
    manifest = folder / "list.csv"
    manifest.write_text(
        "image,output,seed,points,box\n"
        'scene.png,click.png,123,"9,2",\n'
        'scene.png,box.png,123,,"0,0,26,26"\n'
        'scene.png,outside.png,123,"99,2",\n'
    )
    out = folder / "out"
    result = CliRunner().invoke(main, ["batch", str(manifest), "-o", str(out), "--steps", "4", "-q"])
    assert result.exit_code == 1, result.output  # one row fails
    report = {record["id"]: record for record in read_report(out / "batch-report.jsonl")}
    assert report["click.png"]["status"] == "done" and report["box.png"]["status"] == "done"
    assert report["outside.png"]["status"] == "failed"
    assert "points[0]=(99.0, 2.0) lies outside the 64x64 image" in report["outside.png"]["reason"]
    expected = ae.remove(SCENE, points=[(9, 2)], seed=123, num_inference_steps=4, progress=False)
    batched = np.asarray(Image.open(out / "click.png").convert("RGB")).astype(int)
    # batch-mates may change a pixel by one (float summation order; docs/batch.md), never more
    assert np.abs(batched - np.asarray(expected).astype(int)).max() <= 1
