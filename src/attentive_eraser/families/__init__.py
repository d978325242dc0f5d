"""Model families: each backbone described once as data, and one registry (see :mod:`.base`)."""

from .base import Backbone, Family
from .registry import (
    FAMILIES,
    FOLDER_SETTINGS,
    family_named,
    family_of_checkpoint_keys,
    family_of_config,
    family_of_hub_id,
    folder_preset,
    preset_for_config,
)

__all__ = [
    "FAMILIES",
    "FOLDER_SETTINGS",
    "Backbone",
    "Family",
    "family_named",
    "family_of_checkpoint_keys",
    "family_of_config",
    "family_of_hub_id",
    "folder_preset",
    "preset_for_config",
]
