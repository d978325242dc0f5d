"""The bad-input corpus of issue 10: hostile input to ``remove``, ``batch``, ``serve`` and ``remove()``.

Every case must be refused with exit code 2 and exactly one ``error: ...`` line naming the problem (the
Python API: one ``ValueError`` naming the argument), without a traceback, leaving every input file
byte-identical and no file behind. Most cases must be refused before any model is loaded.
"""

from __future__ import annotations

import pickle
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from attentive_eraser import api
from attentive_eraser.cli import main

WIDTH, HEIGHT = 96, 64
QUIET = "-q"  # nothing runs, so no speed settings (they would override a case's own)


@pytest.fixture(scope="module")
def huge(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8000x7000 (56 megapixels) in a small 1-bit PNG."""
    path = tmp_path_factory.mktemp("corpus-huge") / "huge.png"
    Image.new("1", (8000, 7000)).save(path)
    return path


@pytest.fixture
def world(tmp_path: Path, huge: Path, tiny_sd15_dir: Path) -> dict[str, Path]:
    """Every input the corpus refers to, as ``{name}`` placeholders; ``out`` does not exist."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    mask[36:56, 64:88] = 255
    w = {name: tmp_path / f"{name}.png" for name in ("image", "mask", "small", "empty", "full", "cutout")}
    Image.fromarray(pixels).save(w["image"])
    Image.fromarray(mask).save(w["mask"])
    Image.fromarray(mask).resize((64, 48)).save(w["small"])
    Image.fromarray(np.zeros_like(mask)).save(w["empty"])
    Image.fromarray(np.full_like(mask, 255)).save(w["full"])
    Image.fromarray(np.dstack([pixels, np.where(mask > 0, 0, 255).astype(np.uint8)])).save(w["cutout"])
    w["garbage"] = tmp_path / "garbage.png"
    w["garbage"].write_bytes(b"not an image")
    w["notes"] = tmp_path / "notes.txt"
    w["notes"].write_text("hello")
    w["exists"] = tmp_path / "exists.png"
    w["exists"].write_bytes(b"keep me")
    w["afile"] = tmp_path / "afile"
    w["afile"].write_bytes(b"a plain file")
    w["folder"] = tmp_path / "folder"
    w["folder"].mkdir()
    w["dir_png"] = tmp_path / "dir.png"
    w["dir_png"].mkdir()
    w["huge"] = huge
    # damaged models
    w["bad_safetensors"] = tmp_path / "garbage.safetensors"
    w["bad_safetensors"].write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not a header")
    w["bad_ckpt"] = tmp_path / "garbage.ckpt"
    w["bad_ckpt"].write_bytes(pickle.dumps({"weights": {1, 2}}))
    for name, text in (("bad_json", "{not json"), ("list_json", "[]")):
        w[name] = tmp_path / name
        (w[name] / "unet").mkdir(parents=True)
        (w[name] / "unet" / "config.json").write_text(text)
    w["no_weights"] = tmp_path / "no_weights"
    shutil.copytree(tiny_sd15_dir, w["no_weights"])
    for weights in (w["no_weights"] / "unet").glob("*.safetensors"):
        weights.unlink()
    # batch sources
    w["src"] = tmp_path / "src"
    w["src"].mkdir()
    Image.fromarray(pixels).save(w["src"] / "a.png")
    Image.fromarray(mask).save(w["src"] / "a_mask.png")
    w["jobs"] = w["src"] / "jobs.csv"
    w["jobs"].write_text("image,mask\na.png,a_mask.png\n")
    w["unknown_column"] = w["src"] / "typo.csv"
    w["unknown_column"].write_text("image,mask,guidance\na.png,a_mask.png,3\n")
    w["not_json"] = w["src"] / "broken.jsonl"
    w["not_json"].write_text("{this is not json\n")
    w["no_image_column"] = w["src"] / "headless.csv"
    w["no_image_column"].write_text("photo,mask\na.png,a_mask.png\n")
    w["out"] = tmp_path / "out"
    w["tmp"] = tmp_path
    return w


def _busy_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


@pytest.fixture
def busy_port() -> Iterator[int]:
    yield from _busy_port()


NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
LOADS = "loads"  # a case that is only found while the model loads (a damaged model): not patched out

# (id, command line with {placeholders}, text the one error line must contain[, LOADS])
CLI_CASES: list[tuple[Any, ...]] = [
    # --- remove: files
    ("missing image", "remove {tmp}/missing.png {mask} -o {out}/x.png", "image: file not found"),
    ("unreadable image", "remove {garbage} {mask} -o {out}/x.png", "image: cannot read"),
    ("image is a folder", "remove {folder} {mask} -o {out}/x.png", "image: not a file"),
    ("image is text", "remove {notes} {mask} -o {out}/x.png", "image: cannot read"),
    ("missing mask", "remove {image} {tmp}/missing.png -o {out}/x.png", "mask: file not found"),
    ("unreadable mask", "remove {image} {garbage} -o {out}/x.png", "mask: cannot read"),
    ("mask size", "remove {image} {small} -o {out}/x.png", "--resize-mask"),
    ("empty mask", "remove {image} {empty} -o {out}/x.png", "mask: selects no pixels"),
    ("full mask", "remove {image} {full} -o {out}/x.png", "mask: covers the whole"),
    ("no mask, no alpha", "remove {image} -o {out}/x.png", "mask: no mask given"),
    ("huge image", "remove {huge} {mask} -o {out}/x.png", "image: 8000x7000 is 56.0 megapixels"),
    ("huge mask", "remove {image} {huge} -o {out}/x.png", "mask: 8000x7000 is 56.0 megapixels"),
    ("max pixels 0", "remove {image} {mask} -o {out}/x.png --max-pixels 0", "--max-pixels"),
    # --- remove: output
    ("output extension", "remove {image} {mask} -o {out}/x.xyz", "output: unsupported extension '.xyz'"),
    ("no extension", "remove {image} {mask} -o {out}/x", "output: unsupported extension '(none)'"),
    ("output is the image", "remove {image} {mask} -o {image} --overwrite", "is an input file"),
    ("output is the mask", "remove {image} {mask} -o {mask} --overwrite", "is an input file"),
    ("output exists", "remove {image} {mask} -o {exists}", "already exists (use --overwrite"),
    ("output is a folder", "remove {image} {mask} -o {folder} --overwrite", "output: unsupported extension"),
    (
        "output is a folder.png",
        "remove {image} {mask} -o {dir_png} --overwrite",
        "is a directory, not a file",
    ),
    ("no output", "remove {image} {mask}", "--output"),
    ("output name too long", "remove {image} {mask} -o {out}/" + "n" * 300 + ".png", "is too long"),
    ("output parent is a file", "remove {image} {mask} -o {afile}/x.png", "is a file, so"),
    ("output read-only", "remove {image} {mask} -o /proc/ae-corpus.png", "output: cannot write in '/proc'"),
    # --- remove: settings
    ("steps 0", "remove {image} {mask} -o {out}/x.png --steps 0", "--steps"),
    ("steps text", "remove {image} {mask} -o {out}/x.png --steps many", "--steps"),
    ("strength 0", "remove {image} {mask} -o {out}/x.png --strength 0", "--strength"),
    ("strength 1.5", "remove {image} {mask} -o {out}/x.png --strength 1.5", "--strength"),
    ("strength nan", "remove {image} {mask} -o {out}/x.png --strength nan", "--strength"),
    (
        "s negative",
        "remove {image} {mask} -o {out}/x.png --removal-guidance-scale -1",
        "--removal-guidance-scale",
    ),
    (
        "s nan",
        "remove {image} {mask} -o {out}/x.png --removal-guidance-scale nan",
        "--removal-guidance-scale",
    ),
    ("lambda 1.5", "remove {image} {mask} -o {out}/x.png --suppression-scale 1.5", "--suppression-scale"),
    ("lambda nan", "remove {image} {mask} -o {out}/x.png --suppression-scale nan", "--suppression-scale"),
    ("T_SS negative", "remove {image} {mask} -o {out}/x.png --suppression-steps -1", "--suppression-steps"),
    ("dilate negative", "remove {image} {mask} -o {out}/x.png --dilate -2", "--dilate"),
    ("feather negative", "remove {image} {mask} -o {out}/x.png --feather -1", "--feather"),
    ("feather nan", "remove {image} {mask} -o {out}/x.png --feather nan", "--feather"),
    ("resolution 8", "remove {image} {mask} -o {out}/x.png --resolution 8", "--resolution"),
    (
        "resolution 8192",
        "remove {image} {mask} -o {out}/x.png --resolution 8192",
        "resolution: 8192 would upscale",
    ),
    ("seed negative", "remove {image} {mask} -o {out}/x.png --seed -1", "--seed"),
    ("method", "remove {image} {mask} -o {out}/x.png --method ddim", "--method"),
    ("strategy", "remove {image} {mask} -o {out}/x.png --strategy zoom", "--strategy"),
    ("dtype", "remove {image} {mask} -o {out}/x.png --dtype fp8", "--dtype"),
    ("unknown option", "remove {image} {mask} -o {out}/x.png --guidance 3", "--guidance"),
    ("device meta", "remove {image} {mask} -o {out}/x.png --device meta", "device='meta' is not supported"),
    ("device xpu", "remove {image} {mask} -o {out}/x.png --device xpu", "device='xpu'"),
    ("device vulkan", "remove {image} {mask} -o {out}/x.png --device vulkan", "device='vulkan'"),
    ("device hip", "remove {image} {mask} -o {out}/x.png --device hip", "device='hip'"),
    ("device gpu0", "remove {image} {mask} -o {out}/x.png --device gpu0", "device='gpu0' is not a valid"),
    pytest.param(
        "device cuda:7",
        "remove {image} {mask} -o {out}/x.png --device cuda:7",
        "device='cuda:7'",
        marks=NO_CUDA,
        id="device cuda:7",
    ),
    # --- remove: models
    (
        "unknown model",
        "remove {image} {mask} -o {out}/x.png --model no-such-model",
        "model='no-such-model'",
        LOADS,
    ),
    (
        "model is text",
        "remove {image} {mask} -o {out}/x.png --model {notes}",
        "is a file but not a checkpoint",
        LOADS,
    ),
    (
        "damaged safetensors",
        "remove {image} {mask} -o {out}/x.png --model {bad_safetensors}",
        "not a readable .safetensors file",
        LOADS,
    ),
    (
        "damaged safetensors, config",
        "remove {image} {mask} -o {out}/x.png --model {bad_safetensors} --config {src}",
        "not a readable .safetensors file",
        LOADS,
    ),
    (
        "damaged ckpt",
        "remove {image} {mask} -o {out}/x.png --model {bad_ckpt}",
        "not a readable checkpoint of plain tensors",
        LOADS,
    ),
    (
        "unet config not JSON",
        "remove {image} {mask} -o {out}/x.png --model {bad_json}",
        "unet/config.json is not valid JSON",
        LOADS,
    ),
    (
        "unet config a list",
        "remove {image} {mask} -o {out}/x.png --model {list_json}",
        "unet/config.json holds a JSON list",
        LOADS,
    ),
    (
        "no unet weights",
        "remove {image} {mask} -o {out}/x.png --model {no_weights}",
        "unet/ has no weights",
        LOADS,
    ),
    # --- batch
    ("batch: no source", "batch {tmp}/nowhere -o {out}", "source:"),
    ("batch: output-dir a file", "batch {src} -o {afile}", "output-dir: "),
    ("batch: output-dir holds source", "batch {src} -o {tmp}", "contains SOURCE"),
    ("batch: unknown column", "batch {unknown_column} -o {out}", "unknown column"),
    ("batch: not JSON", "batch {not_json} -o {out}", "is not JSON"),
    ("batch: no image column", "batch {no_image_column} -o {out}", "'image' column"),
    ("batch: manifest suffix", "batch {notes} -o {out}", "must be .csv or .jsonl"),
    ("batch: report is the image", "batch {jobs} -o {out} --report {src}/a.png", "report: "),
    ("batch: report is the mask", "batch {jobs} -o {out} --report {src}/a_mask.png", "report: "),
    ("batch: report is the manifest", "batch {jobs} -o {out} --report {jobs}", "report: "),
    ("batch: report is a folder", "batch {jobs} -o {out} --report {folder}", "is a directory"),
    ("batch: report in a file", "batch {jobs} -o {out} --report {afile}/r.jsonl", "report: "),
    ("batch: report read-only", "batch {jobs} -o {out} --report /proc/r.jsonl", "report: cannot write in"),
    ("batch: output-dir read-only", "batch {jobs} -o /proc/ae-corpus-out", "cannot write in '/proc'"),
    ("batch: pattern with manifest", "batch {jobs} -o {out} --mask-pattern '{{stem}}.png'", "mask-pattern"),
    ("batch: bad pattern", "batch {src} -o {out} --mask-pattern {{nope}}.png", "mask-pattern"),
    ("batch: masks missing", "batch {src} -o {out} --masks {tmp}/nomasks", "masks: "),
    ("batch: batch size 0", "batch {src} -o {out} --batch-size 0", "--batch-size"),
    ("batch: strength nan", "batch {src} -o {out} --strength nan", "--strength"),
    ("batch: device meta", "batch {src} -o {out} --device meta", "device='meta'"),
    ("batch: limit negative", "batch {src} -o {out} --limit -1", "--limit"),
    # --- serve
    ("serve: size abc", "serve --max-file-size abc", "max_file_size: 'abc' is not a size"),
    ("serve: size negative", "serve --max-file-size -5mb", "max_file_size: '-5mb'"),
    ("serve: size 0", "serve --max-file-size 0mb", "max_file_size: '0mb' must be more than 0 bytes"),
    ("serve: size unit", "serve --max-file-size 5pb", "max_file_size: '5pb'"),
    ("serve: host 999", "serve --host 999.1.1.1", "host: '999.1.1.1' is not a valid IP address"),
    ("serve: host 256", "serve --host 1.2.3.256", "host: '1.2.3.256'"),
    ("serve: host not here", "serve --host 192.0.2.7", "host: '192.0.2.7' is not an address of this machine"),
    ("serve: port busy", "serve --port {busy_port}", "is already in use"),
    ("serve: port 70000", "serve --port 70000", "--port"),
    ("serve: port 0", "serve --port 0", "--port"),
    ("serve: device meta", "serve --device meta", "device='meta'"),
    ("serve: max pixels 0", "serve --max-pixels 0", "--max-pixels"),
]


def _no_model(*args: object, **kwargs: object) -> None:
    raise AssertionError("a model was loaded for input that should have been refused first")


def snapshot(*folders: Path) -> dict[str, bytes]:
    return {
        str(path): path.read_bytes()
        for folder in folders
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _args(command: str, world: dict[str, Path], busy_port: int) -> list[str]:
    text = command.format(**{name: str(path) for name, path in world.items()}, busy_port=busy_port)
    return [part.strip("'") for part in text.split()]


def _case_params() -> list[Any]:
    params = []
    for case in CLI_CASES:
        if hasattr(case, "marks"):  # a pytest.param with marks
            command, expected = case.values[1], case.values[2]
            params.append(pytest.param(command, expected, False, id=case.id, marks=case.marks))
        else:
            name, command, expected, *flags = case
            params.append(pytest.param(command, expected, LOADS in flags, id=name))
    return params


@pytest.mark.parametrize(("command", "expected", "loads"), _case_params())
def test_command_line_corpus(
    command: str,
    expected: str,
    loads: bool,
    world: dict[str, Path],
    busy_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if command.startswith("serve"):
        pytest.importorskip("gradio")
    if not loads:
        monkeypatch.setattr(api, "load_pipeline", _no_model)
    api.clear_cache()
    before = snapshot(world["tmp"], world["huge"].parent)
    args = _args(command, world, busy_port)
    if command.startswith("remove"):
        args.append(QUIET)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit)  # no traceback: a clean exit, not an exception
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert expected in lines[0], lines[0]
    assert result.stdout == ""
    assert snapshot(world["tmp"], world["huge"].parent) == before  # inputs intact, nothing left behind
    assert not world["out"].exists()


# (id, keyword changes to a valid remove() call, argument named in the message, text it must contain)
API_CASES = [
    ("paste_back no", {"paste_back": "no"}, "paste_back", "must be True or False"),
    ("paste_back maybe", {"paste_back": "maybe"}, "paste_back", "must be True or False"),
    ("resize_mask 1", {"resize_mask": 1}, "resize_mask", "must be True or False"),
    ("device meta", {"device": "meta"}, "device", "is not supported"),
    ("device vulkan", {"device": "vulkan"}, "device", "device='vulkan' is not supported"),
    ("strength nan", {"strength": float("nan")}, "strength", "must be a finite number"),
    ("s inf", {"removal_guidance_scale": float("inf")}, "removal_guidance_scale", "finite"),
    ("steps 4.5", {"num_inference_steps": 4.5}, "num_inference_steps", "must be an integer"),
    ("resolution 8192", {"resolution": 8192}, "resolution", "would upscale"),
    ("seed negative", {"seed": -1}, "seed", "[0, 2**63)"),
    ("method", {"method": "ddim"}, "method", "must be 'sip' or 'dip'"),
    ("strategy", {"strategy": "zoom"}, "strategy", "must be 'resize' or 'crop'"),
    ("dtype", {"dtype": "int8"}, "dtype", "is not one of"),
    ("max_pixels 0", {"max_pixels": 0}, "max_pixels", "positive whole number"),
    ("huge image", {"image": "huge"}, "image", "megapixels"),
    ("unreadable image", {"image": "garbage"}, "image", "cannot read"),
    ("missing mask", {"mask": "notes"}, "mask", "cannot read"),
    ("damaged model", {"model": "bad_safetensors"}, "model", "not a readable .safetensors file"),
    ("model without weights", {"model": "no_weights"}, "model", "has no weights"),
]


@pytest.mark.parametrize(
    ("changes", "argument", "expected"), [case[1:] for case in API_CASES], ids=[case[0] for case in API_CASES]
)
def test_python_api_corpus(
    changes: dict[str, Any],
    argument: str,
    expected: str,
    world: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if "model" not in changes:
        monkeypatch.setattr(api, "load_pipeline", _no_model)
    api.clear_cache()
    kwargs: dict[str, Any] = {
        "image": world["image"],
        "mask": world["mask"],
        "num_inference_steps": 4,
        "progress": False,
    }
    for name, value in changes.items():
        kwargs[name] = world[value] if isinstance(value, str) and value in world else value
    before = snapshot(world["tmp"], world["huge"].parent)
    with pytest.raises(ValueError) as raised:
        api.remove(**kwargs)
    message = str(raised.value)
    assert "\n" not in message and expected in message
    assert message.startswith((f"{argument}:", f"{argument}=")), message
    assert snapshot(world["tmp"], world["huge"].parent) == before


# A few cases in a real process: its stderr (warnings included) must be the one line.
PROCESS_CASES = [
    ("remove {image} {mask} -o {out}/x.png --model {bad_ckpt}", "not a readable checkpoint"),
    ("remove {image} {mask} -o {out}/x.png --device meta", "device='meta'"),
    ("remove {image} {mask} -o {out}/x.png --strength nan", "--strength"),
]


@pytest.mark.slow
def test_a_real_process_prints_one_line(world: dict[str, Path], busy_port: int) -> None:
    env = {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PATH": "/usr/bin:/bin",
        "OMP_NUM_THREADS": "1",
        "OMP_WAIT_POLICY": "PASSIVE",
    }
    before = snapshot(world["tmp"])
    for command, expected in PROCESS_CASES:
        args = [sys.executable, "-m", "attentive_eraser", *_args(command, world, busy_port), QUIET]
        completed = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300, check=False)
        assert completed.returncode == 2, completed.stderr
        lines = completed.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], completed.stderr
    assert snapshot(world["tmp"]) == before


def test_the_corpus_is_large_enough() -> None:
    assert len(CLI_CASES) + len(API_CASES) >= 60
    kinds = {(case.values if hasattr(case, "marks") else case)[1].split()[0] for case in CLI_CASES}
    assert kinds == {"remove", "batch", "serve"}
