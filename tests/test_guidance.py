"""SARG (Eq. 18) and the [plain x B, erased x B] batch layout."""

from __future__ import annotations

import pytest
import torch

from attentive_eraser.core.guidance import SARGBatch, sarg_combine


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("scale", [0.0, 1.0, 9.0, 2.5])
def test_sarg_combine_is_eq_18(scale: float) -> None:
    plain, erased = _randn(2, 4, 8, 12, seed=1), _randn(2, 4, 8, 12, seed=2)
    expected = torch.empty_like(plain)
    for index in range(plain.numel()):  # elementwise, by hand
        p, e = plain.view(-1)[index].item(), erased.view(-1)[index].item()
        expected.view(-1)[index] = p + scale * (e - p)
    torch.testing.assert_close(sarg_combine(plain, erased, scale), expected, atol=1e-5, rtol=1e-6)
    if scale == 0.0:
        assert torch.equal(sarg_combine(plain, erased, scale), plain)
    if scale == 1.0:
        torch.testing.assert_close(sarg_combine(plain, erased, scale), erased)


@pytest.mark.parametrize("batch_size", [1, 3])
def test_expand_is_plain_then_erased(batch_size: int) -> None:
    batch = SARGBatch(batch_size, 9.0)
    assert batch.guided and batch.num_erased == batch_size
    latents = _randn(batch_size, 4, 8, 12)
    expanded = batch.expand(latents)
    assert expanded.shape == (2 * batch_size, 4, 8, 12)
    assert torch.equal(expanded[:batch_size], latents)  # plain x B
    assert torch.equal(expanded[batch_size:], latents)  # erased x B, same order


def test_expand_all_handles_nested_sdxl_inputs() -> None:
    batch = SARGBatch(2, 9.0)
    prompt_embeds = _randn(2, 77, 64, seed=1)
    text_embeds = _randn(2, 32, seed=2)
    time_ids = torch.tensor([[64.0, 128.0, 0.0, 0.0, 64.0, 128.0], [64.0, 128.0, 0.0, 0.0, 64.0, 128.0]])
    time_ids[1, 0] = 7.0  # per-sample values must stay with their sample
    inputs = {
        "encoder_hidden_states": prompt_embeds,
        "added_cond_kwargs": {"text_embeds": text_embeds, "time_ids": time_ids},
        "cross_attention_kwargs": None,
        "timestep_cond": "not a tensor",
    }
    out = batch.expand_all(inputs)
    assert set(out) == set(inputs)
    assert torch.equal(out["encoder_hidden_states"], torch.cat([prompt_embeds, prompt_embeds]))
    assert set(out["added_cond_kwargs"]) == {"text_embeds", "time_ids"}
    assert torch.equal(out["added_cond_kwargs"]["text_embeds"], torch.cat([text_embeds, text_embeds]))
    assert torch.equal(out["added_cond_kwargs"]["time_ids"], torch.cat([time_ids, time_ids]))
    assert out["added_cond_kwargs"]["time_ids"][[1, 3], 0].tolist() == [7.0, 7.0]
    assert out["cross_attention_kwargs"] is None and out["timestep_cond"] == "not a tensor"
    assert inputs["encoder_hidden_states"] is prompt_embeds  # the input mapping is left alone


@pytest.mark.parametrize("batch_size", [1, 2])
def test_combine_splits_plain_and_erased(batch_size: int) -> None:
    batch = SARGBatch(batch_size, 9.0)
    plain, erased = _randn(batch_size, 4, 8, 8, seed=3), _randn(batch_size, 4, 8, 8, seed=4)
    combined = batch.combine(torch.cat([plain, erased]))
    assert combined.shape == plain.shape
    torch.testing.assert_close(combined, plain + 9.0 * (erased - plain))
    # per sample: sample b's guidance uses only sample b's two predictions
    for b in range(batch_size):
        torch.testing.assert_close(combined[b], sarg_combine(plain[b], erased[b], 9.0))


def test_zero_scale_is_an_unguided_batch() -> None:
    batch = SARGBatch(2, 0.0)
    assert not batch.guided and batch.num_erased == 0
    latents = _randn(2, 4, 8, 8)
    assert torch.equal(batch.expand(latents), latents)  # no erased half
    nested = batch.expand_all({"a": latents, "b": {"c": latents}})
    assert nested["a"].shape[0] == 2 and nested["b"]["c"].shape[0] == 2
    output = _randn(2, 4, 8, 8, seed=9)
    assert torch.equal(batch.combine(output), output)


@pytest.mark.parametrize("scale", [0.0, 9.0])
def test_wrong_batch_size_is_an_error(scale: float) -> None:
    batch = SARGBatch(2, scale)
    with pytest.raises(ValueError, match="batch of 2, got 3"):
        batch.expand(_randn(3, 4))
    with pytest.raises(ValueError, match="batch of 2, got 1"):
        batch.expand_all({"added_cond_kwargs": {"time_ids": _randn(1, 6)}})
