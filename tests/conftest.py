"""Shared fixtures: offline settings and tiny random-weight models (see ``attentive_eraser.testing.tiny``)."""

from __future__ import annotations

import os

# Set before anything imports huggingface_hub, which reads these once at import time: no test may
# reach a model hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
# OpenMP's default wait policy keeps idle worker threads spinning on the cores; on a small machine shared
# with other processes (CI runners, two test runs at once) that made runs up to 50x slower. PASSIVE lets
# them sleep. OpenMP reads it once, when torch loads its runtime, so it is set before importing torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from attentive_eraser.testing.tiny import build_components, save_tiny_model  # noqa: E402

# The tiny models are too small to gain from more threads, and competing OpenMP pools on a shared
# 2-core machine slow everything down.
torch.set_num_threads(2)


@pytest.fixture
def make_tiny_components() -> Callable[..., dict[str, Any]]:
    """Factory for fresh tiny components: ``make_tiny_components("sdxl", seed=0, prediction_type=None)``."""
    return build_components


@pytest.fixture(scope="session")
def tiny_sd15_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SD 1.5-topology pipeline folder, saved once per session; treat it as read-only."""
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "sd15", family="sd15")


@pytest.fixture(scope="session")
def tiny_sd21_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SD 2.1-topology (epsilon) pipeline folder, saved once per session; treat it as read-only."""
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "sd21", family="sd21")


@pytest.fixture(scope="session")
def tiny_sdxl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SDXL-topology pipeline folder, saved once per session; treat it as read-only."""
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "sdxl", family="sdxl")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``cuda`` need a CUDA device: without one they are deselected whatever ``-m`` says.

    ``addopts`` deselects them by default, but a ``-m`` of one's own (``-m "not slow"``) replaces that
    expression; this keeps the CPU edit loop free of GPU-only checks.
    """
    import torch

    if torch.cuda.is_available():
        return
    deselected = [item for item in items if item.get_closest_marker("cuda") is not None]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item.get_closest_marker("cuda") is None]
