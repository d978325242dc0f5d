"""Words -> boxes (a detector) -> masks (a segmenter): the text path of a selection."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import imaging
from .detector import ZeroShotDetector
from .prompts import Box, Prompt, Segmenter


class TextSegmenter(Segmenter):
    """Words -> boxes (``detector``) -> masks (``segmenter``); clicks and boxes go to ``segmenter`` directly.

    Every match scoring at least ``threshold`` is used (the prompt's ``top_k``: only the best k); their
    masks are united. A negative click drops the matches whose mask contains it.
    """

    supports_text = True

    def __init__(
        self,
        segmenter: Segmenter,
        detector: ZeroShotDetector,
        *,
        threshold: float = 0.1,
        name: str | None = None,
    ) -> None:
        self.segmenter = segmenter
        self.detector = detector
        self.threshold = threshold
        self.name = name or f"{segmenter.name}+{detector.name}"

    def segment(self, image: np.ndarray, prompt: Prompt, *, top_k: int | None = None) -> np.ndarray:
        """The union of the clicks' and box's mask and the masks of the text's matches; ``top_k``, when
        given, overrides ``prompt.top_k``."""
        top_k = prompt.top_k if top_k is None else top_k
        height, width = image.shape[:2]
        mask = np.zeros((height, width), dtype=bool)
        if prompt.points or prompt.box is not None:
            mask |= self.segmenter.segment(image, Prompt(prompt.points, prompt.negative_points, prompt.box))
        if prompt.text:
            detections = self.detector.detect(image, prompt.text, threshold=self.threshold)
            if not detections:
                raise imaging.InputError(
                    "text",
                    f"{prompt.text!r}: nothing in the image matches it with a score "
                    f"of at least {self.threshold:g} (detector {self.detector.name!r})",
                )
            chosen = detections[:top_k] if top_k is not None else detections
            for found in self.segmenter.segment_boxes(image, [detection.box for detection in chosen]):
                if any(found[int(y), int(x)] for x, y in prompt.negative_points):
                    continue
                mask |= found
        return mask

    def segment_boxes(self, image: np.ndarray, boxes: Sequence[Box]) -> list[np.ndarray]:
        return self.segmenter.segment_boxes(image, boxes)
