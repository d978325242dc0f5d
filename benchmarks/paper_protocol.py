#!/usr/bin/env python
"""The paper's Table 1 protocol: OpenImages V5 test masks, SD 2.1 + SIP with and without SARG, and the
SD 2-inpainting baseline, scored with the paper's metrics and printed beside the paper's figures.

Phases (see docs/evaluation.md for fetching OpenImages)::

    python benchmarks/paper_protocol.py prepare --openimages OI_DIR --data DATA [--samples 10000]
    python benchmarks/paper_protocol.py run     --data DATA --runs RUNS [--methods ...] [--seeds 123,321,777]
    python benchmarks/paper_protocol.py score   --data DATA --runs RUNS [--inception F --clip D ...]
                                                [-o table.md]
    python benchmarks/paper_protocol.py tiny    --work DIR    # offline: fake data, tiny random models

``run`` needs the weights (``stabilityai/stable-diffusion-2-1-base`` and
``stabilityai/stable-diffusion-2-inpainting``, from the hub or local folders) and, in practice, GPUs; it can
be
launched with ``accelerate launch --multi_gpu --num_processes N benchmarks/paper_protocol.py run ...``: the
items are split between the processes as in ``attentive-eraser batch``. Everything is resumable.

Results are written as raw decodes (no paste-back), at 512×512, one folder per method and seed:
``RUNS/<method>/seed<seed>/<sample>.png``. Methods: ``sip_sarg`` (ours, s = 9), ``sip_plain`` (SARG off,
s = 0), ``sd2_inpaint`` (diffusers' StableDiffusionInpaintPipeline, empty prompt).
"""

from __future__ import annotations

import os

# Before torch loads its OpenMP runtime: spinning workers slow everything on a shared CPU machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

from attentive_eraser import imaging  # noqa: E402
from attentive_eraser.runtime import require_extra  # noqa: E402

SD21 = "stabilityai/stable-diffusion-2-1-base"
SD2_INPAINT = "stabilityai/stable-diffusion-2-inpainting"
METHODS = {
    "sip_sarg": ("SD2.1+SIP w/ SARG (ours)", "SD2.1+SIP w/ SARG (ours)"),
    "sip_plain": ("SD2.1+SIP w/o SARG", "SD2.1+SIP w/o SARG"),
    "sd2_inpaint": ("SD2.1inp (mask only)", "SD2.1inp (mask only)"),
}
SEEDS = (123, 321, 777)
ANNOTATIONS = "test-annotations-object-segmentation.csv"


class ProtocolError(Exception):
    """A missing input or weights: printed as one line, exit code 2."""


# --------------------------------------------------------------------------------------------------
# prepare: sample OpenImages V5 test masks


def _square(image: Image.Image, size: int, resample: Image.Resampling) -> Image.Image:
    """Shorter side to ``size``, then the centre ``size``×``size`` (the paper's models see 512² squares)."""
    return ImageOps.fit(image, (size, size), method=resample, centering=(0.5, 0.5))


def prepare(
    openimages: Path, data: Path, *, samples: int, seed: int, size: int, min_area: float, max_area: float
) -> int:
    """Sample ``samples`` instance masks (one per row of the annotations) and write squares + a manifest.

    ``openimages`` holds ``test-annotations-object-segmentation.csv``, the unzipped ``test-masks/`` PNGs
    and the ``test/`` images (``<ImageID>.jpg``). Rows are shuffled with ``seed``; a row is kept when its
    image and mask exist and the mask covers ``min_area``–``max_area`` of the 512² square. Returns the count.
    """
    annotations = openimages / ANNOTATIONS
    if not annotations.is_file():
        raise ProtocolError(f"{annotations} not found: see docs/evaluation.md for the OpenImages V5 files")
    with annotations.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    random.Random(seed).shuffle(rows)
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
        if not min_area <= square_mask.mean() <= max_area:
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


# --------------------------------------------------------------------------------------------------
# run: the three methods, three seeds each


def _check_weights(model: str, what: str) -> None:
    """Fail now, in one clear line, when ``model`` is neither a local folder/file nor reachable on the hub."""
    if Path(model).expanduser().exists():
        return
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(model, allow_patterns=["model_index.json"])
    except Exception as error:  # noqa: BLE001 -- offline, gated, missing
        raise ProtocolError(
            f"{what} weights {model!r} are not available ({type(error).__name__}): this phase needs the "
            "network "
            "or a local copy (pass its folder); it cannot run offline"
        ) from None


def run_ours(
    data: Path,
    out: Path,
    *,
    model: str,
    seed: int,
    guidance: float,
    options: dict[str, Any],
    batch_size: int,
    freeu: bool,
    progress: bool,
) -> Any:
    from attentive_eraser.runner import list_items, run_batch
    from attentive_eraser.settings import KNOB_NAMES, RemovalOptions

    knobs = {"removal_guidance_scale": guidance, **{k: v for k, v in options.items() if k in KNOB_NAMES}}
    fields = {k: v for k, v in options.items() if k not in KNOB_NAMES}
    settings = RemovalOptions(model=model, seed=seed, knobs=knobs, paste_back=False, progress=False, **fields)
    items = list_items(data / "manifest.csv", out, base_seed=seed, fixed_seed=True)
    return run_batch(
        items,
        settings,
        report_path=out / "batch-report.jsonl",
        batch_size=batch_size,
        progress=progress,
        freeu=freeu,
    )


def run_inpaint_baseline(
    data: Path,
    out: Path,
    *,
    model: str,
    seed: int,
    steps: int,
    size: int,
    batch_size: int,
    device: str | None,
    progress: bool,
) -> int:
    """diffusers' SD 2-inpainting with the empty prompt (the paper's mask-only row); resumable, split by
    process."""
    import torch
    from accelerate import PartialState
    from diffusers import StableDiffusionInpaintPipeline
    from tqdm.auto import tqdm

    from attentive_eraser.api import resolve_device, resolve_dtype
    from attentive_eraser.runner import list_items, output_status

    state = PartialState(cpu=not torch.cuda.is_available())
    torch_device = (
        torch.device(device) if device else (state.device if state.num_processes > 1 else resolve_device())
    )
    pipe = StableDiffusionInpaintPipeline.from_pretrained(
        model,
        torch_dtype=resolve_dtype(None, torch_device),
        safety_checker=None,
        requires_safety_checker=False,
    )
    pipe = pipe.to(torch_device)
    pipe.set_progress_bar_config(disable=True)
    items = [
        item
        for item in list_items(data / "manifest.csv", out, base_seed=seed, fixed_seed=True)
        if output_status(item) != "valid"
    ]
    state.wait_for_everyone()  # every process lists the pending items before anyone writes one
    done = 0
    with (
        state.split_between_processes(items) as mine,
        tqdm(total=len(mine), disable=not progress, desc=f"sd2_inpaint seed {seed}") as bar,
    ):
        for start in range(0, len(mine), batch_size):
            chunk = mine[start : start + batch_size]
            images = [imaging.split_alpha(imaging.load_image(item.image))[0] for item in chunk]
            masks = [Image.open(item.mask).convert("L") for item in chunk]
            generators = [torch.Generator(device="cpu").manual_seed(item.seed) for item in chunk]
            results = pipe(
                prompt=[""] * len(chunk),
                image=images,
                mask_image=masks,
                height=size,
                width=size,
                num_inference_steps=steps,
                generator=generators,
            ).images
            for item, result in zip(chunk, results, strict=False):
                imaging.save_image(result, item.output)
                done += 1
            bar.update(len(chunk))
    state.wait_for_everyone()
    return done


def run(
    data: Path,
    runs: Path,
    *,
    methods: list[str],
    seeds: list[int],
    model: str,
    inpaint_model: str,
    options: dict[str, Any],
    inpaint_steps: int,
    size: int,
    batch_size: int,
    freeu: bool,
    device: str | None,
    progress: bool,
) -> None:
    if not (data / "manifest.csv").is_file():
        raise ProtocolError(f"{data / 'manifest.csv'} not found: run the prepare phase first")
    if {"sip_sarg", "sip_plain"} & set(methods):
        _check_weights(model, "SD 2.1")
    if "sd2_inpaint" in methods:
        _check_weights(inpaint_model, "SD 2-inpainting")
    for method in methods:
        for seed in seeds:
            out = runs / method / f"seed{seed}"
            if method == "sd2_inpaint":
                run_inpaint_baseline(
                    data,
                    out,
                    model=inpaint_model,
                    seed=seed,
                    steps=inpaint_steps,
                    size=size,
                    batch_size=batch_size,
                    device=device,
                    progress=progress,
                )
            else:
                guidance = 9.0 if method == "sip_sarg" else 0.0
                summary = run_ours(
                    data,
                    out,
                    model=model,
                    seed=seed,
                    guidance=guidance,
                    options={**options, "device": device},
                    batch_size=batch_size,
                    freeu=freeu,
                    progress=progress,
                )
                if summary.failed:
                    print(
                        f"{method} seed {seed}: {summary.failed} item(s) failed; "
                        f"see {out}/batch-report.jsonl",
                        file=sys.stderr,
                    )


# --------------------------------------------------------------------------------------------------
# score


def score(
    data: Path,
    runs: Path,
    *,
    methods: list[str],
    seeds: list[int],
    networks: dict[str, Any],
    size: int,
    crop_size: int,
    batch_size: int,
    device: str | None,
    output: Path | None,
) -> str:
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
        torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    )
    nets = Networks(
        inception=load_inception(networks.get("inception")),
        lpips=load_lpips(networks.get("vgg"), networks.get("heads")),
        clip=load_clip(networks.get("clip"), torch_device),
    )
    rows: dict[str, dict[str, float | None]] = {}
    counts: dict[str, int] = {}
    reports = {}
    for method in methods:
        folders = [runs / method / f"seed{seed}" for seed in seeds]
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
            size=size,
            crop_size=crop_size,
            batch_size=batch_size,
            device=torch_device,
            missing=missing,
            results=present,
        )
        label = f"this run: {METHODS[method][0]}"
        rows[label] = report.metrics
        counts[label] = report.items
        reports[method] = report.asdict()
    table_rows = {}
    for method in methods:
        paper = METHODS[method][1]
        table_rows[f"paper: {paper}"] = PAPER_TABLE_1[paper]
        label = f"this run: {METHODS[method][0]}"
        if label in rows:
            table_rows[label] = rows[label]
    table = to_markdown(table_rows, items=counts)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(table, encoding="utf-8")
        output.with_suffix(".json").write_text(json.dumps(reports, indent=2) + "\n", encoding="utf-8")
    return table


# --------------------------------------------------------------------------------------------------
# tiny: everything offline on fake OpenImages files and tiny random models


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
        work / "openimages", work / "data", samples=8, seed=0, size=64, min_area=0.01, max_area=0.5
    )
    models = work / "models"
    eraser = (
        save_tiny_model(models / "sd21", family="sd21") if not (models / "sd21").exists() else models / "sd21"
    )
    inpaint = models / "inpaint" if (models / "inpaint").exists() else _tiny_inpaint_model(models / "inpaint")
    networks = save_tiny_metric_networks(work / "networks")
    run(
        work / "data",
        work / "runs",
        methods=list(METHODS),
        seeds=list(SEEDS),
        model=str(eraser),
        inpaint_model=str(inpaint),
        options={"num_inference_steps": 4, "resolution": 64},
        inpaint_steps=4,
        size=64,
        batch_size=4,
        freeu=True,
        device="cpu",
        progress=False,
    )
    table = score(
        work / "data",
        work / "runs",
        methods=list(METHODS),
        seeds=list(SEEDS),
        networks=networks,
        size=64,
        crop_size=32,
        batch_size=8,
        device="cpu",
        output=work / "table.md",
    )
    return f"{count} samples (tiny models and networks: the figures mean nothing)\n{table}"


# --------------------------------------------------------------------------------------------------


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    phases = parser.add_subparsers(dest="phase", required=True)

    p = phases.add_parser(
        "prepare", help="sample OpenImages V5 test masks into DATA (512² squares + manifest)"
    )
    p.add_argument("--openimages", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--samples", type=int, default=10000)
    p.add_argument("--sample-seed", type=int, default=0)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--min-area", type=float, default=0.01, help="smallest mask share of the square kept")
    p.add_argument("--max-area", type=float, default=0.5, help="largest mask share of the square kept")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", type=Path, required=True)
        p.add_argument("--runs", type=Path, required=True)
        p.add_argument(
            "--methods", default=",".join(METHODS), help=f"comma-separated, of {', '.join(METHODS)}"
        )
        p.add_argument("--seeds", default=",".join(map(str, SEEDS)))
        p.add_argument("--batch-size", type=int, default=4)
        p.add_argument("--device", default=None)

    p = phases.add_parser("run", help="remove the objects with each method and seed (needs weights)")
    common(p)
    p.add_argument("--model", default=SD21, help="SD 2.1 (base) weights: hub id or local folder")
    p.add_argument("--inpaint-model", default=SD2_INPAINT, help="SD 2-inpainting weights: hub id or folder")
    p.add_argument(
        "--no-freeu",
        dest="freeu",
        action="store_false",
        help="run SD 2.1 without FreeU (FreeU very likely gave the paper's SD 2.1 numbers)",
    )
    p.add_argument("--inpaint-steps", type=int, default=50)
    p.add_argument("--size", type=int, default=512)

    p = phases.add_parser("score", help="the paper's metrics per method, beside Table 1")
    common(p)
    p.add_argument("--inception", type=Path, default=None)
    p.add_argument("--lpips-backbone", type=Path, default=None)
    p.add_argument("--lpips-heads", type=Path, default=None)
    p.add_argument("--clip", default=None)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--crop-size", type=int, default=299)
    p.add_argument("-o", "--output", type=Path, default=None)

    p = phases.add_parser(
        "tiny", help="all phases offline on fake data with tiny random models (a smoke test)"
    )
    p.add_argument("--work", type=Path, required=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    if args.phase in ("score", "tiny"):  # the metrics: torchmetrics' FID and SSIM, its LPIPS heads
        require_extra("benchmarks/paper_protocol.py", "torchmetrics")
    try:
        if args.phase == "prepare":
            count = prepare(
                args.openimages,
                args.data,
                samples=args.samples,
                seed=args.sample_seed,
                size=args.size,
                min_area=args.min_area,
                max_area=args.max_area,
            )
            print(f"{count} samples in {args.data / 'manifest.csv'}")
        elif args.phase == "run":
            run(
                args.data,
                args.runs,
                methods=args.methods.split(","),
                seeds=[int(s) for s in args.seeds.split(",")],
                model=args.model,
                inpaint_model=args.inpaint_model,
                options={},
                inpaint_steps=args.inpaint_steps,
                size=args.size,
                batch_size=args.batch_size,
                freeu=args.freeu,
                device=args.device,
                progress=True,
            )
        elif args.phase == "score":
            networks = {
                "inception": args.inception,
                "vgg": args.lpips_backbone,
                "heads": args.lpips_heads,
                "clip": args.clip,
            }
            print(
                score(
                    args.data,
                    args.runs,
                    methods=args.methods.split(","),
                    seeds=[int(s) for s in args.seeds.split(",")],
                    networks=networks,
                    size=args.size,
                    crop_size=args.crop_size,
                    batch_size=args.batch_size,
                    device=args.device,
                    output=args.output,
                ),
                end="",
            )
        else:
            print(tiny(args.work), end="")
    except (ProtocolError, imaging.InputError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
