"""The steps benchmark's report: each setting against its pipeline's default, the table and the curve."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from _removal.report import with_ci
from _removal.scoring import mean_ci

from .settings import LABELS, SOLVERS

#: reappearance points above the default's that still count as "close" (the +5 points of the acceptance)
CLOSE_POINTS = 5.0


def paired_difference(values: np.ndarray, reference: np.ndarray) -> tuple[float, float | None]:
    """Mean and 95 % half-width of the per-scene difference ``values - reference`` (same scenes)."""
    return mean_ci(np.asarray(values) - np.asarray(reference))


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
            f"| {with_ci(summary['reappearance'], '{:.1f}', 100, ' %')} "
            f"| {_signed(comparison['reappearance_difference'], '{:.1f}', 100)} "
            f"| {with_ci(summary['psnr'], '{:.2f}')} "
            f"| {_signed(comparison['psnr_difference'], '{:.2f}')} "
            f"| {with_ci(summary['ssim'], '{:.3f}')} "
            f"| {with_ci(summary['instability'], '{:.4f}') if summary['instability'] else '—'} "
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
