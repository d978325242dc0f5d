"""What the eraser needs to know about a backbone, as data: the seam between the technique and the model.

A :class:`Backbone` describes one denoiser architecture (the SD UNet, the SDXL UNet, ...): which module the
eraser acts on, which of its attention layers get the eraser's processor, how a call lays the latent grid
out as tokens, which sampler the method runs, the weight folders of a checkpoint, how to recognise a
pipeline classes run it. A :class:`Family` is a backbone with one preset (SD 1.5, SD 2.1, SD 2.1-768,
SDXL, the embedded demo model) and the rules that recognise its config and its single-file checkpoints.
Adding a model family is one module that defines these two records, and one entry in
:mod:`attentive_eraser.families.registry`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core.masks import TokenLayout
from ..imaging import InputError
from ..settings import PRESETS, Method, Preset

#: a rule on the denoiser's config (a mapping) and the VAE's scale factor
ConfigRule = Callable[[Mapping[str, Any], int], bool]


@dataclass(frozen=True)
class Backbone:
    """One denoiser architecture, as the pipelines, the loader and the eraser see it."""

    name: str
    #: the pipeline component the eraser acts on (``pipe.unet``, ``pipe.transformer``)
    denoiser: str
    #: full-match regex over the denoiser's processor names: the layers that get the eraser's processor
    eraser_layers: str
    #: how a layer's tokens map onto the latent grid
    token_layout: TokenLayout
    #: the sampler family the method runs on it (``"ddim"``: DDIM sampling and inversion, noise prediction)
    sampler: str
    #: the checkpoint folders that hold weights (each needs a config and a weights file)
    weight_folders: tuple[str, ...]
    #: ``method -> "module:Class"`` of the eraser pipelines, imported when first asked for
    pipelines: Mapping[str, str]
    #: extra ``from_pretrained`` / ``from_single_file`` keywords (e.g. no safety checker)
    load_kwargs: Mapping[str, Any] = field(default_factory=dict)

    def pipeline_class(self, method: Method) -> type:
        """The eraser pipeline class running ``method`` (``"sip"`` or ``"dip"``) on this backbone."""
        try:
            target = self.pipelines[method]
        except KeyError:
            choices = " or ".join(repr(name) for name in self.pipelines)
            raise InputError.from_text(f"method={method!r} must be {choices}") from None
        module, _, name = target.partition(":")
        return getattr(importlib.import_module(module), name)

    def size_multiple(self, denoiser_config: Mapping[str, Any], vae_scale_factor: int) -> int:
        """Working sizes are multiples of this: the VAE factor times every downsampling of the UNet."""
        levels = len(denoiser_config["block_out_channels"])
        return vae_scale_factor * 2 ** (levels - 1)


def _never(config: Mapping[str, Any], vae_scale_factor: int) -> bool:
    return False


@dataclass(frozen=True)
class Family:
    """A backbone with one preset; ``matches`` recognises its denoiser config (checked in registry order)."""

    name: str
    backbone: Backbone
    label: str
    #: the rule on the denoiser config; a family chosen only by name (the demo model) never matches
    matches: ConfigRule = _never
    #: hub ids known to be this family (no config download needed to tell)
    hub_ids: tuple[str, ...] = ()
    #: tensor-name prefixes that identify a single-file checkpoint of this family (any one suffices;
    #: families are tried in registry order, so the more specific come first)
    checkpoint_prefixes: tuple[str, ...] = ()

    @property
    def preset(self) -> Preset:
        """The family's defaults (:data:`attentive_eraser.settings.PRESETS`)."""
        return PRESETS[self.name]
