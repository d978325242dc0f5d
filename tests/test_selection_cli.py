"""``attentive-eraser remove IMAGE --point X,Y`` (and --exclude, --box, --object, --segmenter, --save-mask):
selections on the command line, their refusals, and the offline fresh-clone path on the bundled scene."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from PIL import Image

from attentive_eraser.cli import main
from attentive_eraser.demo import example_scene
from attentive_eraser.selection import select_object

FAST = ["--steps", "4", "--quiet"]
SCENE = Path(__file__).resolve().parent.parent / "src" / "attentive_eraser" / "assets" / "demo" / "scene.png"
CLICK = (9, 2)  # the deepest point of the bundled scene's object (a ring cut by the corner)


def invoke(*args: object) -> Result:
    return CliRunner().invoke(main, [str(arg) for arg in args])


def _error(result: Result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_a_click_removes_the_object_and_saves_the_mask(tmp_path: Path) -> None:
    out, saved = tmp_path / "out.png", tmp_path / "mask.png"
    result = invoke(
        "remove", SCENE, "--point", f"{CLICK[0]},{CLICK[1]}", "-o", out, "--save-mask", saved, *FAST
    )
    assert result.exit_code == 0, result.output
    scene, truth = example_scene()
    mask = np.asarray(Image.open(saved)) > 0
    assert np.array_equal(mask, select_object(scene, points=[CLICK]))
    assert (mask & truth).sum() / (mask | truth).sum() > 0.9
    # the same as giving that mask as MASK
    again = tmp_path / "again.png"
    assert invoke("remove", SCENE, saved, "-o", again, *FAST).exit_code == 0
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(again)))


def test_box_exclude_and_mask_combine(tmp_path: Path) -> None:
    painted = np.zeros((64, 64), np.uint8)
    painted[60:, 60:] = 255
    mask_path = tmp_path / "corner.png"
    Image.fromarray(painted).save(mask_path)
    saved = tmp_path / "used.png"
    result = invoke(
        "remove",
        SCENE,
        mask_path,
        "--box",
        "0,0,26,26",
        "--exclude",
        "40,40",
        "-o",
        tmp_path / "o.png",
        "--save-mask",
        saved,
        *FAST,
    )
    assert result.exit_code == 0, result.output
    used = np.asarray(Image.open(saved)) > 0
    scene, _ = example_scene()
    expected = (painted > 0) | select_object(scene, box=(0, 0, 26, 26), negative_points=[(40, 40)])
    assert np.array_equal(used, expected)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--point", "9"], "error: point: '9' is not X,Y"),
        (["--point", "70,2"], "error: points: points[0]=(70.0, 2.0) lies outside the 64x64 image"),
        (["--exclude", "3,3"], "error: points: only negative_points given"),
        (["--box", "1,2,3"], "error: box: '1,2,3' is not X0,Y0,X1,Y1"),
        (["--box", "20,20,10,30"], "error: box: (20.0, 20.0, 10.0, 30.0) is empty"),
        (["--object", "the red ring"], "error: object: 'the red ring' needs a text-capable segmenter"),
        (["--segmenter", "classic"], "error: segmenter: 'classic' is given but nothing to select"),
        (
            ["--point", "9,2", "--segmenter", "sam:facebook/sam-vit-absent"],
            "error: segmenter: 'sam:facebook/sam-vit-absent': the weights 'facebook/sam-vit-absent' are not",
        ),
        (["--point", "40,40"], "error: selection: points=[(40, 40)] selects"),
        (
            ["--point", "9,2", "--save-mask", "{tmp}/mask.jpg"],
            "error: save-mask: '{tmp}/mask.jpg' needs a lossless",
        ),
        (
            ["--point", "9,2", "--save-mask", "{tmp}/out.png"],
            "error: save-mask: '{tmp}/out.png' is also the OUTPUT",
        ),
        (["--point", "9,2", "--save-mask", str(SCENE)], "error: save-mask: "),
    ],
)
def test_refusals_are_one_line_and_write_nothing(tmp_path: Path, args: list[str], fragment: str) -> None:
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    before = SCENE.read_bytes()
    line = _error(invoke("remove", SCENE, *args, "-o", tmp_path / "out.png", *FAST))
    assert line.startswith(fragment.replace("{tmp}", str(tmp_path))), line
    assert not list(tmp_path.iterdir())
    assert SCENE.read_bytes() == before


@pytest.mark.slow
def test_fresh_clone_offline_command(tmp_path: Path) -> None:
    """The acceptance command, as a user types it: the bundled scene, one click, offline."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    out = tmp_path / "out.png"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "attentive_eraser",
            "remove",
            str(SCENE),
            "--point",
            "9,2",
            "-o",
            str(out),
            "--steps",
            "4",
            "-q",
        ],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert Image.open(out).size == (64, 64)
