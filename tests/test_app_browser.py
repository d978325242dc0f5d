"""The web app in a real headless browser: Debian's Chromium driven by Playwright.

A person's path through the page: load it, upload a photo, paint a stroke on the editor's canvas, click
Remove, wait for the result, download it — and the downloaded file must differ from the photo inside
the painted mask and be bit-identical to it away from the mask (paste-back).

Set ``ATTENTIVE_ERASER_SCREENSHOT=docs/images/app.png`` to also save a screenshot of the page after a
removal (the README's picture).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from app_server import WAIT_MS, chromium, running_app, wait_text
from PIL import Image
from playwright.sync_api import BrowserContext, Page

from attentive_eraser import imaging
from attentive_eraser.settings import FAST_KNOBS

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]  # a real browser drives a real server


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[Any, str]]:
    with running_app() as (app, url):
        yield app, url


@pytest.fixture(scope="module")
def browser() -> Iterator[BrowserContext]:
    """Chromium with a fresh profile folder, for this module's tests."""
    with chromium() as context:
        yield context


@pytest.fixture
def page(browser: BrowserContext, server: tuple[Any, str]) -> Iterator[Page]:
    page = browser.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(server[1])
    page.wait_for_selector("#editor")
    try:
        yield page
    finally:
        page.close()


def _photo(path: Path, size: tuple[int, int] = (200, 150)) -> Path:
    """A textured RGB photo: colour gradients plus noise, so every pixel is distinct-ish."""
    width, height = size
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    pixels = np.stack([cols * 255 / width, rows * 255 / height, 128 + 0 * cols], axis=-1)
    pixels += np.random.default_rng(0).normal(0.0, 12.0, size=pixels.shape)
    Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8)).save(path)
    return path


def _paint_stroke(page: Page, half_length: float = 60.0) -> None:
    """Drag the brush horizontally through the middle of the editor's canvas."""
    canvas = page.locator("#editor .pixi-target canvas")
    canvas.wait_for(state="visible")
    box = canvas.bounding_box()
    assert box is not None
    centre_x, centre_y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(centre_x - half_length, centre_y)
    page.mouse.down()
    # the brush joins successive pointer positions; each one costs a software-rendered frame
    page.mouse.move(centre_x, centre_y, steps=2)
    page.mouse.move(centre_x + half_length, centre_y, steps=2)
    page.mouse.up()


def _fetch_file(page: Page, selector: str) -> bytes:
    """The bytes behind a file component's download link."""
    link = page.locator(f"{selector} a").first
    link.wait_for(state="attached")
    href = link.get_attribute("href")
    assert href, f"{selector} has no file link"
    response = page.request.get(href)
    assert response.ok, f"GET {href}: {response.status}"
    return response.body()


def _download(page: Page, target: Path) -> Path:
    with page.expect_download() as download_info:
        page.locator("#download").click()
    download = download_info.value
    path = target / download.suggested_filename
    download.save_as(path)
    return path


def _save_screenshot(page: Page, path: Path) -> None:
    """The whole page as a 256-colour PNG (a fifth of the size of the plain screenshot)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(BytesIO(page.screenshot(full_page=True))) as shot:
        shot.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def _margin(app: Any, size: tuple[int, int]) -> int:
    """Pixels beyond the mask that paste-back may blend: (dilation + feather) at the photo's scale."""
    defaults = app.eraser_service.knob_defaults(app.eraser_service.default_model)
    multiple = app.eraser_service.size_multiple(app.eraser_service.default_model)
    working = imaging.working_size(size, defaults["resolution"], multiple=multiple)
    scale = size[0] / working[0]
    return math.ceil((defaults["mask_dilation"] + defaults["feather_radius"]) * scale) + 2


def test_paint_remove_download(page: Page, server: tuple[Any, str], tmp_path: Path) -> None:
    app, _ = server
    photo_path = _photo(tmp_path / "photo.png")
    page.locator("#photo input[type=file]").set_input_files(str(photo_path))
    wait_text(page, "#preview-info", "Paint over the object")  # the editor now shows the photo

    _paint_stroke(page)
    wait_text(page, "#preview-info", "Mask:")  # the stroke reached the server: overlay drawn
    page.locator("#remove").click()
    status = wait_text(page, "#status", "Done")
    assert "200×150" in status

    result_path = _download(page, tmp_path)
    assert result_path.name == "photo_erased.png"
    mask_path = tmp_path / "mask_used.png"
    mask_path.write_bytes(_fetch_file(page, "#mask-used"))

    photo = np.asarray(Image.open(photo_path).convert("RGB")).astype(np.int16)
    with Image.open(result_path) as opened:
        assert opened.format == "PNG" and opened.size == (200, 150)
        result = np.asarray(opened.convert("RGB")).astype(np.int16)
    mask = imaging.load_mask(mask_path)
    assert mask.shape == (150, 200)

    # the mask is the painted stroke: around the middle of the photo, nowhere near its corners
    rows, cols = np.nonzero(mask)
    assert mask[75, 100], "the centre of the stroke is not in the mask"
    assert abs(rows.mean() - 75) < 15 and abs(cols.mean() - 100) < 20
    assert 0.02 < mask.mean() < 0.6

    changed = (photo != result).any(axis=2)
    assert changed[mask].mean() > 0.5, "the painted area was not filled in"
    far = ~imaging.dilate_mask(mask, _margin(app, (200, 150)))
    assert far.mean() > 0.3
    assert not changed[far].any(), "pixels away from the mask changed (paste-back must keep them exact)"


def test_example_several_seeds_pick_and_download_in_the_original_format(
    page: Page, server: tuple[Any, str], tmp_path: Path
) -> None:
    app, _ = server
    page.locator("#examples img[alt='triangle']").click()  # the JPEG example: photo and mask
    wait_text(page, "#preview-info", "Mask:")
    page.locator("#seeds textarea, #seeds input").first.fill("5, 6")
    page.locator("#remove").click()
    status = wait_text(page, "#status", "Done")
    assert "2 candidates" in status and "JPG" in status

    thumbnails = page.locator("#candidates img")
    thumbnails.nth(1).wait_for(state="visible")
    assert thumbnails.count() == 2
    thumbnails.nth(1).click()
    wait_text(page, "#status", "seed 6")

    screenshot = os.environ.get("ATTENTIVE_ERASER_SCREENSHOT")
    if screenshot:
        page.wait_for_timeout(500)  # let the comparison slider finish loading its images
        _save_screenshot(page, Path(screenshot))

    result_path = _download(page, tmp_path)
    assert result_path.name == "triangle_erased_seed6.jpg"
    source = app.eraser_service.workdir / "examples" / "triangle.jpg"
    with Image.open(result_path) as result, Image.open(source) as original:
        assert result.format == "JPEG" and result.size == original.size


def _set_slider(page: Page, elem_id: str, value: float) -> None:
    """Type a value into a slider's number box, as a person would, and commit it."""
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")
    box.blur()


def test_progress_is_shown_per_step_and_cancel_stops_the_run(page: Page) -> None:
    page.locator("#examples img[alt='disc']").click()
    wait_text(page, "#preview-info", "Mask:")
    for elem_id, value in (("steps", 200), ("strength", 1), ("resolution", 512)):
        _set_slider(page, elem_id, value)
    page.locator("#remove").click()
    wait_text(page, "#comparison", "Denoising step")  # Gradio's progress bar, fed by each step
    page.locator("#cancel").click()
    status = wait_text(page, "#status", "Cancelled after step")
    done, total = (int(number) for number in status.split("step")[1].strip().rstrip(".").split(" of "))
    assert total == 200 and 1 <= done < total


def test_the_fast_toggle_shows_and_runs_the_fast_values(
    page: Page, server: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ticking Fast sets the steps, T_SS and sampler sliders to the fast values; those are what run."""
    service = server[0].eraser_service
    calls: list[dict[str, Any]] = []
    original = service.pipeline

    class Recording:
        """The pipeline, recording the keyword arguments of its calls (the preview reads its preset)."""

        def __init__(self, pipe: Any) -> None:
            self.pipe = pipe

        def __getattr__(self, name: str) -> Any:
            return getattr(self.pipe, name)

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            calls.append(kwargs)
            return self.pipe(*args, **kwargs)

    def recording_pipeline(label: str, method: str = "sip") -> Any:
        return Recording(original(label, method))

    monkeypatch.setattr(service, "pipeline", recording_pipeline)
    page.locator("#examples img[alt='disc']").click()
    wait_text(page, "#preview-info", "Mask:")
    page.locator("#fast input[type=checkbox]").check()
    fast = FAST_KNOBS["sip"]
    page.wait_for_function(
        "(steps) => document.querySelector('#steps input[type=number]').value === String(steps)",
        arg=fast["num_inference_steps"],
        timeout=WAIT_MS,
    )
    assert page.locator("#suppression-steps input[type=number]").input_value() == str(
        fast["suppression_steps"]
    )
    assert page.locator(f"#scheduler input[value='{fast['scheduler']}']").is_checked()
    page.locator("#remove").click()
    status = wait_text(page, "#status", "Done")
    strength = service.knob_defaults(service.default_model)["strength"]
    assert f"{int(fast['num_inference_steps'] * strength)} denoising steps" in status
    assert [(call["num_inference_steps"], call["scheduler"]) for call in calls] == [
        (fast["num_inference_steps"], fast["scheduler"])
    ]
