#!/usr/bin/env python
"""Does Attentive Eraser remove objects? Removal quality against ground truth on held-out procedural scenes.

Usage::

    python benchmarks/removal_quality.py [--model DIR] [--scenes 200] [--quick] [--seeds 123 321 777]
        [--steps 50] [--batch-size 32] [--threads N] [--sweep] [--preset NAME] [--diagnostics-scenes 32]
        [--diagnostics-only] [--out benchmarks/results/removal_quality]

Prints markdown tables (all scenes; per background kind; the model's removal diagnostics) and writes
``results.json`` (settings, summary, per-kind and per-scene values, diagnostics), ``table.md`` and
``grid.png`` (rows: scenes; columns: the input with the mask outlined, the ground truth, every method's
result for the first seed) into ``--out``.

Scenes: the first ``--scenes`` usable scenes of :data:`attentive_eraser.demo.scenes.HELD_OUT_SEEDS` (never
trained on), rendered at the model's native resolution. Each contributes ONE object: the largest one that
no other object overlaps (``Scene.is_isolated``) and whose dilated mask touches no other object, so the
ground truth over the whole evaluated region is pure background. Scenes without such an object are
skipped and counted.

Mask: the object's mask as the scene gives it, grown by the model preset's ``mask_dilation``; the
pipelines dilate it themselves and the classical inpainters get the very same dilated mask (checked).

Methods (rows): SIP with SARG (the preset's s, λ, T_SS); SIP without SARG (s = 0: plain blended latent
diffusion, same model); DIP with and without SARG; SIP with AAS but without Similarity Suppression
(λ = 1); OpenCV's Telea and Navier–Stokes inpainting; scikit-image's biharmonic inpainting; and, as a
reference, the ground truth through the model's VAE (the ceiling of any latent method's fidelity) and the
input itself (the object left in place: the floor). ``--sweep`` adds SIP rows for more values of s.

Metrics, all INSIDE the dilated mask only (the pipelines paste the original back with feather 0, so
outside the mask every method returns the input exactly; inside it is the raw decode):

* PSNR (dB) of the result against the ground-truth background, over the mask's pixels (capped at 60 dB:
  an exact fill would otherwise count as 120 dB);
* SSIM: torchmetrics' SSIM map (Gaussian 11×11, σ 1.5) over the whole image, averaged over the mask;
* object reappearance: a result "reappears" when more than ``--reappearance-threshold`` (5 %) of its mask
  pixels are object-coloured (:func:`attentive_eraser.demo.scenes.object_colour_fraction`, any object colour:
  a newly invented object counts too); the rate is the share of (scene, seed) results that do;
* seed instability: per pixel and channel, the standard deviation (unbiased) across the seeds of the
  result in [0, 1], averaged over the mask, then over scenes (the analogue of the paper's CLIP
  consensus); deterministic methods have none ("—");
* seconds per image: the wall time of a method's calls divided by the results it produced (scenes ×
  seeds), batched as run (``--batch-size`` scenes per pipeline call, all seeds in that call).

Per background kind: the same PSNR and reappearance over the scenes of each kind, and over the two groups
"structured" (:data:`attentive_eraser.demo.scenes.STRUCTURED_KINDS`: stripes, checkers, tiles, bricks,
plaid -- repeated structure with edges crossing the object, which interpolation smears) and "smooth" (the
rest).

Diagnostics (:mod:`attentive_eraser.core.diagnostics`, on the first ``--diagnostics-scenes`` cases: the scene
with its object, VAE posterior mode, fixed noise): the relative SARG signal ``||eps_erased - eps_plain|| /
||eps_plain||`` inside and outside the dilated mask at SIP's timesteps, and per decoder self-attention grid
the normalised attention entropy (1 = uniform) and the mass object queries put on object keys beside the
object's share of the keys. ``--diagnostics-only`` reports them alone (e.g. for an older model).

PSNR, SSIM and the reappearance rate are averaged per scene over the seeds first, and given as the mean
over scenes ± the 95 % confidence half-width (1.96 standard errors across scenes).

Stochastic SIP rows run every seed, each result drawn from its own ``torch.Generator`` (so a result does
not depend on the batch it ran in); DIP is deterministic and runs once per scene, its ``--steps`` DDIM
inversion steps followed by ``--steps`` sampling steps (the preset's DIP strength, 1.0).
"""

from __future__ import annotations

import os

# Before torch loads its OpenMP runtime: spinning workers slow everything on a shared CPU machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Literal  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

# The cases (the first held-out scenes with an object whose dilated mask covers only background) and their
# in-mask scores live in the package, shared with the tests and benchmarks/steps_quality.py.
from attentive_eraser.runtime import require_extra  # noqa: E402
from attentive_eraser.testing.scene_cases import PSNR_CAP  # noqa: E402
from attentive_eraser.testing.scene_cases import RemovalCase as Case  # noqa: E402
from attentive_eraser.testing.scene_cases import removal_cases as select_cases  # noqa: E402
from attentive_eraser.testing.scene_cases import score_removal as score  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
#: how the error lines name this script
PROGRAM = "benchmarks/removal_quality.py"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "removal_quality"
QUICK_OUT = REPO / "benchmarks" / "results" / "removal_quality_quick"
DEFAULT_SEEDS = (123, 321, 777)
#: SIP guidance scales of ``--sweep`` (issue 3, item 5); those already in the table are not rerun
SWEEP_SCALES = (0.0, 3.0, 9.0, 20.0)
#: pixel radius of OpenCV's inpainting neighbourhood (its documented typical value)
OPENCV_RADIUS = 3
#: how many scenes the grid image shows, and its zoom (nearest neighbour) so 64 px tiles stay visible
GRID_ROWS = 6
GRID_ZOOM = 2
#: 95 % normal quantile for the confidence half-widths
Z95 = 1.96

#: timesteps at which the diagnostics table shows the SARG signal (SIP at 50 steps x 0.8 runs 781 ... 1)
DIAGNOSTIC_TIMESTEPS = (781, 581, 381, 201, 21)
#: timesteps of the attention-selectivity diagnostic (the range where SIP decides what fills the mask)
SELECTIVITY_TIMESTEPS = (781, 581, 381, 201)

Kind = Literal["sip", "dip", "classical"]


# --------------------------------------------------------------------------------------------------
# Methods


@dataclass(frozen=True)
class Method:
    """One table row: a pipeline run with fixed knobs, or a function of the case (inpainter, reference)."""

    key: str
    label: str  # the table's row name
    short: str  # the grid's column title
    kind: Kind
    call: dict[str, Any] = field(default_factory=dict)  # pipeline __call__ knobs
    fill: Callable[[Case], np.ndarray] | None = None  # case -> (H, W, 3) uint8 result

    @property
    def stochastic(self) -> bool:
        return self.kind == "sip"


def telea(case: Case) -> np.ndarray:
    import cv2

    return cv2.inpaint(case.image, case.region.astype(np.uint8), OPENCV_RADIUS, cv2.INPAINT_TELEA)


def navier_stokes(case: Case) -> np.ndarray:
    import cv2

    return cv2.inpaint(case.image, case.region.astype(np.uint8), OPENCV_RADIUS, cv2.INPAINT_NS)


def biharmonic(case: Case) -> np.ndarray:
    require_extra(PROGRAM, "skimage")  # checked by main() before any work; here for other callers
    from skimage.restoration import inpaint_biharmonic

    filled = inpaint_biharmonic(case.image.astype(np.float64) / 255.0, case.region, channel_axis=-1)
    return np.clip(np.rint(filled * 255.0), 0, 255).astype(np.uint8)


def keep_input(case: Case) -> np.ndarray:
    """Reference: the object left where it is (reappearance 100 %, the floor of every metric)."""
    return case.image.copy()


def vae_round_trip(pipe: Any) -> Callable[[Case], np.ndarray]:
    """Reference: the ground truth encoded and decoded by the model's VAE, pasted into the mask.

    No latent-diffusion result can be closer to the ground truth than its own VAE reconstruction (up to
    luck): this row is the ceiling of the diffusion rows' in-mask fidelity.
    """
    import torch

    def fill(case: Case) -> np.ndarray:
        pixels = torch.from_numpy(case.truth).permute(2, 0, 1)[None].float() / 127.5 - 1.0  # (1, 3, H, W)
        with torch.no_grad():
            latents = pipe.encode_image(pixels, None, sample_mode="argmax")
            decoded = np.asarray(pipe.decode_latents_to_images(latents)[0])
        return np.where(case.region[..., None], decoded, case.image)

    return fill


def _scale(value: float) -> str:
    return f"{value:g}"


def make_methods(
    preset: Any, steps: int, sweep: bool, vae_ceiling: Callable[[Case], np.ndarray] | None = None
) -> list[Method]:
    """The benchmark's rows, their knobs taken from the model's preset (``steps`` overrides its steps)."""
    s, lam, t_ss = preset.removal_guidance_scale, preset.suppression_scale, preset.suppression_steps
    dilation = preset.mask_dilation
    sip = {
        "num_inference_steps": steps,
        "strength": preset.strength,
        "suppression_scale": lam,
        "suppression_steps": t_ss,
        "mask_dilation": dilation,
    }
    dip = {
        "num_inference_steps": steps,
        "strength": preset.dip_strength,
        "suppression_scale": lam,
        "suppression_steps": t_ss,
        "mask_dilation": dilation,
    }
    sarg = f"s={_scale(s)}, λ={_scale(lam)}, T_SS={t_ss}"
    methods = [
        Method("sip_sarg", f"SIP + SARG ({sarg})", "SIP+SARG", "sip", {**sip, "removal_guidance_scale": s}),
        Method(
            "sip_plain",
            "SIP w/o SARG (s=0, blended LDM)",
            "SIP s=0",
            "sip",
            {**sip, "removal_guidance_scale": 0.0},
        ),
        Method("dip_sarg", f"DIP + SARG ({sarg})", "DIP+SARG", "dip", {**dip, "removal_guidance_scale": s}),
        Method("dip_plain", "DIP w/o SARG (s=0)", "DIP s=0", "dip", {**dip, "removal_guidance_scale": 0.0}),
        Method(
            "sip_aas_no_ss",
            f"SIP + AAS w/o SS (s={_scale(s)}, λ=1)",
            "SIP no SS",
            "sip",
            {**sip, "removal_guidance_scale": s, "suppression_scale": 1.0},
        ),
    ]
    if sweep:
        for value in SWEEP_SCALES:
            if value not in (0.0, s):
                methods.append(
                    Method(
                        f"sip_s{_scale(value)}",
                        f"SIP + SARG, sweep (s={_scale(value)}, λ={_scale(lam)}, T_SS={t_ss})",
                        f"SIP s={_scale(value)}",
                        "sip",
                        {**sip, "removal_guidance_scale": value},
                    )
                )
    methods += [
        Method("telea", "OpenCV Telea", "Telea", "classical", fill=telea),
        Method("navier_stokes", "OpenCV Navier–Stokes", "Navier-Stokes", "classical", fill=navier_stokes),
        Method("biharmonic", "scikit-image biharmonic", "biharmonic", "classical", fill=biharmonic),
    ]
    if vae_ceiling is not None:
        methods.append(
            Method(
                "vae_ceiling",
                "ground truth through the VAE (reference: ceiling)",
                "VAE(truth)",
                "classical",
                fill=vae_ceiling,
            )
        )
    methods.append(
        Method("input", "input, object kept (reference: floor)", "input", "classical", fill=keep_input)
    )
    return methods


# --------------------------------------------------------------------------------------------------
# Running


def _progress(total: int, label: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=label, unit="scene", file=sys.stderr, disable=not enabled, leave=False)


def run_pipeline(
    pipe: Any, cases: Sequence[Case], method: Method, seeds: Sequence[int], batch_size: int, progress: bool
) -> tuple[np.ndarray, float]:
    """Results ``(N, seeds, H, W, 3)`` uint8 (one "seed" for DIP) and the wall time of the calls."""
    import torch

    repeat = len(seeds) if method.stochastic else 1
    height, width = cases[0].image.shape[:2]
    results = np.empty((len(cases), repeat, height, width, 3), dtype=np.uint8)
    elapsed = 0.0
    with _progress(len(cases), method.short, progress) as bar:
        for start in range(0, len(cases), batch_size):
            chunk = cases[start : start + batch_size]
            extra: dict[str, Any] = {}
            if method.stochastic:
                # one generator per result, ordered as the pipeline lays them out: scene-major, then seed
                generators = [torch.Generator("cpu").manual_seed(seed) for _ in chunk for seed in seeds]
                extra = {"num_images_per_prompt": repeat, "generator": generators}
            begin = time.perf_counter()
            output = pipe(
                [Image.fromarray(case.image) for case in chunk],
                [case.mask for case in chunk],
                paste_back=True,
                feather_radius=0,
                output_type="np",
                **method.call,
                **extra,
            )
            elapsed += time.perf_counter() - begin
            images = np.clip(np.rint(np.asarray(output.images) * 255.0), 0, 255).astype(np.uint8)
            results[start : start + len(chunk)] = images.reshape(len(chunk), repeat, height, width, 3)
            for case, used in zip(chunk, output.masks[::repeat], strict=False):
                if not np.array_equal(used, case.region):  # the classical rows rely on the same region
                    raise RuntimeError(f"scene {case.seed}: the pipeline's dilated mask differs from ours")
            bar.update(len(chunk))
    return results, elapsed


def run_classical(cases: Sequence[Case], method: Method) -> tuple[np.ndarray, float]:
    """Results ``(N, 1, H, W, 3)`` uint8 of an inpainter (or reference) on the dilated masks, and its time."""
    assert method.fill is not None
    begin = time.perf_counter()
    results = np.stack([method.fill(case) for case in cases])[:, None]
    return results, time.perf_counter() - begin


# --------------------------------------------------------------------------------------------------
# Scoring


def _mean_ci(values: np.ndarray) -> tuple[float, float | None]:
    """Mean and 95 % confidence half-width (normal approximation) of per-scene values."""
    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, None
    return mean, float(Z95 * np.std(values, ddof=1) / math.sqrt(len(values)))


def summarise(values: dict[str, np.ndarray], seconds: float, images: int) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for name in ("psnr", "ssim", "reappearance", "object_colour_fraction", "instability"):
        if name in values:
            mean, ci = _mean_ci(values[name])
            summary[name] = {"mean": mean, "ci95": ci}
        else:
            summary[name] = None
    summary["seconds_per_image"] = seconds / images
    summary["seconds"] = seconds
    summary["images"] = images
    return summary


def kind_summaries(values: dict[str, np.ndarray], cases: Sequence[Case]) -> dict[str, dict[str, Any]]:
    """PSNR and reappearance (mean ± 95 % CI, scene count) per background kind and per kind group."""
    from attentive_eraser.demo.scenes import STRUCTURED_KINDS

    kinds = np.array([case.background_kind for case in cases])
    groups: dict[str, np.ndarray] = {
        "structured": np.isin(kinds, STRUCTURED_KINDS),
        "smooth": ~np.isin(kinds, STRUCTURED_KINDS),
    }
    for kind in sorted(set(kinds.tolist())):
        groups[kind] = kinds == kind
    summaries = {}
    for name, chosen in groups.items():
        if not chosen.any():
            continue
        entry: dict[str, Any] = {"scenes": int(chosen.sum())}
        for metric in ("psnr", "reappearance"):
            mean, ci = _mean_ci(values[metric][chosen])
            entry[metric] = {"mean": mean, "ci95": ci}
        summaries[name] = entry
    return summaries


def diagnose(pipe: Any, cases: Sequence[Case], steps: int, strength: float) -> dict[str, Any]:
    """The SARG signal at every SIP timestep and attention selectivity per grid, on ``cases``."""
    import torch

    from attentive_eraser.core.diagnostics import attention_selectivity, sarg_signal

    pixels = (
        torch.from_numpy(np.stack([case.image for case in cases])).permute(0, 3, 1, 2).float() / 127.5 - 1
    )
    masks = torch.from_numpy(np.stack([case.region for case in cases])).float()[:, None]  # (N, 1, H, W)
    with torch.no_grad():
        latents = pipe.encode_image(pixels, None, sample_mode="argmax")
        context = pipe.encode_prompt([""] * len(cases), torch.device("cpu"), 1, False)[0]
    noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(0))
    pipe.scheduler.set_timesteps(steps)
    timesteps, _ = pipe.get_timesteps(steps, strength, torch.device("cpu"))
    timesteps = [int(t) for t in timesteps]
    signal = sarg_signal(pipe.unet, latents, noise, masks, timesteps, context, pipe.scheduler)
    selectivity = attention_selectivity(
        pipe.unet, latents, noise, masks, SELECTIVITY_TIMESTEPS, context, pipe.scheduler
    )
    return {
        "scenes": len(cases),
        "sarg_signal": signal.as_dict(),
        "attention": selectivity.by_grid(),
        "attention_layers": [
            {
                "layer": layer.layer,
                "grid": list(layer.grid),
                "entropy": layer.entropy,
                "object_to_object": layer.object_to_object,
                "object_share": layer.object_share,
            }
            for layer in selectivity.layers
        ],
        "selectivity_timesteps": list(SELECTIVITY_TIMESTEPS),
    }


# --------------------------------------------------------------------------------------------------
# Reporting


def _with_ci(entry: dict[str, Any] | None, fmt: str, scale: float = 1.0, unit: str = "") -> str:
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
                    _with_ci(summary["psnr"], "{:.2f}"),
                    _with_ci(summary["ssim"], "{:.3f}"),
                    _with_ci(summary["reappearance"], "{:.1f}", 100.0, " %"),
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


def diagnostics_table(diagnostics: dict[str, Any]) -> str:
    """The SARG signal at a few timesteps and the attention selectivity per grid, as markdown."""
    signal = diagnostics["sarg_signal"]
    shown = [t for t in DIAGNOSTIC_TIMESTEPS if t in signal["timesteps"]]
    index = [signal["timesteps"].index(t) for t in shown]
    lines = [
        "| SARG signal ‖ε_erased − ε_plain‖ / ‖ε_plain‖ | "
        + " | ".join(f"t={t}" for t in shown)
        + " | median (all SIP steps) |",
        "|---|" + "---:|" * (len(shown) + 1),
        "| inside the mask | "
        + " | ".join(f"{signal['inside'][i] * 100:.1f} %" for i in index)
        + f" | {signal['median_inside'] * 100:.1f} % |",
        "| outside the mask | "
        + " | ".join(f"{signal['outside'][i] * 100:.1f} %" for i in index)
        + f" | {float(np.median(signal['outside'])) * 100:.1f} % |",
        "| share of the difference inside | "
        + " | ".join(f"{signal['share_inside'][i] * 100:.0f} %" for i in index)
        + f" | {float(np.median(signal['share_inside'])) * 100:.0f} % |",
        "",
        (
            "| decoder self-attention grid | layers | normalised entropy (1 = uniform) | "
            "object → object mass | object share of keys | ratio |"
        ),
        "|---|---:|---:|---:|---:|---:|",
    ]
    for grid, values in diagnostics["attention"].items():
        ratio = values["object_to_object"] / values["object_share"]
        lines.append(
            f"| {grid} | {values['layers']:.0f} | {values['entropy']:.3f} | "
            f"{values['object_to_object'] * 100:.1f} % | {values['object_share'] * 100:.1f} % | "
            f"{ratio:.2f} |"
        )
    steps = ", ".join(map(str, diagnostics["selectivity_timesteps"]))
    lines.append(
        f"\n{diagnostics['scenes']} held-out scenes (the first of the benchmark), the object's dilated "
        f"mask, fixed noise; attention averaged over heads, query rows and t = {steps}.\n"
    )
    return "\n".join(lines)


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


# --------------------------------------------------------------------------------------------------
# Command line


def _shown(path: Path) -> str:
    """``path`` relative to the repository when inside it (tables stay the same on every machine)."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def default_model() -> Path:
    import attentive_eraser

    return Path(attentive_eraser.__file__).resolve().parent / "demo_model"


def load_pipelines(model: Path, threads: int | None, preset: str | None = None) -> tuple[Any, Any] | None:
    """SIP and DIP pipelines (sharing weights) of ``model`` on the CPU, the libraries quiet; ``None`` (after
    an ``error:`` line) when ``model`` is not a diffusers folder. ``threads`` sets torch's and OpenCV's."""
    import cv2
    import torch
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    from attentive_eraser.api import load_pipeline

    if threads is not None:
        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)
    # Loading bars and deprecation chatter are not what the benchmarks report.
    diffusers_logging.disable_progress_bar()
    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    logging.getLogger("attentive_eraser").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)
    if not (model / "model_index.json").is_file():
        print(
            f"error: no diffusers model at {model} (train the demo model, or pass --model DIR)",
            file=sys.stderr,
        )
        return None
    sip = load_pipeline(model, method="sip", device="cpu", dtype="fp32")
    dip = load_pipeline(model, method="dip", device="cpu", dtype="fp32")  # shares sip's weights
    for pipe in (sip, dip):
        pipe.set_progress_bar_config(disable=True)
        if preset is not None:
            from attentive_eraser.settings import get_preset

            pipe.preset = get_preset(preset)
    return sip, dip


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", type=Path, default=None, help="diffusers model folder (default: the packaged demo model)"
    )
    parser.add_argument(
        "--preset",
        default=None,
        help="use this preset's knobs (e.g. demo for a trained demo model outside the package)",
    )
    parser.add_argument("--scenes", type=int, default=None, help="scenes to evaluate (default 200; quick: 4)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 4 scenes, 2 seeds, 5 steps (explicit options still win)",
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=None, help="SIP seeds (default 123 321 777; quick: 123 321)"
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="DDIM steps of the full schedule for SIP (run: steps × strength) and DIP "
        "(inversion and sampling each) (default 50; quick: 5)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="scenes per pipeline call, all seeds in the call (default 32; quick: 4)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch and OpenCV threads (default: theirs)"
    )
    parser.add_argument(
        "--reappearance-threshold",
        type=float,
        default=0.05,
        help="object-coloured share of the mask above which the object reappeared",
    )
    parser.add_argument(
        "--sweep",
        action="store_true",
        help=f"add SIP rows for s in {', '.join(map(_scale, SWEEP_SCALES))} (issue 3, item 5)",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        default=None,
        metavar="KEY",
        help="run only these rows (keys: sip_sarg sip_plain dip_sarg dip_plain sip_aas_no_ss "
        "telea navier_stokes biharmonic vae_ceiling input, and sip_s<S> with --sweep)",
    )
    parser.add_argument(
        "--diagnostics-scenes",
        type=int,
        default=None,
        help="scenes for the SARG-signal and attention diagnostics (default 32; quick: 4; 0: none)",
    )
    parser.add_argument(
        "--diagnostics-only", action="store_true", help="report the diagnostics only (no removal methods)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"output folder (default {DEFAULT_OUT.relative_to(REPO)}; quick: {QUICK_OUT.relative_to(REPO)})",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    quick = args.quick
    args.scenes = args.scenes if args.scenes is not None else (4 if quick else 200)
    args.seeds = args.seeds if args.seeds is not None else list(DEFAULT_SEEDS[: 2 if quick else 3])
    args.steps = args.steps if args.steps is not None else (5 if quick else 50)
    args.batch_size = args.batch_size if args.batch_size is not None else (4 if quick else 32)
    args.out = args.out if args.out is not None else (QUICK_OUT if quick else DEFAULT_OUT)
    if args.diagnostics_scenes is None:
        args.diagnostics_scenes = min(args.scenes, 4 if quick else 32)
    if args.diagnostics_scenes < 0:
        parser.error("--diagnostics-scenes must be at least 0")
    if args.diagnostics_only and args.diagnostics_scenes == 0:
        parser.error("--diagnostics-only needs --diagnostics-scenes > 0")
    for name, low in (("scenes", 1), ("steps", 1), ("batch_size", 1)):
        if getattr(args, name) < low:
            parser.error(f"--{name.replace('_', '-')} must be at least {low}")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds must be distinct, got {args.seeds}")
    if not 0.0 <= args.reappearance_threshold < 1.0:
        parser.error("--reappearance-threshold must be in [0, 1)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.diagnostics_only:
        # scoring needs torchmetrics' SSIM; the biharmonic baseline scikit-image: say so before any work
        wanted = args.methods if args.methods is not None else ["biharmonic"]
        require_extra(PROGRAM, "torchmetrics", *(["skimage"] if "biharmonic" in wanted else []))
    started = time.perf_counter()
    import torch

    model = args.model if args.model is not None else default_model()
    pipes = load_pipelines(model, args.threads, args.preset)
    if pipes is None:
        return 2
    sip, dip = pipes
    preset = sip.preset
    size = preset.resolution
    print(
        f"model {model} (preset {preset.name}, {size} px, mask dilation {preset.mask_dilation} px)",
        file=sys.stderr,
    )

    selection = select_cases(args.scenes, size, preset.mask_dilation)
    cases = selection.cases
    methods = make_methods(preset, args.steps, args.sweep, vae_ceiling=vae_round_trip(sip))
    if args.methods is not None:
        known = [method.key for method in methods]
        unknown = sorted(set(args.methods) - set(known))
        if unknown:
            print(
                f"error: --methods {' '.join(unknown)}: unknown; choose from {' '.join(known)}",
                file=sys.stderr,
            )
            return 2
        methods = [method for method in methods if method.key in args.methods]
    if args.diagnostics_only:
        methods = []
    diagnostics = None
    if args.diagnostics_scenes:
        diagnostics = diagnose(sip, cases[: args.diagnostics_scenes], args.steps, preset.strength)
        print(
            f"[{time.perf_counter() - started:7.1f} s] diagnostics: SARG signal in the mask "
            f"{diagnostics['sarg_signal']['median_inside'] * 100:.2f} % (median), attention entropy "
            + ", ".join(
                f"{grid} {values['entropy']:.3f}" for grid, values in diagnostics["attention"].items()
            ),
            file=sys.stderr,
            flush=True,
        )
    progress = not args.no_progress
    results: dict[str, np.ndarray] = {}
    report_methods: dict[str, Any] = {}
    for method in methods:
        if method.kind == "classical":
            output, seconds = run_classical(cases, method)
        else:
            output, seconds = run_pipeline(
                sip if method.kind == "sip" else dip, cases, method, args.seeds, args.batch_size, progress
            )
        results[method.key] = output
        values = score(output, cases, args.reappearance_threshold)
        summary = summarise(values, seconds, output.shape[0] * output.shape[1])
        report_methods[method.key] = {
            "label": method.label,
            "kind": method.kind,
            "stochastic": method.stochastic,
            "call": method.call,
            "summary": summary,
            "kinds": kind_summaries(values, cases),
            "per_scene": {name: [round(float(v), 6) for v in array] for name, array in values.items()},
        }
        print(
            f"[{time.perf_counter() - started:7.1f} s] {method.label}: "
            f"PSNR {summary['psnr']['mean']:.2f} dB, "
            f"reappearance {summary['reappearance']['mean'] * 100:.1f} %, "
            f"{summary['seconds_per_image']:.3f} s/image",
            file=sys.stderr,
            flush=True,
        )

    report = {
        "settings": {
            "model": _shown(model),
            "preset": preset.asdict(),
            "size": size,
            "mask_dilation": preset.mask_dilation,
            "scenes": len(cases),
            "scene_seeds_tried": selection.seeds_tried,
            "skipped_scenes": selection.skipped_no_isolated + selection.skipped_touching,
            "skipped_no_isolated": selection.skipped_no_isolated,
            "skipped_touching": selection.skipped_touching,
            "first_scene_seed": cases[0].seed,
            "last_scene_seed": cases[-1].seed,
            "seeds": list(args.seeds),
            "steps": args.steps,
            "sip_strength": preset.strength,
            "dip_strength": preset.dip_strength,
            "batch_size": args.batch_size,
            "threads": torch.get_num_threads(),
            "reappearance_threshold": args.reappearance_threshold,
            "opencv_radius": OPENCV_RADIUS,
            "quick": args.quick,
            "sweep": args.sweep,
            "sweep_scales": list(SWEEP_SCALES),
            "grid_zoom": GRID_ZOOM,
            "evaluated_region": "dilated mask only",
        },
        "environment": {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
            "command": [Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)],
        },
        "scenes": [
            {
                "seed": case.seed,
                "object_index": case.object_index,
                "shape": case.shape,
                "background_kind": case.background_kind,
                "mask_pixels": int(case.mask.sum()),
                "region_pixels": int(case.region.sum()),
            }
            for case in cases
        ],
        "methods": report_methods,
        "diagnostics": diagnostics,
        "wall_seconds": round(time.perf_counter() - started, 2),
    }
    parts = []
    if methods:
        parts += [markdown_table(report), "### Per background kind\n\n" + kind_table(report)]
    if diagnostics is not None:
        parts.append("### Removal diagnostics\n\n" + diagnostics_table(diagnostics))
    table = "\n".join(parts)
    args.out.mkdir(parents=True, exist_ok=True)
    if methods:
        save_grid(args.out / "grid.png", cases, methods, results, min(GRID_ROWS, len(cases)))
    (args.out / "table.md").write_text(table, encoding="utf-8")
    (args.out / "results.json").write_text(
        json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(table, end="")
    print(
        f"\nwrote {args.out / 'results.json'}, {args.out / 'table.md'}, {args.out / 'grid.png'} "
        f"in {report['wall_seconds']:.1f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
