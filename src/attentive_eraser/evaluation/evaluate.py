"""The paper's removal metrics (its Table 1; docs/evaluation.md), and in-mask fidelity against ground truth.

The engine of ``attentive-eraser eval SOURCE --results DIR [--results DIR ...]`` (no click): it reads
the same SOURCE as ``batch`` (a folder or manifest of images and masks, listed by
:func:`attentive_eraser.runner.list_items`) and finds each item's result in every results folder under
the item's output path. Metrics, with the paper's conventions:

* **FID** (Fréchet Inception Distance): Inception-v3 2048-d pool features of the results against the
  *originals with the object*, both resized to ``size``² (512).
* **LPIPS** (VGG) between each result and its original at ``size``², averaged.
* **Local FID**: FID on the object's bounding-box crops, padded to squares.
* **CLIP consensus**: for each item, the standard deviation across the results folders (the seeds 123,
  321, 777) of the CLIP image embedding of the box crop, averaged over the embedding's dimensions, then
  over the items. Lower: the removal fills the hole the same way whatever the seed.
* **CLIP score**: CLIP's logit (``logit_scale · cos``) between the box crop of the result and the text
  "background", averaged. Higher: the hole looks like background.
* With ``--backgrounds`` (the true background behind each object, e.g. the demo scenes): **PSNR**, **SSIM**
  and **LPIPS inside the mask**, at the original resolution.

Networks: FID uses torchmetrics' ``FrechetInceptionDistance`` with a pluggable feature extractor (NVlabs'
TorchScript Inception, the one clean-fid and StyleGAN use, needs no torchvision); LPIPS is computed here
on a VGG-16 with the LPIPS linear heads that torchmetrics ships; CLIP is transformers' ``CLIPModel``. Each
comes from a local path or is downloaded once into the usual cache; offline and absent, the error says
which file to supply.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .. import imaging

__all__ = [
    "METRICS",
    "METRIC_GROUPS",
    "expand_metrics",
    "PAPER_TABLE_1",
    "EvalItem",
    "EvalReport",
    "Networks",
    "collect_items",
    "mask_box",
    "square_crop",
    "evaluate",
    "to_markdown",
    "load_networks",
    "save_report",
]

#: every metric, each one selectable on its own (``--metrics psnr_masked,ssim_masked``)
METRICS = (
    "fid",
    "lpips",
    "local_fid",
    "clip_consensus",
    "clip_score",
    "psnr_masked",
    "ssim_masked",
    "lpips_masked",
)
#: names that stand for several metrics (``masked``: the in-mask fidelity trio, as before)
METRIC_GROUPS: dict[str, tuple[str, ...]] = {
    "masked": ("psnr_masked", "ssim_masked", "lpips_masked"),
    "all": METRICS,
}
#: metrics that compare against the true backgrounds (``--backgrounds``)
_IN_MASK = ("psnr_masked", "ssim_masked", "lpips_masked")


def expand_metrics(names: Sequence[str]) -> tuple[str, ...]:
    """``names`` with each group replaced by its metrics, in :data:`METRICS` order, each once.

    Raises :class:`attentive_eraser.imaging.InputError` naming ``metrics`` for an unknown name.
    """
    unknown = sorted(set(names) - set(METRICS) - set(METRIC_GROUPS))
    if unknown:
        choices = ", ".join([*METRICS, *METRIC_GROUPS])
        raise imaging.InputError("metrics", f"unknown metric(s) {', '.join(unknown)}; choose from {choices}")
    wanted = {metric for name in names for metric in METRIC_GROUPS.get(name, (name,))}
    return tuple(metric for metric in METRICS if metric in wanted)


#: Table 1 of the paper: FID, LPIPS, local FID, CLIP consensus, CLIP score
PAPER_TABLE_1: dict[str, dict[str, float | None]] = {
    "SD2.1inp (mask only)": {
        "fid": 3.805,
        "lpips": 0.3012,
        "local_fid": 8.852,
        "clip_consensus": 0.1143,
        "clip_score": 21.89,
    },
    "SD2.1+SIP w/o SARG": {
        "fid": 5.98,
        "lpips": 0.2998,
        "local_fid": 15.58,
        "clip_consensus": 0.1347,
        "clip_score": 22.05,
    },
    "SD2.1+SIP w/ SARG (ours)": {
        "fid": 7.352,
        "lpips": 0.3113,
        "local_fid": 5.835,
        "clip_consensus": 0.0734,
        "clip_score": 23.56,
    },
    "SD2.1+DIP w/ SARG (ours)": {
        "fid": 7.012,
        "lpips": 0.2995,
        "local_fid": 5.699,
        "clip_consensus": None,
        "clip_score": 23.43,
    },
}

# --------------------------------------------------------------------------------------------------
# Items


@dataclass(frozen=True)
class EvalItem:
    """One removal to score: the original (with the object), its mask, its result in each results folder."""

    id: str
    original: Path
    mask: Path
    results: tuple[Path, ...]
    background: Path | None = None


def _find_background(folder: Path, item_id: str) -> Path | None:
    exact = folder / item_id
    if exact.is_file():
        return exact
    relative = Path(item_id)
    matches = sorted(
        path
        for path in (folder / relative.parent).glob(f"{relative.stem}.*")
        if path.suffix.lower() in imaging.SAVE_FORMATS
    )
    return matches[0] if matches else None


def collect_items(
    source: Path,
    results: Sequence[Path],
    *,
    masks: Path | None = None,
    mask_pattern: str | None = None,
    backgrounds: Path | None = None,
) -> tuple[list[EvalItem], list[str]]:
    """The items of SOURCE that have a result in every results folder, and the ids of those that have not."""
    from ..runner.sources import list_items

    if not results:
        raise imaging.InputError("results", "give at least one results folder")
    for folder in [*results, *([backgrounds] if backgrounds is not None else [])]:
        if not folder.is_dir():
            raise imaging.InputError(
                "results" if folder != backgrounds else "backgrounds", f"{str(folder)!r} is not a folder"
            )
    items, missing = [], []
    for item in list_items(source, results[0], masks=masks, mask_pattern=mask_pattern):
        found = tuple(folder / item.id for folder in results)
        background = _find_background(backgrounds, item.id) if backgrounds is not None else None
        if (
            item.error
            or item.mask is None
            or not all(path.is_file() for path in found)
            or (backgrounds is not None and background is None)
        ):
            missing.append(item.id)
            continue
        items.append(EvalItem(item.id, item.image, item.mask, found, background))
    return items, missing


# --------------------------------------------------------------------------------------------------
# Pure functions


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """``(left, top, right, bottom)`` bounding box of the object (right/bottom exclusive)."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        raise imaging.InputError("mask", "selects no pixels: no object box")
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


def square_crop(image: Image.Image, box: tuple[int, int, int, int], size: int | None = None) -> Image.Image:
    """The box crop of ``image``, centred on a black square (the paper's "padded to square"), resized."""
    left, top, right, bottom = box
    crop = image.convert("RGB").crop(box)
    side = max(right - left, bottom - top)
    square = Image.new("RGB", (side, side))
    square.paste(crop, ((side - crop.width) // 2, (side - crop.height) // 2))
    return square if size is None else square.resize((size, size), Image.Resampling.BICUBIC)


# --------------------------------------------------------------------------------------------------
# Evaluation


@dataclass
class Networks:
    """The feature extractors; ``None`` skips the metrics that need them."""

    inception: Any = None
    lpips: Any = None
    clip: Any = None  # metrics.ClipScorer


@dataclass
class EvalReport:
    """Metric values (``None`` where not computed, with the reason in ``notes``) and counts."""

    metrics: dict[str, float | None]
    items: int
    missing: list[str]
    results: list[str]
    settings: dict[str, Any]
    notes: dict[str, str] = field(default_factory=dict)

    def asdict(self) -> dict[str, Any]:
        return {
            "metrics": self.metrics,
            "items": self.items,
            "missing": self.missing,
            "results": self.results,
            "settings": self.settings,
            "notes": self.notes,
        }


def _chunks(items: Sequence[EvalItem], size: int) -> Iterator[Sequence[EvalItem]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _uint8(images: Sequence[Image.Image]) -> Any:
    """``(N, 3, H, W)`` uint8 tensor of same-size RGB images."""
    import torch

    return torch.from_numpy(np.stack([np.asarray(image.convert("RGB")) for image in images])).permute(
        0, 3, 1, 2
    )


def _unit(images: Sequence[Image.Image]) -> Any:
    return _uint8(images).float() / 255.0


def _fid(inception: Any, device: Any) -> Any:
    from torchmetrics.image.fid import FrechetInceptionDistance

    return FrechetInceptionDistance(feature=inception, reset_real_features=True).to(device)


def evaluate(
    items: Sequence[EvalItem],
    networks: Networks,
    *,
    metrics: Sequence[str] = METRICS,
    size: int = 512,
    crop_size: int = 299,
    batch_size: int = 16,
    device: Any = "cpu",
    progress: bool = False,
    missing: Sequence[str] = (),
    results: Sequence[Path] = (),
) -> EvalReport:
    """Compute ``metrics`` over ``items``; metrics whose network is absent or whose inputs do not allow them
    (FID needs 2+ items, consensus 2+ results folders, in-mask fidelity ``--backgrounds``) are ``None``."""
    import torch
    from tqdm.auto import tqdm

    from .metrics import clip_consensus, masked_psnr, masked_ssim

    selected = expand_metrics(metrics)
    wanted = set(selected)
    notes: dict[str, str] = {}
    seeds = len(items[0].results) if items else len(results)
    backgrounds = bool(items) and all(item.background for item in items)
    for name, reason in (
        ("fid", None if len(items) >= 2 else "needs at least 2 items"),
        ("local_fid", None if len(items) >= 2 else "needs at least 2 items"),
        ("clip_consensus", None if seeds >= 2 else "needs 2+ --results folders (one per seed)"),
        *((name, None if backgrounds else "needs --backgrounds") for name in _IN_MASK),
    ):
        if name in wanted and reason:
            notes[name] = reason
            wanted.discard(name)
    for name, network in (
        ("fid", networks.inception),
        ("local_fid", networks.inception),
        ("lpips", networks.lpips),
        ("lpips_masked", networks.lpips),
        ("clip_consensus", networks.clip),
        ("clip_score", networks.clip),
    ):
        if name in wanted and network is None:
            notes[name] = "network not loaded"
            wanted.discard(name)

    fid = _fid(networks.inception, device) if "fid" in wanted else None
    local_fid = _fid(networks.inception, device) if "local_fid" in wanted else None
    lpips_values: list[float] = []
    clip_scores: list[float] = []
    consensus: list[float] = []
    psnr: list[float] = []
    ssim: list[float] = []
    masked_lpips: list[float] = []
    text = (
        networks.clip.embed_text("background")
        if networks.clip is not None and "clip_score" in wanted
        else None
    )
    lpips_net = networks.lpips.to(device) if wanted & {"lpips", "lpips_masked"} else None

    with torch.no_grad(), tqdm(total=len(items), unit="img", desc="eval", disable=not progress) as bar:
        for chunk in _chunks(items, batch_size):
            originals = [imaging.split_alpha(imaging.load_image(item.original))[0] for item in chunk]
            masks = [
                imaging.load_mask(item.mask, size=original.size)
                for item, original in zip(chunk, originals, strict=False)
            ]
            outputs = [
                [imaging.split_alpha(imaging.load_image(path))[0] for path in item.results] for item in chunk
            ]
            first = [images[0] for images in outputs]
            for item, original, images in zip(chunk, originals, outputs, strict=False):
                for image, path in zip(images, item.results, strict=False):
                    if image.size != original.size:
                        raise imaging.InputError(
                            "results",
                            f"{str(path)!r} is {image.width}x{image.height}, its "
                            f"original {original.width}x{original.height}",
                        )
            boxes = [mask_box(mask) for mask in masks]
            if fid is not None or "lpips" in wanted:
                real = [original.resize((size, size), Image.Resampling.BICUBIC) for original in originals]
                fake = [image.resize((size, size), Image.Resampling.BICUBIC) for image in first]
                if fid is not None:
                    fid.update(_uint8(real).to(device), real=True)
                    fid.update(_uint8(fake).to(device), real=False)
                if lpips_net is not None and "lpips" in wanted:
                    lpips_values += lpips_net(_unit(fake).to(device), _unit(real).to(device)).cpu().tolist()
            if local_fid is not None:
                local_fid.update(
                    _uint8([square_crop(o, b, crop_size) for o, b in zip(originals, boxes, strict=False)]).to(
                        device
                    ),
                    real=True,
                )
                local_fid.update(
                    _uint8([square_crop(r, b, crop_size) for r, b in zip(first, boxes, strict=False)]).to(
                        device
                    ),
                    real=False,
                )
            if "clip_score" in wanted or "clip_consensus" in wanted:
                per_seed = [
                    networks.clip.embed_images(
                        [square_crop(images[k], box) for images, box in zip(outputs, boxes, strict=False)]
                    )
                    for k in range(seeds)
                ]
                if "clip_score" in wanted:
                    clip_scores += networks.clip.logits(per_seed[0], text).tolist()
                if "clip_consensus" in wanted:
                    consensus += clip_consensus(torch.stack(per_seed)).tolist()
            if wanted & set(_IN_MASK):
                for item, image, mask in zip(chunk, first, masks, strict=False):
                    assert item.background is not None  # in-mask metrics need every item's background
                    truth = imaging.split_alpha(imaging.load_image(item.background))[0]
                    if truth.size != image.size:
                        raise imaging.InputError(
                            "backgrounds", f"{str(item.background)!r} is not the size of its image"
                        )
                    result_t, truth_t = _unit([image]).to(device), _unit([truth]).to(device)
                    mask_t = torch.from_numpy(mask)[None, None].to(device)
                    if "psnr_masked" in wanted:
                        psnr += masked_psnr(result_t, truth_t, mask_t).cpu().tolist()
                    if "ssim_masked" in wanted:
                        ssim += masked_ssim(result_t, truth_t, mask_t).cpu().tolist()
                    if lpips_net is not None and "lpips_masked" in wanted:
                        distance = lpips_net(result_t, truth_t, spatial=True)
                        masked_lpips.append(float((distance * mask_t).sum() / mask_t.sum()))
            bar.update(len(chunk))

    def mean(values: list[float]) -> float | None:
        return float(np.mean(values)) if values else None

    values: dict[str, float | None] = dict.fromkeys(METRICS)
    if fid is not None:
        values["fid"] = float(fid.compute())
    if local_fid is not None:
        values["local_fid"] = float(local_fid.compute())
    values.update(
        lpips=mean(lpips_values),
        clip_consensus=mean(consensus),
        clip_score=mean(clip_scores),
        psnr_masked=mean(psnr),
        ssim_masked=mean(ssim),
        lpips_masked=mean(masked_lpips),
    )
    settings = {"size": size, "crop_size": crop_size, "metrics": list(selected)}
    return EvalReport(values, len(items), list(missing), [str(path) for path in results], settings, notes)


_COLUMNS = (
    ("fid", "FID ↓", "{:.3f}"),
    ("lpips", "LPIPS ↓", "{:.4f}"),
    ("local_fid", "Local FID ↓", "{:.3f}"),
    ("clip_consensus", "CLIP consensus ↓", "{:.4f}"),
    ("clip_score", "CLIP score ↑", "{:.2f}"),
    ("psnr_masked", "PSNR mask ↑", "{:.2f}"),
    ("ssim_masked", "SSIM mask ↑", "{:.4f}"),
    ("lpips_masked", "LPIPS mask ↓", "{:.4f}"),
)


def to_markdown(rows: dict[str, dict[str, float | None]], *, items: dict[str, int] | None = None) -> str:
    """A markdown table: one row per named metrics dict, a column per metric present in any row."""
    columns = [column for column in _COLUMNS if any(row.get(column[0]) is not None for row in rows.values())]
    header = ["method", *(title for _, title, _ in columns)] + (["items"] if items else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for name, row in rows.items():
        values = [row.get(key) for key, _, _ in columns]
        cells = [name] + [
            "–" if value is None or math.isnan(value) else fmt.format(value)
            for value, (_, _, fmt) in zip(values, columns, strict=True)
        ]
        if items:
            cells.append(str(items.get(name, "")))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def load_networks(
    metrics: Sequence[str],
    *,
    inception: Path | None = None,
    lpips_backbone: Path | None = None,
    lpips_heads: Path | None = None,
    clip: str | None = None,
    backgrounds: bool = False,
    device: Any = "cpu",
) -> Networks:
    """The networks ``metrics`` need (LPIPS for ``lpips_masked`` only with ``backgrounds``), others ``None``.

    Each comes from the path given, else from the usual cache (downloaded once; offline and absent, the error
    says which file to supply). PSNR and SSIM in the mask need no network: they run offline.
    """
    from .metrics import load_clip, load_inception, load_lpips

    wanted = set(expand_metrics(metrics))
    return Networks(
        inception=load_inception(inception) if wanted & {"fid", "local_fid"} else None,
        lpips=load_lpips(lpips_backbone, lpips_heads)
        if "lpips" in wanted or ("lpips_masked" in wanted and backgrounds)
        else None,
        clip=load_clip(clip, device) if wanted & {"clip_score", "clip_consensus"} else None,
    )


def save_report(report: EvalReport, output: Path, table: str) -> None:
    """Write ``report`` as JSON to ``output`` and ``table`` (its markdown) beside it, ``.md``."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report.asdict(), indent=2) + "\n", encoding="utf-8")
    output.with_suffix(".md").write_text(table, encoding="utf-8")
