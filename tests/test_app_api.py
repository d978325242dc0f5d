"""The web app's HTTP API, through Gradio's Python client, against a server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from app_server import running_app
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from attentive_eraser import imaging
from attentive_eraser.api import remove as remove_with_the_library
from attentive_eraser.settings import FAST_KNOBS

pytestmark = pytest.mark.timeout(300)

SIZE = (200, 150)  # (width, height) of the test photo


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[Any, str]]:
    with running_app(max_file_size="1mb") as (app, url):
        yield app, url


@pytest.fixture
def client(server: tuple[Any, str]) -> Client:
    return Client(server[1], verbose=False, download_files=True)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A textured photo (PNG and JPEG), a mask of a box in it, an RGBA cut-out and an empty mask."""
    folder = tmp_path_factory.mktemp("api")
    width, height = SIZE
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    pixels = np.stack([cols * 255 / width, rows * 255 / height, 100 + 0 * cols], axis=-1)
    pixels += np.random.default_rng(3).normal(0.0, 10.0, size=pixels.shape)
    photo = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))
    mask = np.zeros((height, width), dtype=bool)
    mask[55:95, 70:130] = True
    cutout = photo.convert("RGBA")
    cutout.putalpha(Image.fromarray(np.where(mask, 0, 255).astype(np.uint8)))
    paths = {
        "photo": folder / "photo.png",
        "jpeg": folder / "holiday.jpeg",
        "mask": folder / "mask.png",
        "cutout": folder / "cutout.png",
        "empty": folder / "empty.png",
    }
    photo.save(paths["photo"])
    photo.save(paths["jpeg"], quality=95)
    Image.fromarray(mask.astype(np.uint8) * 255).save(paths["mask"])
    cutout.save(paths["cutout"])
    Image.new("L", SIZE, 0).save(paths["empty"])
    return paths


def _remove(client: Client, image: Path, mask: Path | None, **knobs: Any) -> tuple[Any, ...]:
    return client.predict(
        image=handle_file(str(image)),
        mask=None if mask is None else handle_file(str(mask)),
        api_name="/remove",
        **knobs,
    )


def _pixels(path: str | Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).astype(np.int16)


def _far_from(mask: np.ndarray, app: Any) -> np.ndarray:
    """Pixels beyond the (dilated, feathered) paste-back band of ``mask``."""
    defaults = app.eraser_service.knob_defaults(app.eraser_service.default_model)
    multiple = app.eraser_service.size_multiple(app.eraser_service.default_model)
    scale = SIZE[0] / imaging.working_size(SIZE, defaults["resolution"], multiple=multiple)[0]
    margin = int(np.ceil((defaults["mask_dilation"] + defaults["feather_radius"]) * scale)) + 2
    return ~imaging.dilate_mask(mask, margin)


def test_the_remove_endpoint_is_named_and_documented(client: Client) -> None:
    info = client.view_api(print_info=False, return_format="dict")
    endpoint = info["named_endpoints"]["/remove"]
    names = [parameter["parameter_name"] for parameter in endpoint["parameters"]]
    assert names == [
        "image",
        "mask",
        "model",
        "method",
        "seeds",
        "num_inference_steps",
        "strength",
        "removal_guidance_scale",
        "suppression_scale",
        "suppression_steps",
        "mask_dilation",
        "feather_radius",
        "resolution",
        "paste_back",
        "strategy",
        "points",
        "negative_points",
        "box",
        "object",  # optional: select the object (issue 12)
        "fast",  # optional: the fast knob values (settings.FAST_KNOBS)
        "scheduler",  # optional: the knobs added to settings.KNOBS after the first version
        "exclude",  # optional: the older name of negative_points, for requests by name
    ]
    assert len(endpoint["returns"]) == 4  # candidates, before/after, file, status
    assert "/cancel" in info["named_endpoints"]
    # the page's helpers (preview, photo loading, …) are not part of the API
    assert set(info["named_endpoints"]) == {"/remove", "/cancel"}


def test_one_seed_equals_the_library_and_keeps_the_outside(
    client: Client, server: tuple[Any, str], files: dict[str, Path]
) -> None:
    app, _ = server
    gallery, (before, after), result, status = _remove(client, files["photo"], files["mask"], seeds="7")
    assert "1 result at 200×150" in status
    assert Path(result).name == "photo_erased.png" and after is not None and before is not None
    assert [item["caption"] for item in gallery] == ["seed 7"]

    expected = remove_with_the_library(
        files["photo"], files["mask"], seed=7, num_inference_steps=8, progress=False
    )
    got = _pixels(result)
    np.testing.assert_array_equal(got, np.asarray(expected).astype(np.int16))
    mask = imaging.load_mask(files["mask"])
    changed = (got != _pixels(files["photo"])).any(axis=2)
    assert changed[mask].mean() > 0.5
    assert not changed[_far_from(mask, app)].any()


def test_several_seeds_give_one_candidate_each(client: Client, files: dict[str, Path]) -> None:
    gallery, _, result, status = _remove(client, files["photo"], files["mask"], seeds="1, 2 3")
    assert "3 candidates" in status
    assert [item["caption"] for item in gallery] == ["seed 1", "seed 2", "seed 3"]
    assert Path(result).name == "photo_erased_seed1.png"
    images = [_pixels(item["image"]) for item in gallery]
    assert all(image.shape == (150, 200, 3) for image in images)
    assert not np.array_equal(images[0], images[1]) and not np.array_equal(images[1], images[2])


def test_dip_is_deterministic_and_makes_one_result(client: Client, files: dict[str, Path]) -> None:
    first = _remove(client, files["photo"], files["mask"], method="dip", seeds="1, 2")
    second = _remove(client, files["photo"], files["mask"], method="dip", seeds="9")
    assert [item["caption"] for item in first[0]] == ["DIP (deterministic)"]
    np.testing.assert_array_equal(_pixels(first[2]), _pixels(second[2]))


def test_jpeg_in_jpeg_out_at_the_original_size(client: Client, files: dict[str, Path]) -> None:
    _, _, result, status = _remove(client, files["jpeg"], files["mask"], strategy="crop")
    assert Path(result).name == "holiday_erased.jpeg" and "JPEG" in status
    with Image.open(result) as image:
        assert image.format == "JPEG" and image.size == SIZE


def test_without_a_mask_the_transparent_pixels_are_the_object(client: Client, files: dict[str, Path]) -> None:
    _, _, result, _ = _remove(client, files["cutout"], None)
    with Image.open(result) as image:
        assert image.mode == "RGB" and image.size == SIZE  # filled in, hence opaque


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ({"seeds": "abc"}, "seeds"),
        ({"seeds": ", ".join(str(seed) for seed in range(9))}, "at most 8"),
        ({"strength": 0.05, "num_inference_steps": 8}, "strength"),
        ({"model": "someone/else"}, "model: 'someone/else' is not offered by this server"),
    ],
)
def test_bad_settings_are_reported(
    client: Client, files: dict[str, Path], knobs: dict[str, Any], message: str
) -> None:
    with pytest.raises(AppError, match=message):
        _remove(client, files["photo"], files["mask"], **knobs)


def test_bad_masks_are_reported(client: Client, files: dict[str, Path]) -> None:
    with pytest.raises(AppError, match="selects no pixels"):
        _remove(client, files["photo"], files["empty"])
    with pytest.raises(AppError, match="no mask given"):
        _remove(client, files["photo"], None)


def test_cancel_stops_a_running_removal(client: Client, files: dict[str, Path]) -> None:
    job = client.submit(
        image=handle_file(str(files["photo"])),
        mask=handle_file(str(files["mask"])),
        num_inference_steps=200,
        strength=1.0,
        resolution=512,
        api_name="/remove",
    )
    deadline = time.monotonic() + 60
    while not job.status().progress_data:  # wait until the denoising loop reports its first step
        assert time.monotonic() < deadline, "the removal never started"
        time.sleep(0.05)
    assert client.predict(api_name="/cancel") == "Cancelling…"
    *_, status = job.result(timeout=60)
    assert status.startswith("Cancelled after step")
    done, total = (int(number) for number in status.split("step")[1].rstrip(".").split(" of "))
    assert total == 200 and done < total


def test_removals_are_serialised_by_the_queue(
    server: tuple[Any, str], files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two clients at once: the queue alone (the service's own lock disabled) runs one at a time."""
    app, url = server
    service = app.eraser_service
    monkeypatch.setattr(service, "_run_lock", contextlib.nullcontext())
    running, peak, guard = [0], [0], threading.Lock()
    original = service.pipeline

    def probed_pipeline(label: str, method: str = "sip") -> Any:
        pipe = original(label, method)

        def call(*args: Any, **kwargs: Any) -> Any:
            with guard:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            try:
                time.sleep(0.3)  # long enough for the other request to overlap, were it allowed to
                return pipe(*args, **kwargs)
            finally:
                with guard:
                    running[0] -= 1

        return call

    monkeypatch.setattr(service, "pipeline", probed_pipeline)
    jobs = [
        Client(url, verbose=False).submit(
            image=handle_file(str(files["photo"])),
            mask=handle_file(str(files["mask"])),
            seeds=str(seed),
            api_name="/remove",
        )
        for seed in (1, 2, 3)
    ]
    statuses = [job.result(timeout=120)[3] for job in jobs]
    assert all(status.startswith("Done") for status in statuses)
    assert peak[0] == 1


def test_uploads_over_the_size_limit_are_refused(server: tuple[Any, str]) -> None:
    _, url = server
    response = httpx.post(
        f"{url}/gradio_api/upload", files={"files": ("big.png", b"\0" * 1_500_000, "image/png")}, timeout=30
    )
    assert response.status_code == 413


def test_a_server_path_in_a_request_is_refused(server: tuple[Any, str]) -> None:
    """A request naming a file on the server (not one it uploaded) gets an error, never the file."""
    app, url = server
    secret = Path(app.eraser_service.workdir) / "examples" / "disc.png"  # exists, but was never uploaded
    outside = {"path": str(secret), "meta": {"_type": "gradio.FileData"}}
    knobs = ["built-in default model", "sip", "1", 8, 0.8, 9, 0.3, 10, 1, 2, 64, True, "resize"]
    data = [outside, outside, *knobs]
    started = httpx.post(f"{url}/gradio_api/call/remove", json={"data": data}, timeout=30)
    assert started.status_code == 200
    event = started.json()["event_id"]
    events = httpx.get(f"{url}/gradio_api/call/remove/{event}", timeout=60).text
    assert "event: error" in events and "event: complete" not in events


def test_binds_the_loopback_address_by_default(server: tuple[Any, str]) -> None:
    app, url = server
    assert app.server_name == "127.0.0.1" and url.startswith("http://127.0.0.1:")


def _call_remove_raw(url: str, data: list[Any]) -> str:
    """The message of the error event a raw ``/remove`` call gets ("" when the call succeeds)."""
    started = httpx.post(f"{url}/gradio_api/call/remove", json={"data": data}, timeout=30)
    assert started.status_code == 200, started.text
    events = httpx.get(f"{url}/gradio_api/call/remove/{started.json()['event_id']}", timeout=120).text
    if "event: error" not in events:
        return ""
    payload = events.split("event: error", 1)[1].split("data:", 1)[1].strip().splitlines()[0]
    message = json.loads(payload)  # Gradio sends null for errors it does not let through
    if isinstance(message, dict):
        message = message.get("error")
    return "(no message)" if message is None else str(message)


RAW_KNOBS = ["built-in default model", "sip", "1", 8, 0.8, 9, 0.3, 10, 1, 2, 64, True, "resize"]


PARAMETERS = (
    "image",
    "mask",
    "model",
    "method",
    "seeds",
    "num_inference_steps",
    "strength",
    "removal_guidance_scale",
    "suppression_scale",
    "suppression_steps",
    "mask_dilation",
    "feather_radius",
    "resolution",
    "paste_back",
    "strategy",
)


def _raw_request(upload: dict[str, Any], **changes: Any) -> list[Any]:
    values = dict(zip(PARAMETERS, [upload, upload, *RAW_KNOBS], strict=False))
    values.update(changes)
    return list(values.values())


# (changes to a valid request, text the error message must contain): issue 10, item 12
BAD_REQUESTS = [
    ({"num_inference_steps": "abc"}, "num_inference_steps: 'abc' is not a number"),
    ({"num_inference_steps": 4.5}, "num_inference_steps: 4.5 is not a whole number"),
    ({"num_inference_steps": 500}, "num_inference_steps: 500 is out of range [1, 200]"),
    ({"strength": "strong"}, "strength: 'strong' is not a number"),
    ({"feather_radius": -1}, "feather_radius: -1 is out of range [0, 64]"),
    ({"resolution": None}, "resolution: None is not a number"),
    ({"paste_back": "maybe"}, "paste_back: 'maybe' must be true or false"),
    ({"strategy": "zoom"}, "strategy: 'zoom' must be 'resize' or 'crop'"),
    ({"method": "ddim"}, "method='ddim' must be 'sip' or 'dip'"),
    ({"model": "someone/else"}, "model: 'someone/else' is not offered by this server"),
    ({"seeds": "abc"}, "seeds: 'abc' is not a whole number"),
    ({"seeds": {"a": 1}}, "seeds: {'a': 1} is not a list of seeds"),
    ({"image": "just a string"}, "image: 'just a string' is not an uploaded file"),
    ({"image": {"meta": {"_type": "gradio.FileData"}}}, "image: {'meta'"),
    ({"image": None}, "image: upload a photo first"),
    (
        {"mask": {"path": "/etc/hostname", "meta": {"_type": "gradio.FileData"}}},
        "mask: '/etc/hostname' is not a file uploaded to this server",
    ),
]


def test_every_api_error_names_the_argument_and_value(
    server: tuple[Any, str], files: dict[str, Path]
) -> None:
    _, url = server
    with files["photo"].open("rb") as photo:
        uploaded = httpx.post(
            f"{url}/gradio_api/upload", files={"files": ("photo.png", photo, "image/png")}, timeout=30
        ).json()[0]
    upload = {"path": uploaded, "meta": {"_type": "gradio.FileData"}}
    messages = {}
    for changes, expected in BAD_REQUESTS:
        messages[expected] = _call_remove_raw(url, _raw_request(upload, **changes))
    too_short = _call_remove_raw(url, [upload, upload, "built-in default model"])
    assert {expected: message for expected, message in messages.items() if expected not in message} == {}
    assert too_short.startswith("data: expected 15 values, got 3 (missing: method, seeds")
    assert all("\n" not in message for message in messages.values())


def _recording_pipelines(service: Any, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record the keyword arguments of every pipeline call the service makes (the calls still run)."""
    calls: list[dict[str, Any]] = []
    original = service.pipeline

    def recording_pipeline(label: str, method: str = "sip") -> Any:
        pipe = original(label, method)

        def call(*args: Any, **kwargs: Any) -> Any:
            calls.append({"method": method, **kwargs})
            return pipe(*args, **kwargs)

        return call

    monkeypatch.setattr(service, "pipeline", recording_pipeline)
    return calls


def test_fast_and_scheduler_reach_the_pipeline(
    client: Client, server: tuple[Any, str], files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``fast``: the fast values for the knobs a request leaves at their defaults; moved ones win."""
    calls = _recording_pipelines(server[0].eraser_service, monkeypatch)
    for knobs in (
        {},
        {"fast": True},
        {"fast": True, "num_inference_steps": 12},
        {"scheduler": "dpm++"},
        {"method": "dip", "fast": True},
    ):
        *_, status = _remove(client, files["photo"], files["mask"], **knobs)
        assert status.startswith("Done"), (knobs, status)
    picked = [
        (call["method"], call["num_inference_steps"], call["suppression_steps"], call["scheduler"])
        for call in calls
    ]
    assert picked == [
        ("sip", 8, 10, "ddim"),  # the page's initial values (the test server's defaults)
        (
            "sip",
            *(FAST_KNOBS["sip"][name] for name in ("num_inference_steps", "suppression_steps", "scheduler")),
        ),
        ("sip", 12, FAST_KNOBS["sip"]["suppression_steps"], "dpm++"),
        ("sip", 8, 10, "dpm++"),
        ("dip", FAST_KNOBS["dip"]["num_inference_steps"], FAST_KNOBS["dip"]["suppression_steps"], "ddim"),
    ]


def test_the_optional_parameters_have_defaults_and_are_checked(
    client: Client, server: tuple[Any, str], files: dict[str, Path]
) -> None:
    info = client.view_api(print_info=False, return_format="dict")
    parameters = {item["parameter_name"]: item for item in info["named_endpoints"]["/remove"]["parameters"]}
    assert parameters["fast"]["parameter_has_default"] and parameters["fast"]["parameter_default"] is False
    assert parameters["scheduler"]["parameter_default"] == "ddim"

    with pytest.raises(AppError, match=r"scheduler: 'euler' must be one of 'ddim', 'dpm\+\+'"):
        _remove(client, files["photo"], files["mask"], scheduler="euler")
    with pytest.raises(AppError, match=r"scheduler='dpm\+\+': DIP samples with DDIM only"):
        _remove(client, files["photo"], files["mask"], method="dip", scheduler="dpm++")
    _, url = server
    with files["photo"].open("rb") as photo:
        uploaded = httpx.post(
            f"{url}/gradio_api/upload", files={"files": ("photo.png", photo, "image/png")}, timeout=30
        ).json()[0]
    upload = {"path": uploaded, "meta": {"_type": "gradio.FileData"}}
    no_selection = ["", "", "", ""]
    assert "scheduler: 'euler' must be one of" in _call_remove_raw(
        url, [*_raw_request(upload), *no_selection, False, "euler"]
    )
    assert "fast: 'maybe' must be true or false" in _call_remove_raw(
        url, [*_raw_request(upload), *no_selection, "maybe"]
    )
