"""SAM and the text path (OWLv2 -> boxes -> SAM) on tiny random models built from configs: plumbing,
shapes, prompts, the choice among SAM's candidate masks, and errors. Nothing is downloaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from attentive_eraser import imaging
from attentive_eraser.selection import (
    Detection,
    Prompt,
    SamSegmenter,
    Segmenter,
    TextSegmenter,
    ZeroShotDetector,
    clear_cache,
    load_segmenter,
    select_object,
)
from attentive_eraser.testing.tiny_selection import save_tiny_owlv2, save_tiny_sam


@pytest.fixture(scope="module")
def sam_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_sam(tmp_path_factory.mktemp("tiny") / "sam")


@pytest.fixture(scope="module")
def owl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_owlv2(tmp_path_factory.mktemp("tiny") / "owlv2")


@pytest.fixture(autouse=True)
def _fresh_cache() -> Any:
    clear_cache()
    yield
    clear_cache()


def _image(width: int = 80, height: int = 48) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)


class _Recorder:
    """Wraps a processor and records the prompt arguments of each call."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> Any:
        self.calls.append({key: value for key, value in kwargs.items() if key.startswith("input_")})
        return self.processor(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.processor, name)


def test_sam_loads_from_a_folder_and_returns_an_image_sized_mask(sam_dir: Path) -> None:
    segmenter = load_segmenter(f"sam:{sam_dir}")
    assert isinstance(segmenter, SamSegmenter) and segmenter.name == f"sam:{sam_dir}"
    mask = segmenter.segment(_image(), Prompt(points=((10.0, 20.0),)))
    assert mask.dtype == bool and mask.shape == (48, 80)


def test_sam_prompts_reach_the_processor_as_one_object(sam_dir: Path) -> None:
    segmenter = load_segmenter(f"sam:{sam_dir}")
    recorder = _Recorder(segmenter.processor)
    segmenter.processor = recorder
    segmenter.segment(
        _image(),
        Prompt(
            points=((10.0, 20.0), (30.0, 5.0)), negative_points=((70.0, 40.0),), box=(5.0, 4.0, 50.0, 40.0)
        ),
    )
    call = recorder.calls[-1]
    assert call["input_points"] == [[[[10.0, 20.0], [30.0, 5.0], [70.0, 40.0]]]]
    assert call["input_labels"] == [[[1, 1, 0]]]
    assert call["input_boxes"] == [[[5.0, 4.0, 50.0, 40.0]]]
    segmenter.segment(_image(), Prompt(box=(5.0, 4.0, 50.0, 40.0)))
    assert set(recorder.calls[-1]) == {"input_boxes"}


def test_sam_keeps_the_candidate_with_the_best_predicted_iou(sam_dir: Path) -> None:
    """The mask returned is candidate argmax(iou_scores) of the model's own three, post-processed."""
    segmenter = load_segmenter(f"sam:{sam_dir}")
    image = _image()
    processor, model = segmenter.processor, segmenter.model
    inputs = processor(images=image, input_points=[[[[10, 20]]]], input_labels=[[[1]]], return_tensors="pt")
    with torch.no_grad():
        outputs = model(
            pixel_values=inputs["pixel_values"],
            input_points=inputs["input_points"],
            input_labels=inputs["input_labels"],
            multimask_output=True,
        )
    candidates = processor.post_process_masks(
        outputs.pred_masks, inputs["original_sizes"], inputs["reshaped_input_sizes"]
    )[0][0]  # (3, H, W)
    best = int(outputs.iou_scores[0, 0].argmax())
    chosen = segmenter.segment(image, Prompt(points=((10.0, 20.0),)))
    assert np.array_equal(chosen, candidates[best].numpy())
    # and the rule itself, on scores that make every candidate the winner in turn
    masks = np.stack([np.full((2, 2), value) for value in (False, True, False)])[None]  # (1, 3, 2, 2)
    for winner in range(3):
        scores = np.zeros((1, 3))
        scores[0, winner] = 1.0
        assert np.array_equal(SamSegmenter._best(masks, scores)[0], masks[0, winner])


def test_sam_boxes_are_prompted_together_one_mask_each(sam_dir: Path) -> None:
    segmenter = load_segmenter(f"sam:{sam_dir}")
    recorder = _Recorder(segmenter.processor)
    segmenter.processor = recorder
    masks = segmenter.segment_boxes(_image(), [(0, 0, 40, 30), (20, 10, 79, 47)])
    assert len(masks) == 2 and all(mask.shape == (48, 80) for mask in masks)
    assert len(recorder.calls) == 1 and len(recorder.calls[0]["input_boxes"][0]) == 2


class _Fixed(Segmenter):
    """A segmenter returning a given mask (to test what select_object does around a model)."""

    name = "fixed"

    def __init__(self, mask: np.ndarray) -> None:
        self.mask = mask

    def segment(self, image: np.ndarray, prompt: Prompt) -> np.ndarray:
        return self.mask.copy()


def test_select_object_post_processes_model_masks() -> None:
    mask = np.zeros((48, 80), bool)
    mask[10:30, 10:30] = True
    mask[12, 12] = False  # a pinhole: filled
    mask[40:44, 60:64] = True  # a stray blob: dropped (it holds no click)
    selected = select_object(_image(), points=[(20, 20)], segmenter=_Fixed(mask))
    expected = np.zeros_like(mask)
    expected[10:30, 10:30] = True
    assert np.array_equal(selected, expected)
    kept = select_object(
        _image(), points=[(20, 20)], segmenter=_Fixed(mask), fill_holes=False, largest_component=False
    )
    assert np.array_equal(kept, mask)


def test_text_needs_a_detector(sam_dir: Path) -> None:
    with pytest.raises(imaging.InputError, match=r"^text: 'the red car' needs a text-capable segmenter"):
        select_object(_image(), text="the red car", segmenter=f"sam:{sam_dir}")


def test_text_path_owlv2_boxes_then_sam_masks(sam_dir: Path, owl_dir: Path) -> None:
    spec = f"sam:{sam_dir}+detector:{owl_dir}"
    segmenter = load_segmenter(spec)
    assert isinstance(segmenter, TextSegmenter) and segmenter.supports_text
    image = _image()
    detections = segmenter.detector.detect(image, "a red disc", threshold=0.0)
    assert detections and all(isinstance(found, Detection) for found in detections)
    scores = [found.score for found in detections]
    assert scores == sorted(scores, reverse=True)
    for found in detections:
        x0, y0, x1, y1 = found.box
        assert 0 <= x0 < x1 <= 80 and 0 <= y0 < y1 <= 48
    # every match's SAM mask, united; top_k=1 keeps the best match only
    segmenter.threshold = 0.0
    masks = segmenter.segmenter.segment_boxes(image, [found.box for found in detections])
    union = np.logical_or.reduce(masks)
    assert np.array_equal(segmenter.segment(image, Prompt(text="a red disc")), union)
    assert np.array_equal(segmenter.segment(image, Prompt(text="a red disc"), top_k=1), masks[0])


def test_text_with_no_match_is_one_clear_error(sam_dir: Path, owl_dir: Path) -> None:
    sam = SamSegmenter.from_pretrained(sam_dir)
    detector = ZeroShotDetector.from_pretrained(owl_dir)
    strict = TextSegmenter(sam, detector, threshold=0.999)
    expected = r"^text: 'a unicorn': nothing in the image matches it with a score of at least 0.999"
    with pytest.raises(imaging.InputError, match=expected):
        select_object(_image(), text="a unicorn", segmenter=strict)


def test_text_and_clicks_combine(owl_dir: Path) -> None:
    """Clicks go to the segmenter, words to the detector; the masks are united."""
    from attentive_eraser.selection import ClassicSegmenter

    image = np.full((48, 80, 3), 150, np.uint8)
    image[5:15, 5:15] = (230, 20, 20)
    text = TextSegmenter(ClassicSegmenter(), ZeroShotDetector.from_pretrained(owl_dir), threshold=0.0)
    clicked = select_object(image, points=[(10, 10)], segmenter=ClassicSegmenter())
    both = text.segment(image, Prompt(points=((10.0, 10.0),), text="a red square"), top_k=1)
    assert (both & clicked).sum() == clicked.sum()


def test_a_detector_folder_that_is_not_a_model(tmp_path: Path, sam_dir: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(imaging.InputError) as raised:
        load_segmenter(f"sam:{sam_dir}+detector:{tmp_path}")
    assert raised.value.argument == "segmenter" and str(tmp_path) in str(raised.value)


def test_a_folder_of_another_model_type_is_refused(owl_dir: Path) -> None:
    with pytest.raises(imaging.InputError, match="is not a Segment Anything model"):
        load_segmenter(f"sam:{owl_dir}")
