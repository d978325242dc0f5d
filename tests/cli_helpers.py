"""Running the command line in-process, and reading a refusal's one line (shared by the CLI tests)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from click.testing import CliRunner, Result
from PIL import Image

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


class RecordingPipeline:
    """Stands in for a loaded pipeline: records each image's knobs (no generators) and returns the images
    unchanged, so a batch runs without a model."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def set_progress_bar_config(self, **kwargs: object) -> None:
        pass

    def __call__(self, images: list[Image.Image], masks: list[Any], **kwargs: Any) -> SimpleNamespace:
        for _ in images:
            self.calls.append({name: value for name, value in kwargs.items() if name != "generator"})
        return SimpleNamespace(images=[image.convert("RGB") for image in images])
