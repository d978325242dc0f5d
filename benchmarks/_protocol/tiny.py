"""The tiny phase: prepare, run and score offline, on fake OpenImages files with tiny random models."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from .common import ANNOTATIONS, METHODS, SEEDS
from .prepare import PrepareSettings, prepare
from .run import RunSettings, run
from .score import ScoreSettings, score


def _fake_openimages(folder: Path, images: int = 6, size: int = 80) -> None:
    """An OpenImages-shaped folder: annotations CSV, ``test-masks/`` PNGs (stored smaller), ``test/``
    JPEGs."""
    rng = np.random.default_rng(0)
    (folder / "test").mkdir(parents=True, exist_ok=True)
    (folder / "test-masks").mkdir(parents=True, exist_ok=True)
    rows = []
    for index in range(images):
        image_id = f"{index:016x}"
        width, height = size + 16 * (index % 2), size
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(
            folder / "test" / f"{image_id}.jpg"
        )
        for box in range(2):
            mask = np.zeros((height // 2, width // 2), np.uint8)
            top, left = 6 + 4 * box, 8 + 6 * box
            mask[top : top + 12, left : left + 10] = 255
            name = f"{image_id}_m0{box}_{box:08x}.png"
            Image.fromarray(mask).save(folder / "test-masks" / name)
            rows.append(
                {
                    "MaskPath": name,
                    "ImageID": image_id,
                    "LabelName": "/m/0fake",
                    "BoxID": f"{box:08x}",
                    "BoxXMin": "0.1",
                    "BoxXMax": "0.3",
                    "BoxYMin": "0.1",
                    "BoxYMax": "0.4",
                    "PredictedIoU": "0.9",
                    "Clicks": "",
                }
            )
    with (folder / ANNOTATIONS).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _tiny_inpaint_model(path: Path) -> Path:
    """A tiny random SD 2-style inpainting pipeline (UNet with 9 input channels)."""
    from diffusers import StableDiffusionInpaintPipeline, UNet2DConditionModel

    from attentive_eraser.testing.tiny import build_components

    components = build_components("sd21", seed=0)
    components["unet"] = UNet2DConditionModel.from_config({**components["unet"].config, "in_channels": 9})
    StableDiffusionInpaintPipeline(**components, requires_safety_checker=False).save_pretrained(path)
    return path


def tiny(work: Path) -> str:
    """prepare → run → score on fake OpenImages files with tiny random models and networks (offline)."""
    from attentive_eraser.testing.tiny import save_tiny_model
    from attentive_eraser.testing.tiny_metrics import save_tiny_metric_networks

    _fake_openimages(work / "openimages")
    count = prepare(
        work / "openimages",
        work / "data",
        PrepareSettings(samples=8, seed=0, size=64, min_area=0.01, max_area=0.5),
    )
    models = work / "models"
    eraser = (
        save_tiny_model(models / "sd21", family="sd21") if not (models / "sd21").exists() else models / "sd21"
    )
    inpaint = models / "inpaint" if (models / "inpaint").exists() else _tiny_inpaint_model(models / "inpaint")
    networks = save_tiny_metric_networks(work / "networks")
    methods, seeds = list(METHODS), list(SEEDS)
    run(
        work / "data",
        work / "runs",
        RunSettings(
            methods=methods,
            seeds=seeds,
            model=str(eraser),
            inpaint_model=str(inpaint),
            options={"num_inference_steps": 4, "resolution": 64},
            inpaint_steps=4,
            size=64,
            batch_size=4,
            freeu=True,
            device="cpu",
            progress=False,
        ),
    )
    scores = ScoreSettings(methods, seeds, networks, 64, 32, 8, "cpu", output=work / "table.md")
    table = score(work / "data", work / "runs", scores)
    return f"{count} samples (tiny models and networks: the figures mean nothing)\n{table}"
