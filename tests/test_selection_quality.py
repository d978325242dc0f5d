"""The selection benchmark (``benchmarks/selection_quality.py``): its cases, its click rule and its
``--quick`` run. The classical segmenter's IoU target is asserted; removal figures are not (the embedded
model may change), only that both rows are produced and finite."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from attentive_eraser.demo.scenes import HELD_OUT_SEEDS

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import selection_quality

DEMO_MODEL = Path(__file__).resolve().parent.parent / "src" / "attentive_eraser" / "demo_model"


def test_the_click_is_the_deepest_interior_point() -> None:
    mask = np.zeros((20, 30), bool)
    mask[2:9, 3:20] = True  # 7 rows: the middle row is 5
    x, y = selection_quality.deepest_point(mask)
    assert mask[y, x] and y == 5
    assert selection_quality.bounding_box(mask) == (1, 0, 22, 11)


def test_cases_are_isolated_held_out_objects() -> None:
    cases, skipped = selection_quality.select_cases(10, 64)
    assert len(cases) == 10 and skipped >= 0
    for case in cases:
        assert case.seed in HELD_OUT_SEEDS
        x, y = case.click
        assert case.mask[y, x]
        assert np.array_equal(case.truth[~case.mask], case.image[~case.mask])


@pytest.mark.skipif(not (DEMO_MODEL / "model_index.json").is_file(), reason="no embedded model")
def test_quick_run_meets_the_iou_target_and_reports_removal(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "selection.json"
    arguments = ["--quick", "--box", "--end-to-end-scenes", "2", "--steps", "2", "--out", str(out)]
    code = selection_quality.main(arguments)
    assert code == 0
    report = json.loads(out.read_text())
    click, box = report["selection"]
    assert click["prompt"] == "click" and box["prompt"] == "box" and click["scenes"] == 30
    assert click["mean_iou"] >= selection_quality.TARGET_MEAN_IOU
    assert 0.0 <= click["share_iou_ge_0.9"] <= 1.0 and len(click["per_scene"]) == 30
    rows = report["end_to_end"]["rows"]
    assert set(rows) == {"ground-truth mask", "one click, classic"}
    for row in rows.values():
        assert 0.0 <= row["reappearance"] <= 1.0 and math.isfinite(row["psnr_in_mask"])
    printed = capsys.readouterr().out
    assert "| classic | click | 64 px | 30 |" in printed and "End to end (2 scenes" in printed
