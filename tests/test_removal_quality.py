"""The removal-quality benchmark (``benchmarks/removal_quality.py``): its scene selection and metrics, and
its ``--quick`` run end to end -- on the shipped demo model when it is there, else on a tiny random model.
Figures are never asserted (a random model removes nothing), only that every row is produced and finite.

The selection and the metrics live in :mod:`attentive_eraser.testing.scene_cases` (the benchmark imports
them from there); the benchmark itself runs as a script."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from attentive_eraser.demo.scenes import HELD_OUT_SEEDS, STRUCTURED_KINDS, object_colour_fraction
from attentive_eraser.imaging import dilate_mask
from attentive_eraser.testing.scene_cases import PSNR_CAP, removal_cases, score_removal

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
DEMO_MODEL = Path(__file__).resolve().parent.parent / "src" / "attentive_eraser" / "demo_model"
PIPELINE_ROWS = ("sip_sarg", "sip_plain", "dip_sarg", "dip_plain", "sip_aas_no_ss")
OTHER_ROWS = ("telea", "navier_stokes", "biharmonic", "vae_ceiling", "input")


def test_selected_objects_are_isolated_and_their_ground_truth_is_background() -> None:
    selection = removal_cases(12, 64, dilation=2)
    assert len(selection.cases) == 12
    assert selection.seeds_tried == 12 + selection.skipped_no_isolated + selection.skipped_touching
    assert [case.seed for case in selection.cases] == sorted(case.seed for case in selection.cases)
    for case in selection.cases:
        assert case.seed in HELD_OUT_SEEDS
        assert np.array_equal(case.region, dilate_mask(case.mask, 2))
        assert np.array_equal(case.truth[~case.mask], case.image[~case.mask])  # differs only on the object
        assert object_colour_fraction(case.truth, case.region) == 0.0
        assert object_colour_fraction(case.image, case.mask) > 0.5


def test_metrics_separate_a_perfect_fill_from_the_object_left_in_place() -> None:
    cases = removal_cases(3, 64, dilation=1).cases
    perfect = np.stack([[case.truth, case.truth] for case in cases])  # (N, 2 seeds, H, W, 3)
    kept = np.stack([case.image for case in cases])[:, None]
    good = score_removal(perfect, cases, threshold=0.05)
    bad = score_removal(kept, cases, threshold=0.05)
    assert np.all(good["psnr"] == PSNR_CAP) and np.allclose(good["ssim"], 1.0)
    assert np.all(good["reappearance"] == 0.0) and np.all(good["instability"] == 0.0)
    assert np.all(bad["reappearance"] == 1.0) and np.all(bad["psnr"] < 20.0)
    assert "instability" not in bad  # one result per scene: no spread across seeds


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Run ``removal_quality.py --quick --sweep`` once; the shipped demo model if present, else a tiny one."""
    if (DEMO_MODEL / "model_index.json").is_file():
        model = DEMO_MODEL
    else:
        from attentive_eraser.testing.tiny import save_tiny_model

        model = save_tiny_model(tmp_path_factory.mktemp("tiny") / "sd15", family="sd15")
    out = tmp_path_factory.mktemp("removal_quality")
    completed = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "removal_quality.py"),
            "--quick",
            "--sweep",
            "--model",
            str(model),
            "--threads",
            "1",
            "--no-progress",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return out, completed.stdout


@pytest.mark.slow
def test_quick_benchmark_produces_every_row_with_finite_metrics(quick_run: tuple[Path, str]) -> None:
    out, stdout = quick_run
    report = json.loads((out / "results.json").read_text(encoding="utf-8"))
    methods = report["methods"]
    settings = report["settings"]
    preset_scale = settings["preset"]["removal_guidance_scale"]
    sweep = [f"sip_s{scale:g}" for scale in settings["sweep_scales"] if scale not in (0.0, preset_scale)]
    assert set(methods) == {*PIPELINE_ROWS, *sweep, *OTHER_ROWS}
    assert settings["scenes"] == 4 and settings["seeds"] == [123, 321] and len(report["scenes"]) == 4
    chosen = removal_cases(4, settings["size"], settings["mask_dilation"]).cases
    assert [scene["seed"] for scene in report["scenes"]] == [case.seed for case in chosen]
    for key, method in methods.items():
        summary = method["summary"]
        for name in ("psnr", "ssim", "reappearance", "object_colour_fraction"):
            assert math.isfinite(summary[name]["mean"]) and math.isfinite(summary[name]["ci95"]), (key, name)
            assert len(method["per_scene"][name]) == 4
        assert 0.0 <= summary["reappearance"]["mean"] <= 1.0
        assert math.isfinite(summary["seconds_per_image"]) and summary["seconds_per_image"] >= 0.0
        if method["stochastic"]:
            assert math.isfinite(summary["instability"]["mean"]), key
            assert summary["images"] == 4 * 2
        else:
            assert summary["instability"] is None, key
            assert summary["images"] == 4
        assert method["label"] in stdout
    assert methods["input"]["summary"]["reappearance"]["mean"] == 1.0  # the object left in place is caught
    table = (out / "table.md").read_text(encoding="utf-8")
    main_table = table.split("\n\n")[0]
    assert main_table.startswith("| method |") and main_table.count("\n| ") == len(methods)
    assert "—" in main_table  # deterministic rows have no seed instability

    # Per background kind: the groups partition the scenes, and each kind's scenes are counted.
    kinds = [scene["background_kind"] for scene in report["scenes"]]
    for method in methods.values():
        groups = method["kinds"]
        assert groups["structured"]["scenes"] + groups["smooth"]["scenes"] == 4
        for kind in set(kinds):
            assert groups[kind]["scenes"] == kinds.count(kind)
        structured = [i for i, kind in enumerate(kinds) if kind in STRUCTURED_KINDS]
        if structured:
            expected = np.mean([method["per_scene"]["psnr"][i] for i in structured])
            assert groups["structured"]["psnr"]["mean"] == pytest.approx(expected, abs=1e-5)
    assert "### Per background kind" in table

    # Diagnostics: one SARG-signal value per SIP step, attention figures per decoder grid.
    diagnostics = report["diagnostics"]
    signal = diagnostics["sarg_signal"]
    assert len(signal["timesteps"]) == len(signal["inside"]) == 4  # --quick: 5 steps x strength 0.8
    assert all(math.isfinite(value) and value >= 0 for value in signal["inside"] + signal["outside"])
    for values in diagnostics["attention"].values():
        assert 0 < values["entropy"] <= 1 and 0 <= values["object_to_object"] <= 1
    assert "### Removal diagnostics" in table and "SARG signal" in stdout


@pytest.mark.slow
def test_quick_benchmark_writes_the_grid(quick_run: tuple[Path, str]) -> None:
    out, _ = quick_run
    report = json.loads((out / "results.json").read_text(encoding="utf-8"))
    with Image.open(out / "grid.png") as grid:
        width, height = grid.size
    tile = report["settings"]["size"] * report["settings"]["grid_zoom"]
    columns = 2 + len(report["methods"]) - 1  # input + mask, truth, every row but the "input" reference
    assert columns * tile < width < (columns + 1) * tile
    assert 4 * tile < height < 5 * tile
