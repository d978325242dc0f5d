"""Training the demo model: a small Stable-Diffusion-architecture model on procedural scenes.

Run ``python -m attentive_eraser.training.train_demo --out DIR`` (see :mod:`.train_demo`). Importing this
package loads the config only; torch, diffusers and transformers load with :mod:`.train_demo` (and the
modules it is made of, which its docstring lists), :mod:`.models` and :mod:`.tokenizer` (the demo model's
tokenizer, which the tiny test models share).
"""

from __future__ import annotations

from .config import TrainingConfig

__all__ = ["TrainingConfig"]
