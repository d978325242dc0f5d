"""Regression tests of issue 10 (hostile-user hardening), one block per numbered defect.

Each test failed on the code before the fix. The wide bad-input corpus lives in test_bad_input_corpus.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import invoke, one_error_line
from PIL import Image

from attentive_eraser import api, imaging
from attentive_eraser.runner import list_items, read_report, run_batch
from attentive_eraser.settings import RemovalOptions

FAST = ["--steps", "4", "--resolution", "64", "--quiet"]


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
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


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
    report = {
        "image": source / "b.png",
        "mask": source / "b_mask.png",
        "manifest": manifest,
        "folder": tmp_path / "folder",
        "output": out / "a.png",
    }[target]
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
    with pytest.raises(imaging.InputError, match="report"):
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
    manifest.write_text(
        "image,mask,output\nx.png,x_mask.png,y.png\ny.png,y_mask.png,y_out.png\nx.png,x_mask.png,y_mask.png\n"
    )
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
    assert (
        records["sub/c.png"]["status"] == "failed" and "outside OUTPUT_DIR" in records["sub/c.png"]["reason"]
    )
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


# ----------------------------------------------------------------------------------------------------
# 16. the demo's set-up installs the package alone; the test set-up the test tools and the browser


def _sandbox(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """A copy of scripts/ with a stub .venv and stub apt-get/sudo that log every call to ``log``."""
    repo, log = tmp_path / "repo", tmp_path / "calls.log"
    (repo / "scripts").mkdir(parents=True)
    for script in (Path(__file__).parents[1] / "scripts").glob("*.sh"):
        (repo / "scripts" / script.name).write_text(script.read_text())
    stub = f'#!/bin/sh\necho "$(basename "$0") $*" >> "{log}"\n'
    bin_dir, venv_bin = tmp_path / "bin", repo / ".venv" / "bin"
    for folder, names in ((venv_bin, ("python", "attentive-eraser")), (bin_dir, ("apt-get", "sudo"))):
        folder.mkdir(parents=True)
        for name in names:
            (folder / name).write_text(stub)
            (folder / name).chmod(0o755)
    (venv_bin / "activate").write_text(f'PATH="{venv_bin}:$PATH"\n')
    return repo, log, {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


@pytest.mark.slow
def test_16_demo_setup_installs_only_the_package(tmp_path: Path) -> None:
    import subprocess

    repo, log, env = _sandbox(tmp_path)
    subprocess.run(["bash", "scripts/demo.sh"], cwd=repo, env=env, check=True, timeout=60)
    calls = log.read_text().splitlines()
    assert "python -m pip install --quiet -e ." in calls
    assert not any("[test" in call or "apt-get" in call or "sudo" in call for call in calls), calls
    assert calls[-1] == "attentive-eraser demo -o attentive_eraser_demo.png"

    log.unlink()
    subprocess.run(["bash", "scripts/test.sh", "-x"], cwd=repo, env=env, check=True, timeout=60)
    calls = log.read_text().splitlines()
    assert "python -m pip install --quiet -e .[test,app]" in calls
    assert calls[-1] == "python -m pytest -q -x"


# ----------------------------------------------------------------------------------------------------
# 5. a pixel limit read from the header, before decoding; previews under a concurrency limit


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small file (1-bit, all black) declaring 8000x7000 = 56 megapixels."""
    path = tmp_path_factory.mktemp("huge") / "huge.png"
    Image.new("1", (8000, 7000)).save(path)
    assert path.stat().st_size < 200_000
    return path


def test_5_images_over_the_pixel_limit_are_refused_before_decoding(
    huge_png: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, mask = write_pair(tmp_path, "a")
    decoded = []
    original_load = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(self.size) or original_load(self))
    line = one_error_line(invoke("remove", huge_png, mask, "-o", tmp_path / "out.png", *FAST))
    assert "image: 8000x7000 is 56.0 megapixels, more than the limit of 50" in line
    assert (8000, 7000) not in decoded
    with pytest.raises(imaging.InputError, match="megapixels"):
        api.remove(huge_png, mask)
    with pytest.raises(imaging.InputError, match="megapixels"):
        imaging.load_mask(huge_png)
    # the limit can be raised: the image is then read, and the next problem (the mask's size) reported
    line = one_error_line(
        invoke("remove", huge_png, mask, "-o", tmp_path / "out.png", "--max-pixels", "60000000", *FAST)
    )
    assert "mask: size 96x64 differs" in line


def test_5_the_app_refuses_huge_uploads_and_limits_concurrent_previews(huge_png: Path) -> None:
    from attentive_eraser.app import EraserService, build_app

    service = EraserService()
    service.allow_root(huge_png.parent)
    with pytest.raises(imaging.InputError, match="megapixels"):
        service.load_photo(huge_png)
    with pytest.raises(imaging.InputError, match="megapixels"):
        service.preview(str(huge_png))
    app = build_app(service=service)
    decoding = [fn for fn in app.fns.values() if fn.name in ("update_preview", "show_photo")]
    assert len(decoding) == 2
    assert all(fn.concurrency_limit == 1 and fn.concurrency_id == "decode" for fn in decoding)


# ----------------------------------------------------------------------------------------------------
# 6. the working size is capped by the input's own size; memory is estimated before the VAE runs


def test_6_a_resolution_far_beyond_the_image_is_refused_before_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image, mask = write_pair(tmp_path, "a", size=(64, 64))
    monkeypatch.setattr(api, "load_pipeline", _no_model)
    line = one_error_line(invoke("remove", image, mask, "-o", tmp_path / "out.png", "--resolution", "8192"))
    assert "resolution: 8192 would upscale the 64x64 image 128x" in line
    with pytest.raises(imaging.InputError, match="resolution: 2048 would upscale"):
        api.remove(image, mask, resolution=2048)
    assert not (tmp_path / "out.png").exists()


def test_6_the_pipeline_refuses_a_working_size_that_does_not_fit_in_memory(
    tiny_sd15_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from attentive_eraser.pipelines import base

    pipe = api.load_pipeline(tiny_sd15_dir, device="cpu", cache=False)
    needed = base.estimate_vae_memory(pipe.vae, (512, 512), 1, torch_float32())
    monkeypatch.setattr(base, "_available_memory", lambda device: needed - 1)
    image = Image.new("RGB", (512, 512))
    mask = np.zeros((512, 512), dtype=bool)
    mask[100:200, 100:200] = True
    with pytest.raises(ValueError, match=r"resolution: the working size 512x512 .* GiB free"):
        pipe(image, mask, num_inference_steps=2, resolution=512)


def torch_float32() -> object:
    import torch

    return torch.float32


# ----------------------------------------------------------------------------------------------------
# 7. damaged models: one clear line, never advice to unpickle unsafely


@pytest.fixture
def damaged_models(tmp_path: Path, tiny_sd15_dir: Path) -> dict[str, list[str]]:
    import pickle
    import shutil

    (tmp_path / "garbage.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not a header at all")
    (tmp_path / "garbage.ckpt").write_bytes(pickle.dumps({"weights": {1, 2, 3}, "other": object}))
    for name, text in (("bad-json", "{not json"), ("list-json", "[]")):
        (tmp_path / name / "unet").mkdir(parents=True)
        (tmp_path / name / "unet" / "config.json").write_text(text)
    no_weights = tmp_path / "no-weights"
    shutil.copytree(tiny_sd15_dir, no_weights)
    for weights in (no_weights / "unet").glob("*.safetensors"):
        weights.unlink()
    return {
        "safetensors": ["--model", str(tmp_path / "garbage.safetensors")],
        "safetensors with config": [
            "--model",
            str(tmp_path / "garbage.safetensors"),
            "--config",
            str(tiny_sd15_dir),
        ],
        "ckpt": ["--model", str(tmp_path / "garbage.ckpt")],
        "config not json": ["--model", str(tmp_path / "bad-json")],
        "config a list": ["--model", str(tmp_path / "list-json")],
        "no unet weights": ["--model", str(no_weights)],
    }


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("safetensors", "is not a readable .safetensors file"),
        ("safetensors with config", "is not a readable .safetensors file"),
        ("ckpt", "is not a readable checkpoint of plain tensors"),
        ("config not json", "unet/config.json is not valid JSON"),
        ("config a list", "unet/config.json holds a JSON list, not an object"),
        ("no unet weights", "unet/ has no weights"),
    ],
)
def test_7_damaged_models_give_one_clear_line(
    case: str, expected: str, damaged_models: dict[str, list[str]], tmp_path: Path
) -> None:
    image, mask = write_pair(tmp_path / "inputs", "a")
    api.clear_cache()
    line = one_error_line(
        invoke("remove", image, mask, "-o", tmp_path / "out.png", *FAST, *damaged_models[case])
    )
    assert expected in line and "model=" in line
    assert "weights_only=False" not in line and ".bin" not in line
    assert not (tmp_path / "out.png").exists()


# ----------------------------------------------------------------------------------------------------
# 8. devices we do not run on


@pytest.mark.parametrize("device", ["meta", "xpu", "vulkan", "hip"])
def test_8_unsupported_devices_are_refused(
    device: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image, mask = write_pair(tmp_path, "a")
    monkeypatch.setattr(api, "load_pipeline", _no_model)
    line = one_error_line(
        invoke("remove", image, mask, "-o", tmp_path / "out.png", "--device", device, *FAST)
    )
    assert f"device={device!r}" in line
    with pytest.raises(ValueError, match=f"device='{device}'"):
        api.remove(image, mask, device=device)


# ----------------------------------------------------------------------------------------------------
# 9. too long an output name; a bad output cell fails its row only


def test_9_an_output_name_over_255_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image, mask = write_pair(tmp_path, "a")
    monkeypatch.setattr(api, "load_pipeline", _no_model)
    line = one_error_line(invoke("remove", image, mask, "-o", tmp_path / ("x" * 300 + ".png"), *FAST))
    assert "output: the name" in line and "too long" in line


def test_9_bad_output_cells_fail_their_row_not_the_run(tmp_path: Path) -> None:
    write_pair(tmp_path, "a")
    manifest = tmp_path / "jobs.csv"
    manifest.write_text(
        f"image,mask,output\na.png,a_mask.png,{'y' * 300}.png\na.png,a_mask.png,../escape.png\n"
        "a.png,a_mask.png,/abs.png\na.png,a_mask.png,fine.png\n"
    )
    out = tmp_path / "out"
    result = invoke("batch", manifest, "-o", out, *FAST)
    assert result.exit_code == 1, result.output
    records = read_report(out / "batch-report.jsonl")
    reasons = {
        record["output"].rsplit("/", 1)[-1][:8]: record["reason"]
        for record in records
        if record["status"] == "failed"
    }
    assert len(reasons) == 3 and sum(record["status"] == "done" for record in records) == 1
    assert "too long" in reasons["y" * 8] and "inside OUT_DIR" in reasons["escape.p"]
    assert not (tmp_path / "escape.png").exists()


# ----------------------------------------------------------------------------------------------------
# 10. server options checked before anything is loaded


@pytest.fixture
def busy_port() -> object:
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--max-file-size", "abc"], "max_file_size: 'abc' is not a size"),
        (["--max-file-size", "-5mb"], "max_file_size: '-5mb' is not a size"),
        (["--host", "999.1.1.1"], "host: '999.1.1.1' is not a valid IP address"),
        (["--port", "BUSY"], "is already in use on 127.0.0.1"),
    ],
)
def test_10_bad_server_options_fail_before_the_model_loads(
    options: list[str], expected: str, busy_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("gradio")
    monkeypatch.setattr(api, "load_pipeline", _no_model)
    options = [str(busy_port) if option == "BUSY" else option for option in options]
    line = one_error_line(invoke("serve", *options))
    assert expected in line


# ----------------------------------------------------------------------------------------------------
# 11. every check before any model work


@pytest.mark.parametrize(
    "option", ["--strength", "--removal-guidance-scale", "--suppression-scale", "--feather"]
)
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_11_not_a_number_is_refused_by_the_command_line(
    option: str, value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image, mask = write_pair(tmp_path, "a")
    monkeypatch.setattr(api, "load_pipeline", _no_model)
    line = one_error_line(invoke("remove", image, mask, "-o", tmp_path / "out.png", option, value, *FAST))
    assert option in line and (
        "not a finite number" in line if value == "nan" else "not in the range" in line
    )


def test_11_unwritable_outputs_are_found_before_the_model_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image, mask = write_pair(tmp_path, "a")
    monkeypatch.setattr(api, "load_pipeline", _no_model)
    line = one_error_line(invoke("remove", image, mask, "-o", image / "out.png", *FAST))
    assert "is a file, so" in line
    line = one_error_line(invoke("remove", image, mask, "-o", "/proc/attentive-eraser-out.png", *FAST))
    assert "output: cannot write in '/proc'" in line
    monkeypatch.setattr(imaging.save.shutil, "disk_usage", lambda path: FullDisk)
    line = one_error_line(invoke("remove", image, mask, "-o", tmp_path / "full" / "out.png", *FAST))
    assert "output: only 0.0 MiB free in" in line
    line = one_error_line(invoke("batch", tmp_path, "-o", tmp_path / "full", *FAST))
    assert "output-dir: only 0.0 MiB free in" in line
    assert not (tmp_path / "full").exists()


class FullDisk:
    free = 100  # bytes


def test_11_the_python_api_checks_knobs_before_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image, mask = write_pair(tmp_path, "a")
    monkeypatch.setattr(api, "load_pipeline", _no_model)
    for knob in ("strength", "removal_guidance_scale", "suppression_scale", "feather_radius"):
        with pytest.raises(ValueError, match=f"{knob}=nan must be a finite number"):
            api.remove(image, mask, **{knob: float("nan")})


# ----------------------------------------------------------------------------------------------------
# 13. flags are booleans


@pytest.mark.parametrize("value", ["no", "maybe", 1, None])
def test_13_paste_back_must_be_a_boolean(
    value: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image, mask = write_pair(tmp_path, "a")
    monkeypatch.setattr(api, "load_pipeline", _no_model)
    with pytest.raises(ValueError, match="paste_back=.* must be True or False"):
        api.remove(image, mask, paste_back=value)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------------
# 14. -q silences the loading bars too


def test_14_quiet_silences_the_loading_progress_bars(tmp_path: Path) -> None:
    image, mask = write_pair(tmp_path, "a")
    api.clear_cache()  # the model must really be loaded by this run
    result = invoke("remove", image, mask, "-o", tmp_path / "out.png", *FAST)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert "Loading pipeline components" not in result.output


# ----------------------------------------------------------------------------------------------------
# 15. two masks for one image: one clear ambiguity error, the masks are not images


def test_15_two_candidate_masks_give_one_ambiguous_item(tmp_path: Path) -> None:
    write_pair(tmp_path, "x")
    Image.open(tmp_path / "x_mask.png").convert("RGB").save(tmp_path / "x_mask.jpg")
    items = list_items(tmp_path, tmp_path / "out")
    assert [item.id for item in items] == ["x.png"]
    assert "ambiguous mask" in items[0].error and "x_mask.jpg" in items[0].error
