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

This file is the command line; the benchmark's parts live in ``_removal/`` (shared with
``benchmarks/steps_quality.py``).
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
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

# The cases (the first held-out scenes with an object whose dilated mask covers only background) and their
# in-mask scores live in the package, shared with the tests and benchmarks/steps_quality.py.
from attentive_eraser.runtime import require_extra  # noqa: E402
from attentive_eraser.testing.scene_cases import removal_cases as select_cases  # noqa: E402
from attentive_eraser.testing.scene_cases import score_removal as score  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _removal.common import (  # noqa: E402
    DEFAULT_SEEDS,
    PROGRAM,
    REPO,
    announce,
    default_model,
    load_pipelines,
    shown,
)
from _removal.diagnostics import diagnose, diagnostics_table  # noqa: E402
from _removal.methods import (  # noqa: E402
    OPENCV_RADIUS,
    SWEEP_SCALES,
    format_scale,
    make_methods,
    vae_round_trip,
)
from _removal.report import GRID_ROWS, GRID_ZOOM, kind_table, markdown_table, save_grid  # noqa: E402
from _removal.running import run_classical, run_pipeline  # noqa: E402
from _removal.scoring import kind_summaries, summarise  # noqa: E402

DEFAULT_OUT = REPO / "benchmarks" / "results" / "removal_quality"
QUICK_OUT = REPO / "benchmarks" / "results" / "removal_quality_quick"


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
        help=f"add SIP rows for s in {', '.join(map(format_scale, SWEEP_SCALES))}",
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

    report: dict[str, Any] = {
        "settings": {
            "model": shown(model),
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
    announce(
        table,
        [args.out / "results.json", args.out / "table.md", args.out / "grid.png"],
        report["wall_seconds"],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
