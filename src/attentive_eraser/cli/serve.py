"""``serve``: the web app and its HTTP API (:mod:`attentive_eraser.app`, imported when the command runs)."""

from __future__ import annotations

import click

from .. import imaging
from ..runtime import check_device, quiet_third_party
from .options import input_errors


@click.command("serve")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; 0.0.0.0 exposes the app to the network.",
)
@click.option(
    "--port", type=click.IntRange(1, 65535), default=7860, show_default=True, help="Port to listen on."
)
@click.option(
    "--model",
    "models",
    multiple=True,
    metavar="ID|DIR|FILE",
    help="Weights to offer (hub id, diffusers folder or .safetensors file); repeat to offer several, the "
    "first is preselected. Requests can only choose among these. Default: the built-in default model.",
)
@click.option(
    "--device",
    default=None,
    metavar="DEVICE",
    help="cpu, cuda, cuda:1, mps, ... Default: CUDA, else MPS, else CPU.",
)
@click.option(
    "--max-file-size",
    default="20mb",
    show_default=True,
    metavar="SIZE",
    help="Largest upload accepted (e.g. 20mb, 500kb).",
)
@click.option(
    "--max-pixels",
    type=click.IntRange(min=1),
    default=imaging.DEFAULT_MAX_PIXELS,
    show_default=True,
    metavar="N",
    help="Refuse photos and masks of more than N pixels (checked before decoding).",
)
@click.option(
    "--segmenter",
    default=None,
    metavar="SPEC",
    help="Who turns clicks and words into masks: classic (no weights; the default), sam:<hub id or "
    "folder>, either + detector:<hub id or folder> for the 'object to remove' text box.",
)
def serve_command(
    host: str,
    port: int,
    models: tuple[str, ...],
    device: str | None,
    max_file_size: str,
    max_pixels: int,
    segmenter: str | None = None,
) -> None:
    """Start the web app (paint, remove, compare, download) and its HTTP API on HOST:PORT.

    Needs the app extra: pip install "attentive-eraser[app]". Removals run one at a time in a queue.
    """
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise click.UsageError('the web app needs Gradio: pip install "attentive-eraser[app]"') from None
    with input_errors():
        from ..app import check_server_options, serve

        check_server_options(host, port, max_file_size)  # before anything is loaded
        with quiet_third_party():
            check_device(device)
        serve(
            host=host,
            port=port,
            models=list(models) or [None],
            device=device,
            max_file_size=max_file_size,
            max_pixels=max_pixels,
            segmenter=segmenter,
        )
