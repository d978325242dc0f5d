"""Selecting in the web app and its HTTP API: clicks on the mask preview, words, and ``/remove``'s
``points``/``exclude``/``box``/``object`` fields -- the service, the API, and a real headless Chromium."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from app_server import WAIT_MS, chromium, running_app, wait_text
from gradio_client import Client, handle_file
from PIL import Image
from playwright.sync_api import BrowserContext, Page

from attentive_eraser import imaging
from attentive_eraser.api import remove as remove_with_the_library
from attentive_eraser.app import (
    PREVIEW_SIDE,
    EraserService,
    RemovalSettings,
    _click_on_preview,
    selection_of_request,
)
from attentive_eraser.selection import SelectionRequest, select_object

pytestmark = pytest.mark.timeout(300)

SIZE = (200, 150)
CENTRE = (100, 75)


def _disc_photo(path: Path) -> tuple[Path, np.ndarray]:
    """A noisy grey-green photo with a flat red disc in the middle; returns it and the disc's mask."""
    width, height = SIZE
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    pixels = np.stack([60 + 0.4 * cols, 120 + 0.3 * rows, 80 + 0 * cols], axis=-1)
    pixels += np.random.default_rng(0).normal(0.0, 6.0, size=pixels.shape)
    disc = (cols - CENTRE[0]) ** 2 + (rows - CENTRE[1]) ** 2 <= 22**2
    pixels[disc] = (225, 30, 35)
    Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8)).save(path)
    return path, disc


def _pixels(path: str | Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).astype(np.int16)


def _margin(service: EraserService) -> int:
    """Pixels beyond the mask that paste-back may blend: (dilation + feather) at the photo's scale."""
    defaults = service.knob_defaults(service.default_model)
    multiple = service.size_multiple(service.default_model)
    scale = SIZE[0] / imaging.working_size(SIZE, defaults["resolution"], multiple=multiple)[0]
    return math.ceil((defaults["mask_dilation"] + defaults["feather_radius"]) * scale) + 2


# ------------------------------------------------------------------------------------ the service


def test_clicks_on_the_shrunk_preview_map_to_photo_pixels() -> None:
    assert _click_on_preview((10, 20), (200, 150)) == (10, 20)
    assert _click_on_preview((512, 250), (2 * PREVIEW_SIDE, 1000)) == (1024, 500)
    assert _click_on_preview((5000, -3), (200, 150)) == (199, 0)


def test_request_fields_become_a_selection() -> None:
    assert selection_of_request([]) is None
    assert selection_of_request(["", "", "", ""]) is None
    request = selection_of_request(["10,20; 30,40", "5,5", "0,0,50,60", "the red disc"])
    assert request == SelectionRequest(
        ((10.0, 20.0), (30.0, 40.0)), ((5.0, 5.0),), (0.0, 0.0, 50.0, 60.0), "the red disc"
    )
    with pytest.raises(imaging.InputError, match=r"^points: 'here' is not X,Y"):
        selection_of_request(["here"])
    with pytest.raises(imaging.InputError, match=r"^box: 12 is not text"):
        selection_of_request(["", "", 12])


def test_preview_prepare_and_remove_take_the_selection(tmp_path: Path) -> None:
    service = EraserService()
    service.allow_root(tmp_path)
    photo_path, disc = _disc_photo(tmp_path / "photo.png")
    click = SelectionRequest(points=(CENTRE,))
    overlay, caption = service.preview(str(photo_path), selection=click)
    assert caption.startswith(f"Mask: {int(select_object(photo_path, points=[CENTRE]).sum()):,} px")
    assert tuple(np.asarray(overlay)[CENTRE[1], CENTRE[0]]) == (40, 220, 90)  # the click's marker
    mask_path = service.prepare_mask(str(photo_path), selection=click)
    mask = imaging.load_mask(mask_path)
    assert (mask & disc).sum() / (mask | disc).sum() > 0.9
    settings = RemovalSettings.of(num_inference_steps=4)
    by_click = service.remove(str(photo_path), None, settings, selection=click)
    by_mask = service.remove(str(photo_path), mask_path, settings)
    assert np.array_equal(_pixels(by_click.candidates[0].result), _pixels(by_mask.candidates[0].result))
    with pytest.raises(imaging.InputError, match=r"^object: 'a red disc' needs a text-capable segmenter"):
        service.preview(str(photo_path), selection=SelectionRequest(text="a red disc"))


# ------------------------------------------------------------------------------------ the HTTP API


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[Any, str]]:
    with running_app() as (app, url):
        yield app, url


def test_the_api_removes_a_clicked_object(server: tuple[Any, str], tmp_path: Path) -> None:
    app, url = server
    photo_path, disc = _disc_photo(tmp_path / "photo.png")
    client = Client(url, verbose=False, download_files=True)
    _, _, result, status = client.predict(
        image=handle_file(str(photo_path)),
        mask=None,
        seeds="7",
        points=f"{CENTRE[0]},{CENTRE[1]}",
        api_name="/remove",
    )
    assert "1 result at 200×150" in status
    expected = remove_with_the_library(
        photo_path, points=[CENTRE], seed=7, num_inference_steps=8, progress=False
    )
    got = _pixels(result)
    np.testing.assert_array_equal(got, np.asarray(expected).astype(np.int16))
    changed = (got != _pixels(photo_path)).any(axis=2)
    assert changed[disc].mean() > 0.5
    assert not changed[~imaging.dilate_mask(disc, _margin(app.eraser_service))].any()


def test_api_selection_errors_name_the_field(server: tuple[Any, str], tmp_path: Path) -> None:
    _, url = server
    photo_path, _ = _disc_photo(tmp_path / "photo.png")
    with photo_path.open("rb") as photo:
        uploaded = httpx.post(
            f"{url}/gradio_api/upload", files={"files": ("photo.png", photo, "image/png")}, timeout=30
        ).json()[0]
    upload = {"path": uploaded, "meta": {"_type": "gradio.FileData"}}
    knobs = ["built-in default model", "sip", "1", 8, 0.8, 9, 0.3, 10, 1, 2, 64, True, "resize"]
    for selection, expected in (
        (["abc", "", "", ""], "points: 'abc' is not X,Y"),
        (["500,5", "", "", ""], "points: points[0]=(500.0, 5.0) lies outside the 200x150 image"),
        (["", "", "1,2,3", ""], "box: '1,2,3' is not X0,Y0,X1,Y1"),
        (["", "", "", "a red disc"], "object: 'a red disc' needs a text-capable segmenter"),
    ):
        data = [upload, None, *knobs, *selection]
        started = httpx.post(f"{url}/gradio_api/call/remove", json={"data": data}, timeout=30)
        events = httpx.get(f"{url}/gradio_api/call/remove/{started.json()['event_id']}", timeout=120).text
        assert "event: error" in events and expected in events, (selection, events[-300:])


# ------------------------------------------------------------------------------------ the browser


@pytest.fixture(scope="module")
def browser() -> Iterator[BrowserContext]:
    with chromium() as context:
        yield context


def _wait_value(page: Page, selector: str) -> str:
    page.wait_for_function(
        "(selector) => { const node = document.querySelector(selector);"
        " return node !== null && node.value.trim() !== ''; }",
        arg=selector,
        timeout=WAIT_MS,
    )
    return page.locator(selector).input_value()


@pytest.mark.slow
def test_click_the_object_remove_download(
    browser: BrowserContext, server: tuple[Any, str], tmp_path: Path
) -> None:
    app, url = server
    photo_path, disc = _disc_photo(tmp_path / "photo.png")
    page = browser.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        page.goto(url)
        page.wait_for_selector("#editor")
        page.locator("#photo input[type=file]").set_input_files(str(photo_path))
        wait_text(page, "#preview-info", "Paint over the object")
        image = page.locator("#preview img").first
        image.wait_for(state="visible")
        box = image.bounding_box()
        assert box is not None
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # the disc's centre
        clicks = _wait_value(page, "#points textarea, #points input")
        x, y = (int(value) for value in clicks.split(","))
        assert disc[y, x], f"the click landed at {clicks}, outside the disc"
        wait_text(page, "#preview-info", "Mask:")  # the preview now shows the selected disc

        with page.expect_download() as download_info:
            page.locator("#remove").click()
            wait_text(page, "#status", "Done")
            page.locator("#download").click()
        result_path = tmp_path / download_info.value.suggested_filename
        download_info.value.save_as(result_path)
        link = page.locator("#mask-used a").first
        link.wait_for(state="attached")
        mask_bytes = page.request.get(link.get_attribute("href")).body()
    finally:
        page.close()
    (tmp_path / "mask_used.png").write_bytes(mask_bytes)
    mask = imaging.load_mask(tmp_path / "mask_used.png")
    assert (mask & disc).sum() / (mask | disc).sum() > 0.9  # the selection is the disc
    photo, result = _pixels(photo_path), _pixels(result_path)
    changed = (photo != result).any(axis=2)
    assert changed[mask].mean() > 0.5, "the selected object was not filled in"
    band = imaging.dilate_mask(mask, _margin(app.eraser_service))
    assert not changed[~band].any(), "pixels outside the selection's feathered band changed"


def test_serve_refuses_a_segmenter_it_cannot_load_before_serving() -> None:
    from app_server import free_port
    from click.testing import CliRunner

    from attentive_eraser.cli import main

    arguments = ["serve", "--segmenter", "sam:facebook/sam-absent", "--port", str(free_port())]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: segmenter: 'sam:facebook/sam-absent': the weights")
