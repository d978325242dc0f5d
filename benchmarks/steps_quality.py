#!/usr/bin/env python
"""How few UNet evaluations does Attentive Eraser need? Removal quality against cost, on the demo model.

Usage::

    python benchmarks/steps_quality.py [--model DIR] [--scenes 200] [--seeds 123 321 777] [--quick]
        [--evaluations 40 30 20 15 10 6 4] [--solvers ddim dpm++ dip] [--batch-size 32] [--threads N]
        [--out benchmarks/results/steps_quality]

For every solver and every budget of UNet evaluations it runs the removal benchmark of
``benchmarks/removal_quality.py`` (same held-out scenes, same masks, same metrics: reappearance, PSNR and
SSIM in the mask, seed instability) and reports them as a curve (``curve.png``) and a table (``table.md``,
``results.json``) in ``--out``.

One UNet evaluation is one UNet forward of the batch the method needs: a SARG step is one batch-2 pass
(``[plain, erased]``), a DIP inversion step one plain pass. Solvers:

* ``ddim``: SIP with DDIM (eta = 0), the paper's sampler. ``E`` evaluations = the last ``E`` steps of an
  ``N``-step schedule, ``N`` the smallest count with ``int(N * 0.8) == E`` (strength kept at the preset's
  0.8; E = 40 is the default: 50 steps);
* ``dpm++``: SIP with DPM-Solver++ (2M, data prediction, first order at the last steps), the same
  truncation, the background re-blended after every solver step (``docs/method.md`` explains why the
  blend and SARG's combination are compatible with the solver's history);
* ``dip``: DIP with ``n`` inversion + ``n`` sampling DDIM steps (strength 1): ``E = 2n``; the budgets
  are those of ``--evaluations`` that are even, plus the default's 100.

``T_SS`` (Similarity Suppression's steps) is scaled with the steps run: the preset's share of them
(SIP: 10 of 40, DIP: 10 of 50), at least 1. ``s`` and ``λ`` are the preset's.

SARG signal: the relative difference of the erased and the plain noise prediction inside the mask
(:func:`attentive_eraser.core.diagnostics.sarg_signal`), on the first ``--diagnostics-scenes`` scenes,
averaged over the timesteps each setting visits.

Each pipeline's default is the reference (SIP: DDIM at 40 evaluations; DIP: 100): each row gives its
paired difference to it (per scene, ± 95 % half-width) and whether it stays within the default's
confidence interval on both reappearance and PSNR. Finished settings are saved in ``--out/runs`` and
skipped when the command is run again (``--fresh`` reruns them).

This file is the command line; its settings and report live in ``_steps/``, the runs and scores it shares
with the removal benchmark in ``_removal/``.
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

from attentive_eraser.runtime import require_extra  # noqa: E402
from attentive_eraser.testing.scene_cases import RemovalCase as Case  # noqa: E402
from attentive_eraser.testing.scene_cases import removal_cases as select_cases  # noqa: E402
from attentive_eraser.testing.scene_cases import score_removal as score  # noqa: E402

# the removal benchmark's parts: the same cases, runs and scores
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _removal.common import DEFAULT_SEEDS, REPO, announce, default_model, load_pipelines, shown  # noqa: E402
from _removal.diagnostics import diagnostic_inputs  # noqa: E402
from _removal.methods import Method  # noqa: E402
from _removal.running import run_pipeline  # noqa: E402
from _removal.scoring import summarise  # noqa: E402
from _steps.report import compare, markdown_table, plot, recommendations  # noqa: E402
from _steps.settings import DIP_REFERENCE, EVALUATIONS, SOLVERS, make_settings  # noqa: E402

DEFAULT_OUT = REPO / "benchmarks" / "results" / "steps_quality"
QUICK_OUT = REPO / "benchmarks" / "results" / "steps_quality_quick"


def sarg_signals(pipe: Any, cases: Sequence[Case], timesteps: Sequence[int]) -> dict[int, float]:
    """In-mask relative SARG signal at each of ``timesteps`` on ``cases`` (the diagnostics' fixed noise)."""
    from attentive_eraser.core.diagnostics import sarg_signal

    latents, noise, masks, context = diagnostic_inputs(pipe, cases)
    signal = sarg_signal(
        pipe.unet, latents, noise, masks, sorted(set(timesteps), reverse=True), context, pipe.scheduler
    )
    return dict(zip(signal.timesteps, signal.inside, strict=False))


# --------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", type=Path, default=None, help="diffusers model folder (default: the packaged demo model)"
    )
    parser.add_argument("--scenes", type=int, default=None, help="scenes (default 200; quick: 3)")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=None, help="SIP seeds (default 123 321 777; quick: 123 321)"
    )
    parser.add_argument(
        "--evaluations",
        type=int,
        nargs="+",
        default=None,
        help=f"UNet evaluation budgets (default {' '.join(map(str, EVALUATIONS))}; quick: 6 4)",
    )
    parser.add_argument("--solvers", nargs="+", choices=SOLVERS, default=list(SOLVERS))
    parser.add_argument(
        "--batch-size", type=int, default=None, help="scenes per pipeline call (default 32; quick: 3)"
    )
    parser.add_argument(
        "--diagnostics-scenes",
        type=int,
        default=None,
        help="scenes for the SARG signal (default 32; quick: 2)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch and OpenCV threads")
    parser.add_argument("--quick", action="store_true", help="a smoke run (explicit options still win)")
    parser.add_argument("--fresh", action="store_true", help="rerun settings saved by an earlier run")
    parser.add_argument(
        "--out", type=Path, default=None, help=f"output folder (default {DEFAULT_OUT.relative_to(REPO)})"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    quick = args.quick
    args.scenes = args.scenes if args.scenes is not None else (3 if quick else 200)
    args.seeds = args.seeds if args.seeds is not None else list(DEFAULT_SEEDS[: 2 if quick else 3])
    args.evaluations = (
        args.evaluations if args.evaluations is not None else ([6, 4] if quick else list(EVALUATIONS))
    )
    args.batch_size = args.batch_size if args.batch_size is not None else (3 if quick else 32)
    args.out = args.out if args.out is not None else (QUICK_OUT if quick else DEFAULT_OUT)
    if args.diagnostics_scenes is None:
        args.diagnostics_scenes = min(args.scenes, 2 if quick else 32)
    for name in ("scenes", "batch_size", "diagnostics_scenes"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if any(value < 1 for value in args.evaluations):
        parser.error(f"--evaluations must be at least 1, got {args.evaluations}")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds must be distinct, got {args.seeds}")
    return args


def _write_json(path: Path, value: Any) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # scoring needs torchmetrics' SSIM, the curve matplotlib: say so before any work
    require_extra("benchmarks/steps_quality.py", "torchmetrics", "matplotlib")
    started = time.perf_counter()
    import torch

    model = args.model if args.model is not None else default_model()
    pipes = load_pipelines(model, args.threads)
    if pipes is None:
        return 2
    sip, dip = pipes
    preset = sip.preset
    selection = select_cases(args.scenes, preset.resolution, preset.mask_dilation)
    cases = selection.cases
    settings = make_settings(preset, args.evaluations, args.solvers)
    reference_key = "ddim_40"
    if reference_key not in {setting.key for setting in settings}:
        # the comparison needs the default; run it even when the budgets asked for leave it out
        settings = make_settings(preset, [40], ["ddim"]) + settings
    runs = args.out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    identity = {"model": shown(model), "scenes": [case.seed for case in cases], "seeds": list(args.seeds)}

    timesteps = {setting.key: setting.visited_timesteps(sip) for setting in settings}
    signal = sarg_signals(
        sip,
        cases[: args.diagnostics_scenes],
        sorted({t for steps in timesteps.values() for t in steps}, reverse=True),
    )
    print(f"[{time.perf_counter() - started:7.1f} s] SARG signal at {len(signal)} timesteps", file=sys.stderr)

    entries: dict[str, Any] = {}
    for setting in settings:
        saved = runs / f"{setting.key}.json"
        if saved.is_file() and not args.fresh:
            entry = json.loads(saved.read_text(encoding="utf-8"))
            if entry.get("identity") == identity and entry.get("call") == setting.call:
                entries[setting.key] = entry
                print(f"[{time.perf_counter() - started:7.1f} s] {setting.key}: saved", file=sys.stderr)
                continue
        method = Method(setting.key, setting.label, setting.key, setting.kind, setting.call)
        pipe = dip if setting.kind == "dip" else sip
        output, seconds = run_pipeline(pipe, cases, method, args.seeds, args.batch_size, not args.no_progress)
        values = score(output, cases, 0.05)
        entry = {
            "identity": identity,
            "solver": setting.solver,
            "evaluations": setting.evaluations,
            "call": setting.call,
            "timesteps": timesteps[setting.key],
            "sarg_signal": float(np.mean([signal[t] for t in timesteps[setting.key]])),
            "summary": summarise(values, seconds, output.shape[0] * output.shape[1]),
            "per_scene": {name: [round(float(v), 6) for v in array] for name, array in values.items()},
        }
        _write_json(saved, entry)
        entries[setting.key] = entry
        summary = entry["summary"]
        print(
            f"[{time.perf_counter() - started:7.1f} s] {setting.key}: reappearance "
            f"{summary['reappearance']['mean'] * 100:.1f} %, PSNR {summary['psnr']['mean']:.2f} dB, "
            f"{summary['seconds_per_image']:.3f} s/image",
            file=sys.stderr,
            flush=True,
        )

    for entry in entries.values():
        reference = entries[
            DIP_REFERENCE if entry["solver"] == "dip" and DIP_REFERENCE in entries else reference_key
        ]
        entry["comparison"] = compare(entry, reference)
    report: dict[str, Any] = {
        "settings": {
            "model": shown(model),
            "preset": preset.name,
            "size": preset.resolution,
            "scenes": len(cases),
            "first_scene_seed": cases[0].seed,
            "last_scene_seed": cases[-1].seed,
            "seeds": list(args.seeds),
            "evaluations": list(args.evaluations),
            "solvers": list(args.solvers),
            "removal_guidance_scale": preset.removal_guidance_scale,
            "suppression_scale": preset.suppression_scale,
            "batch_size": args.batch_size,
            "diagnostics_scenes": args.diagnostics_scenes,
            "threads": torch.get_num_threads(),
            "quick": args.quick,
        },
        "environment": {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "command": [Path(sys.argv[0]).name, *(sys.argv[1:] if argv is None else argv)],
        },
        "settings_run": {
            key: {name: value for name, value in entry.items() if name != "identity"}
            for key, entry in entries.items()
        },
        "wall_seconds": round(time.perf_counter() - started, 2),
    }
    report["recommendations"] = recommendations(report)
    table = markdown_table(report)
    (args.out / "table.md").write_text(table, encoding="utf-8")
    _write_json(args.out / "results.json", report)
    plot(args.out / "curve.png", report)
    written = [args.out / "results.json", args.out / "table.md", args.out / "curve.png"]
    announce(table, written, report["wall_seconds"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
