"""Running the command line in-process, and reading a refusal's one line (shared by the CLI tests)."""

from __future__ import annotations

from click.testing import CliRunner, Result

from attentive_eraser.cli import main


def invoke(*args: object) -> Result:
    return CliRunner().invoke(main, [str(arg) for arg in args])


def one_error_line(result: Result) -> str:
    """The single ``error: ...`` line of a refused command (exit code 2, no traceback)."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]
