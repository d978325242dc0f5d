"""The score phase: the paper's metrics per method and seed folders, beside the paper's Table 1."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import METHODS


@dataclass(frozen=True)
class ScoreSettings:
    """What the score phase scores (``methods`` × ``seeds``) with which metric ``networks`` (their files,
    ``None`` for the default ones), at ``size`` pixels (local FID on ``crop_size`` crops), ``batch_size``
    images at a time on ``device``; the table is also written to ``output`` (and its report beside it)."""

    methods: list[str]
    seeds: list[int]
    networks: dict[str, Any]
    size: int
    crop_size: int
    batch_size: int
    device: str | None
    output: Path | None


def score(data: Path, runs: Path, settings: ScoreSettings) -> str:
    """The paper's metrics of each method's results, beside the paper's Table 1, as markdown."""
    import torch

    from attentive_eraser.evaluation.evaluate import (
        PAPER_TABLE_1,
        Networks,
        collect_items,
        evaluate,
        to_markdown,
    )
    from attentive_eraser.evaluation.metrics import load_clip, load_inception, load_lpips

    torch_device = (
        torch.device(settings.device)
        if settings.device
        else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    )
    networks = settings.networks
    nets = Networks(
        inception=load_inception(networks.get("inception")),
        lpips=load_lpips(networks.get("vgg"), networks.get("heads")),
        clip=load_clip(networks.get("clip"), torch_device),
    )
    rows: dict[str, dict[str, float | None]] = {}
    counts: dict[str, int] = {}
    reports = {}
    for method in settings.methods:
        folders = [runs / method / f"seed{seed}" for seed in settings.seeds]
        present = [folder for folder in folders if folder.is_dir()]
        if not present:
            continue
        items, missing = collect_items(data / "manifest.csv", present)
        if not items:
            continue
        report = evaluate(
            items,
            nets,
            metrics=("fid", "lpips", "local_fid", "clip_consensus", "clip_score"),
            size=settings.size,
            crop_size=settings.crop_size,
            batch_size=settings.batch_size,
            device=torch_device,
            missing=missing,
            results=present,
        )
        label = f"this run: {METHODS[method][0]}"
        rows[label] = report.metrics
        counts[label] = report.items
        reports[method] = report.asdict()
    table_rows = {}
    for method in settings.methods:
        paper = METHODS[method][1]
        table_rows[f"paper: {paper}"] = PAPER_TABLE_1[paper]
        label = f"this run: {METHODS[method][0]}"
        if label in rows:
            table_rows[label] = rows[label]
    table = to_markdown(table_rows, items=counts)
    output = settings.output
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(table, encoding="utf-8")
        output.with_suffix(".json").write_text(json.dumps(reports, indent=2) + "\n", encoding="utf-8")
    return table
