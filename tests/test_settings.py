"""The knob schema: one definition per setting, consistent with the presets and every signature taking it."""

from __future__ import annotations

import inspect
from types import SimpleNamespace

import pytest

from attentive_eraser import api
from attentive_eraser.families import family_of_config
from attentive_eraser.pipelines.dip import DIPMixin
from attentive_eraser.pipelines.sip import SIPMixin
from attentive_eraser.settings import (
    KNOB_NAMES,
    KNOBS,
    PRESETS,
    RemovalOptions,
    knob,
    preset_field_names,
)


def test_every_knob_is_a_preset_field_and_a_keyword_of_every_entry_point() -> None:
    fields = set(preset_field_names())
    for signature in (
        inspect.signature(SIPMixin.__call__),
        inspect.signature(DIPMixin.__call__),
        inspect.signature(api.remove),
    ):
        for name in KNOB_NAMES:
            assert name in fields
            assert signature.parameters[name].default is None  # None -> the preset's value


def test_knob_metadata_is_complete_and_consistent() -> None:
    flags = [item.option for item in KNOBS]
    assert len(set(flags)) == len(flags)
    for item in KNOBS:
        assert item.help and item.label
        if item.choices:
            assert item.kind is str and item.slider is None
            for preset in PRESETS.values():
                assert getattr(preset, item.name) in item.choices
            continue
        assert item.low is not None and item.high is not None and item.slider is not None
        low, high, step = item.slider
        assert item.low <= low < high <= item.high and step > 0
        for preset in PRESETS.values():
            for method in ("sip", "dip"):
                item.check(preset.for_method(method)[item.name])  # every preset default is valid
    assert {
        knob(name).symbol
        for name in (
            "removal_guidance_scale",
            "suppression_scale",
            "suppression_steps",
            "num_inference_steps",
        )
    } == {"s", "λ", "T_SS", "T_I"}


def test_parse_reads_text_and_names_the_knob_in_errors() -> None:
    assert knob("num_inference_steps").parse(" 25 ") == 25
    assert knob("strength").parse("0.5") == 0.5
    assert knob("scheduler").parse("DPM++") == "dpm++"
    with pytest.raises(ValueError, match=r"^num_inference_steps='2.5' is not a whole number$"):
        knob("num_inference_steps").parse("2.5")
    with pytest.raises(ValueError, match=r"^strength=0.0 is out of range \(0.0, 1.0\]$"):
        knob("strength").parse("0")
    with pytest.raises(ValueError, match=r"^removal_guidance_scale=nan must be a finite number$"):
        knob("removal_guidance_scale").parse("nan")
    with pytest.raises(ValueError, match=r"^'steps' is not a setting"):
        knob("steps")


def test_removal_options_validate_and_merge() -> None:
    options = RemovalOptions(knobs={"strength": 0.5, "resolution": None})
    assert options.knobs == (("strength", 0.5),)
    assert options.get("strength") == 0.5 and options.get("resolution") is None
    assert options.with_knobs({"resolution": 128, "strength": None}).knobs == (
        ("resolution", 128),
        ("strength", 0.5),
    )
    assert hash(options) == hash(RemovalOptions(knobs={"strength": 0.5}))
    assert options.remove_kwargs()["strength"] == 0.5 and "knobs" not in options.remove_kwargs()
    with pytest.raises(ValueError, match=r"^method='xyz' must be"):
        RemovalOptions(method="xyz")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^suppression_steps=-1 is out of range"):
        RemovalOptions(knobs={"suppression_steps": -1})


@pytest.mark.parametrize(
    ("config", "family"),
    [
        ({"addition_embed_type": "text_time", "cross_attention_dim": 2048, "sample_size": 128}, "sdxl"),
        ({"cross_attention_dim": 768, "sample_size": 64}, "sd15"),
        ({"cross_attention_dim": 1024, "use_linear_projection": True, "sample_size": 64}, "sd21"),
        ({"cross_attention_dim": 1024, "use_linear_projection": True, "sample_size": 96}, "sd21-768"),
        ({"cross_attention_dim": 32, "sample_size": 8}, "sd15"),
    ],
)
def test_one_family_rule_for_mappings_and_configs(config: dict[str, object], family: str) -> None:
    assert family_of_config(config).name == family
    assert family_of_config(SimpleNamespace(**config)).name == family
