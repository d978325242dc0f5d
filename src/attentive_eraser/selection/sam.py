"""Segment Anything (SAM, SAM-HQ or SAM 2) through transformers: clicks and boxes as prompts.

torch and transformers load when a model does, never on import.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from .pretrained import load_pretrained, resolve_device
from .prompts import Box, Prompt, Segmenter


class SamSegmenter(Segmenter):
    """Segment Anything (SAM, SAM-HQ or SAM 2) through transformers: clicks and boxes as prompts.

    Each prompt gives three candidate masks (``multimask_output``); the one with the highest predicted
    IoU is kept. Several boxes (the text path) are prompted together on one image encoding.
    """

    def __init__(self, model: Any, processor: Any, *, name: str = "sam") -> None:
        self.model = model.eval()
        self.processor = processor
        self.name = name

    @classmethod
    def from_pretrained(
        cls, source: str | os.PathLike, *, device: Any = None, spec: str | None = None
    ) -> SamSegmenter:
        """Load a SAM checkpoint (hub id or local folder); missing weights offline raise ``InputError``."""
        source = str(source)
        spec = spec or f"sam:{source}"

        def load(where: str) -> SamSegmenter:
            import transformers

            config = transformers.AutoConfig.from_pretrained(where)
            classes = {
                "sam": ("SamModel", "SamProcessor"),
                "sam_hq": ("SamHQModel", "SamHQProcessor"),
                "sam2": ("Sam2Model", "Sam2Processor"),
            }
            if config.model_type not in classes or not hasattr(transformers, classes[config.model_type][0]):
                raise ValueError(
                    f"model_type {config.model_type!r} is not a Segment Anything model ({', '.join(classes)})"
                )
            model_name, processor_name = classes[config.model_type]
            processor = getattr(transformers, processor_name).from_pretrained(where)
            model = getattr(transformers, model_name).from_pretrained(where)
            return cls(model.to(resolve_device(device)), processor, name=spec)

        return load_pretrained("segmenter", spec, source, load)

    def _run(self, image: np.ndarray, **prompts: Any) -> tuple[np.ndarray, np.ndarray]:
        """Masks ``(P, 3, H, W)`` bool and predicted IoUs ``(P, 3)`` for P prompts of one image."""
        import torch

        inputs = self.processor(images=Image.fromarray(image), return_tensors="pt", **prompts)
        device = next(self.model.parameters()).device
        dtype = next(self.model.parameters()).dtype
        inputs = {name: value.to(device) for name, value in inputs.items() if hasattr(value, "to")}
        inputs["pixel_values"] = inputs["pixel_values"].to(dtype)
        original_sizes = inputs.pop("original_sizes")
        reshaped = inputs.pop("reshaped_input_sizes", None)
        with torch.inference_mode():
            outputs = self.model(**inputs, multimask_output=True)
        extra = () if reshaped is None else (reshaped.cpu(),)
        low_resolution = outputs.pred_masks.float().cpu()  # (1, P, 3, h, w) logits
        masks = self.processor.post_process_masks(low_resolution, original_sizes.cpu(), *extra)[0]
        return masks.numpy().astype(bool), outputs.iou_scores[0].float().cpu().numpy()

    @staticmethod
    def _best(masks: np.ndarray, scores: np.ndarray) -> list[np.ndarray]:
        """Per prompt, the candidate with the highest predicted IoU."""
        return [masks[index, int(np.argmax(scores[index]))] for index in range(masks.shape[0])]

    def segment(self, image: np.ndarray, prompt: Prompt) -> np.ndarray:
        self.refuse_text(prompt)
        prompts: dict[str, Any] = {}
        clicks = [*prompt.points, *prompt.negative_points]
        if clicks:
            labels = [1] * len(prompt.points) + [0] * len(prompt.negative_points)
            # (image, object, point, xy) and (image, object, point): all clicks prompt one object
            prompts["input_points"] = [[[[x, y] for x, y in clicks]]]
            prompts["input_labels"] = [[labels]]
        if prompt.box is not None:
            prompts["input_boxes"] = [[list(prompt.box)]]  # (image, box, xyxy)
        masks, scores = self._run(image, **prompts)
        return self._best(masks, scores)[0]

    def segment_boxes(self, image: np.ndarray, boxes: Sequence[Box]) -> list[np.ndarray]:
        if not boxes:
            return []
        masks, scores = self._run(image, input_boxes=[[list(box) for box in boxes]])
        return self._best(masks, scores)
