"""``batch``: remove objects from every image of a folder or manifest, resumably, on one or many processes.

The work is :mod:`attentive_eraser.runner`'s (imported when the command runs); this module parses and
checks the command line and prints the outcome.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .. import imaging
from ..runtime import check_device, quiet_third_party
from .options import PATH, input_errors, removal_options, removal_request

if TYPE_CHECKING:  # pragma: no cover
    from ..runner import BatchPlan, ItemResult


@click.command("batch")
@click.argument("source", type=PATH)
@click.option(
    "-o",
    "--output-dir",
    type=PATH,
    required=True,
    help="Folder for the results; each keeps its input's relative path and format.",
)
@click.option(
    "--masks",
    type=PATH,
    default=None,
    metavar="FILE|DIR",
    help="One mask FILE for every image, or a DIR of masks mirroring SOURCE's folders "
    "(default: masks lie beside their images).",
)
@click.option(
    "--mask-pattern",
    default=None,
    metavar="PATTERN",
    help="Name of an image's mask; {stem}, {name} and {suffix} are the image's, * and ? glob. "
    "Default: '{stem}_mask.*' beside the images, '{stem}.*' in a --masks folder.",
)
@removal_options
@click.option(
    "--fixed-seed",
    is_flag=True,
    help="Give every item the seed --seed itself (the paper's protocol), instead of a hash of the "
    "item's output path and --seed.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 256),
    default=4,
    show_default=True,
    help="Items per pipeline call (items of one size and settings run together).",
)
@click.option(
    "--limit", type=click.IntRange(min=0), default=None, help="Only the first N items (in output-path order)."
)
@click.option(
    "--dry-run", is_flag=True, help="Check every input and print what would run; no model, nothing written."
)
@click.option("--overwrite", is_flag=True, help="Redo items whose output already exists.")
@click.option(
    "--resize-mask", is_flag=True, help="Resize masks whose size differs from their image's; else fail."
)
@click.option(
    "--freeu", is_flag=True, help="Enable FreeU with SD 2.1's factors (as for the paper's SD 2.1 numbers)."
)
@click.option(
    "--report",
    "report_path",
    type=PATH,
    default=None,
    help="JSONL report, one line per item. Default: OUTPUT_DIR/batch-report.jsonl.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def batch_command(
    source: Path,
    output_dir: Path,
    masks: Path | None,
    mask_pattern: str | None,
    fixed_seed: bool,
    batch_size: int,
    limit: int | None,
    dry_run: bool,
    overwrite: bool,
    resize_mask: bool,
    freeu: bool,
    report_path: Path | None,
    quiet: bool,
    **settings: Any,
) -> None:
    """Remove objects from every image of SOURCE (a folder, or a CSV/JSONL manifest) into OUTPUT_DIR.

    Rerunning the same command resumes: valid outputs are skipped, partial ones redone. A bad item is
    recorded in the report with its reason and the run goes on; the exit code is 1 if any item failed.
    A manifest may set any knob per item (a column named like the knob: num_inference_steps, scheduler,
    ...), and method, strategy, paste_back and fast.
    Launch it with `accelerate launch` or `torchrun` to split the items between processes (GPUs).
    """
    report_path = report_path if report_path is not None else output_dir / "batch-report.jsonl"
    with input_errors():
        # checked as remove() checks them, before any file is listed (each row's when planning)
        options = removal_request(settings, progress=False)
        from ..runner import check_report_path, list_items, plan_dry_run, run_batch
        from ..runner.sources import inside

        if output_dir.exists() and not output_dir.is_dir():
            raise imaging.InputError("output-dir", f"{str(output_dir)!r} is a file, not a folder")
        if source.is_dir() and inside(source, output_dir):
            raise imaging.InputError(
                "output-dir", f"{str(output_dir)!r} contains SOURCE; write the results elsewhere"
            )
        items = list_items(
            source,
            output_dir,
            masks=masks,
            mask_pattern=mask_pattern,
            base_seed=options.seed,
            fixed_seed=fixed_seed,
        )
        read_too = [path for path in (source if source.is_file() else None, masks) if path is not None]
        check_report_path(report_path, items, inputs=read_too)
        imaging.check_output_path(
            output_dir / "batch-report.jsonl", argument="output-dir", needed_bytes=2**20
        )
        if dry_run:
            plan, failing = plan_dry_run(
                items,
                options,
                batch_size=batch_size,
                limit=limit,
                overwrite=overwrite,
                resize_mask=resize_mask,
            )
            _print_dry_run(plan, failing)
            click.get_current_context().exit(
                1 if failing or any(r.status == "failed" for r in plan.settled) else 0
            )
        with quiet_third_party(quiet):
            check_device(options.device)
            summary = run_batch(
                items,
                options,
                report_path=report_path,
                batch_size=batch_size,
                limit=limit,
                overwrite=overwrite,
                resize_mask=resize_mask,
                progress=not quiet,
                freeu=freeu,
                inputs=read_too,
                out_dir=output_dir,
            )
    from ..runner import is_main_process

    rate = summary.done / summary.seconds if summary.seconds > 0 else math.inf
    if is_main_process():
        click.echo(
            f"{summary.total} items: {summary.done} done, {summary.skipped} skipped, {summary.failed} "
            f"failed in {summary.seconds:.1f} s ({rate:.2f} items/s, {summary.processes} process"
            f"{'es' if summary.processes > 1 else ''}); report: {report_path}"
        )
    click.get_current_context().exit(summary.exit_code)


def _print_dry_run(plan: BatchPlan, failing: Iterable[ItemResult]) -> None:
    failing = list(failing)
    bad = {result.id for result in failing}
    for result in plan.settled:
        click.echo(f"{'skip' if result.status == 'skipped' else 'FAIL'}  {result.id}  ({result.reason})")
    for batch in plan.batches:
        for item in batch:
            if item.id not in bad:
                click.echo(
                    f"run   {item.id}  image={item.image} mask={item.mask} seed={item.seed} "
                    f"batch={len(batch)}"
                )
    for result in failing:
        click.echo(f"FAIL  {result.id}  ({result.reason})")
    skipped = sum(result.status == "skipped" for result in plan.settled)
    failed = len(failing) + sum(result.status == "failed" for result in plan.settled)
    click.echo(
        f"dry run: {plan.total} items: {plan.pending - len(failing)} to run in {len(plan.batches)} "
        f"batches, {skipped} skipped, {failed} would fail",
        err=False,
    )
    sys.stdout.flush()
