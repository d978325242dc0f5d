"""The web app's service layer (no server), its build options and the ``serve`` command."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import app_server  # fails loudly, with a hint, when the app extra is missing
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from attentive_eraser import imaging
from attentive_eraser.app import (
    ALL_PARAMETERS,
    BUILTIN_MODEL,
    OPTION_PARAMETERS,
    EraserService,
    RemovalSettings,
    build_app,
    parse_seeds,
    serve,
)
from attentive_eraser.app.ui import elem_id_of
from attentive_eraser.cli import main
from attentive_eraser.settings import FAST_KNOBS, KNOB_NAMES, KNOBS

SIZE = (96, 64)  # (width, height)


@pytest.fixture(scope="module")
def service() -> EraserService:
    return EraserService()


@pytest.fixture
def upload(service: EraserService, tmp_path: Path) -> Path:
    """A folder the service accepts files from, as it accepts Gradio's upload folder."""
    service.allow_root(tmp_path)
    return tmp_path


def _photo(mode: str = "RGB") -> Image.Image:
    width, height = SIZE
    rows, cols = np.mgrid[0:height, 0:width]
    pixels = np.stack([cols * 2, rows * 3, 90 + 0 * cols], axis=-1).astype(np.uint8)
    return Image.fromarray(pixels).convert(mode)


def _box_mask() -> np.ndarray:
    mask = np.zeros((SIZE[1], SIZE[0]), dtype=bool)
    mask[20:40, 30:60] = True
    return mask


def _save_mask(mask: np.ndarray, path: Path) -> Path:
    Image.fromarray(mask.astype(np.uint8) * 255).save(path)
    return path


FAST = RemovalSettings.of(num_inference_steps=4, strength=0.75)  # runs 3 steps


# ------------------------------------------------------------------------------------ requests


@pytest.mark.parametrize(
    ("text", "seeds"),
    [("123", (123,)), ("1, 2  3;4", (1, 2, 3, 4)), ("5,5,6", (5, 6)), (7, (7,)), ([8, 9], (8, 9))],
)
def test_parse_seeds(text: object, seeds: tuple[int, ...]) -> None:
    assert parse_seeds(text) == seeds  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "at least one"),
        ("1.5", "not a whole number"),
        ("-1", r"\[0, 2\*\*63\)"),
        (str(2**63), r"\[0, 2\*\*63\)"),
        ("1 2 3", "at most 2"),
        (True, "whole numbers"),
    ],
)
def test_parse_seeds_refuses(text: object, message: str) -> None:
    with pytest.raises(imaging.InputError, match=message) as raised:
        parse_seeds(text, limit=2)  # type: ignore[arg-type]
    assert raised.value.argument == "seeds"


def test_settings_pass_only_the_knobs_that_are_set() -> None:
    kwargs = RemovalSettings.of(num_inference_steps=5, removal_guidance_scale=0.0).call_kwargs()
    assert kwargs == {
        "num_inference_steps": 5,
        "removal_guidance_scale": 0.0,
        "paste_back": True,
        "strategy": "resize",
    }


# ------------------------------------------------------------------------------------ files


def test_only_uploaded_files_are_read(service: EraserService, upload: Path, tmp_path_factory) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "photo.png"
    _photo().save(elsewhere)
    for path in (elsewhere, "/etc/hostname", upload / ".." / elsewhere.parent.name / "photo.png"):
        with pytest.raises(imaging.InputError, match="not a file uploaded to this server"):
            service.load_photo(path)
    with pytest.raises(imaging.InputError, match="gone"):
        service.load_photo(upload / "missing.png")
    inside = upload / "photo.png"
    _photo().save(inside)
    assert service.load_photo(inside).picture.size == SIZE


@pytest.mark.parametrize(
    ("name", "file_format", "suffix"),
    [
        ("a.png", "PNG", ".png"),
        ("b.jpeg", "JPEG", ".jpeg"),
        ("c.JPG", "JPEG", ".jpg"),
        ("png-named.jpg", "PNG", ".png"),
        ("d.webp", "WEBP", ".webp"),
        ("e.tiff", "TIFF", ".tiff"),
        ("f.gif", "GIF", ".png"),
    ],
)
def test_results_keep_the_upload_format(
    service: EraserService, upload: Path, name: str, file_format: str, suffix: str
) -> None:
    _photo().save(upload / name, format=file_format)
    assert service.load_photo(upload / name).suffix == suffix


def test_result_names_are_safe(service: EraserService, upload: Path) -> None:
    _photo().save(upload / "my holiday (1)!.png")
    assert service.load_photo(upload / "my holiday (1)!.png").stem == "my_holiday_1"


def test_old_job_folders_are_deleted() -> None:
    service = EraserService(keep_seconds=60)
    old = service.new_job_folder()
    os.utime(old, (time.time() - 120, time.time() - 120))
    recent = service.new_job_folder()
    assert not old.exists() and recent.exists()


# ------------------------------------------------------------------------------------ masks


def test_painted_layers_and_uploaded_mask_are_combined(service: EraserService, upload: Path) -> None:
    layer = np.zeros((SIZE[1], SIZE[0], 4), dtype=np.uint8)
    layer[5:10, 5:10] = (255, 45, 85, 140)  # a semi-transparent brush stroke
    uploaded = np.zeros((SIZE[1] // 2, SIZE[0] // 2), dtype=bool)  # half size: resized
    uploaded[20:25, 30:40] = True
    mask, note = service.combined_mask(
        SIZE, [Image.fromarray(layer, "RGBA")], _save_mask(uploaded, upload / "half.png")
    )
    assert mask[5:10, 5:10].all() and mask[40:50, 60:80].all()
    assert mask.sum() == 25 + 200
    assert "resized from 48×32" in note


def test_prepare_mask_writes_the_mask_and_needs_one(service: EraserService, upload: Path) -> None:
    _photo().save(upload / "photo.png")
    path = service.prepare_mask(str(upload / "photo.png"), [], str(_save_mask(_box_mask(), upload / "m.png")))
    assert path is not None and Path(path).name == "photo_mask.png"
    np.testing.assert_array_equal(imaging.load_mask(path), _box_mask())
    with pytest.raises(imaging.InputError, match="paint over the object"):
        service.prepare_mask(str(upload / "photo.png"))
    with pytest.raises(imaging.InputError, match="upload a photo first"):
        service.prepare_mask(None)
    cutout = _photo("RGBA")
    cutout.putalpha(Image.fromarray(np.where(_box_mask(), 0, 255).astype(np.uint8)))
    cutout.save(upload / "cutout.png")
    assert service.prepare_mask(str(upload / "cutout.png")) is None  # the transparency is the mask


def test_preview_shows_dilation_and_paste_back_band(service: EraserService, upload: Path) -> None:
    _photo().save(upload / "photo.png")
    mask_path = str(_save_mask(_box_mask(), upload / "m.png"))
    plain, text = service.preview(str(upload / "photo.png"), [], mask_path, mask_dilation=0, feather_radius=0)
    grown, _ = service.preview(str(upload / "photo.png"), [], mask_path, mask_dilation=3, feather_radius=0)
    banded, _ = service.preview(str(upload / "photo.png"), [], mask_path, mask_dilation=3, feather_radius=4)
    assert plain is not None and grown is not None and banded is not None
    assert plain.size == SIZE and "Mask: 600 px" in text
    original = np.asarray(_photo()).astype(int)

    def touched(image: Image.Image) -> int:
        return int((np.asarray(image).astype(int) != original).any(axis=2).sum())

    assert touched(plain) == 600 < touched(grown) < touched(banded)
    _, hint = service.preview(str(upload / "photo.png"))
    assert "Paint over the object" in hint
    assert service.preview(None)[0] is None


# ------------------------------------------------------------------------------------ removal


def test_remove_reports_every_step_and_writes_in_the_photo_format(
    service: EraserService, upload: Path
) -> None:
    _photo().save(upload / "scan.tif")
    steps: list[tuple[int, int]] = []
    run = service.remove(
        upload / "scan.tif",
        _save_mask(_box_mask(), upload / "m.png"),
        FAST,
        progress=lambda done, total, _: steps.append((done, total)),
    )
    assert not run.cancelled and [candidate.seed for candidate in run.candidates] == [123]
    assert steps == [(1, 3), (2, 3), (3, 3)]
    candidate = run.candidates[0]
    assert Path(candidate.result).name == "scan_erased.tif"
    assert Path(candidate.display).suffix == ".png"  # browsers do not show TIFF
    assert run.before is not None and Path(run.before).suffix == ".png"
    assert all(Path(path).is_relative_to(service.workdir) for path in (candidate.result, run.before))
    with Image.open(candidate.result) as result:
        assert result.format == "TIFF" and result.size == SIZE


def test_remove_carries_the_alpha_of_the_photo(service: EraserService, upload: Path) -> None:
    photo = _photo("RGBA")
    photo.putalpha(200)
    photo.save(upload / "logo.png")
    run = service.remove(upload / "logo.png", _save_mask(_box_mask(), upload / "m.png"), FAST)
    with Image.open(run.candidates[0].result) as result:
        assert result.mode == "RGBA" and result.getchannel("A").getextrema() == (200, 200)


def test_a_cancel_before_the_start_runs_nothing(
    service: EraserService, upload: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _photo().save(upload / "photo.png")
    monkeypatch.setattr(service, "pipeline", lambda *args: pytest.fail("the model was run"))
    service.cancel("session-a")
    run = service.remove(
        upload / "photo.png", _save_mask(_box_mask(), upload / "m.png"), FAST, session="session-a"
    )
    assert run.cancelled and run.candidates == [] and "before it started" in run.status


def test_a_cancel_of_another_session_does_not_stop_this_one(service: EraserService, upload: Path) -> None:
    _photo().save(upload / "photo.png")
    service.cancel("someone-else")
    run = service.remove(upload / "photo.png", _save_mask(_box_mask(), upload / "m.png"), FAST, session="me")
    assert not run.cancelled and len(run.candidates) == 1
    # a new click forgets an old cancel request of the same session
    service.cancel("me")
    service.prepare_mask(str(upload / "photo.png"), [], str(upload / "m.png"), session="me")
    assert not service.remove(upload / "photo.png", upload / "m.png", FAST, session="me").cancelled


def test_only_the_servers_models_can_be_chosen(service: EraserService, upload: Path) -> None:
    _photo().save(upload / "photo.png")
    settings = RemovalSettings(model=str(upload))  # a path on the server: refused, never opened
    with pytest.raises(imaging.InputError, match="not offered by this server"):
        service.remove(upload / "photo.png", _save_mask(_box_mask(), upload / "m.png"), settings)
    assert service.model_labels == [BUILTIN_MODEL]


# ------------------------------------------------------------------------------------ app and CLI


@pytest.mark.slow
def test_importing_the_app_module_does_not_import_gradio() -> None:
    code = "import sys, attentive_eraser.app; print('gradio' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert output.stdout.strip() == "False"


def test_build_app_refuses_unknown_defaults() -> None:
    with pytest.raises(ValueError, match="not knobs"):
        build_app(defaults={"guidance": 3})


def test_every_knob_of_the_schema_has_a_control_and_a_remove_parameter() -> None:
    """The page's knob controls come from settings.KNOBS: a slider over its range, a radio of its choices."""
    app = build_app(defaults={"fast": True})
    by_id = {getattr(block, "elem_id", None): block for block in app.blocks.values()}
    for knob in KNOBS:
        control = by_id[elem_id_of(knob)]
        assert (control.label, control.info) == (knob.label, knob.help)
        if knob.choices:
            assert [value for _, value in control.choices] == list(knob.choices)
        else:
            assert (control.minimum, control.maximum, control.step) == knob.slider
    assert {"steps", "guidance", "suppression", "suppression-steps", "dilation", "feather"} <= set(by_id)
    assert by_id["scheduler"].value == "dpm++" and by_id["fast"].value is True  # initially fast
    assert set(KNOB_NAMES) <= set(ALL_PARAMETERS) and OPTION_PARAMETERS == ("fast", "scheduler")


def test_the_fast_toggle_sets_the_fast_values_of_the_method() -> None:
    app = build_app()
    handlers = {fn.name: fn.fn for fn in app.fns.values()}
    assert handlers["fast_defaults"](BUILTIN_MODEL, "sip", True) == [
        FAST_KNOBS["sip"][name] for name in ("num_inference_steps", "suppression_steps", "scheduler")
    ]
    preset = app.eraser_service.knob_defaults(BUILTIN_MODEL, "dip")
    assert handlers["fast_defaults"](BUILTIN_MODEL, "dip", False) == [
        preset["num_inference_steps"],
        preset["suppression_steps"],
        "ddim",
    ]
    # a new method while Fast is ticked: its fast values (DIP samples with DDIM)
    steps, strength, suppression_steps, scheduler = handlers["method_defaults"](BUILTIN_MODEL, "dip", True)
    fast_dip = FAST_KNOBS["dip"]
    assert (steps, suppression_steps, scheduler) == (
        fast_dip["num_inference_steps"],
        fast_dip["suppression_steps"],
        "ddim",
    ) and strength == preset["strength"]


def test_fast_replaces_only_the_knobs_left_at_their_defaults() -> None:
    defaults = {"num_inference_steps": 8, "suppression_steps": 10, "scheduler": "ddim"}
    request = {"method": "sip", "seeds": "1", "num_inference_steps": 8, "suppression_steps": 7}
    fast = RemovalSettings.of_request({**request, "scheduler": "ddim", "fast": True}, defaults=defaults)
    assert fast.call_kwargs() == {
        "num_inference_steps": FAST_KNOBS["sip"]["num_inference_steps"],  # left at its default: fast
        "suppression_steps": 7,  # moved: kept
        "scheduler": "dpm++",
        "paste_back": True,
        "strategy": "resize",
    }
    plain = RemovalSettings.of_request({**request, "scheduler": "ddim"}, defaults=defaults)
    assert plain.call_kwargs()["num_inference_steps"] == 8 and plain.call_kwargs()["scheduler"] == "ddim"


def test_serve_binds_the_loopback_address(monkeypatch: pytest.MonkeyPatch) -> None:
    launched = {}

    def fake_launch(app: object, **kwargs: object) -> str:
        launched.update(kwargs)
        return "http://127.0.0.1:1/"

    monkeypatch.setattr("attentive_eraser.app.server.launch", fake_launch)
    serve(port=app_server.free_port(), block=False)
    assert launched["host"] == "127.0.0.1" and launched["max_file_size"] == "20mb"


def test_serve_command_help_and_bad_model() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    assert "[default: 127.0.0.1]" in result.output and "--max-file-size" in result.output
    result = runner.invoke(main, ["serve", "--model", "/no/such/model"], standalone_mode=True)
    assert result.exit_code == 2
    assert "error: model='/no/such/model' is unknown" in result.output


def test_preview_rounds_working_sizes_like_the_model(tiny_sdxl_dir: Path, upload: Path) -> None:
    """SDXL pipelines round working sizes to multiples of 32, SD ones to 64; the preview must agree."""
    service = EraserService([str(tiny_sdxl_dir)])
    service.allow_root(upload)
    label = service.default_model
    assert service.size_multiple(label) == 32  # from the family, before the model is loaded
    pipe = service.pipeline(label)
    assert service.size_multiple(label) == pipe.size_multiple
    _photo().save(upload / "photo.png")
    mask_path = str(_save_mask(_box_mask(), upload / "m.png"))
    _, caption = service.preview(str(upload / "photo.png"), [], mask_path, resolution=96)
    width, height = imaging.working_size(SIZE, 96, multiple=pipe.size_multiple)
    assert f"Working size {width}×{height}" in caption
