"""The bad-input corpus: hostile input to ``remove``, ``batch``, ``serve`` and ``remove()``.

Every case must be refused with exit code 2 and exactly one ``error: ...`` line naming the problem (the
Python API: one ``ValueError`` naming the argument), without a traceback, leaving every input file
byte-identical and no file behind. Most cases must be refused before any model is loaded.

Issue 17 added three kinds that are not refusals of the whole command:

- ``ROW_CASES``: one bad manifest row (a bad cell, an unreadable row, settings ``remove`` refuses) fails
  that row alone. Checked with ``batch --dry-run`` (no model, nothing written): exit code 1, nothing on
  stderr, exactly one ``FAIL`` line on stdout naming the bad row, the good row still planned.
- ``TEMPORARY_CASES``: inputs named like the run's own temporary files (``.<output name>.<12 hex>.tmp``,
  report parts), by name, symbolic link or hard link: the run succeeds (exit 0, the demo model, 1 step),
  every input is still there byte for byte, a real leftover is cleaned up, and only the outputs are new.
- ``RUN_FILE_CASES``: inputs named like a file the run must write (its lock, report parts, the merge's
  temporary): refused before any work with one line, nothing written.
"""

from __future__ import annotations

import json
import os
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


@pytest.fixture(scope="module")
def over_limit(huge: Path) -> Path:
    """10001x5000: 50.005 megapixels (shown as 50.01), just over the default limit of 50 (beside ``huge``)."""
    path = huge.parent / "over_limit.png"
    Image.new("1", (10001, 5000)).save(path)
    return path


# Manifests refused as a whole (exit 2, one line): {name} placeholders of the world, in its src folder.
REFUSED_MANIFESTS = {
    "repeated_mask": ("csv", "image,mask,mask\na.png,a_mask.png,a_mask.png\n"),
    "repeated_seed": ("csv", "image,mask,seed,seed\na.png,a_mask.png,1,2\n"),
    "repeated_output": ("csv", "image,output,mask,output\na.png,x.png,a_mask.png,y.png\n"),
    "repeated_padded": ("csv", "image, mask ,mask\na.png,a_mask.png,a_mask.png\n"),
    "capital_image": ("csv", "image,mask,Image\na.png,a_mask.png,a.png\n"),
    "empty_csv": ("csv", ""),
    "jsonl_list": ("jsonl", '{"image": "a.png", "mask": "a_mask.png"}\n[1, 2]\n'),
    "jsonl_null": ("jsonl", 'null\n{"image": "a.png", "mask": "a_mask.png"}\n'),
    "jsonl_text": ("jsonl", '"a.png"\n'),
    "jsonl_trailing": ("jsonl", '{"image": "a.png", "mask": "a_mask.png"} and more\n'),
    "jsonl_unknown_key": ("jsonl", '{"image": "a.png", "mask": "a_mask.png", "guidance_scale": 3}\n'),
}


@pytest.fixture
def world(tmp_path: Path, huge: Path, over_limit: Path, tiny_sd15_dir: Path) -> dict[str, Path]:
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
    w["over_limit"] = over_limit
    w["big_mask"] = tmp_path / "big_mask.png"
    Image.new("L", (128, 96), 255).save(w["big_mask"])  # 12288 pixels
    w["image_link"] = tmp_path / "image_link.png"
    w["image_link"].symlink_to(w["image"])
    w["mask_hard"] = tmp_path / "mask_hard.png"
    os.link(w["mask"], w["mask_hard"])
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
    for name, (suffix, text) in REFUSED_MANIFESTS.items():
        w[name] = w["src"] / f"{name}.{suffix}"
        w[name].write_text(text)
    w["latin1"] = w["src"] / "latin1.csv"
    w["latin1"].write_bytes("image,mask\ncaf\xe9.png,a_mask.png\n".encode("latin-1"))
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
    # --- item 1: the output (or the saved mask) is an input, through links and ".."
    (
        "output is a symlink to the image",
        "remove {image} {mask} -o {image_link} --overwrite",
        "is an input file",
    ),
    (
        "output is a hardlink of the mask",
        "remove {image} {mask} -o {mask_hard} --overwrite",
        "is an input file",
    ),
    (
        "image by its link, output the file",
        "remove {image_link} {mask} -o {image} --overwrite",
        "is an input",
    ),
    ("output through ..", "remove {image} {mask} -o {folder}/../image.png --overwrite", "is an input file"),
    ("output named like a temporary", "remove {image} {mask} -o {out}/.x.png.0123456789ab.tmp", "'.tmp'"),
    # --- item 4: masks are saved losslessly, never over an input or the output
    ("save-mask .jpg", "remove {image} {mask} -o {out}/x.png --save-mask {out}/m.jpg", "lossless extension"),
    (
        "save-mask .JPEG",
        "remove {image} {mask} -o {out}/x.png --save-mask {out}/m.JPEG",
        "lossless extension",
    ),
    ("save-mask .gif", "remove {image} {mask} -o {out}/x.png --save-mask {out}/m.gif", "lossless extension"),
    (
        "save-mask no extension",
        "remove {image} {mask} -o {out}/x.png --save-mask {out}/m",
        "lossless extension",
    ),
    (
        "save-mask is the image",
        "remove {image} {mask} -o {out}/x.png --save-mask {image} --overwrite",
        "save-mask: '{image}' is an input file",
    ),
    (
        "save-mask is a hardlink of the mask",
        "remove {image} {mask} -o {out}/x.png --save-mask {mask_hard} --overwrite",
        "save-mask: '{mask_hard}' is an input file",
    ),
    (
        "save-mask is a symlink to the image",
        "remove {image} {mask} -o {out}/x.png --save-mask {image_link} --overwrite",
        "save-mask: '{image_link}' is an input file",
    ),
    (
        "save-mask is the output",
        "remove {image} {mask} -o {out}/x.png --save-mask {out}/x.png",
        "also the OUTPUT",
    ),
    (
        "save-mask exists",
        "remove {image} {mask} -o {out}/x.png --save-mask {exists}",
        "save-mask: '{exists}' already",
    ),
    # --- items 5, 6: one line over the pixel limit, in pixels under 0.1 megapixels, the argument named once
    (
        "max pixels 1",
        "remove {image} {mask} -o {out}/x.png --max-pixels 1",
        "image: 96x64 is 6144 pixels, more",
    ),
    (
        "max pixels one short",
        "remove {image} {mask} -o {out}/x.png --max-pixels 6143",
        "error: image: 96x64 is 6144 pixels, more than the limit of 6143 pixels (raise it with --max-pixels",
    ),
    (
        "mask over max pixels",
        "remove {image} {big_mask} -o {out}/x.png --max-pixels 10000",
        "error: mask: 128x96 is 12288 pixels, more than the limit of 10000 pixels",
    ),
    ("max pixels is inclusive", "remove {image} {small} -o {out}/x.png --max-pixels 6144", "--resize-mask"),
    (
        "just over the default limit",
        "remove {over_limit} {mask} -o {out}/x.png",
        "error: image: 10001x5000 is 50.01 megapixels, more than the limit of 50 (raise it",
    ),
    ("max pixels text", "remove {image} {mask} -o {out}/x.png --max-pixels lots", "--max-pixels"),
    ("max pixels 1.5", "remove {image} {mask} -o {out}/x.png --max-pixels 1.5", "--max-pixels"),
    ("batch: max pixels 0", "batch {src} -o {out} --max-pixels 0", "--max-pixels"),
    # --- item 10: --top-k needs --object
    (
        "top-k with a mask",
        "remove {image} {mask} -o {out}/x.png --top-k 1",
        "top-k: 1 is given but no --object",
    ),
    (
        "top-k with a box",
        "remove {image} --box 1,1,20,20 -o {out}/x.png --top-k 3",
        "top-k: 3 is given but no",
    ),
    (
        "top-k with a click",
        "remove {image} --point 10,10 -o {out}/x.png --top-k 2",
        "top-k: 2 is given but no",
    ),
    ("top-k 0", "remove {image} {mask} -o {out}/x.png --top-k 0", "top-k"),
    # --- item 9: the one seed rule on the command line
    (
        "seed true",
        "remove {image} {mask} -o {out}/x.png --seed true",
        "'true' is not a whole number in [0, 2**63)",
    ),
    (
        "seed 2**63",
        "remove {image} {mask} -o {out}/x.png --seed 9223372036854775808",
        "is not a whole number",
    ),
    ("seed hex", "remove {image} {mask} -o {out}/x.png --seed 0x10", "'0x10' is not a whole number"),
    ("seed 1e999", "remove {image} {mask} -o {out}/x.png --seed 1e999", "'1e999' is not a whole number"),
    (
        "seed 5000 digits",
        "remove {image} {mask} -o {out}/x.png --seed " + "9" * 5000,
        "is not a whole number",
    ),
    ("batch: seed 2**63", "batch {src} -o {out} --seed 9223372036854775808", "--seed"),
    ("batch: seed abc", "batch {src} -o {out} --seed abc", "'abc' is not a whole number"),
    # --- items 7, 10: DIP's sampler, any case; too few steps for the strength
    ("scheduler Euler", "remove {image} {mask} -o {out}/x.png --scheduler Euler", "--scheduler"),
    ("dip with dpm++", "remove {image} {mask} -o {out}/x.png --method dip --scheduler dpm++", "DDIM only"),
    ("DIP with DPM++", "remove {image} {mask} -o {out}/x.png --method DIP --scheduler DPM++", "DDIM only"),
    (
        "fast dip with dpm++",
        "remove {image} {mask} -o {out}/x.png --fast --method dip --scheduler dpm++",
        "DDIM",
    ),
    ("batch: DIP with DPM++", "batch {src} -o {out} --method DIP --scheduler DPM++", "DDIM only"),
    ("batch: steps 1", "batch {src} -o {out} --steps 1", "strength=0.8 with num_inference_steps=1 runs no"),
    ("batch: steps x strength", "batch {src} -o {out} --steps 2 --strength 0.4", "runs no denoising step"),
    (
        "steps x strength, after loading",
        "remove {image} {mask} -o {out}/x.png --steps 1 --strength 0.5",
        "strength=0.5 with num_inference_steps=1 runs no denoising step",
        LOADS,
    ),
    pytest.param(
        "steps x strength, before loading",
        "remove {image} {mask} -o {out}/x.png --steps 3 --strength 0.3",
        "strength=0.3 with num_inference_steps=3 runs no denoising step",
        id="steps x strength, before loading",
    ),
    # --- item 13: hub ids that are not on this machine: one complete line
    (
        "hub id offline, sdxl",
        "remove {image} {mask} -o {out}/x.png --model stabilityai/stable-diffusion-xl-base-1.0",
        "the weights are not on this machine and downloads are off",
        LOADS,
    ),
    (
        "hub id offline, sd15",
        "remove {image} {mask} -o {out}/x.png --model runwayml/stable-diffusion-v1-5 --method dip",
        "hf download runwayml/stable-diffusion-v1-5",
        LOADS,
    ),
    (
        "hub id offline, unknown repo",
        "remove {image} {mask} -o {out}/x.png --model someone/no-such-model",
        "or pass a local diffusers folder or .safetensors file",
        LOADS,
    ),
    ("model a/b/c", "remove {image} {mask} -o {out}/x.png --model a/b/c", "not a hub id (owner/name)", LOADS),
    (
        "batch: hub id offline",
        "batch {src} -o {out} --model stabilityai/stable-diffusion-2-1-base",
        "model='stabilityai/stable-diffusion-2-1-base': the weights are not on this machine",
        LOADS,
    ),
    ("batch: unknown model", "batch {jobs} -o {out} --model no-such-model", "model='no-such-model'", LOADS),
    (
        "batch: damaged safetensors",
        "batch {src} -o {out} --model {bad_safetensors}",
        "not a readable .safetensors file",
        LOADS,
    ),
    # --- items 3, 8: manifests refused as a whole
    (
        "batch: header repeats mask",
        "batch {repeated_mask} -o {out}",
        "the header repeats the column(s) ['mask']",
    ),
    ("batch: header repeats seed", "batch {repeated_seed} -o {out}", "repeats the column(s) ['seed']"),
    ("batch: header repeats output", "batch {repeated_output} -o {out}", "repeats the column(s) ['output']"),
    ("batch: header repeats, padded", "batch {repeated_padded} -o {out}", "repeats the column(s) ['mask']"),
    ("batch: header Image", "batch {capital_image} -o {out}", "unknown column(s) ['Image']"),
    ("batch: empty CSV", "batch {empty_csv} -o {out}", "needs a header row with an 'image' column"),
    ("batch: CSV not UTF-8", "batch {latin1} -o {out}", "cannot read the manifest"),
    ("batch: JSONL list", "batch {jsonl_list} -o {out}", "jsonl_list.jsonl line 2 is not a JSON object"),
    ("batch: JSONL null", "batch {jsonl_null} -o {out}", "jsonl_null.jsonl line 1 is not a JSON object"),
    ("batch: JSONL text", "batch {jsonl_text} -o {out}", "is not a JSON object"),
    ("batch: JSONL trailing", "batch {jsonl_trailing} -o {out}", "jsonl_trailing.jsonl line 1 is not JSON"),
    (
        "batch: JSONL unknown key",
        "batch {jsonl_unknown_key} -o {out}",
        "unknown column(s) ['guidance_scale']",
    ),
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


def _filled(text: str, world: dict[str, Path], busy_port: int = 0) -> str:
    return text.format(**{name: str(path) for name, path in world.items()}, busy_port=busy_port)


def _args(command: str, world: dict[str, Path], busy_port: int) -> list[str]:
    return [part.strip("'") for part in _filled(command, world, busy_port).split()]


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
    assert _filled(expected, world) in lines[0], lines[0]
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
    # --- item 9: the one seed rule (NumPy integers are accepted: tests/test_hardening_frontends.py)
    ("seed 1.5", {"seed": 1.5}, "seed", "must be a whole number in [0, 2**63)"),
    ("seed True", {"seed": True}, "seed", "seed=True must be a whole number"),
    ("seed 2**63", {"seed": 2**63}, "seed", f"seed={2**63} must be a whole number"),
    ("seed float64 3.0", {"seed": np.float64(3.0)}, "seed", "must be a whole number"),
    ("seed [1]", {"seed": [1]}, "seed", "seed=[1] must be a whole number"),
    ("seed None", {"seed": None}, "seed", "seed=None must be a whole number"),
    ("seed nan", {"seed": float("nan")}, "seed", "seed=nan must be a whole number"),
    ("seed text 1.5", {"seed": "1.5"}, "seed", "seed='1.5' must be a whole number"),
    ("seed text -1", {"seed": "-1"}, "seed", "must be a whole number"),
    ("seed text of 5000 digits", {"seed": "9" * 5000}, "seed", "must be a whole number in [0, 2**63)"),
    (
        "steps float64 4.0",
        {"num_inference_steps": np.float64(4.0)},
        "num_inference_steps",
        "must be an integer",
    ),
    (
        "steps float32 2.5",
        {"num_inference_steps": np.float32(2.5)},
        "num_inference_steps",
        "must be an integer",
    ),
    ("steps text", {"num_inference_steps": "4"}, "num_inference_steps", "must be an integer"),
    ("steps True", {"num_inference_steps": True}, "num_inference_steps", "must be an integer"),
    ("steps 0", {"num_inference_steps": 0}, "num_inference_steps", "is out of range [1, 1000]"),
    ("T_SS float64 2.5", {"suppression_steps": np.float64(2.5)}, "suppression_steps", "must be an integer"),
    ("strength float64 nan", {"strength": np.float64("nan")}, "strength", "must be a finite number"),
    ("resolution int64 8", {"resolution": np.int64(8)}, "resolution", "is out of range [64, 8192]"),
    (
        "feather float32 inf",
        {"feather_radius": np.float32("inf")},
        "feather_radius",
        "must be a finite number",
    ),
    ("dilation int8 -1", {"mask_dilation": np.int8(-1)}, "mask_dilation", "is out of range [0, 1024]"),
    ("s complex", {"removal_guidance_scale": np.complex128(1)}, "removal_guidance_scale", "finite number"),
    # --- item 10: choices in any case, but only the listed ones; DIP's sampler
    ("scheduler Euler", {"scheduler": "Euler"}, "scheduler", "must be one of 'ddim', 'dpm++'"),
    ("scheduler 3", {"scheduler": 3}, "scheduler", "scheduler=3 must be one of"),
    ("scheduler empty", {"scheduler": ""}, "scheduler", "must be one of"),
    ("DIP with DPM++", {"method": "DIP", "scheduler": "DPM++"}, "scheduler", "DIP samples with DDIM only"),
    ("method DDIM", {"method": "DDIM"}, "method", "must be 'sip' or 'dip'"),
    ("method None", {"method": None}, "method", "must be 'sip' or 'dip'"),
    ("strategy CROPPED", {"strategy": "CROPPED"}, "strategy", "must be 'resize' or 'crop'"),
    ("fast yes", {"fast": "yes"}, "fast", "must be True or False"),
    ("progress 1", {"progress": 1}, "progress", "must be True or False"),
    ("segmenter, nothing to select", {"segmenter": "classic"}, "segmenter", "nothing to select"),
    # --- items 5, 6: pixel limits
    (
        "max_pixels one short",
        {"max_pixels": 6143},
        "image",
        "96x64 is 6144 pixels, more than the limit of 6143",
    ),
    ("max_pixels mask", {"mask": "big_mask", "max_pixels": 10_000}, "mask", "128x96 is 12288 pixels"),
    ("max_pixels 1.5", {"max_pixels": 1.5}, "max_pixels", "positive whole number"),
    ("max_pixels True", {"max_pixels": True}, "max_pixels", "positive whole number"),
    ("max_pixels -5", {"max_pixels": -5}, "max_pixels", "positive whole number"),
    # --- item 13
    (
        "hub id offline",
        {"model": "stabilityai/stable-diffusion-2-1-base"},
        "model",
        "the weights are not on this machine and downloads are off",
    ),
    # --- item 7: too few steps for the strength
    pytest.param(
        {"num_inference_steps": 3, "strength": 0.3},
        "strength",
        "runs no denoising step",
        id="steps x strength",
    ),
]


def _api_params() -> list[Any]:
    return [case if hasattr(case, "marks") else pytest.param(*case[1:], id=case[0]) for case in API_CASES]


@pytest.mark.parametrize(("changes", "argument", "expected"), _api_params())
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


# --- Issue 17, items 3, 7, 8: one bad manifest row fails that row alone (see the module docstring)

GOOD_ROW = {"image": "a.png", "mask": "a_mask.png", "output": "good.png"}


def csv_row(column: str, cell: str) -> str:
    """A CSV manifest: a good row, then ``bad.png`` whose ``column`` cell is ``cell``."""
    return f"image,mask,output,{column}\na.png,a_mask.png,good.png,\na.png,a_mask.png,bad.png,{cell}\n"


def jsonl_row(fragment: str) -> str:
    """A JSONL manifest: a good row, then ``bad.png`` with the raw JSON ``fragment`` added to it."""
    bad = f'{{"image": "a.png", "mask": "a_mask.png", "output": "bad.png", {fragment}}}'
    return f"{json.dumps(GOOD_ROW)}\n{bad}\n"


TOO_LONG = "q" * 131_073  # over the csv module's field limit

# (id, manifest suffix, manifest text, the id the bad row is reported by, text its reason must contain)
ROW_CASES: list[tuple[str, str, str, str, str]] = [
    # CSV seeds: the rule and message of remove()
    ("csv seed 1e999", "csv", csv_row("seed", "1e999"), "bad.png", "seed='1e999' must be a whole number in"),
    ("csv seed [1]", "csv", csv_row("seed", "[1]"), "bad.png", "seed='[1]' must be a whole number"),
    ("csv seed {}", "csv", csv_row("seed", "{}"), "bad.png", "seed='{}' must be a whole number"),
    ("csv seed abc", "csv", csv_row("seed", "abc"), "bad.png", "seed='abc' must be a whole number"),
    ("csv seed 1.5", "csv", csv_row("seed", "1.5"), "bad.png", "seed='1.5' must be a whole number"),
    ("csv seed -3", "csv", csv_row("seed", "-3"), "bad.png", "seed=-3 must be a whole number"),
    ("csv seed 23 digits", "csv", csv_row("seed", "1" * 23), "bad.png", f"seed={'1' * 23} must be a whole"),
    ("csv seed true", "csv", csv_row("seed", "true"), "bad.png", "seed='true' must be a whole number"),
    ("csv seed hex", "csv", csv_row("seed", "0x1f"), "bad.png", "seed='0x1f' must be a whole number"),
    ("csv seed full-width", "csv", csv_row("seed", "\uff11\uff12"), "bad.png", "must be a whole number"),
    # CSV settings
    (
        "csv strength nan",
        "csv",
        csv_row("strength", "nan"),
        "bad.png",
        "strength=nan must be a finite number",
    ),
    (
        "csv strength inf",
        "csv",
        csv_row("strength", "inf"),
        "bad.png",
        "strength=inf must be a finite number",
    ),
    ("csv s 1e400", "csv", csv_row("removal_guidance_scale", "1e400"), "bad.png", "must be a finite number"),
    (
        "csv lambda huge",
        "csv",
        csv_row("suppression_scale", "1e300"),
        "bad.png",
        "is out of range [0.0, 1.0]",
    ),
    (
        "csv steps list",
        "csv",
        csv_row("num_inference_steps", "[4]"),
        "bad.png",
        "'[4]' is not a whole number",
    ),
    ("csv T_SS 2.5", "csv", csv_row("suppression_steps", "2.5"), "bad.png", "'2.5' is not a whole number"),
    ("csv feather -inf", "csv", csv_row("feather_radius", "-inf"), "bad.png", "feather_radius=-inf must be"),
    ("csv resolution huge", "csv", csv_row("resolution", "9" * 20), "bad.png", "is out of range [64, 8192]"),
    ("csv method ddim", "csv", csv_row("method", "ddim"), "bad.png", "method='ddim' must be one of"),
    (
        "csv scheduler euler",
        "csv",
        csv_row("scheduler", "euler"),
        "bad.png",
        "scheduler='euler' must be one of",
    ),
    ("csv paste_back perhaps", "csv", csv_row("paste_back", "perhaps"), "bad.png", "must be true or false"),
    ("csv strategy zoom", "csv", csv_row("strategy", "zoom"), "bad.png", "strategy='zoom' must be one of"),
    ("csv fast 2", "csv", csv_row("fast", "2"), "bad.png", "fast='2' must be true or false"),
    # CSV rows the reader cannot read, or that do not fit the header
    (
        "csv mask cell over 131072",
        "csv",
        f"image,mask,output\na.png,a_mask.png,good.png\na.png,{TOO_LONG},bad.png\n",
        "jobs.csv line 3",
        "manifest line 3: not a CSV row (field larger than field limit (131072))",
    ),
    (
        "csv NUL in the mask",
        "csv",
        "image,mask,output\na.png,a_mask.png,good.png\na.png,a_mask\0.png,bad.png\n",
        "bad.png",
        "manifest line 3: mask='a_mask\\x00.png' contains a NUL byte",
    ),
    (
        "csv NUL in the output",
        "csv",
        "image,mask,output\na.png,a_mask.png,good.png\na.png,a_mask.png,b\0ad.png\n",
        "jobs.csv line 3",
        "output='b\\x00ad.png' contains a NUL byte",
    ),
    (
        "csv empty cells beyond the header",
        "csv",
        "image,mask,output\na.png,a_mask.png,good.png\na.png,a_mask.png,bad.png,,\n",
        "jobs.csv line 3",
        "manifest line 3: 5 cells, but the header has 3 columns",
    ),
    (
        "csv DIP with DPM++",
        "csv",
        "image,mask,output,method,scheduler\na.png,a_mask.png,good.png,,\na.png,a_mask.png,bad.png,DIP,DPM++\n",
        "bad.png",
        "scheduler='dpm++': DIP samples with DDIM only",
    ),
    (
        "csv 3 steps at strength 0.3",
        "csv",
        "image,mask,output,num_inference_steps,strength\na.png,a_mask.png,good.png,,\n"
        "a.png,a_mask.png,bad.png,3,0.3\n",
        "bad.png",
        "strength=0.3 with num_inference_steps=3 runs no denoising step",
    ),
    ("csv 1 step", "csv", csv_row("num_inference_steps", "1"), "bad.png", "num_inference_steps=1 runs no"),
    # JSONL seeds
    ("jsonl seed {}", "jsonl", jsonl_row('"seed": {}'), "bad.png", "seed={} must be a whole number"),
    ("jsonl seed abc", "jsonl", jsonl_row('"seed": "abc"'), "bad.png", "seed='abc' must be a whole number"),
    ("jsonl seed -3", "jsonl", jsonl_row('"seed": -3'), "bad.png", "seed=-3 must be a whole number"),
    ("jsonl seed 2**70", "jsonl", jsonl_row(f'"seed": {2**70}'), "bad.png", f"seed={2**70} must be a whole"),
    ("jsonl seed 23 digits", "jsonl", jsonl_row(f'"seed": {"7" * 23}'), "bad.png", "must be a whole number"),
    ("jsonl seed true", "jsonl", jsonl_row('"seed": true'), "bad.png", "seed=True must be a whole number"),
    ("jsonl seed 7.0", "jsonl", jsonl_row('"seed": 7.0'), "bad.png", "seed=7.0 must be a whole number"),
    ("jsonl seed '1.5'", "jsonl", jsonl_row('"seed": "1.5"'), "bad.png", "seed='1.5' must be a whole number"),
    ("jsonl seed 5000 digits", "jsonl", jsonl_row(f'"seed": {"9" * 5000}'), "bad.png", "must be a whole"),
    # JSONL settings
    ("jsonl strength NaN", "jsonl", jsonl_row('"strength": NaN'), "bad.png", "strength=nan must be a finite"),
    ("jsonl strength Infinity", "jsonl", jsonl_row('"strength": Infinity'), "bad.png", "must be a finite"),
    ("jsonl s -Infinity", "jsonl", jsonl_row('"removal_guidance_scale": -Infinity'), "bad.png", "finite"),
    ("jsonl strength 5000 digits", "jsonl", jsonl_row(f'"strength": {"9" * 5000}'), "bad.png", "finite"),
    ("jsonl steps [4]", "jsonl", jsonl_row('"num_inference_steps": [4]'), "bad.png", "must be an integer"),
    ("jsonl steps 4.0", "jsonl", jsonl_row('"num_inference_steps": 4.0'), "bad.png", "must be an integer"),
    ("jsonl lambda object", "jsonl", jsonl_row('"suppression_scale": {"a": 1}'), "bad.png", "finite number"),
    (
        "jsonl resolution 1e999",
        "jsonl",
        jsonl_row('"resolution": 1e999'),
        "bad.png",
        "resolution=inf must be",
    ),
    ("jsonl dilation 2.5", "jsonl", jsonl_row('"mask_dilation": 2.5'), "bad.png", "must be an integer"),
    ("jsonl feather text", "jsonl", jsonl_row('"feather_radius": "wide"'), "bad.png", "feather_radius="),
    (
        "jsonl paste_back maybe",
        "jsonl",
        jsonl_row('"paste_back": "maybe"'),
        "bad.png",
        "must be true or false",
    ),
    ("jsonl fast 2", "jsonl", jsonl_row('"fast": 2'), "bad.png", "fast=2 must be true or false"),
    ("jsonl strategy ZOOM", "jsonl", jsonl_row('"strategy": "ZOOM"'), "bad.png", "strategy='ZOOM' must be"),
    ("jsonl method list", "jsonl", jsonl_row('"method": ["sip"]'), "bad.png", "method="),
    # JSONL paths, keys and the settings remove() refuses
    (
        "jsonl image list",
        "jsonl",
        f'{json.dumps(GOOD_ROW)}\n{{"image": ["a.png"], "mask": "a_mask.png", "output": "bad.png"}}\n',
        "bad.png",
        "image=['a.png'] must be text",
    ),
    (
        "jsonl NUL in the image",
        "jsonl",
        f'{json.dumps(GOOD_ROW)}\n{{"image": "a\\u0000.png", "mask": "a_mask.png", "output": "bad.png"}}\n',
        "bad.png",
        "contains a NUL byte",
    ),
    (
        "jsonl NUL in the output",
        "jsonl",
        f'{json.dumps(GOOD_ROW)}\n{{"image": "a.png", "mask": "a_mask.png", "output": "b\\u0000ad.png"}}\n',
        "jobs.jsonl line 2",
        "contains a NUL byte",
    ),
    (
        "jsonl repeated seed key",
        "jsonl",
        jsonl_row('"seed": 1, "seed": 2'),
        "jobs.jsonl line 2",
        "manifest line 2: repeats the key(s) ['seed']",
    ),
    (
        "jsonl DIP with DPM++",
        "jsonl",
        jsonl_row('"method": "DIP", "scheduler": "DPM++"'),
        "bad.png",
        "DIP samples with DDIM only",
    ),
    (
        "jsonl 2 steps at strength 0.4",
        "jsonl",
        jsonl_row('"num_inference_steps": 2, "strength": 0.4'),
        "bad.png",
        "strength=0.4 with num_inference_steps=2 runs no denoising step",
    ),
]


@pytest.mark.parametrize(
    ("suffix", "text", "bad_id", "expected"),
    [case[1:] for case in ROW_CASES],
    ids=[case[0] for case in ROW_CASES],
)
def test_a_bad_manifest_row_fails_alone(
    suffix: str,
    text: str,
    bad_id: str,
    expected: str,
    world: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(api, "load_pipeline", _no_model)
    manifest = world["src"] / f"jobs.{suffix}"
    manifest.write_text(text, encoding="utf-8")
    before = snapshot(world["tmp"])
    result = CliRunner().invoke(main, ["batch", str(manifest), "-o", str(world["out"]), "--dry-run"])
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    assert result.stderr == ""  # the row's reason is the dry run's report, on stdout
    lines = result.stdout.splitlines()
    failed = [line for line in lines if line.startswith("FAIL ")]
    assert len(failed) == 1 and failed[0].startswith(f"FAIL  {bad_id}  ("), result.stdout
    assert expected in failed[0] and len(failed[0]) < 400, failed[0]  # one short line, however long the cell
    assert any(line.startswith("run   good.png  ") for line in lines), result.stdout  # the other row runs
    assert lines[-1].startswith("dry run: 2 items: 1 to run") and lines[-1].endswith("1 would fail"), lines[
        -1
    ]
    assert snapshot(world["tmp"]) == before  # inputs intact, nothing written
    assert not world["out"].exists()


# --- Issue 17, item 1: inputs named like the run's own files are never deleted or written
#
# A case lays out files under a fresh folder ({root}), besides image.png, mask.png and an empty out/:
# "image" / "mask" a PNG, "junk" a leftover of a killed run (named like a temporary, and not an input: the
# run must delete it), "->PATH" a symbolic link to PATH, "=>PATH" a hard link of PATH, other text a
# manifest. Paths are relative to {root}.

HEX = "5a17c0ffee42"  # 12 hex digits: the shape of save_image's temporary names
FAST = "--steps 2 -q"  # the demo model, one denoising step at 64 px

# (id, files, command, the files the run writes)
TEMPORARY_CASES: list[tuple[str, dict[str, str], str, list[str]]] = [
    (
        "remove: the image",
        {f"out/.o.png.{HEX}.tmp": "image", "out/.o.png.000000000000.tmp": "junk"},
        f"remove {{root}}/out/.o.png.{HEX}.tmp {{root}}/mask.png -o {{root}}/out/o.png",
        ["out/o.png"],
    ),
    (
        "remove: the mask",
        {f"out/.o.png.{HEX}.tmp": "mask", "out/.o.png.ffffffffffff.tmp": "junk"},
        f"remove {{root}}/image.png {{root}}/out/.o.png.{HEX}.tmp -o {{root}}/out/o.png",
        ["out/o.png"],
    ),
    (
        "remove: image and mask",
        {"out/.o.png.aaaaaaaaaaaa.tmp": "image", "out/.o.png.bbbbbbbbbbbb.tmp": "mask"},
        "remove {root}/out/.o.png.aaaaaaaaaaaa.tmp {root}/out/.o.png.bbbbbbbbbbbb.tmp -o {root}/out/o.png",
        ["out/o.png"],
    ),
    (
        "remove: the image, a JPEG output",
        {f"out/.o.jpg.{HEX}.tmp": "image", "out/.o.jpg.0123456789ab.tmp": "junk"},
        f"remove {{root}}/out/.o.jpg.{HEX}.tmp {{root}}/mask.png -o {{root}}/out/o.jpg",
        ["out/o.jpg"],
    ),
    (
        "remove: the image given as a symlink so named",
        {f"out/.o.png.{HEX}.tmp": "->image.png", "out/.o.png.0123456789ab.tmp": "junk"},
        f"remove {{root}}/out/.o.png.{HEX}.tmp {{root}}/mask.png -o {{root}}/out/o.png",
        ["out/o.png"],
    ),
    (
        "remove: a symlink so named to the image",
        {f"out/.o.png.{HEX}.tmp": "->image.png"},
        "remove {root}/image.png {root}/mask.png -o {root}/out/o.png",
        ["out/o.png"],
    ),
    (
        "remove: a hardlink so named of the image",
        {f"out/.o.png.{HEX}.tmp": "=>image.png", "out/.o.png.0123456789ab.tmp": "junk"},
        "remove {root}/image.png {root}/mask.png -o {root}/out/o.png",
        ["out/o.png"],
    ),
    (
        "remove: a hardlink so named of the mask",
        {f"out/.o.png.{HEX}.tmp": "=>mask.png"},
        "remove {root}/image.png {root}/mask.png -o {root}/out/o.png",
        ["out/o.png"],
    ),
    (
        "remove: the mask, named like a temporary of --save-mask",
        {f"out/.m.png.{HEX}.tmp": "mask"},
        f"remove {{root}}/image.png {{root}}/out/.m.png.{HEX}.tmp -o {{root}}/out/o.png "
        "--save-mask {root}/out/m.png",
        ["out/o.png", "out/m.png"],
    ),
    (
        "batch: a CSV row's image, in a subfolder",
        {
            f"out/sub/.a.png.{HEX}.tmp": "image",
            "out/sub/.a.png.ffffffffffff.tmp": "junk",
            "jobs.csv": f"image,mask,output\nout/sub/.a.png.{HEX}.tmp,mask.png,sub/a.png\n",
        },
        "batch {root}/jobs.csv -o {root}/out",
        ["out/sub/a.png", "out/batch-report.jsonl"],
    ),
    (
        "batch: a JSONL row's mask, a symlink",
        {
            f"out/.a.png.{HEX}.tmp": "->mask.png",
            "out/.a.png.0123456789ab.tmp": "junk",
            "jobs.jsonl": json.dumps(
                {"image": "image.png", "mask": f"out/.a.png.{HEX}.tmp", "output": "a.png"}
            )
            + "\n",
        },
        "batch {root}/jobs.jsonl -o {root}/out",
        ["out/a.png", "out/batch-report.jsonl"],
    ),
    (
        "batch: another row's output",
        {
            f"out/.b.png.{HEX}.tmp": "image",
            "jobs.jsonl": json.dumps(
                {"image": f"out/.b.png.{HEX}.tmp", "mask": "mask.png", "output": "a.png"}
            )
            + "\n"
            + json.dumps({"image": "image.png", "mask": "mask.png", "output": "b.png"})
            + "\n",
        },
        "batch {root}/jobs.jsonl -o {root}/out",
        ["out/a.png", "out/b.png", "out/batch-report.jsonl"],
    ),
    (
        "batch: the --masks file",
        {"src/a.png": "image", f"out/.a.png.{HEX}.tmp": "mask", "out/.a.png.0123456789ab.tmp": "junk"},
        f"batch {{root}}/src -o {{root}}/out --masks {{root}}/out/.a.png.{HEX}.tmp",
        ["out/a.png", "out/batch-report.jsonl"],
    ),
    (
        "batch: a --masks folder that is OUTPUT_DIR",
        {"src/a.png": "image", f"out/.a.png.{HEX}.tmp": "mask", "out/.a.png.0123456789ab.tmp": "junk"},
        "batch {root}/src -o {root}/out --masks {root}/out --mask-pattern .{{name}}." + HEX + ".tmp",
        ["out/a.png", "out/batch-report.jsonl"],
    ),
    (
        "batch: a hardlink so named of a folder's image",
        {"src/a.png": "image", "src/a_mask.png": "mask", f"out/.a.png.{HEX}.tmp": "=>src/a.png"},
        "batch {root}/src -o {root}/out",
        ["out/a.png", "out/batch-report.jsonl"],
    ),
    (
        "batch: mirrored masks in OUTPUT_DIR's subfolder",
        {
            "src/sub/a.png": "image",
            f"out/sub/.a.png.{HEX}.tmp": "mask",
            "out/sub/.a.png.0123456789ab.tmp": "junk",
        },
        "batch {root}/src -o {root}/out --masks {root}/out --mask-pattern .{{name}}." + HEX + ".tmp",
        ["out/sub/a.png", "out/batch-report.jsonl"],
    ),
    (
        "batch: a mask named like a stale report part",
        {
            "out/.batch-report.jsonl.part-00002-of-00003": "mask",
            "jobs.csv": "image,mask\nimage.png,out/.batch-report.jsonl.part-00002-of-00003\n",
        },
        "batch {root}/jobs.csv -o {root}/out",
        ["out/image.png", "out/batch-report.jsonl"],
    ),
    (
        "batch: a --masks file named like a stale part of --report",
        {"src/a.png": "image", "rep/.r.jsonl.part-00001-of-00002": "mask"},
        "batch {root}/src -o {root}/out --masks {root}/rep/.r.jsonl.part-00001-of-00002 "
        "--report {root}/rep/r.jsonl",
        ["out/a.png", "rep/r.jsonl"],
    ),
]

# (id, files, command, text of the one error line): a file the run must write is an input
RUN_FILE_CASES: list[tuple[str, dict[str, str], str, str]] = [
    (
        "batch: a mask named like the lock",
        {
            "out/.attentive-eraser-batch.lock": "mask",
            "jobs.csv": "image,mask\nimage.png,out/.attentive-eraser-batch.lock\n",
        },
        "batch {root}/jobs.csv -o {root}/out",
        "output-dir: the run would write its lock",
    ),
    (
        "batch: an image named like the lock",
        {
            "out/.attentive-eraser-batch.lock": "image",
            "jobs.jsonl": json.dumps({"image": "out/.attentive-eraser-batch.lock", "mask": "mask.png"})
            + "\n",
        },
        "batch {root}/jobs.jsonl -o {root}/out",
        "output-dir: the run would write its lock",
    ),
    (
        "batch: the lock a symlink to a mask",
        {
            "src/a.png": "image",
            "src/a_mask.png": "mask",
            "out/.attentive-eraser-batch.lock": "->src/a_mask.png",
        },
        "batch {root}/src -o {root}/out",
        "output-dir: the run would write its lock",
    ),
    (
        "batch: the --report folder's lock a hardlink of a mask",
        {
            "src/a.png": "image",
            "src/a_mask.png": "mask",
            "rep/.attentive-eraser-batch.lock": "=>src/a_mask.png",
        },
        "batch {root}/src -o {root}/out --report {root}/rep/r.jsonl",
        "report: the run would write its lock",
    ),
    (
        "batch: a mask named like the merge's temporary",
        {
            "out/.batch-report.jsonl.merging": "mask",
            "jobs.csv": "image,mask\nimage.png,out/.batch-report.jsonl.merging\n",
        },
        "batch {root}/jobs.csv -o {root}/out",
        "report: the run would write",
    ),
    (
        "batch: an image named like the report part",
        {
            "out/.batch-report.jsonl.part-00000-of-00001": "image",
            "jobs.jsonl": json.dumps(
                {"image": "out/.batch-report.jsonl.part-00000-of-00001", "mask": "mask.png"}
            )
            + "\n",
        },
        "batch {root}/jobs.jsonl -o {root}/out",
        "it is the input file",
    ),
    (
        "batch: the report part a hardlink of a mask",
        {
            "src/a.png": "image",
            "src/a_mask.png": "mask",
            "out/.batch-report.jsonl.part-00000-of-00001": "=>src/a_mask.png",
        },
        "batch {root}/src -o {root}/out",
        "report: the run would write",
    ),
    (
        "batch: --report's merge temporary a hardlink of a mask",
        {"src/a.png": "image", "src/a_mask.png": "mask", "rep/.r.jsonl.merging": "=>src/a_mask.png"},
        "batch {root}/src -o {root}/out --report {root}/rep/r.jsonl",
        "choose another --report",
    ),
    (
        "batch: --report a symlink to the manifest",
        {"jobs.csv": "image,mask\nimage.png,mask.png\n", "r.jsonl": "->jobs.csv"},
        "batch {root}/jobs.csv -o {root}/out --report {root}/r.jsonl",
        "report: '{root}/r.jsonl' is the input file '{root}/jobs.csv'",
    ),
    (
        "batch: --report a hardlink of a mask",
        {"src/a.png": "image", "src/a_mask.png": "mask", "r.jsonl": "=>src/a_mask.png"},
        "batch {root}/src -o {root}/out --report {root}/r.jsonl",
        "an input is never overwritten",
    ),
]


def lay_out(root: Path, files: dict[str, str]) -> None:
    """image.png, mask.png, an empty out/, and ``files`` (see above) under ``root``."""
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    mask[20:44, 30:60] = 255
    content = {"image": pixels, "mask": mask}
    (root / "out").mkdir(parents=True)
    for name in ("image", "mask"):
        Image.fromarray(content[name]).save(root / f"{name}.png")
    for relative, spec in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if spec in content:
            Image.fromarray(content[spec]).save(path, format="PNG")  # PNG whatever the name
        elif spec == "junk":
            path.write_bytes(b"half a file left by a killed run")
        elif spec.startswith("->"):
            path.symlink_to(root / spec[2:])
        elif spec.startswith("=>"):
            os.link(root / spec[2:], path)
        else:
            path.write_text(spec, encoding="utf-8")


def tree(root: Path) -> dict[str, tuple[bool, bytes]]:
    """Every file under ``root`` by relative path: (is a symbolic link, bytes)."""
    return {
        path.relative_to(root).as_posix(): (path.is_symlink(), path.read_bytes())
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _invoke(command: str, root: Path) -> Any:
    args = command.format(root=root).split()
    return CliRunner().invoke(main, args)


@pytest.mark.parametrize(
    ("files", "command", "written"),
    [case[1:] for case in TEMPORARY_CASES],
    ids=[case[0] for case in TEMPORARY_CASES],
)
def test_inputs_named_like_temporaries_survive(
    files: dict[str, str], command: str, written: list[str], tmp_path: Path
) -> None:
    root = tmp_path / "run"
    lay_out(root, files)
    before = tree(root)
    leftovers = {relative for relative, spec in files.items() if spec == "junk"}
    result = _invoke(f"{command} {FAST}", root)
    assert result.exit_code == 0, (result.output, result.exception)
    assert "Traceback" not in result.output and result.stderr.strip() == "", result.stderr
    after = tree(root)
    kept = {relative: entry for relative, entry in before.items() if relative not in leftovers}
    assert {relative: after.get(relative) for relative in kept} == kept  # every input there, byte for byte
    assert set(after) - set(kept) == set(written)  # the leftovers are gone; only the outputs are new
    for relative in written:
        if relative.endswith((".png", ".jpg")):
            with Image.open(root / relative) as output:
                assert output.size == (WIDTH, HEIGHT)


@pytest.mark.parametrize(
    ("files", "command", "expected"),
    [case[1:] for case in RUN_FILE_CASES],
    ids=[case[0] for case in RUN_FILE_CASES],
)
def test_inputs_named_like_files_the_run_writes_are_refused(
    files: dict[str, str], command: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api, "load_pipeline", _no_model)
    root = tmp_path / "run"
    lay_out(root, files)
    before = tree(root)
    result = _invoke(f"{command} {FAST}", root)
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert expected.format(root=root) in lines[0], lines[0]
    assert "never overwritten" in lines[0]
    assert result.stdout == ""
    assert tree(root) == before  # nothing written, nothing deleted


# A few cases in a real process: its stderr (warnings included) must be the one line.
PROCESS_CASES = [
    ("remove {image} {mask} -o {out}/x.png --model {bad_ckpt}", "not a readable checkpoint"),
    ("remove {image} {mask} -o {out}/x.png --device meta", "device='meta'"),
    ("remove {image} {mask} -o {out}/x.png --strength nan", "--strength"),
    (
        "batch {jobs} -o {out} --model someone/not-here",
        "model='someone/not-here': the weights are not on this",
    ),
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
        assert not world["out"].exists()
    assert snapshot(world["tmp"]) == before


def _values(case: Any) -> tuple[Any, ...]:
    """A case's fields, whether it is a plain tuple or a ``pytest.param`` (whose values are the same)."""
    return tuple(case.values) if hasattr(case, "marks") else tuple(case)


def test_the_corpus_is_large_enough() -> None:
    lists = (CLI_CASES, API_CASES, ROW_CASES, TEMPORARY_CASES, RUN_FILE_CASES)
    assert sum(len(cases) for cases in lists) >= 170
    cli = [_values(case) for case in CLI_CASES]
    commands = [command for _, command, *_ in cli]
    assert {command.split()[0] for command in commands} == {"remove", "batch", "serve"}
    # every kind of hostile input is represented
    for option in ("--save-mask", "--max-pixels", "--top-k", "--seed", "--scheduler"):
        assert sum(option in command for command in commands) >= 3, option
    hub_ids = [case for case in cli if LOADS in case[3:] and "not on this machine" in case[2]]
    assert {case[1].split()[0] for case in hub_ids} == {"remove", "batch"}
    assert sum("repeats the column" in case[2] for case in cli) >= 3
    assert {suffix for _, suffix, *_ in ROW_CASES} == {"csv", "jsonl"}
    reasons = " ".join(expected for *_, expected in ROW_CASES)
    for reason in (
        "seed=",
        "finite number",
        "NUL byte",
        "131072",
        "cells, but the header",
        "DDIM only",
        "no denoising",
    ):
        assert reason in reasons, reason
    arguments = {case.values[1] if hasattr(case, "marks") else case[2] for case in API_CASES}
    assert {"seed", "num_inference_steps", "scheduler", "max_pixels", "model"} <= arguments
    for cases in (TEMPORARY_CASES, RUN_FILE_CASES):
        specs = [spec for _, files, *_ in cases for spec in files.values()]
        assert any(spec.startswith("->") for spec in specs) and any(spec.startswith("=>") for spec in specs)
    commands = " ".join(command for _, _, command, _ in TEMPORARY_CASES)
    for part in ("remove ", "batch ", "--masks", "--report", "--save-mask", ".jsonl", ".csv"):
        assert part in commands, part
