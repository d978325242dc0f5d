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
import math  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import removal_quality as rq  # noqa: E402

from attentive_eraser.runtime import require_extra  # noqa: E402

REPO = rq.REPO
DEFAULT_OUT = REPO / "benchmarks" / "results" / "steps_quality"
QUICK_OUT = REPO / "benchmarks" / "results" / "steps_quality_quick"
EVALUATIONS = (40, 30, 20, 15, 10, 6, 4)
SOLVERS = ("ddim", "dpm++", "dip")
#: the default's DIP budget (50 inversion + 50 sampling steps), always in the DIP curve
DIP_DEFAULT_EVALUATIONS = 100
LABELS = {"ddim": "SIP, DDIM", "dpm++": "SIP, DPM-Solver++ 2M", "dip": "DIP, DDIM"}
#: reappearance points above the default's that still count as "close" (the +5 points of the acceptance)
CLOSE_POINTS = 5.0
#: DIP rows are compared with DIP's default (50 inversion + 50 sampling steps), SIP rows with SIP's
DIP_REFERENCE = f"dip_{DIP_DEFAULT_EVALUATIONS}"


@dataclass(frozen=True)
class Setting:
    """One point of a curve: a solver at a budget of UNet evaluations, and the pipeline knobs for it."""

    solver: str
    evaluations: int
    call: dict[str, Any]

    @property
    def key(self) -> str:
        return f"{self.solver.replace('+', 'p')}_{self.evaluations}"

    @property
    def kind(self) -> str:
        return "dip" if self.solver == "dip" else "sip"


def schedule_for(evaluations: int, strength: float) -> int:
    """The smallest full-schedule step count ``N`` with ``int(N * strength) == evaluations``."""
    steps = max(1, math.ceil(evaluations / strength))
    while int(steps * strength) < evaluations:
        steps += 1
    while steps > 1 and int((steps - 1) * strength) >= evaluations:
        steps -= 1
    if int(steps * strength) != evaluations:
        raise ValueError(f"no step count runs exactly {evaluations} steps at strength {strength}")
    return steps


def scaled_suppression_steps(steps_run: int, preset_steps: int, preset_run: int) -> int:
    """T_SS at the preset's share of the steps run (at least 1)."""
    return max(1, round(preset_steps * steps_run / preset_run))


def make_settings(preset: Any, evaluations: Sequence[int], solvers: Sequence[str]) -> list[Setting]:
    s, lam = preset.removal_guidance_scale, preset.suppression_scale
    sip_run = int(preset.num_inference_steps * preset.strength)  # 40 at the paper's 50 x 0.8
    settings = []
    for solver in solvers:
        if solver == "dip":
            budgets = sorted(
                {*(e for e in evaluations if e % 2 == 0), 2 * preset.dip_num_inference_steps}, reverse=True
            )
            for budget in budgets:
                steps = budget // 2
                settings.append(
                    Setting(
                        "dip",
                        budget,
                        {
                            "num_inference_steps": steps,
                            "strength": preset.dip_strength,
                            "removal_guidance_scale": s,
                            "suppression_scale": lam,
                            "suppression_steps": scaled_suppression_steps(
                                steps, preset.suppression_steps, preset.dip_num_inference_steps
                            ),
                            "mask_dilation": preset.mask_dilation,
                        },
                    )
                )
            continue
        for budget in sorted(set(evaluations), reverse=True):
            settings.append(
                Setting(
                    solver,
                    budget,
                    {
                        "num_inference_steps": schedule_for(budget, preset.strength),
                        "strength": preset.strength,
                        "removal_guidance_scale": s,
                        "suppression_scale": lam,
                        "suppression_steps": scaled_suppression_steps(
                            budget, preset.suppression_steps, sip_run
                        ),
                        "mask_dilation": preset.mask_dilation,
                        "scheduler": solver,
                    },
                )
            )
    return settings


def visited_timesteps(pipe: Any, setting: Setting) -> list[int]:
    """The timesteps at which the setting's run calls the UNet with SARG (sampling steps only)."""
    from attentive_eraser.pipelines.base import truncated_timesteps

    scheduler = pipe.sampling_scheduler(setting.call.get("scheduler", "ddim"))
    steps = truncated_timesteps(
        scheduler, setting.call["num_inference_steps"], setting.call["strength"], "cpu"
    )
    return [int(t) for t in steps]


def sarg_signals(pipe: Any, cases: Sequence[rq.Case], timesteps: Sequence[int]) -> dict[int, float]:
    """In-mask relative SARG signal at each of ``timesteps`` on ``cases`` (the diagnostics' fixed noise)."""
    import torch

    from attentive_eraser.core.diagnostics import sarg_signal

    pixels = (
        torch.from_numpy(np.stack([case.image for case in cases])).permute(0, 3, 1, 2).float() / 127.5 - 1
    )
    masks = torch.from_numpy(np.stack([case.region for case in cases])).float()[:, None]
    with torch.no_grad():
        latents = pipe.encode_image(pixels, None, sample_mode="argmax")
        context = pipe.encode_prompt([""] * len(cases), torch.device("cpu"), 1, False)[0]
    noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(0))
    signal = sarg_signal(
        pipe.unet, latents, noise, masks, sorted(set(timesteps), reverse=True), context, pipe.scheduler
    )
    return dict(zip(signal.timesteps, signal.inside, strict=False))


def paired_difference(values: np.ndarray, reference: np.ndarray) -> tuple[float, float | None]:
    """Mean and 95 % half-width of the per-scene difference ``values - reference`` (same scenes)."""
    return rq._mean_ci(np.asarray(values) - np.asarray(reference))


def compare(entry: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    """The setting against the default: paired differences, and whether it is within the default's CI."""
    out: dict[str, Any] = {}
    for metric in ("reappearance", "psnr"):
        mean, ci = paired_difference(entry["per_scene"][metric], reference["per_scene"][metric])
        out[f"{metric}_difference"] = {"mean": mean, "ci95": ci}
    ref = reference["summary"]
    mine = entry["summary"]
    out["within_default_ci"] = bool(
        mine["reappearance"]["mean"] <= ref["reappearance"]["mean"] + (ref["reappearance"]["ci95"] or 0.0)
        and mine["psnr"]["mean"] >= ref["psnr"]["mean"] - (ref["psnr"]["ci95"] or 0.0)
    )
    out["within_5_points"] = bool(
        mine["reappearance"]["mean"] * 100 <= ref["reappearance"]["mean"] * 100 + CLOSE_POINTS
    )
    return out


def recommendations(report: dict[str, Any]) -> dict[str, dict[str, int | None]]:
    """Per solver: the fewest evaluations within the default's CI, and within +5 reappearance points."""
    found: dict[str, dict[str, int | None]] = {}
    for solver in {entry["solver"] for entry in report["settings_run"].values()}:
        entries = [entry for entry in report["settings_run"].values() if entry["solver"] == solver]
        within = [entry["evaluations"] for entry in entries if entry["comparison"]["within_default_ci"]]
        close = [entry["evaluations"] for entry in entries if entry["comparison"]["within_5_points"]]
        found[solver] = {
            "fewest_within_ci": min(within, default=None),
            "fewest_within_5_points": min(close, default=None),
        }
    return found


# --------------------------------------------------------------------------------------------------
# Reporting


def _signed(entry: dict[str, Any], fmt: str, scale: float = 1.0) -> str:
    text = fmt.format(entry["mean"] * scale)
    if not text.startswith("-"):
        text = "+" + text
    if entry["ci95"] is not None:
        text += " ± " + fmt.format(entry["ci95"] * scale)
    return text


def markdown_table(report: dict[str, Any]) -> str:
    lines = [
        "| solver | UNet evaluations | steps (schedule × strength) | T_SS | reappearance ↓ | Δ reappearance "
        "| PSNR in mask (dB) ↑ | Δ PSNR | SSIM ↑ | seed instability ↓ | SARG signal | s / image | within "
        "default's CI |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for entry in report["settings_run"].values():
        summary, call, comparison = entry["summary"], entry["call"], entry["comparison"]
        steps = f"{call['num_inference_steps']} × {call['strength']:g}"
        if entry["solver"] == "dip":
            steps = f"{call['num_inference_steps']} inv. + {call['num_inference_steps']} sampl."
        lines.append(
            f"| {LABELS[entry['solver']]} | {entry['evaluations']} | {steps} | {call['suppression_steps']} "
            f"| {rq._with_ci(summary['reappearance'], '{:.1f}', 100, ' %')} "
            f"| {_signed(comparison['reappearance_difference'], '{:.1f}', 100)} "
            f"| {rq._with_ci(summary['psnr'], '{:.2f}')} "
            f"| {_signed(comparison['psnr_difference'], '{:.2f}')} "
            f"| {rq._with_ci(summary['ssim'], '{:.3f}')} "
            f"| {rq._with_ci(summary['instability'], '{:.4f}') if summary['instability'] else '—'} "
            f"| {entry['sarg_signal'] * 100:.1f} % | {summary['seconds_per_image']:.3f} "
            f"| {'yes' if comparison['within_default_ci'] else 'no'} |"
        )
    settings = report["settings"]
    lines += [
        "",
        f"{settings['scenes']} held-out scenes (seeds {settings['first_scene_seed']}–"
        f"{settings['last_scene_seed']}), one object each, {settings['size']} px; model "
        f"`{settings['model']}`; SIP seeds {', '.join(map(str, settings['seeds']))}, DIP deterministic (once "
        f"per scene); s = {settings['removal_guidance_scale']:g}, λ = {settings['suppression_scale']:g}.",
        "",
        "Reference: the default of each pipeline, SIP with DDIM at 40 evaluations (50 × 0.8) for the SIP "
        "rows, DIP at 100 (50 + 50) for the DIP rows. Δ = the paired per-scene difference to it ± its 95 % "
        'half-width; "within default\'s CI" = reappearance at most the '
        "default's mean + its 95 % half-width and PSNR at least its mean − its half-width. SARG signal = "
        "in-mask ‖ε_erased − ε_plain‖ / ‖ε_plain‖ averaged over the timesteps visited, on "
        f"{settings['diagnostics_scenes']} scenes. s / image = wall time per result, batched "
        f"({settings['batch_size']} scenes per call, {settings['threads']} thread(s)); whole run "
        f"{report['wall_seconds'] / 60:.1f} min.",
    ]
    best = report["recommendations"]
    lines += [
        "",
        "Fewest UNet evaluations per solver: "
        + "; ".join(
            f"{LABELS[solver]}: within the default's CI {values['fewest_within_ci'] or '—'}, within "
            f"+{CLOSE_POINTS:g} reappearance points {values['fewest_within_5_points'] or '—'}"
            for solver, values in sorted(best.items())
        )
        + ".",
    ]
    return "\n".join(lines) + "\n"


def plot(path: Path, report: dict[str, Any]) -> None:
    """Reappearance and PSNR against UNet evaluations, one line per solver, 95 % bars, the default marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=120)
    metrics = (("reappearance", 100.0, "object reappearance (%) ↓"), ("psnr", 1.0, "PSNR in mask (dB) ↑"))
    markers = {"ddim": "o", "dpm++": "s", "dip": "^"}
    entries = list(report["settings_run"].values())
    for axis, (metric, scale, title) in zip(axes, metrics, strict=False):
        for solver in SOLVERS:
            points = sorted(
                (entry for entry in entries if entry["solver"] == solver),
                key=lambda entry: entry["evaluations"],
            )
            if not points:
                continue
            x = [entry["evaluations"] for entry in points]
            y = [entry["summary"][metric]["mean"] * scale for entry in points]
            err = [(entry["summary"][metric]["ci95"] or 0.0) * scale for entry in points]
            axis.errorbar(x, y, yerr=err, marker=markers[solver], capsize=3, label=LABELS[solver])
        reference = report["settings_run"].get("ddim_40")
        if reference is not None:
            mean = reference["summary"][metric]["mean"] * scale
            half = (reference["summary"][metric]["ci95"] or 0.0) * scale
            axis.axhspan(mean - half, mean + half, color="grey", alpha=0.2, label="default ± 95 % CI")
        axis.set_xscale("log")
        ticks = sorted({entry["evaluations"] for entry in entries})
        axis.set_xticks(ticks)
        axis.set_xticklabels([str(tick) for tick in ticks])
        axis.minorticks_off()
        axis.set_xlabel("UNet evaluations per image")
        axis.set_title(title)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    settings = report["settings"]
    figure.suptitle(
        f"Attentive Eraser on the demo model: {settings['scenes']} held-out scenes × "
        f"{len(settings['seeds'])} seeds",
        fontsize=10,
    )
    figure.tight_layout()
    temporary = path.with_name(path.name + ".tmp.png")
    figure.savefig(temporary)
    plt.close(figure)
    os.replace(temporary, path)


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
    args.seeds = args.seeds if args.seeds is not None else list(rq.DEFAULT_SEEDS[: 2 if quick else 3])
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

    model = args.model if args.model is not None else rq.default_model()
    pipes = rq.load_pipelines(model, args.threads)
    if pipes is None:
        return 2
    sip, dip = pipes
    preset = sip.preset
    selection = rq.select_cases(args.scenes, preset.resolution, preset.mask_dilation)
    cases = selection.cases
    settings = make_settings(preset, args.evaluations, args.solvers)
    reference_key = "ddim_40"
    if reference_key not in {setting.key for setting in settings}:
        # the comparison needs the default; run it even when the budgets asked for leave it out
        settings = make_settings(preset, [40], ["ddim"]) + settings
    runs = args.out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    identity = {"model": rq._shown(model), "scenes": [case.seed for case in cases], "seeds": list(args.seeds)}

    timesteps = {setting.key: visited_timesteps(sip, setting) for setting in settings}
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
        method = rq.Method(setting.key, LABELS[setting.solver], setting.key, setting.kind, setting.call)
        pipe = dip if setting.kind == "dip" else sip
        output, seconds = rq.run_pipeline(
            pipe, cases, method, args.seeds, args.batch_size, not args.no_progress
        )
        values = rq.score(output, cases, 0.05)
        entry = {
            "identity": identity,
            "solver": setting.solver,
            "evaluations": setting.evaluations,
            "call": setting.call,
            "timesteps": timesteps[setting.key],
            "sarg_signal": float(np.mean([signal[t] for t in timesteps[setting.key]])),
            "summary": rq.summarise(values, seconds, output.shape[0] * output.shape[1]),
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
            "model": rq._shown(model),
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
    print(table, end="")
    print(
        f"\nwrote {args.out / 'results.json'}, {args.out / 'table.md'}, {args.out / 'curve.png'} "
        f"in {report['wall_seconds']:.1f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
