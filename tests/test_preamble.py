"""The shared preamble of our processors is the stock ``AttnProcessor2_0``'s, bit for bit, and stays checked.

The eraser's processor, the eager baseline and the diagnostics recorder all go through
``attentive_eraser.core.preamble``; if diffusers changes what its processor does around the attention, the
range pinned in ``pyproject.toml`` has to move, and then this test asks for the preamble to be re-read.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

from attentive_eraser.core import preamble

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"

CONFIGS = {
    "plain": {},
    "group norm, residual, rescale": {"norm_num_groups": 4, "residual_connection": True, "out_bias": True},
    "rescaled": {"rescale_output_factor": 2.0, "residual_connection": True},
    "qk norm": {"qk_norm": "layer_norm"},
}


def _through_preamble(attn: Attention, hidden_states: torch.Tensor) -> torch.Tensor:
    call = preamble.begin(attn, hidden_states)
    query, key, value = preamble.project_heads(attn, call)
    attended = F.scaled_dot_product_attention(query, key, value)
    return preamble.finish(attn, call, preamble.merge_heads(attended, query.dtype))


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
@pytest.mark.parametrize("feature_map", [False, True], ids=["tokens", "feature map"])
def test_the_preamble_is_the_stock_processors(config: dict[str, object], feature_map: bool) -> None:
    torch.manual_seed(0)
    attn = Attention(query_dim=16, heads=2, dim_head=8, **config).eval()  # type: ignore[arg-type]
    shape = (3, 16, 4, 5) if feature_map else (3, 20, 16)
    hidden_states = torch.randn(shape)
    with torch.no_grad():
        ours = _through_preamble(attn, hidden_states)
        stock = AttnProcessor2_0()(attn, hidden_states)
    assert ours.shape == stock.shape == hidden_states.shape
    assert torch.equal(ours, stock)


def test_a_different_module_gives_a_different_result() -> None:
    """The comparison above can fail: a module with other weights does not match."""
    torch.manual_seed(0)
    attn, other = Attention(query_dim=16, heads=2, dim_head=8), Attention(query_dim=16, heads=2, dim_head=8)
    hidden_states = torch.randn(2, 10, 16)
    with torch.no_grad():
        assert not torch.equal(
            _through_preamble(attn, hidden_states), AttnProcessor2_0()(other, hidden_states)
        )


def test_the_pinned_diffusers_range_is_the_one_the_preamble_follows() -> None:
    # the dependency lines of pyproject.toml ("diffusers>=0.32,<0.50",); tomllib is Python 3.11+
    pinned = re.findall(r'^\s*"(diffusers\b[^"]*)"', PYPROJECT.read_text(), flags=re.M)
    assert pinned == [preamble.FOLLOWS_DIFFUSERS], (
        "the diffusers range moved: re-read diffusers' AttnProcessor2_0 against core/preamble.py, "
        "then update FOLLOWS_DIFFUSERS"
    )
