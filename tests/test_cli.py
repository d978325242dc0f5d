"""The command line: error reporting, file safety, outputs, the demo and the ``python -m`` entry point.

Runs on the built-in tiny default model with 4 steps at 64 px, so every removal takes well under a second.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner, Result
from PIL import Image

from attentive_eraser import api, removal
from attentive_eraser.cli import main
from attentive_eraser.demo.run import DISPLAY_SCALE, example_scene
from attentive_eraser.settings import FAST_KNOBS, KNOBS

FAST = ["--steps", "4", "--resolution", "64", "--quiet"]
WIDTH, HEIGHT = 96, 64  # non-square on purpose


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """Small inputs: a photo-like image, its mask, and broken variants of both."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)
    mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    mask[36:56, 64:88] = 255  # inside one cell of the coarsest (2x2) token grid
    paths = {name: tmp_path / f"{name}.png" for name in ("image", "mask", "small", "empty", "full", "cutout")}
    Image.fromarray(pixels).save(paths["image"])
    Image.fromarray(mask).save(paths["mask"])
    Image.fromarray(mask).resize((64, 48), Image.Resampling.NEAREST).save(paths["small"])
    Image.fromarray(np.zeros_like(mask)).save(paths["empty"])
    Image.fromarray(np.full_like(mask, 255)).save(paths["full"])
    alpha = np.where(mask > 0, 0, 255).astype(np.uint8)  # transparent = the object
    Image.fromarray(np.dstack([pixels, alpha])).save(paths["cutout"])  # (H, W, 4) uint8 -> "RGBA"
    paths["garbage"] = tmp_path / "garbage.png"
    paths["garbage"].write_bytes(b"not an image")
    paths["missing"] = tmp_path / "missing.png"
    return paths


def invoke(*args: object) -> Result:
    return CliRunner().invoke(main, [str(arg) for arg in args])


def far_from_mask(mask_path: Path, margin: int = 12) -> np.ndarray:
    """Pixels more than ``margin`` px from the object (outside the dilation and the feathered band)."""
    mask = np.asarray(Image.open(mask_path)) > 0
    rows, cols = np.nonzero(mask)
    far = np.ones_like(mask)
    top, left = max(rows.min() - margin, 0), max(cols.min() - margin, 0)
    far[top : rows.max() + margin + 1, left : cols.max() + margin + 1] = False
    return far


# --------------------------------------------------------------------------------------------------
# Help, version, lazy imports


def test_remove_help_lists_every_option_with_paper_symbols() -> None:
    result = invoke("remove", "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())  # undo click's line wrapping
    for option in (
        "--output",
        "--model",
        "--method",
        "--seed",
        "--steps",
        "--strength",
        "--removal-guidance-scale",
        "--suppression-scale",
        "--suppression-steps",
        "--dilate",
        "--feather",
        "--resolution",
        "--no-paste-back",
        "--resize-mask",
        "--device",
        "--dtype",
        "--quiet",
        "--overwrite",
    ):
        assert option in text, option
    for symbol in ("s (Eq. 18)", "λ (Eq. 13)", "T_SS", "T_I"):
        assert symbol in text, symbol
    for default in (
        "Default: 15.0 (demo model; SD 9.0).",
        "Default: 0.3.",
        "Default: 10.",
        "Default: 123.",
        "0.8 SIP, 1.0 DIP",
    ):
        assert default in text, default


def test_version_and_group_help() -> None:
    result = invoke("--version")
    assert result.exit_code == 0 and "0.1.0" in result.output
    result = invoke("--help")
    assert result.exit_code == 0 and "remove" in result.output and "demo" in result.output


@pytest.mark.slow
def test_cli_import_does_not_load_torch() -> None:
    code = "import sys, attentive_eraser.cli; print(sorted({'torch', 'diffusers'} & set(sys.modules)))"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "[]"


# --------------------------------------------------------------------------------------------------
# Bad input: exit code 2, one line naming the problem


def _no_model(*args: object, **kwargs: object) -> None:
    raise AssertionError("bad input must be refused before the model runs")


# (case, command line after "remove", text the error line must contain). Words naming a file of the
# ``files`` fixture become its path; "out.*" is a file in the test's folder.
BAD_INPUTS = [
    ("missing image", "missing mask -o out.png", "image: file not found"),
    ("unreadable image", "garbage mask -o out.png", "image: cannot read"),
    ("missing mask", "image missing -o out.png", "mask: file not found"),
    ("unreadable mask", "image garbage -o out.png", "mask: cannot read"),
    ("mask size", "image small -o out.png", "--resize-mask"),
    ("empty mask", "image empty -o out.png", "mask: selects no pixels"),
    ("full mask", "image full -o out.png", "mask: covers the whole"),
    ("no mask, no alpha", "image -o out.png", "mask: no mask given"),
    ("output extension", "image mask -o out.xyz", "output: unsupported extension '.xyz'"),
    ("output is the image", "image mask -o image --overwrite", "output:"),
    ("output is the mask", "image mask -o mask --overwrite", "output:"),
    ("no output", "image mask", "--output"),
    ("steps", "image mask -o out.png --steps 0", "--steps"),
    ("strength 0", "image mask -o out.png --strength 0", "--strength"),
    ("strength above 1", "image mask -o out.png --strength 1.5", "--strength"),
    ("s", "image mask -o out.png --removal-guidance-scale -1", "--removal-guidance-scale"),
    ("lambda", "image mask -o out.png --suppression-scale 1.5", "--suppression-scale"),
    ("T_SS", "image mask -o out.png --suppression-steps -1", "--suppression-steps"),
    ("dilate", "image mask -o out.png --dilate -2", "--dilate"),
    ("feather", "image mask -o out.png --feather -1", "--feather"),
    ("resolution", "image mask -o out.png --resolution 8", "--resolution"),
    ("seed", "image mask -o out.png --seed -1", "--seed"),
    ("method", "image mask -o out.png --method xyz", "--method"),
    ("dtype", "image mask -o out.png --dtype fp8", "--dtype"),
]


@pytest.mark.parametrize(
    ("command", "expected"), [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS]
)
def test_bad_input_is_one_line_and_exit_code_2(
    command: str, expected: str, files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api, "remove", _no_model)
    args = [
        files[word] if word in files else tmp_path / word if word.startswith("out.") else word
        for word in command.split()
    ]
    before = {path: path.read_bytes() for path in (files["image"], files["mask"])}
    result = invoke("remove", *args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert expected in lines[0]
    assert all(path.read_bytes() == data for path, data in before.items())
    assert not (tmp_path / "out.png").exists()


def test_mask_size_message(files: dict[str, Path], tmp_path: Path) -> None:
    result = invoke("remove", files["image"], files["small"], "-o", tmp_path / "out.png")
    expected = (
        "error: mask: size 64x48 differs from the image's 96x64 (use --resize-mask, or resize_mask=True in "
        "Python)"
    )
    assert result.stderr.strip() == expected


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        (["--model", "no-such-model"], "model="),
        (["--model", "nobody/no-such-model"], "model="),
        (["--device", "no-such-device"], "device"),
        pytest.param(
            ["--device", "cuda"],
            "device",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA"),
        ),
        (["--steps", "4", "--strength", "0.1"], "strength"),  # checked by the pipeline: no step would run
    ],
)
def test_bad_settings_found_while_loading_exit_2(
    option: list[str], expected: str, files: dict[str, Path], tmp_path: Path
) -> None:
    result = invoke("remove", files["image"], files["mask"], "-o", tmp_path / "out.png", "-q", *option)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and expected in lines[-1]
    assert "Traceback" not in result.output


def test_unexpected_errors_keep_their_traceback(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("a bug outside the package's input checks")

    monkeypatch.setattr(removal, "run", broken)
    result = invoke("remove", files["image"], files["mask"], "-o", tmp_path / "out.png")
    assert result.exit_code == 1
    assert isinstance(result.exception, ValueError)


# --------------------------------------------------------------------------------------------------
# Successful runs


@pytest.mark.parametrize(("suffix", "file_format"), [(".png", "PNG"), (".jpg", "JPEG")])
def test_remove_writes_the_requested_format_at_the_input_size(
    suffix: str, file_format: str, files: dict[str, Path], tmp_path: Path
) -> None:
    inputs = (files["image"], files["mask"])
    before = {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in inputs}
    output = tmp_path / "nested" / f"out{suffix}"
    result = invoke("remove", *inputs, "-o", output, *FAST)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(output)
    with Image.open(output) as written:
        assert written.format == file_format
        assert written.size == (WIDTH, HEIGHT)
    assert {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in inputs} == before
    assert [path.name for path in output.parent.iterdir()] == [output.name]  # no temporary file left


def test_existing_output_needs_overwrite(files: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "out.png"
    output.write_bytes(b"keep me")
    result = invoke("remove", files["image"], files["mask"], "-o", output, *FAST)
    assert result.exit_code == 2
    assert "already exists" in result.stderr and "--overwrite" in result.stderr
    assert output.read_bytes() == b"keep me"
    result = invoke("remove", files["image"], files["mask"], "-o", output, "--overwrite", *FAST)
    assert result.exit_code == 0, result.output
    assert Image.open(output).size == (WIDTH, HEIGHT)


def test_no_paste_back_changes_pixels_outside_the_mask(files: dict[str, Path], tmp_path: Path) -> None:
    pasted, raw = tmp_path / "pasted.png", tmp_path / "raw.png"
    assert invoke("remove", files["image"], files["mask"], "-o", pasted, *FAST).exit_code == 0
    assert invoke("remove", files["image"], files["mask"], "-o", raw, "--no-paste-back", *FAST).exit_code == 0
    original = np.asarray(Image.open(files["image"]))
    far = far_from_mask(files["mask"])
    assert np.array_equal(np.asarray(Image.open(pasted))[far], original[far])
    assert not np.array_equal(np.asarray(Image.open(raw))[far], original[far])


def test_alpha_channel_is_the_mask(files: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "out.png"
    result = invoke("remove", files["cutout"], "-o", output, *FAST)
    assert result.exit_code == 0, result.output
    written = Image.open(output)
    assert written.size == (WIDTH, HEIGHT) and written.mode == "RGB"  # the filled hole is opaque
    original = np.asarray(Image.open(files["image"]))
    far = far_from_mask(files["mask"])
    assert np.array_equal(np.asarray(written)[far], original[far])


def test_resize_mask_accepts_another_mask_size(files: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "out.png"
    result = invoke("remove", files["image"], files["small"], "-o", output, "--resize-mask", *FAST)
    assert result.exit_code == 0, result.output
    assert Image.open(output).size == (WIDTH, HEIGHT)


class RecordingPipeline:
    """Stands in for a loaded pipeline: records each call's knobs and returns the input unchanged."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def set_progress_bar_config(self, **kwargs: object) -> None:
        pass

    def __call__(self, image: Any, mask: Any, **kwargs: Any) -> SimpleNamespace:
        self.calls.append({name: value for name, value in kwargs.items() if name != "generator"})
        images = image if isinstance(image, list) else [image]
        return SimpleNamespace(images=[picture.convert("RGB") for picture in images])


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> RecordingPipeline:
    pipe = RecordingPipeline()
    monkeypatch.setattr(api, "load_pipeline", lambda *args, **kwargs: pipe)
    return pipe


@pytest.mark.parametrize("method", ["sip", "dip"])
def test_fast_reaches_the_pipeline_as_the_fast_knobs_and_explicit_knobs_win(
    method: str, recording: RecordingPipeline, files: dict[str, Path], tmp_path: Path
) -> None:
    inputs = (files["image"], files["mask"], "--method", method, "-q")
    assert invoke("remove", *inputs, "-o", tmp_path / "fast.png", "--fast").exit_code == 0
    fast = recording.calls[-1]
    assert {name: fast.get(name) for name in FAST_KNOBS[method]} == FAST_KNOBS[method]
    result = invoke("remove", *inputs, "-o", tmp_path / "steps.png", "--fast", "--steps", "7")
    assert result.exit_code == 0, result.output
    explicit = recording.calls[-1]
    assert explicit["num_inference_steps"] == 7
    assert {name: explicit.get(name) for name in FAST_KNOBS[method] if name != "num_inference_steps"} == {
        name: value for name, value in FAST_KNOBS[method].items() if name != "num_inference_steps"
    }
    assert invoke("remove", *inputs, "-o", tmp_path / "plain.png").exit_code == 0
    assert not set(FAST_KNOBS[method]) & set(recording.calls[-1])  # without --fast: the preset's


def test_every_knob_is_an_option_and_scheduler_is_checked(files: dict[str, Path], tmp_path: Path) -> None:
    text = " ".join(invoke("remove", "--help").output.split())
    assert all(knob.option in text for knob in KNOBS) and "--fast" in text and "--scheduler" in text
    result = invoke(
        "remove", files["image"], files["mask"], "-o", tmp_path / "out.png", "--scheduler", "euler"
    )
    assert result.exit_code == 2 and "--scheduler" in result.stderr


# --------------------------------------------------------------------------------------------------
# Demo and entry point


def test_example_scene_has_an_object_and_background() -> None:
    scene, mask = example_scene()
    assert scene.mode == "RGB" and mask.dtype == bool and mask.shape == (scene.height, scene.width)
    assert 0 < mask.mean() < 0.5


def test_demo_writes_a_side_by_side_png(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("demo", "--quiet")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("attentive_eraser_demo.png (") and result.stdout.strip().endswith(" s)")
    scene, _ = example_scene()
    with Image.open(tmp_path / "attentive_eraser_demo.png") as figure:
        assert figure.format == "PNG"
        assert 3 * DISPLAY_SCALE * scene.width <= figure.width <= 3 * DISPLAY_SCALE * scene.width + 32
        assert figure.height >= DISPLAY_SCALE * scene.height


@pytest.mark.slow
def test_python_m_entry_point(files: dict[str, Path], tmp_path: Path) -> None:
    output = tmp_path / "out.webp"
    inputs = [str(files["image"]), str(files["mask"])]
    command = [sys.executable, "-m", "attentive_eraser", "remove", *inputs, "-o", str(output), *FAST]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    completed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == str(output)
    assert "Traceback" not in completed.stderr and "torchvision" not in completed.stderr
    with Image.open(output) as written:
        assert written.format == "WEBP" and written.size == (WIDTH, HEIGHT)
