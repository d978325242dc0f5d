"""Which attention layers the eraser modifies, and installing/restoring its processors safely.

AAS applies to the self-attention (``attn1``) of every transformer block in the UNet's decoder
(``up_blocks``): 9 layers on SD 1.5/2.1, 36 on SDXL (see docs/method.md). Layers are chosen by module name,
never by call order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

# the defining module: type checkers read diffusers' top-level names as its placeholder classes
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel

from .attention import AttentiveEraserAttnProcessor, EraserState

#: processor names of the decoder's self-attention layers
DECODER_SELF_ATTENTION = r"up_blocks\.\d+\.attentions\.\d+\.transformer_blocks\.\d+\.attn1\.processor"


def select_layers(unet: UNet2DConditionModel, pattern: str = DECODER_SELF_ATTENTION) -> list[str]:
    """Processor names of ``unet`` matching ``pattern`` (a full-match regex); raises if none match."""
    regex = re.compile(pattern)
    names = [name for name in unet.attn_processors if regex.fullmatch(name)]
    if not names:
        raise ValueError(f"layers={pattern!r} matches no attention layer of this UNet")
    return names


@contextmanager
def swapped_processors(
    unet: UNet2DConditionModel, make: Callable[[str], Any], pattern: str = DECODER_SELF_ATTENTION
) -> Iterator[list[str]]:
    """Install ``make(name)`` on each selected layer; restore the originals on exit, even if the body raises.

    Yields the names of the layers it changed.
    """
    original = dict(unet.attn_processors)
    names = select_layers(unet, pattern)
    patched = dict(original)
    patched.update({name: make(name) for name in names})
    unet.set_attn_processor(patched)
    try:
        yield names
    finally:
        # set_attn_processor consumes the dict it is given: pass a copy
        unet.set_attn_processor(dict(original))


@contextmanager
def eraser_attention(
    unet: UNet2DConditionModel, state: EraserState, pattern: str = DECODER_SELF_ATTENTION
) -> Iterator[list[str]]:
    """Install :class:`AttentiveEraserAttnProcessor` on the selected layers; restore the originals on exit.

    The originals come back even if the body raises, so an error mid-run never leaves a user's UNet
    modified. Yields the names of the layers it changed.
    """
    processor = AttentiveEraserAttnProcessor(state)
    with swapped_processors(unet, lambda name: processor, pattern) as names:
        yield names
