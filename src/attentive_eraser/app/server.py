"""Starting the web app: server options (checked before anything loads), :func:`launch` and :func:`serve`.

Gradio is imported only by :func:`serve` (through :func:`~attentive_eraser.app.ui.build_app`).
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import re
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .. import imaging

if TYPE_CHECKING:  # pragma: no cover
    import gradio as gr

logger = logging.getLogger("attentive_eraser.app")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
DEFAULT_MAX_FILE_SIZE = "20mb"
_FILE_SIZE = re.compile(r"^\s*(\d+)\s*(b|kb|mb|gb|tb)?\s*$", re.IGNORECASE)
_FILE_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}


def parse_file_size(size: str | int | None) -> int | None:
    """Bytes of an upload limit like ``"20mb"``, ``"500 kb"`` or ``1048576`` (``None``: no limit)."""
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, (int, str)):
        raise imaging.InputError("max_file_size", f"expected a size such as 20mb or 500kb, got {size!r}")
    if isinstance(size, int):
        if size < 1:
            raise imaging.InputError("max_file_size", f"{size!r} must be a positive number of bytes")
        return size
    match = _FILE_SIZE.match(size)
    if match is None:
        raise imaging.InputError("max_file_size", f"{size!r} is not a size such as 20mb, 500kb or 1gb")
    number = int(match.group(1)) * _FILE_UNITS[(match.group(2) or "b").lower()]
    if number < 1:
        raise imaging.InputError("max_file_size", f"{size!r} must be more than 0 bytes")
    return number


def _addresses(host: str) -> list[str]:
    """The addresses ``host`` stands for: itself if it is one, else what this machine resolves it to."""
    if not isinstance(host, str) or not host.strip():
        raise imaging.InputError("host", f"{host!r} is not an address")
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        if re.fullmatch(r"[\d.]+", host):  # dotted numbers that are no IPv4 address: no DNS lookup
            raise imaging.InputError("host", f"{host!r} is not a valid IP address") from None
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise imaging.InputError(
            "host", f"{host!r} is neither an IP address nor a name this machine resolves"
        ) from None
    return sorted({str(entry[4][0]) for entry in found})


def _check_bind(host: str, address: str, port: int) -> None:
    """Bind ``address:port`` once, as the web server will; a failure names the option to change."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the web server binds
        try:
            probe.bind((address, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise imaging.InputError("port", f"{port} is already in use on {host}") from None
            if error.errno == errno.EADDRNOTAVAIL:
                raise imaging.InputError("host", f"{host!r} is not an address of this machine") from None
            if error.errno in (errno.EACCES, errno.EPERM):
                raise imaging.InputError(
                    "port", f"{port} on {host} needs privileges this user lacks"
                ) from None
            raise imaging.InputError(
                "host", f"cannot listen on {host}:{port} ({' '.join(str(error).split())})"
            ) from None


def check_server_options(host: str, port: int | None, max_file_size: str | int | None) -> None:
    """Refuse, before any model is loaded, options the server could not start with.

    The host must be an address (or a name that resolves to one) of this machine, the port free to bind
    there, the upload limit a size.
    """
    parse_file_size(max_file_size)
    addresses = _addresses(host)
    if port is None:
        return
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise imaging.InputError("port", f"{port!r} is not a port number from 1 to 65535")
    _check_bind(host, addresses[0], port)


def launch(
    app: gr.Blocks,
    *,
    host: str = DEFAULT_HOST,
    port: int | None = DEFAULT_PORT,
    max_file_size: str | int | None = DEFAULT_MAX_FILE_SIZE,
    block: bool = True,
    quiet: bool = False,
) -> str:
    """Start serving ``app``; returns its URL. ``block=False`` returns at once (stop with ``app.close()``)."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("Serving on %s: anyone who can reach this address can use the app.", host)
    _, url, _ = app.launch(
        server_name=host,
        server_port=port,
        max_file_size=max_file_size,
        ssr_mode=False,
        share=False,
        inbrowser=False,
        show_error=False,
        prevent_thread_lock=not block,
        quiet=quiet,
    )
    return str(url)


def serve(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    models: Sequence[str | None] = (None,),
    *,
    device: str | None = None,
    dtype: str | None = None,
    max_file_size: str | int | None = DEFAULT_MAX_FILE_SIZE,
    block: bool = True,
    max_pixels: int | None = imaging.DEFAULT_MAX_PIXELS,
    segmenter: str | None = None,
) -> gr.Blocks:
    """Check the options, load the first model (a bad one fails now, not at the first click), serve the app.

    Host, port, upload limit and device are checked before anything is loaded.
    """
    from ..api import detect_family
    from ..runtime import check_device, quiet_third_party
    from .service import EraserService
    from .ui import build_app

    check_server_options(host, port, max_file_size)
    check_device(device)
    service = EraserService(
        models or (None,), device=device, dtype=dtype, max_pixels=max_pixels, segmenter=segmenter
    )
    with quiet_third_party():
        if segmenter is not None:  # a wrong spec, or weights missing offline, fail now
            from ..selection import load_segmenter

            load_segmenter(segmenter, device=device)
        service.pipeline(service.default_model, "sip")
    for model in list(service.models.values())[1:]:  # loaded on first use; a typo should fail now
        if model is not None:
            detect_family(model)
    app = build_app(service=service)
    launch(app, host=host, port=port, max_file_size=max_file_size, block=block)
    return app
