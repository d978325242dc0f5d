"""The removal benchmark's report: the markdown tables and the grid image."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from attentive_eraser.testing.scene_cases import PSNR_CAP
from attentive_eraser.testing.scene_cases import RemovalCase as Case

from .methods import Method, keep_input

#: how many scenes the grid image shows, and its zoom (nearest neighbour) so 64 px tiles stay visible
GRID_ROWS = 6
GRID_ZOOM = 2


def with_ci(entry: dict[str, Any] | None, fmt: str, scale: float = 1.0, unit: str = "") -> str:
    if entry is None:
        return "—"
    text = fmt.format(entry["mean"] * scale) + unit
    if entry["ci95"] is not None:
        text += " ± " + fmt.format(entry["ci95"] * scale) + unit
    return text


def markdown_table(report: dict[str, Any]) -> str:
    settings = report["settings"]
    lines = [
        "| method | PSNR in mask (dB) ↑ | SSIM in mask ↑ | reappearance ↓ | seed instability ↓ | s / image |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for method in report["methods"].values():
        summary = method["summary"]
        lines.append(
            "| "
            + " | ".join(
                [
                    method["label"],
                    with_ci(summary["psnr"], "{:.2f}"),
                    with_ci(summary["ssim"], "{:.3f}"),
                    with_ci(summary["reappearance"], "{:.1f}", 100.0, " %"),
                    "—"
                    if summary["instability"] is None
                    else "{:.4f}".format(summary["instability"]["mean"]),
                    "{:.3f}".format(summary["seconds_per_image"]),
                ]
            )
            + " |"
        )
    scenes = settings["scenes"]
    notes = [
        (
            f"{scenes} held-out scenes (seeds {settings['first_scene_seed']}–{settings['last_scene_seed']}; "
            f"{settings['skipped_scenes']} skipped: {settings['skipped_no_isolated']} without an isolated "
            "object, "
            f"{settings['skipped_touching']} whose dilated mask touched another object), one object each, "
            f"{settings['size']} px; model `{settings['model']}`; "
            f"mask dilation {settings['mask_dilation']} px."
        ),
        (
            f"SIP: {settings['steps']} DDIM steps × strength {settings['sip_strength']:g}, seeds "
            f"{', '.join(map(str, settings['seeds']))}; DIP: {settings['steps']} inversion + "
            f"{settings['steps']} sampling steps (strength {settings['dip_strength']:g}), deterministic."
        ),
        (
            "All metrics inside the dilated mask only (the pipelines paste back with feather 0, so inside "
            f"the mask is the raw decode); PSNR capped at {PSNR_CAP:g} dB per result; SSIM = the SSIM map "
            "over the image averaged over the mask; reappearance = share of results with > "
            f"{settings['reappearance_threshold'] * 100:g} % object-coloured pixels in the mask; seed "
            "instability = per-pixel std across seeds ([0, 1] scale) in the mask; ± = 95 % "
            "confidence half-width across scenes; s / image = wall time per result, batched as run "
            f"({settings['batch_size']} scenes per call, {settings['threads']} thread(s)); whole run "
            f"{report['wall_seconds'] / 60:.1f} min."
        ),
    ]
    return "\n".join(lines) + "\n\n" + "\n\n".join(notes) + "\n"


def kind_table(report: dict[str, Any]) -> str:
    """Per background kind: in-mask PSNR (dB) / reappearance (%) of each method, groups first."""
    methods = report["methods"]
    first = next(iter(methods.values()))["kinds"]
    columns = ["structured", "smooth", *(kind for kind in first if kind not in ("structured", "smooth"))]
    header = "| method | " + " | ".join(f"{name} ({first[name]['scenes']})" for name in columns) + " |"
    lines = [header, "|---|" + "---:|" * len(columns)]
    for method in methods.values():
        kinds = method["kinds"]
        cells = [
            f"{kinds[name]['psnr']['mean']:.1f} / {kinds[name]['reappearance']['mean'] * 100:.0f} %"
            for name in columns
        ]
        lines.append(f"| {method['label']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + (
        "\n\nEach cell: PSNR in mask (dB) / reappearance; (n) = scenes of that kind; "
        "structured = stripes, checkers, tiles, bricks, plaid.\n"
    )


def _outlined(image: np.ndarray, region: np.ndarray) -> np.ndarray:
    """``image`` with the region's border drawn white inside and black just outside (visible anywhere)."""
    from attentive_eraser.imaging import dilate_mask

    out = image.copy()
    inner = region & ~_erode(region)
    outer = dilate_mask(region, 1) & ~region
    out[inner] = 255
    out[outer] = 0
    return out


def _erode(mask: np.ndarray) -> np.ndarray:
    from attentive_eraser.imaging import dilate_mask

    return ~dilate_mask(~mask, 1)


def save_grid(
    path: Path, cases: Sequence[Case], methods: Sequence[Method], results: dict[str, np.ndarray], rows: int
) -> None:
    """Rows: the first ``rows`` scenes; columns: input (mask outlined), ground truth, each method (seed 1)."""
    methods = [method for method in methods if method.fill is not keep_input]  # column 1 shows it
    titles = ["input + mask", "ground truth", *(method.short for method in methods)]
    height, width = cases[0].image.shape[:2]
    tile_w, tile_h = width * GRID_ZOOM, height * GRID_ZOOM
    gap, header = 2, 16
    canvas = Image.new(
        "RGB", (len(titles) * (tile_w + gap) + gap, header + rows * (tile_h + gap) + gap), (255, 255, 255)
    )
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=11)
    for column, title in enumerate(titles):
        draw.text((gap + column * (tile_w + gap) + 2, 2), title, fill=(0, 0, 0), font=font)
    for row, case in enumerate(cases[:rows]):
        tiles = [
            _outlined(case.image, case.region),
            case.truth,
            *(results[method.key][row, 0] for method in methods),
        ]
        for column, tile in enumerate(tiles):
            picture = Image.fromarray(tile).resize((tile_w, tile_h), Image.Resampling.NEAREST)
            canvas.paste(picture, (gap + column * (tile_w + gap), header + gap + row * (tile_h + gap)))
    canvas.save(path)
