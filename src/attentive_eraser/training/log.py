"""The loss log, ``loss_log.jsonl``: one JSON record per training step and per validation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any


class LossLog:
    """``loss_log.jsonl``: one JSON object per line (``stage``, ``step``, ``loss`` or validation metrics).

    ``keep`` (on resume) maps a stage to the last step whose records stay; later records of that stage,
    written after the checkpoint the run resumes from, are dropped, and stages not in ``keep`` are dropped.
    """

    def __init__(self, path: Path, keep: dict[str, int] | None = None) -> None:
        self.path = path
        kept: list[str] = []
        if keep is not None and path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                if record.get("stage") in keep and record.get("step", 0) <= keep[record["stage"]]:
                    kept.append(line)
        self._file: IO[str] = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()
        for line in kept:
            self._file.write(line + "\n")
        self._file.flush()

    def write(self, **record: Any) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()
