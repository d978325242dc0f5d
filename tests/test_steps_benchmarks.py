"""The fewer-steps benchmarks run end to end (``--quick``) and report every row; no timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from attentive_eraser.settings import FAST_KNOBS

REPO = Path(__file__).resolve().parent.parent


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.slow
def test_steps_quality_quick_reports_every_solver_and_budget(tmp_path: Path) -> None:
    result = _run("steps_quality.py", "--quick", "--no-progress", "--threads", "1", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    runs = report["settings_run"]
    # the SIP default is always run (the reference), then each solver at each budget; DIP adds its default
    assert set(runs) == {"ddim_40", "ddim_6", "ddim_4", "dpmpp_6", "dpmpp_4", "dip_100", "dip_6", "dip_4"}
    assert runs["dpmpp_4"]["call"]["scheduler"] == "dpm++"
    assert runs["ddim_6"]["call"]["num_inference_steps"] == 8  # int(8 * 0.8) = 6 steps run
    assert runs["dip_6"]["call"]["num_inference_steps"] == 3  # 3 inversion + 3 sampling
    assert runs["ddim_40"]["comparison"]["reappearance_difference"]["mean"] == 0.0
    for entry in runs.values():
        assert 0.0 <= entry["summary"]["reappearance"]["mean"] <= 1.0
        assert len(entry["timesteps"]) * (2 if entry["solver"] == "dip" else 1) == entry["evaluations"]
    assert (tmp_path / "curve.png").stat().st_size > 10_000
    assert "| SIP, DPM-Solver++ 2M | 4 |" in result.stdout
    # finished settings are reused on a second run
    again = _run("steps_quality.py", "--quick", "--no-progress", "--threads", "1", "--out", str(tmp_path))
    assert again.returncode == 0, again.stderr
    assert again.stderr.count(": saved") == len(runs)


@pytest.mark.slow
def test_fast_speed_quick_prints_both_methods() -> None:
    result = _run("fast_speed.py", "--quick", "--threads", "1")
    assert result.returncode == 0, result.stderr
    sip = int(FAST_KNOBS["sip"]["num_inference_steps"] * 0.8)  # the demo preset's strength
    dip = 2 * FAST_KNOBS["dip"]["num_inference_steps"]  # inversion + sampling, strength 1
    assert f"| demo model | 64 px | SIP | 40 → {sip} |" in result.stdout
    assert f"| demo model | 64 px | DIP | 100 → {dip} |" in result.stdout
