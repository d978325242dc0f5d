"""An open-vocabulary detector from transformers (OWLv2, OWL-ViT, Grounding DINO): words -> boxes.

torch and transformers load when a model does, never on import.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from .pretrained import load_pretrained, resolve_device
from .prompts import Box


@dataclass(frozen=True)
class Detection:
    """One detected match of the text: its box ``(x0, y0, x1, y1)`` in image pixels and its score."""

    box: Box
    score: float


class ZeroShotDetector:
    """An open-vocabulary detector from transformers (OWLv2, OWL-ViT, Grounding DINO): text -> boxes."""

    def __init__(self, model: Any, processor: Any, *, name: str = "detector") -> None:
        self.model = model.eval()
        self.processor = processor
        self.name = name

    @classmethod
    def from_pretrained(
        cls, source: str | os.PathLike, *, device: Any = None, spec: str | None = None
    ) -> ZeroShotDetector:
        source = str(source)
        spec = spec or f"detector:{source}"

        def load(where: str) -> ZeroShotDetector:
            import transformers

            processor = transformers.AutoProcessor.from_pretrained(where)
            model = transformers.AutoModelForZeroShotObjectDetection.from_pretrained(where)
            return cls(model.to(resolve_device(device)), processor, name=spec)

        return load_pretrained("segmenter", spec, source, load)

    def detect(self, image: np.ndarray, text: str, *, threshold: float = 0.1) -> list[Detection]:
        """Every match of ``text`` scoring at least ``threshold``, best first, boxes clipped to the image."""
        import torch

        height, width = image.shape[:2]
        picture = Image.fromarray(image)
        grounded = self.model.config.model_type in ("grounding-dino", "mm-grounding-dino")
        if grounded:
            # Grounding DINO reads one lower-case phrase ending in a full stop.
            phrase = text.lower().rstrip(".") + "."
            inputs = self.processor(images=picture, text=phrase, return_tensors="pt")
            target = [(height, width)]
        else:
            inputs = self.processor(text=[[text]], images=picture, return_tensors="pt")
            # OWL-ViT/OWLv2 pad the image to a square; their boxes are relative to that square.
            side = max(height, width)
            target = [(side, side)]
        device = next(self.model.parameters()).device
        inputs = {name: value.to(device) for name, value in inputs.items() if hasattr(value, "to")}
        with torch.inference_mode():
            outputs = self.model(**inputs)
        for key, value in outputs.items():  # post-processing runs on the CPU
            if hasattr(value, "cpu"):
                outputs[key] = value.cpu()
        if grounded:
            results = self.processor.post_process_grounded_object_detection(
                outputs,
                inputs["input_ids"].cpu(),
                threshold=threshold,
                text_threshold=threshold,
                target_sizes=target,
            )
        else:
            results = self.processor.post_process_grounded_object_detection(
                outputs, threshold=threshold, target_sizes=target, text_labels=[[text]]
            )
        found = []
        for box, score in zip(results[0]["boxes"].tolist(), results[0]["scores"].tolist(), strict=False):
            x0, y0 = min(max(box[0], 0.0), width), min(max(box[1], 0.0), height)
            x1, y1 = min(max(box[2], 0.0), width), min(max(box[3], 0.0), height)
            if x1 - x0 >= 1.0 and y1 - y0 >= 1.0:
                found.append(Detection((x0, y0, x1, y1), float(score)))
        found.sort(key=lambda detection: -detection.score)
        return found
