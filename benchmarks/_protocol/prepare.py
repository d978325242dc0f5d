"""The prepare phase: sample OpenImages V5 test masks into 512² squares and a manifest."""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from attentive_eraser import imaging

from .common import ANNOTATIONS, ProtocolError


def _square(image: Image.Image, size: int, resample: Image.Resampling) -> Image.Image:
    """Shorter side to ``size``, then the centre ``size``×``size`` (the paper's models see 512² squares)."""
    return ImageOps.fit(image, (size, size), method=resample, centering=(0.5, 0.5))


@dataclass(frozen=True)
class PrepareSettings:
    """How many masks the prepare phase samples (``samples``), with which shuffling ``seed``, into squares
    of ``size`` pixels, keeping masks that cover ``min_area``–``max_area`` of the square."""

    samples: int
    seed: int
    size: int
    min_area: float
    max_area: float


def prepare(openimages: Path, data: Path, settings: PrepareSettings) -> int:
    """Sample ``settings.samples`` instance masks (one per row of the annotations) and write squares + a
    manifest.

    ``openimages`` holds ``test-annotations-object-segmentation.csv``, the unzipped ``test-masks/`` PNGs
    and the ``test/`` images (``<ImageID>.jpg``). Rows are shuffled with the settings' seed; a row is kept
    when its image and mask exist and the mask covers ``min_area``–``max_area`` of the 512² square. Returns
    the count.
    """
    samples, size = settings.samples, settings.size
    annotations = openimages / ANNOTATIONS
    if not annotations.is_file():
        raise ProtocolError(f"{annotations} not found: see docs/evaluation.md for the OpenImages V5 files")
    with annotations.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    random.Random(settings.seed).shuffle(rows)
    (data / "images").mkdir(parents=True, exist_ok=True)
    (data / "masks").mkdir(parents=True, exist_ok=True)
    kept: list[dict[str, str]] = []
    for row in rows:
        if len(kept) >= samples:
            break
        image_path = openimages / "test" / f"{row['ImageID']}.jpg"
        mask_path = openimages / "test-masks" / row["MaskPath"]
        if not image_path.is_file() or not mask_path.is_file():
            continue
        image = imaging.split_alpha(imaging.load_image(image_path))[0]
        mask = imaging.load_mask(mask_path, size=image.size, resize=True)  # masks may be stored smaller
        square = _square(image, size, Image.Resampling.LANCZOS)
        square_mask = (
            np.asarray(_square(Image.fromarray(mask.astype(np.uint8) * 255), size, Image.Resampling.NEAREST))
            > 0
        )
        if not settings.min_area <= square_mask.mean() <= settings.max_area:
            continue
        name = Path(row["MaskPath"]).stem
        square.save(data / "images" / f"{name}.png")
        Image.fromarray(square_mask.astype(np.uint8) * 255).save(data / "masks" / f"{name}.png")
        kept.append(
            {
                "image": f"images/{name}.png",
                "mask": f"masks/{name}.png",
                "output": f"{name}.png",
                "label": row.get("LabelName", ""),
                "box": ",".join(row.get(k, "") for k in ("BoxXMin", "BoxXMax", "BoxYMin", "BoxYMax")),
            }
        )
    with (data / "manifest.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["image", "mask", "output"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(kept)
    (data / "samples.json").write_text(json.dumps(kept, indent=1) + "\n", encoding="utf-8")
    return len(kept)
