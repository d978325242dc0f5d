"""The segmenter registry (spec prefix -> factory), top_k in the prompt, the selection fields' schema."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pytest

import attentive_eraser.selection as selection
from attentive_eraser import imaging
from attentive_eraser.selection import (
    SELECTION_FIELD_NAMES,
    SELECTION_FIELDS,
    AddOnKind,
    Box,
    Detection,
    Prompt,
    Segmenter,
    SegmenterKind,
    SelectionRequest,
    TextSegmenter,
    add_on_kinds,
    load_segmenter,
    register_segmenter,
    segmenter_kinds,
    select_object,
    selection_field,
    spec_help,
    unregister_segmenter,
)
from attentive_eraser.selection.registry import parse_spec


class _Square(Segmenter):
    """Selects a fixed square whatever the prompt; remembers the prompts it was given."""

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.source = source
        self.prompts: list[Prompt] = []

    def segment(self, image: np.ndarray, prompt: Prompt) -> np.ndarray:
        self.prompts.append(prompt)
        mask = np.zeros(image.shape[:2], dtype=bool)
        mask[10:20, 10:20] = True
        return mask


class _Wrapped(Segmenter):
    """An add-on's wrapper: the inner segmenter's mask, grown by one row."""

    def __init__(self, inner: Segmenter, source: str, name: str) -> None:
        self.inner = inner
        self.source = source
        self.name = name

    def segment(self, image: np.ndarray, prompt: Prompt) -> np.ndarray:
        mask = self.inner.segment(image, prompt)
        return mask | np.roll(mask, 1, axis=0)


def _square(source: str, *, device: Any, spec: str) -> Segmenter:
    return _Square(spec, source)


def _wrap(segmenter: Segmenter, source: str, *, device: Any, spec: str, name: str) -> Segmenter:
    return _Wrapped(segmenter, source, name)


@pytest.fixture
def square_kinds() -> Iterator[None]:
    """A segmenter kind ``square:<name>`` and an add-on ``+taller`` registered for one test."""
    register_segmenter(SegmenterKind("square", _square, help="a fixed square", source="name"))
    register_segmenter(AddOnKind("taller", _wrap, help="one row taller"))
    try:
        yield
    finally:
        unregister_segmenter("square")
        unregister_segmenter("taller")


def _image() -> np.ndarray:
    return np.full((40, 50, 3), 128, dtype=np.uint8)


# ---- the registry


def test_the_registry_lists_every_built_in_kind() -> None:
    assert [kind.prefix for kind in segmenter_kinds()] == ["classic", "sam"]
    assert [kind.prefix for kind in add_on_kinds()] == ["detector"]
    assert [kind.usage for kind in segmenter_kinds()] == ["classic", "sam:<hub id or folder>"]
    documented = selection.__doc__ or ""
    for usage in [kind.usage for kind in segmenter_kinds()] + [kind.usage for kind in add_on_kinds()]:
        assert usage in spec_help()
        assert f"``{usage}``" in documented or f"+{usage}``" in documented
    # the detector's other names select the same kind
    assert {kind.prefix for kind, _, _ in parse_spec("classic+owlv2:a/b")} == {"classic", "detector"}


def test_an_unknown_prefix_is_refused_naming_the_registered_kinds(
    square_kinds: None,
) -> None:
    with pytest.raises(imaging.InputError) as raised:
        load_segmenter("magic:x/y")
    message = str(raised.value)
    assert raised.value.argument == "segmenter" and "'magic:x/y'" in message
    for kind in segmenter_kinds():  # the test's kind too: the message comes from the registry
        assert repr(kind.usage) in message
    for add_on in add_on_kinds():
        assert repr("+" + add_on.usage) in message
    with pytest.raises(imaging.InputError) as raised:
        load_segmenter("square:a+magic")
    assert "after '+' comes" in str(raised.value)
    for add_on in add_on_kinds():
        assert repr(add_on.usage) in str(raised.value)
    # a kind in the wrong place, or a source where the kind takes none
    for spec in ("taller", "square:a+classic", "classic:anything"):
        with pytest.raises(imaging.InputError, match="segmenter: "):
            load_segmenter(spec)


def test_a_registered_kind_is_loadable_by_spec(square_kinds: None) -> None:
    loaded = load_segmenter("Square: mine ")
    assert isinstance(loaded, _Square) and loaded.source == "mine" and loaded.name == "Square: mine"
    assert load_segmenter("Square: mine ") is loaded  # cached
    combined = load_segmenter("square:mine+taller")
    assert isinstance(combined, _Wrapped) and isinstance(combined.inner, _Square)
    assert combined.name == "square:mine+taller" and combined.source == ""
    mask = select_object(_image(), points=[(12, 12)], segmenter="square:mine+taller")
    assert mask[10:21, 10:20].all() and mask.sum() == 11 * 10
    assert "square:<name> (a fixed square)" in spec_help() and "+taller (one row taller)" in spec_help()


def test_unregistering_forgets_the_kind_and_its_segmenters() -> None:
    register_segmenter(SegmenterKind("square", _square, help="a fixed square", source="name"))
    try:
        first = load_segmenter("square:a")
        with pytest.raises(ValueError, match="already registered"):
            register_segmenter(SegmenterKind("square", _square, help="again", source="name"))
        register_segmenter(SegmenterKind("square", _square, help="again", source="name"), replace=True)
        assert load_segmenter("square:a") is not first  # the old kind's segmenter was dropped
    finally:
        unregister_segmenter("square")
    with pytest.raises(imaging.InputError, match="is not 'classic'"):
        load_segmenter("square:a")
    for bad in ("", "Upper", "a:b", "a+b", "with space"):
        with pytest.raises(ValueError, match="prefix"):
            register_segmenter(SegmenterKind(bad, _square, help="bad"))
    assert [kind.prefix for kind in segmenter_kinds()] == ["classic", "sam"]


# ---- top_k inside the prompt


class _Boxes:
    """A detector stand-in: three matches of any text, best first."""

    name = "boxes"

    def detect(self, image: np.ndarray, text: str, *, threshold: float = 0.1) -> list[Detection]:
        return [
            Detection((0.0, 0.0, 10.0, 10.0), 0.9),
            Detection((20.0, 0.0, 30.0, 10.0), 0.8),
            Detection((40.0, 0.0, 50.0, 10.0), 0.7),
        ]


class _BoxFill(Segmenter):
    """Each box -> the mask of its pixels."""

    name = "fill"

    def segment(self, image: np.ndarray, prompt: Prompt) -> np.ndarray:
        mask = np.zeros(image.shape[:2], dtype=bool)
        if prompt.box is not None:
            x0, y0, x1, y1 = (int(value) for value in prompt.box)
            mask[y0:y1, x0:x1] = True
        return mask

    def segment_boxes(self, image: np.ndarray, boxes: Sequence[Box]) -> list[np.ndarray]:
        return [self.segment(image, Prompt(box=box)) for box in boxes]


def test_top_k_lives_in_the_prompt() -> None:
    assert "top_k" in {field.name for field in dataclasses.fields(Prompt)}
    assert Prompt(text="a car", top_k=2).top_k == 2 and Prompt().top_k is None
    words = TextSegmenter(_BoxFill(), _Boxes())  # type: ignore[arg-type]
    image = _image()
    assert words.segment(image, Prompt(text="x")).sum() == 300  # every match
    assert words.segment(image, Prompt(text="x", top_k=2)).sum() == 200  # the two best
    assert words.segment(image, Prompt(text="x", top_k=2), top_k=1).sum() == 100  # the keyword wins
    # select_object puts top_k into the prompt the segmenter sees, checked
    recorder = _Square("recorder", "")
    recorder.supports_text = True
    select_object(image, text="a thing", top_k=2, segmenter=recorder)
    assert recorder.prompts[-1] == Prompt(text="a thing", top_k=2)
    with pytest.raises(imaging.InputError, match="^top_k: 0 must be a whole number >= 1"):
        select_object(image, text="a thing", top_k=0, segmenter=recorder)


# ---- the selection fields' schema


def test_the_schema_has_every_selection_field() -> None:
    names = ("points", "negative_points", "box", "text", "segmenter", "top_k")
    assert SELECTION_FIELD_NAMES == names
    assert tuple(field.name for field in dataclasses.fields(SelectionRequest)) == names
    assert set(names) <= set(inspect.signature(select_object).parameters)
    assert {field.name for field in dataclasses.fields(Prompt)} <= set(names)
    assert [field.option for field in SELECTION_FIELDS] == [
        "--point",
        "--negative-point",
        "--box",
        "--object",
        "--segmenter",
        "--top-k",
    ]
    assert all(field.help and field.metavar for field in SELECTION_FIELDS)
    assert spec_help() in selection_field("segmenter").describe()
    with pytest.raises(KeyError, match="points, negative_points, exclude"):
        selection_field("grow")


def test_parsing_goes_through_the_fields() -> None:
    request = SelectionRequest.parse(["1,2", "3,4;5,6"], "7,8", " 0,0,9,9 ", "  the  car ", " classic ", "2")
    assert request == SelectionRequest(
        ((1.0, 2.0), (3.0, 4.0), (5.0, 6.0)), ((7.0, 8.0),), (0.0, 0.0, 9.0, 9.0), "the car", "classic", 2
    )
    assert SelectionRequest.parse("", "", " ", "  ") is None
    # messages name the fields as the surface does: the command line's options by default
    with pytest.raises(imaging.InputError, match="^point: '1' is not X,Y"):
        SelectionRequest.parse(["1"])
    with pytest.raises(imaging.InputError, match="^points: '1' is not X,Y"):
        SelectionRequest.parse("1", names=("points", "exclude", "box"))
    with pytest.raises(imaging.InputError, match="^top-k: '0' is not|^top-k: 0 must be"):
        SelectionRequest.parse("1,2", top_k="0")
    with pytest.raises(imaging.InputError, match="^top-k: 3 is given but nothing to select"):
        SelectionRequest.parse(top_k=3)
