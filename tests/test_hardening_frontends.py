"""The front ends agree and speak clearly: ``remove()``, ``attentive-eraser remove`` and ``/remove`` requests.

One block per defect: masks saved losslessly, Pillow's bomb warning silenced (our limit decides), pixel
limits in sensible units and named once, NumPy numbers accepted and passed on as Python ones, one rule for
the case of choices, the ICC profile kept, ``--top-k`` refused without ``--object``, the defaults of the
model that runs in ``--help`` and the docs, hub models that are not on this machine in one complete line
without a long wait. Each test failed on the code before the fix.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from cli_helpers import invoke, one_error_line
from PIL import Image, ImageCms

from attentive_eraser import api, imaging, settings
from attentive_eraser.app.requests import ALL_PARAMETERS, check_knob_value, completed_request, parse_seeds
from attentive_eraser.cli.options import MASK_SUFFIXES, preset_default
from attentive_eraser.settings import KNOBS, PRESETS, RemovalOptions, knob

REPO = Path(__file__).resolve().parent.parent
FAST = ["--steps", "4", "--quiet"]  # the demo model at 64 px, 3 denoising steps


#: one profile for the whole module (each new one carries its creation time)
SRGB_PROFILE = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    """A 64x64 noise image carrying an sRGB ICC profile, and a mask of a 20x20 box."""
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[20:40, 24:44] = 255
    image, mask_path = tmp_path / "photo.png", tmp_path / "mask.png"
    Image.fromarray(pixels).save(image, icc_profile=SRGB_PROFILE)
    Image.fromarray(mask).save(mask_path)
    return image, mask_path


class RecordingPipeline:
    """Stands in for a loaded pipeline: records each call's arguments and returns a new blank image, so
    anything the result carries (its ICC profile) comes from ``remove()`` itself."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.loads: list[dict[str, Any]] = []

    def set_progress_bar_config(self, **kwargs: object) -> None:
        pass

    def __call__(self, image: Image.Image | list[Image.Image], mask: Any, **kwargs: Any) -> SimpleNamespace:
        self.calls.append(kwargs)
        images = image if isinstance(image, list) else [image]
        per_image = kwargs.get("num_images_per_prompt", 1)
        return SimpleNamespace(
            images=[Image.new("RGB", one.size) for one in images for _ in range(per_image)]
        )


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> RecordingPipeline:
    pipe = RecordingPipeline()

    def load(*args: Any, **kwargs: Any) -> RecordingPipeline:
        pipe.loads.append(kwargs)
        return pipe

    monkeypatch.setattr(api, "load_pipeline", load)
    return pipe


# ----------------------------------------------------------------------------------------------------
# Saved masks are lossless


def _speckled_mask() -> np.ndarray:
    """A mask that a lossy codec cannot keep: random speckles and one-pixel lines."""
    mask = np.random.default_rng(1).random((64, 64)) < 0.3
    mask[10, :] = True
    mask[:, 50] = False
    return mask


@pytest.mark.parametrize("suffix", MASK_SUFFIXES)
def test_a_saved_mask_rereads_bit_identical(tmp_path: Path, suffix: str) -> None:
    mask = _speckled_mask()
    white = np.where(mask, 255, 0).astype(np.uint8)
    path = imaging.save_image(Image.fromarray(white), tmp_path / f"mask{suffix}", lossless=True)
    with Image.open(path) as reread:
        assert np.array_equal(np.asarray(reread.convert("L")), white)
    assert np.array_equal(imaging.load_mask(path), mask)


def test_every_lossless_format_is_offered_for_masks_and_jpeg_is_not(tmp_path: Path) -> None:
    assert set(MASK_SUFFIXES) == {".png", ".webp", ".bmp", ".tif", ".tiff"}
    with pytest.raises(imaging.InputError, match=r"would be lossy \(JPEG\)"):
        imaging.save_image(Image.new("L", (8, 8)), tmp_path / "mask.jpg", lossless=True)
    assert not (tmp_path / "mask.jpg").exists()
    # results stay lossy WebP by default (a photo), which is what made masks lossy before
    photo = Image.fromarray(np.where(_speckled_mask(), 255, 0).astype(np.uint8))
    imaging.save_image(photo, tmp_path / "photo.webp")
    with Image.open(tmp_path / "photo.webp") as reread:
        assert not np.array_equal(np.asarray(reread.convert("L")), np.asarray(photo))


def test_save_mask_webp_from_the_cli_is_exactly_the_mask_used(
    pair: tuple[Path, Path], tmp_path: Path
) -> None:
    image, mask_path = pair
    speckled = tmp_path / "speckled.png"
    Image.fromarray(np.where(_speckled_mask(), 255, 0).astype(np.uint8)).save(speckled)
    saved = tmp_path / "used.webp"
    result = invoke("remove", image, speckled, "-o", tmp_path / "out.png", "--save-mask", saved, *FAST)
    assert result.exit_code == 0, result.output
    assert np.array_equal(imaging.load_mask(saved), _speckled_mask())
    # the ICC profile of the input reaches the result file
    with Image.open(tmp_path / "out.png") as out:
        assert out.info.get("icc_profile") == SRGB_PROFILE


# ----------------------------------------------------------------------------------------------------
# Between Pillow's bomb limit and twice it: one line, our limit decides


def test_an_image_over_pillows_limit_prints_one_line_in_a_real_process(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    Image.new("1", (10_000, 10_000)).save(bomb)  # 100 megapixels: over Pillow's 89.5, under twice it
    mask = tmp_path / "mask.png"
    Image.new("L", (8, 8), 255).save(mask)
    env = {**os.environ, "PYTHONWARNINGS": "default"}  # nothing may hide a warning that still fires
    done = subprocess.run(
        [sys.executable, "-m", "attentive_eraser", "remove", bomb, mask, "-o", tmp_path / "out.png"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == [
        "error: image: 10000x10000 is 100.0 megapixels, more than the limit of 50 "
        "(raise it with --max-pixels / max_pixels)"
    ], done.stderr
    assert not (tmp_path / "out.png").exists()


def test_pillows_warning_is_silenced_and_a_raised_limit_is_honoured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "small.png"
    Image.new("RGB", (64, 64), (10, 20, 30)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3000)  # 4096 pixels: over it, under twice it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert imaging.load_image(path, max_pixels=5000).size == (64, 64)
    assert not [warning for warning in caught if issubclass(warning.category, Image.DecompressionBombWarning)]
    # over twice Pillow's limit: Pillow alone would refuse; our limit (here: none, or a raised one) decides
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    assert imaging.load_image(path, max_pixels=None).size == (64, 64)
    assert imaging.load_mask(path, max_pixels=10_000).shape == (64, 64)
    assert Image.MAX_IMAGE_PIXELS == 1000  # restored
    with pytest.raises(
        imaging.InputError, match=r"^image: 64x64 is 4096 pixels, more than the limit of 4000"
    ):
        imaging.load_image(path, max_pixels=4000)


# ----------------------------------------------------------------------------------------------------
# Over-limit images: the argument named once, counts in sensible units


@pytest.mark.parametrize(
    ("size", "limit", "expected"),
    [
        ((64, 64), 4095, "64x64 is 4096 pixels, more than the limit of 4095 pixels"),
        ((300, 300), 90_000 - 1, "300x300 is 90000 pixels, more than the limit of 89999 pixels"),
        ((8000, 7000), 50_000_000, "8000x7000 is 56.0 megapixels, more than the limit of 50 "),
        ((50_000_001, 1), 50_000_000, "is 50.000001 megapixels, more than the limit of 50 "),
        ((1000, 1000), 123_456, "1000x1000 is 1.0 megapixels, more than the limit of 0.123456 "),
    ],
)
def test_pixel_limits_read_sensibly(size: tuple[int, int], limit: int, expected: str) -> None:
    with pytest.raises(imaging.InputError) as raised:
        imaging.check_pixels(size, limit, "image")
    assert expected in str(raised.value)


def test_an_over_limit_file_names_the_argument_once(pair: tuple[Path, Path], tmp_path: Path) -> None:
    image, mask = pair
    line = one_error_line(invoke("remove", image, mask, "-o", tmp_path / "o.png", "--max-pixels", "4095"))
    assert line == (
        "error: image: 64x64 is 4096 pixels, more than the limit of 4095 pixels "
        "(raise it with --max-pixels / max_pixels)"
    )
    big_mask = tmp_path / "big_mask.png"
    Image.new("L", (80, 80), 255).save(big_mask)
    line = one_error_line(invoke("remove", image, big_mask, "-o", tmp_path / "o.png", "--max-pixels", "5000"))
    assert line.startswith("error: mask: 80x80 is 6400 pixels, more than the limit of 5000 pixels")


# ----------------------------------------------------------------------------------------------------
# NumPy numbers: accepted everywhere, passed on as Python numbers


INT_KNOBS = [item.name for item in KNOBS if item.whole]


def test_remove_takes_numpy_numbers_and_the_pipeline_gets_python_ones(
    pair: tuple[Path, Path], recording: RecordingPipeline
) -> None:
    image, mask = pair
    values = {"num_inference_steps": 20, "suppression_steps": 2, "mask_dilation": 1, "resolution": 64}
    assert set(values) == set(INT_KNOBS)  # every whole-number knob
    numpy_values = {name: np.int64(value) for name, value in values.items()}
    api.remove(
        image, mask, seed=np.int64(5), strength=np.float32(0.5), feather_radius=np.int32(3), **numpy_values
    )
    call = recording.calls[-1]
    for name, value in values.items():
        assert type(call[name]) is int and call[name] == value, name
    assert type(call["strength"]) is float and call["strength"] == 0.5
    assert type(call["feather_radius"]) is int and call["feather_radius"] == 3
    assert call["generator"][0].initial_seed() == 5
    for bad in ({"seed": np.float64(1.5)}, {"num_inference_steps": np.float64(2.5)}):
        with pytest.raises(ValueError, match=rf"^{next(iter(bad))}="):
            api.remove(image, mask, **bad)  # type: ignore[arg-type]


def test_requests_and_seeds_of_every_front_end_become_python_ints() -> None:
    options = RemovalOptions(seed=np.uint32(7), knobs={"num_inference_steps": np.int16(9)})
    assert type(options.seed) is int and options.seed == 7
    assert type(options.get("num_inference_steps")) is int
    assert parse_seeds(np.int64(4)) == (4,) and parse_seeds([np.int32(3), 3]) == (3,)
    assert all(type(seed) is int for seed in parse_seeds([np.int64(1), "2"]))
    for refused in ("1e3", [5.0], [2**63], "-1"):
        with pytest.raises(imaging.InputError, match=r"^seeds: .* is not a whole number in \[0, 2\*\*63\)$"):
            parse_seeds(refused)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^seed=-1 must be a whole number"):
        RemovalOptions(seed=-1)


@pytest.mark.parametrize("seed", ["1.5", str(2**63), "-3", "1e3"])
def test_cli_seed_follows_the_one_seed_rule(pair: tuple[Path, Path], tmp_path: Path, seed: str) -> None:
    image, mask = pair
    line = one_error_line(invoke("remove", image, mask, "-o", tmp_path / "o.png", "--seed", seed))
    assert line == f"error: Invalid value for '--seed': {seed!r} is not a whole number in [0, 2**63)."


def test_cli_seed_at_the_top_of_the_range_reaches_the_pipeline(
    pair: tuple[Path, Path], tmp_path: Path, recording: RecordingPipeline
) -> None:
    image, mask = pair
    result = invoke("remove", image, mask, "-o", tmp_path / "o.png", "--seed", str(2**63 - 1), "-q")
    assert result.exit_code == 0, result.output
    assert recording.calls[-1]["generator"][0].initial_seed() == 2**63 - 1


# ----------------------------------------------------------------------------------------------------
# One rule for choices, the ICC profile kept, --top-k needs --object


@pytest.mark.parametrize("spelling", ["DPM++", "Dpm++", " dpm++ "])
def test_every_front_end_reads_a_choice_regardless_of_case(
    spelling: str, pair: tuple[Path, Path], tmp_path: Path, recording: RecordingPipeline
) -> None:
    image, mask = pair
    api.remove(image, mask, scheduler=spelling, method="SIP", strategy="Resize")  # type: ignore[arg-type]
    assert recording.calls[-1]["scheduler"] == "dpm++" and recording.calls[-1]["strategy"] == "resize"
    assert recording.loads[-1]["method"] == "sip"
    result = invoke("remove", image, mask, "-o", tmp_path / "o.png", "--scheduler", spelling, "-q")
    assert result.exit_code == 0, result.output
    assert recording.calls[-1]["scheduler"] == "dpm++"
    assert knob("scheduler").parse(spelling) == "dpm++"  # a manifest cell
    check_knob_value(knob("scheduler"), spelling)  # a web request: accepted ...
    values: list[Any] = [None] * len(ALL_PARAMETERS)
    values[ALL_PARAMETERS.index("method")] = "DIP"
    values[ALL_PARAMETERS.index("strategy")] = "CROP"
    values[ALL_PARAMETERS.index("scheduler")] = spelling
    completed = dict(
        zip(ALL_PARAMETERS, completed_request(values, dict.fromkeys(settings.KNOB_NAMES)), strict=True)
    )
    # ... and handed on in the spelling the page's radio groups take
    assert (completed["method"], completed["strategy"], completed["scheduler"]) == ("dip", "crop", "dpm++")
    assert RemovalOptions(method="SIP", knobs={"scheduler": spelling}).knobs == (("scheduler", "dpm++"),)


def test_every_front_end_refuses_the_same_unknown_choice(pair: tuple[Path, Path], tmp_path: Path) -> None:
    image, mask = pair
    with pytest.raises(ValueError, match=r"^scheduler='Euler' must be one of 'ddim', 'dpm\+\+'$"):
        api.remove(image, mask, scheduler="Euler")
    with pytest.raises(ValueError, match=r"^method='DDIM' must be 'sip' or 'dip'$"):
        api.remove(image, mask, method="DDIM")  # type: ignore[arg-type]
    assert "--scheduler" in one_error_line(
        invoke("remove", image, mask, "-o", tmp_path / "o.png", "--scheduler", "Euler")
    )
    with pytest.raises(ValueError, match="must be one of"):
        knob("scheduler").parse("Euler")
    with pytest.raises(imaging.InputError, match=r"^scheduler: 'Euler' must be one of"):
        check_knob_value(knob("scheduler"), "Euler")
    with pytest.raises(ValueError, match=r"^scheduler=3 must be one of"):
        knob("scheduler").canonical(3)


def test_pipelines_keep_the_listed_spelling_as_their_contract() -> None:
    # remove() and the other front ends canonicalise; the schema's strict check is what pipelines call
    knob("scheduler").check("dpm++")
    with pytest.raises(ValueError, match="must be one of"):
        knob("scheduler").check("DPM++")


def test_remove_keeps_the_icc_profile_of_the_input(
    pair: tuple[Path, Path], recording: RecordingPipeline
) -> None:
    image, mask = pair
    assert api.remove(image, mask).info.get("icc_profile") == SRGB_PROFILE
    with Image.open(image) as opened:  # a PIL image given directly, too
        assert api.remove(opened, mask).info.get("icc_profile") == SRGB_PROFILE
    plain = Image.new("RGB", (64, 64))
    assert "icc_profile" not in api.remove(plain, mask).info


def test_top_k_without_object_is_refused(tmp_path: Path) -> None:
    scene = REPO / "src" / "attentive_eraser" / "assets" / "demo" / "scene.png"
    out = tmp_path / "out.png"
    line = one_error_line(invoke("remove", scene, "--point", "9,2", "--top-k", "2", "-o", out, *FAST))
    assert line == "error: top-k: 2 is given but no --object: it keeps the K best matches of the words"
    assert not out.exists()


# ----------------------------------------------------------------------------------------------------
# Defaults shown are the model's that runs


def test_help_shows_the_demo_models_defaults_then_the_sd_presets() -> None:
    text = " ".join(invoke("remove", "--help").output.split())
    assert "Default: 15.0 (demo model; SD 9.0)." in text
    assert "Default: 64 (demo model; sd15/sd21 512, sd21-768 768, sdxl 1024)." in text
    assert "Default: 2 (demo model; sd15/sd21/sdxl 15, sd21-768 22)." in text
    for item in KNOBS:
        assert f"Default: {preset_default(item.name)}." in text, item.name
        demo = PRESETS["demo"].for_method("sip")[item.name]
        assert preset_default(item.name).startswith(str(demo)), item.name


def test_defaults_in_help_follow_the_presets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        PRESETS, "demo", replace(PRESETS["demo"], removal_guidance_scale=11.0, resolution=128)
    )
    assert preset_default("removal_guidance_scale") == "11.0 (demo model; SD 9.0)"
    assert preset_default("resolution").startswith("128 (demo model; sd15/sd21 512")
    monkeypatch.setitem(PRESETS, "demo", replace(PRESETS["demo"], removal_guidance_scale=9.0))
    assert preset_default("removal_guidance_scale") == "9.0"  # the same everywhere: said once


@pytest.mark.parametrize("page", ["cli.md", "api.md"])
def test_the_docs_knob_tables_show_the_same_defaults(page: str) -> None:
    rows = (REPO / "docs" / page).read_text(encoding="utf-8").splitlines()
    for item in KNOBS:
        first = f"| `{item.option}" if page == "cli.md" else f"| `{item.name}` |"
        row = next(row for row in rows if row.startswith(first))
        assert f"| {preset_default(item.name)} |" in row, (page, item.name, row)


# ----------------------------------------------------------------------------------------------------
# Hub weights that are not on this machine: one complete line, no long wait


@pytest.fixture
def silent_hub() -> Iterator[SimpleNamespace]:
    """A local "hub" that accepts connections and never answers (a network that swallows requests):
    ``url``, and ``held``, the connections it took."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield SimpleNamespace(url=f"http://127.0.0.1:{server.getsockname()[1]}", held=held)
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


def test_an_uncached_hub_model_offline_is_one_complete_line(pair: tuple[Path, Path], tmp_path: Path) -> None:
    image, mask = pair
    model = "stabilityai/stable-diffusion-2-1-base"
    line = one_error_line(invoke("remove", image, mask, "-o", tmp_path / "o.png", "--model", model, "-q"))
    assert line.startswith(
        f"error: model={model!r}: the weights are not on this machine and downloads are off"
    )
    assert f"hf download {model}" in line
    assert line.endswith("or pass a local diffusers folder or .safetensors file")
    assert "local_files_only" not in line and not (tmp_path / "o.png").exists()


def test_an_unanswering_hub_costs_one_short_probe(
    silent_hub: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", silent_hub.url)
    monkeypatch.setattr(api, "HUB_PROBE_TIMEOUT", 0.5)
    start = time.monotonic()
    with pytest.raises(ValueError) as raised:
        api.detect_family("someone/not-cached-here")
    assert time.monotonic() - start < 20  # a probe of 0.5 s; before, the download waited without end
    message = str(raised.value)
    assert re.match(
        r"^model='someone/not-cached-here': the weights are not on this machine and the hub ", message
    )
    assert "cannot be reached (ReadTimeout" in message and "hf download someone/not-cached-here" in message
    assert silent_hub.held  # the probe did go to the hub, and gave up on it


def _cache_with(model_dir: Path, cache: Path, repo: str) -> None:
    """A Hugging Face hub cache holding ``model_dir`` as the snapshot of ``repo``'s main branch."""
    import shutil

    folder = cache / f"models--{repo.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(model_dir, folder / "snapshots" / commit)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(commit)


def test_a_cached_hub_model_loads_without_asking_the_hub(
    tiny_sd15_dir: Path, pair: tuple[Path, Path], tmp_path: Path, silent_hub: SimpleNamespace
) -> None:
    """Online but with a hub that never answers: the cached model still runs, in a real process (before:
    diffusers asked the hub first and waited without a read timeout)."""
    image, mask = pair
    _cache_with(tiny_sd15_dir, tmp_path / "cache", "someone/tiny-sd15")
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    }
    env.update(HF_HUB_CACHE=str(tmp_path / "cache"), HF_ENDPOINT=silent_hub.url)
    out = tmp_path / "out.png"
    command = ["remove", image, mask, "-o", out, "--model", "someone/tiny-sd15", "--steps", "2", "-q"]
    done = subprocess.run(
        [sys.executable, "-m", "attentive_eraser", *map(str, command)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert Image.open(out).size == (64, 64)


def test_a_long_loading_error_is_shortened_at_a_sentence_end() -> None:
    first = "word " * 40 + "end."
    cause = OSError(f"{first} " + "more " * 60 + "pass 'local_files_only=True'")
    assert api._describe(cause, with_type=False) == f"{first} …"
    words = OSError("x" * 10 + " " + "y" * 400)
    assert api._describe(words, with_type=False) == "x" * 10 + " …"
    assert api._describe(OSError("short"), with_type=False) == "short"
