"""Training the demo model: a small Stable-Diffusion-architecture model on procedural scenes.

Run ``python -m attentive_eraser.training.train_demo --out DIR`` (see :mod:`.train_demo`). Importing this
package loads the config only; torch and diffusers load with :mod:`.train_demo` and :mod:`.models`.
"""

from __future__ import annotations

from .config import TrainingConfig

__all__ = ["TrainingConfig"]
