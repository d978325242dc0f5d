"""``eval``: score a batch's results with the paper's metrics (engine: :mod:`attentive_eraser.evaluation`).

The metric networks and torch are imported when the command runs, after the inputs are checked.
"""

from __future__ import annotations

from pathlib import Path

import click

from .. import imaging
from ..evaluation.evaluate import (
    METRIC_GROUPS,
    METRICS,
    collect_items,
    evaluate,
    expand_metrics,
    load_networks,
    save_report,
    to_markdown,
)
from ..runtime import MissingExtraError, check_extra, quiet_third_party
from .options import PATH, input_errors

#: metrics computed with torchmetrics (FID; the SSIM map); LPIPS takes its default heads from it
_TORCHMETRICS = frozenset({"fid", "local_fid", "ssim_masked"})
_LPIPS = frozenset({"lpips", "lpips_masked"})


def _parse_metrics(_: click.Context, __: click.Parameter, value: str) -> tuple[str, ...]:
    names = tuple(name.strip().lower() for name in value.split(",") if name.strip())
    if not names:
        raise click.BadParameter(f"{value!r} names no metric; choose from {', '.join(METRICS)}")
    try:
        return expand_metrics(names)
    except imaging.InputError as error:
        raise click.BadParameter(error.message) from None


def _check_torchmetrics(metrics: tuple[str, ...], lpips_heads: Path | None) -> None:
    """One line naming the extra when a chosen metric needs torchmetrics and it is not installed."""
    wanted = set(metrics)
    if wanted & _TORCHMETRICS or (wanted & _LPIPS and lpips_heads is None):
        try:
            check_extra("attentive-eraser eval --metrics " + ",".join(metrics), "torchmetrics")
        except MissingExtraError as error:
            raise click.UsageError(str(error)) from None


def _print_notes(notes: dict[str, str]) -> None:
    """The metrics not computed, those with the same reason on one line."""
    by_reason: dict[str, list[str]] = {}
    for name, reason in notes.items():
        by_reason.setdefault(reason, []).append(name)
    for reason, names in by_reason.items():
        click.echo(f"{', '.join(names)}: not computed ({reason})")


@click.command("eval")
@click.argument("source", type=PATH)
@click.option(
    "-r",
    "--results",
    "results",
    type=PATH,
    multiple=True,
    required=True,
    help="A results folder (a batch OUTPUT_DIR); repeat it for the runs with other seeds "
    "(123, 321, 777) to get the CLIP consensus. The first one is scored.",
)
@click.option("--masks", type=PATH, default=None, metavar="FILE|DIR", help="As for batch.")
@click.option("--mask-pattern", default=None, metavar="PATTERN", help="As for batch.")
@click.option(
    "--backgrounds",
    type=PATH,
    default=None,
    metavar="DIR",
    help="Ground-truth backgrounds named like the results: adds PSNR, SSIM and LPIPS inside the mask.",
)
@click.option(
    "--metrics",
    default="all",
    show_default=True,
    callback=_parse_metrics,
    help="Comma-separated metrics, each on its own ("
    + ", ".join(METRICS)
    + ") or a group ("
    + ", ".join(f"{name}: {' + '.join(members)}" for name, members in METRIC_GROUPS.items() if name != "all")
    + "; all: every metric). PSNR and SSIM in the mask need no network weights.",
)
@click.option(
    "--inception",
    type=PATH,
    default=None,
    metavar="FILE",
    help="TorchScript Inception for FID. Default: NVlabs' inception-2015-12-05.pt in torch's hub "
    "cache, downloaded once.",
)
@click.option(
    "--lpips-backbone",
    type=PATH,
    default=None,
    metavar="FILE",
    help="torchvision's VGG-16 weights (vgg16-397923af.pth). Default: torch's hub cache, downloaded once.",
)
@click.option(
    "--lpips-heads",
    type=PATH,
    default=None,
    metavar="FILE",
    help="LPIPS v0.1 VGG linear heads. Default: the copy torchmetrics ships.",
)
@click.option(
    "--clip",
    default=None,
    metavar="ID|DIR",
    help="CLIP model and processor (a hub id or a saved folder). Default: openai/clip-vit-base-patch32.",
)
@click.option(
    "--size",
    type=click.IntRange(32, 4096),
    default=512,
    show_default=True,
    help="Side of the square images FID and LPIPS compare.",
)
@click.option(
    "--crop-size",
    type=click.IntRange(32, 4096),
    default=299,
    show_default=True,
    help="Side of the box crops local FID compares.",
)
@click.option("--batch-size", type=click.IntRange(1, 1024), default=16, show_default=True)
@click.option("--device", default=None, metavar="DEVICE", help="Default: CUDA if available, else CPU.")
@click.option(
    "-o",
    "--output",
    type=PATH,
    default=None,
    help="Write the metrics as JSON here (and a markdown table beside it, .md).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def eval_command(
    source: Path,
    results: tuple[Path, ...],
    masks: Path | None,
    mask_pattern: str | None,
    backgrounds: Path | None,
    metrics: tuple[str, ...],
    inception: Path | None,
    lpips_backbone: Path | None,
    lpips_heads: Path | None,
    clip: str | None,
    size: int,
    crop_size: int,
    batch_size: int,
    device: str | None,
    output: Path | None,
    quiet: bool,
) -> None:
    """Score removal results against their originals with the paper's metrics (its Table 1).

    SOURCE is what `batch` was given (a folder or manifest of images and masks); each item's result is
    looked up in every RESULTS folder under its output path. Prints a markdown table.
    """
    _check_torchmetrics(metrics, lpips_heads)
    with input_errors():
        items, missing = collect_items(
            source, list(results), masks=masks, mask_pattern=mask_pattern, backgrounds=backgrounds
        )
        if not items:
            raise imaging.InputError("results", "no item of SOURCE has a result in every results folder")
        with quiet_third_party():
            import torch

            torch_device = (
                torch.device(device)
                if device
                else torch.device("cuda" if torch.cuda.is_available() else "cpu")
            )
            networks = load_networks(
                metrics,
                inception=inception,
                lpips_backbone=lpips_backbone,
                lpips_heads=lpips_heads,
                clip=clip,
                backgrounds=backgrounds is not None,
                device=torch_device,
            )
            report = evaluate(
                items,
                networks,
                metrics=metrics,
                size=size,
                crop_size=crop_size,
                batch_size=batch_size,
                device=torch_device,
                progress=not quiet,
                missing=missing,
                results=list(results),
            )
    table = to_markdown({str(results[0]): report.metrics}, items={str(results[0]): report.items})
    click.echo(table, nl=False)
    _print_notes(report.notes)
    if missing:
        click.echo(f"{len(missing)} item(s) without a result in every folder were left out")
    if output is not None:
        save_report(report, output, table)
        click.echo(f"metrics: {output}")
