"""The one registry of model families, and the rules that pick one for a config, a checkpoint or a folder.

Families are tried in order: the more specific first (SDXL before SD 2.x before SD 1.x, whose rules would
also accept some of the others' single-file checkpoints). A model folder may name its preset itself in
:data:`FOLDER_SETTINGS` (the embedded demo model does), which wins over every rule: the preset a model was
tuned with travels with it, whichever way it is loaded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..imaging import InputError
from ..settings import PRESETS, Preset
from . import stable_diffusion, stable_diffusion_xl
from .base import Family

FAMILIES: dict[str, Family] = {
    family.name: family for family in (*stable_diffusion_xl.FAMILIES, *stable_diffusion.FAMILIES)
}

#: what a denoiser config that no rule recognises (a tiny test model, a custom UNet) is taken as
FALLBACK = "sd15"

#: a file in a model folder naming the preset the model was tuned with: ``{"preset": "demo"}``
FOLDER_SETTINGS = "attentive_eraser.json"


def family_named(name: str) -> Family:
    """The registered family called ``name``; ``ValueError`` naming the choices otherwise."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise InputError.from_text(
            f"family={name!r} is unknown; choose one of {', '.join(FAMILIES)}"
        ) from None


def _as_mapping(config: Mapping[str, Any] | Any) -> Mapping[str, Any]:
    if isinstance(config, Mapping):
        return config
    return {name: getattr(config, name) for name in dir(config) if not name.startswith("_")}


def family_of_config(denoiser_config: Mapping[str, Any] | Any, vae_scale_factor: int = 8) -> Family:
    """The family whose rule accepts a denoiser config (a mapping or a diffusers ``FrozenDict``)."""
    config = _as_mapping(denoiser_config)
    for family in FAMILIES.values():
        if family.matches(config, vae_scale_factor):
            return family
    return FAMILIES[FALLBACK]


def family_of_checkpoint_keys(keys: Iterable[str]) -> Family | None:
    """The family of a single-file checkpoint from its tensor names, or ``None`` when none claims them."""
    names = list(keys)
    for family in FAMILIES.values():
        if family.checkpoint_prefixes and any(name.startswith(family.checkpoint_prefixes) for name in names):
            return family
    return None


def family_of_hub_id(model: str) -> Family | None:
    """The family of a well-known hub id, without downloading anything; ``None`` for any other id."""
    return next((family for family in FAMILIES.values() if model in family.hub_ids), None)


def folder_preset(folder: str | Path | None) -> Preset | None:
    """The preset a model folder names in :data:`FOLDER_SETTINGS`, or ``None`` (no such file, no folder).

    A file that is there but damaged or names no known preset raises ``ValueError`` naming it.
    """
    if folder is None:
        return None
    path = Path(folder).expanduser() / FOLDER_SETTINGS
    if not path.is_file():
        return None
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError.from_text(
            f"model={str(folder)!r}: {FOLDER_SETTINGS} is not valid JSON ({error})"
        ) from None
    name = settings.get("preset") if isinstance(settings, dict) else None
    if name not in PRESETS:
        raise InputError.from_text(
            f"model={str(folder)!r}: {FOLDER_SETTINGS} names preset={name!r}; "
            f"choose one of {', '.join(PRESETS)}"
        )
    return PRESETS[name]


def preset_for_config(denoiser_config: Any, vae_scale_factor: int = 8) -> Preset:
    """The preset of the family a denoiser config belongs to, at the resolution the config implies.

    A UNet of none of the known widths (a tiny test model, a custom one) gets its family's preset with the
    resolution its ``sample_size`` implies, and the pixel-sized knobs scaled with it.
    """
    config = _as_mapping(denoiser_config)
    native = int(config["sample_size"]) * vae_scale_factor
    base = family_of_config(config, vae_scale_factor).preset
    if native == base.resolution:
        return base
    ratio = native / base.resolution
    return replace(
        base,
        name=f"{base.name}@{native}",
        resolution=native,
        mask_dilation=max(1, round(base.mask_dilation * ratio)),
        feather_radius=max(1, round(base.feather_radius * ratio)),
    )
