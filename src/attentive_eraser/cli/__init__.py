"""The ``attentive-eraser`` command line: ``remove``, ``demo``, ``batch``, ``eval`` and ``serve``.

Bad input exits with code 2 and one ``error: ...`` line on stderr naming the argument; anything else
that goes wrong is a bug and keeps its traceback (exit code 1). torch, diffusers, the batch runner and
the web app are imported inside the commands, after the inputs have been checked, so ``--help`` is
instant and bad input fails fast.

Modules: :mod:`.options` (the shared options and checks), one module per command (:mod:`.remove` with
``demo``, :mod:`.batch`, :mod:`.evaluate`, :mod:`.serve`); this one holds the group and registers them.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from .. import __version__
from .batch import batch_command
from .evaluate import eval_command
from .remove import demo_command, remove_command
from .serve import serve_command

__all__ = ["main"]


class _Group(click.Group):
    """A click group that reports every usage error as a single ``error: ...`` line (exit code 2)."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)  # type: ignore[call-overload]
        try:
            # Non-standalone mode hands click's exceptions to us instead of printing usage + hint + error.
            exit_code = super().main(*args, standalone_mode=False, **kwargs)  # type: ignore[call-overload]
        except getattr(click.exceptions, "NoArgsIsHelpError", ()) as error:  # bare group: show the help
            error.show()
            sys.exit(error.exit_code)
        except click.ClickException as error:
            click.echo(f"error: {' '.join(error.format_message().split())}", err=True)
            sys.exit(error.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(exit_code if isinstance(exit_code, int) else 0)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="attentive-eraser")
def main() -> None:
    """Training-free object removal with Stable Diffusion: Attentive Eraser (AAAI 2025)."""


for _command in (remove_command, demo_command, batch_command, eval_command, serve_command):
    main.add_command(_command)

if __name__ == "__main__":  # pragma: no cover
    main()
