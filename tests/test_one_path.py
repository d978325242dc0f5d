"""Every surface runs the one removal path: remove(), the CLI, a batch row and the web app give the same
pixels for the same image, mask and seed -- with a separate mask (the image's alpha carried to the result)
and with an RGBA image whose transparent pixels are the mask (an opaque result)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from attentive_eraser import api
from attentive_eraser.app.service import EraserService, RemovalSettings
from attentive_eraser.cli import main

SEED = 777
KNOBS = {"num_inference_steps": 4, "resolution": 64}
FLAGS = ["--steps", "4", "--resolution", "64", "--seed", str(SEED), "-q"]


def _photo(folder: Path, with_alpha_mask: bool) -> tuple[Path, Path | None]:
    """A 72x56 noise photo with an alpha gradient, and a box mask (or the box as transparent pixels)."""
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (56, 72, 4), dtype=np.uint8)
    box = np.zeros((56, 72), dtype=bool)
    box[20:40, 30:52] = True
    if with_alpha_mask:
        pixels[..., 3] = np.where(box, 0, 255)
    else:
        pixels[..., 3] = np.linspace(60, 255, 72, dtype=np.uint8)[None, :]
    image = folder / "photo.png"
    Image.fromarray(pixels, "RGBA").save(image)
    if with_alpha_mask:
        return image, None
    mask = folder / "photo_mask.png"
    Image.fromarray(box.astype(np.uint8) * 255).save(mask)
    return image, mask


def _pixels(image: Image.Image | Path) -> np.ndarray:
    if isinstance(image, Path):
        with Image.open(image) as opened:
            return np.asarray(opened.copy())
    return np.asarray(image)


@pytest.mark.parametrize("with_alpha_mask", [False, True], ids=["mask file", "alpha is the mask"])
def test_the_four_surfaces_give_the_same_pixels(tmp_path: Path, with_alpha_mask: bool) -> None:
    image, mask = _photo(tmp_path, with_alpha_mask)
    masks = [] if mask is None else [mask]

    by_api = _pixels(api.remove(image, mask, seed=SEED, progress=False, **KNOBS))  # type: ignore[arg-type]

    cli_out = tmp_path / "cli.png"
    result = CliRunner().invoke(main, ["remove", str(image), *map(str, masks), "-o", str(cli_out), *FLAGS])
    assert result.exit_code == 0, result.output

    row = {"image": image.name, "output": "batch.png", "seed": SEED}
    if mask is not None:
        row["mask"] = mask.name
    manifest = tmp_path / "jobs.jsonl"
    manifest.write_text(json.dumps(row) + "\n")
    result = CliRunner().invoke(main, ["batch", str(manifest), "-o", str(tmp_path / "out"), *FLAGS])
    assert result.exit_code == 0, result.output
    batch_out = tmp_path / "out" / "batch.png"

    service = EraserService()
    service.allow_root(tmp_path)
    run = service.remove(image, mask, RemovalSettings.of(seeds=(SEED,), **KNOBS))
    [candidate] = run.candidates

    expected_mode = "RGB" if with_alpha_mask else "RGBA"  # the alpha is carried unless it was the mask
    assert by_api.shape[-1] == len(expected_mode)
    for other in (cli_out, batch_out, Path(candidate.result)):
        assert np.array_equal(_pixels(other), by_api), other
    assert cli_out.read_bytes() == batch_out.read_bytes()  # the same file, byte for byte
    # and the removal did something: the object region changed, the far background did not
    original = _pixels(image)[..., :3]
    assert not np.array_equal(by_api[20:40, 30:52, :3], original[20:40, 30:52])
    assert np.array_equal(by_api[:6, :6, :3], original[:6, :6])
