"""Removal diagnostics: the SARG signal and decoder self-attention selectivity, against closed forms."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDPMScheduler

from attentive_eraser.core.diagnostics import attention_selectivity, sarg_signal
from attentive_eraser.core.layers import select_layers
from attentive_eraser.training import TrainingConfig
from attentive_eraser.training.models import build_unet

TIMESTEPS = (781, 381)


@pytest.fixture
def case() -> dict:
    torch.manual_seed(0)
    config = TrainingConfig(
        unet_block_out_channels=(32, 64, 64), unet_norm_num_groups=16, text_hidden_size=32
    )
    unet = build_unet(config).eval()
    latents = torch.randn(2, 4, 16, 16)
    noise = torch.randn(2, 4, 16, 16)
    mask = torch.zeros(2, 1, 64, 64)
    mask[0, :, 8:24, 8:24] = 1  # a 4x4-cell object in the 16x16 latent grid
    mask[1, :, 30:50, 20:44] = 1
    context = torch.randn(2, 77, 32)
    scheduler = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    return {
        "unet": unet,
        "latents": latents,
        "noise": noise,
        "mask": mask,
        "context": context,
        "scheduler": scheduler,
    }


def _decoder_attn1(unet: torch.nn.Module) -> list[torch.nn.Module]:
    names = select_layers(unet)
    return [unet.get_submodule(name.removesuffix(".processor")) for name in names]


def test_uniform_attention_has_entropy_one_and_no_selectivity(case: dict) -> None:
    for attn in _decoder_attn1(case["unet"]):
        torch.nn.init.zeros_(attn.to_q.weight)  # q = 0: every row is exactly uniform
    result = attention_selectivity(
        case["unet"],
        case["latents"],
        case["noise"],
        case["mask"],
        TIMESTEPS,
        case["context"],
        case["scheduler"],
    )
    assert len(result.layers) == 4  # 2 grids x (layers_per_block + 1) decoder blocks
    # object cells per sample: 4x4 and 6x6 of the 16x16 grid, 2x2 and 4x4 of the 8x8 grid
    shares = {layer.grid: layer.object_share for layer in result.layers}
    assert shares[(16, 16)] == pytest.approx((16 / 256 + 36 / 256) / 2)
    assert shares[(8, 8)] == pytest.approx((4 / 64 + 16 / 64) / 2)
    for layer in result.layers:
        assert layer.entropy == pytest.approx(1.0, abs=1e-5)
        # every object row puts each key's 1/N on it: the rows' mean mass is the mean share, row-weighted
        counts = {(16, 16): (16, 36, 256), (8, 8): (4, 16, 64)}[layer.grid]
        expected = (counts[0] ** 2 + counts[1] ** 2) / counts[2] / (counts[0] + counts[1])
        assert layer.object_to_object == pytest.approx(expected, rel=1e-5)
    summary = result.by_grid()
    assert list(summary) == ["16x16", "8x8"] and summary["16x16"]["layers"] == 2


def test_attention_on_itself_has_entropy_zero_and_full_object_mass() -> None:
    from attentive_eraser.core import diagnostics

    state = diagnostics._RecorderState()
    objects = torch.zeros(2, 16, dtype=torch.bool)
    objects[0, :4] = True
    objects[1, 3:5] = True
    state.objects[16], state.grids[16] = objects, (4, 4)
    processor = diagnostics._RecordingProcessor("layer", state)
    processor._tally(torch.eye(16).expand(2, 3, 16, 16), 16)  # (B, heads, N, N): every query reads itself
    tally = state.tallies["layer"]
    assert tally.entropy == pytest.approx(0.0, abs=1e-6)
    assert tally.object_mass / tally.object_rows == pytest.approx(1.0)
    assert tally.share / tally.samples == pytest.approx((4 / 16 + 2 / 16) / 2)


def test_selectivity_leaves_the_unet_as_it_was(case: dict) -> None:
    unet = case["unet"]
    t = torch.full((2,), 381)
    noisy = case["scheduler"].add_noise(case["latents"], case["noise"], t)
    with torch.no_grad():
        before = unet(noisy, t, encoder_hidden_states=case["context"]).sample
    processors = dict(unet.attn_processors)
    result = attention_selectivity(
        unet, case["latents"], case["noise"], case["mask"], (381,), case["context"], case["scheduler"]
    )
    assert all(0 < layer.entropy <= 1 for layer in result.layers)
    assert dict(unet.attn_processors) == processors  # restored
    with torch.no_grad():
        after = unet(noisy, t, encoder_hidden_states=case["context"]).sample
    assert torch.equal(before, after)


def test_recording_processor_computes_the_stock_output(case: dict) -> None:
    from attentive_eraser.core import diagnostics

    unet = case["unet"]
    t = torch.full((2,), 581)
    noisy = case["scheduler"].add_noise(case["latents"], case["noise"], t)
    with torch.no_grad():
        stock = unet(noisy, t, encoder_hidden_states=case["context"]).sample
        state = diagnostics._RecorderState()
        from attentive_eraser.core.masks import token_masks

        for num_tokens, (grid, objects) in token_masks(case["mask"], (16, 16)).items():
            state.objects[num_tokens], state.grids[num_tokens] = objects, grid
        with diagnostics._recording(unet, state, diagnostics.DECODER_SELF_ATTENTION):
            recorded = unet(noisy, t, encoder_hidden_states=case["context"]).sample
    assert torch.allclose(recorded, stock, atol=1e-5)


def test_sarg_signal_is_zero_when_attention_output_is_switched_off(case: dict) -> None:
    signal = sarg_signal(
        case["unet"],
        case["latents"],
        case["noise"],
        case["mask"],
        TIMESTEPS,
        case["context"],
        case["scheduler"],
    )
    assert signal.timesteps == list(TIMESTEPS)
    assert all(value > 0 for value in signal.inside) and all(0 < share < 1 for share in signal.share_inside)
    for attn in _decoder_attn1(case["unet"]):
        torch.nn.init.zeros_(attn.to_out[0].weight)  # the layer adds only its bias: AAS cannot change it
    signal = sarg_signal(
        case["unet"],
        case["latents"],
        case["noise"],
        case["mask"],
        TIMESTEPS,
        case["context"],
        case["scheduler"],
    )
    assert signal.inside == [0.0, 0.0] and signal.outside == [0.0, 0.0]


def test_sarg_signal_checks_shapes(case: dict) -> None:
    with pytest.raises(ValueError, match="noise"):
        sarg_signal(
            case["unet"],
            case["latents"],
            case["noise"][:1],
            case["mask"],
            TIMESTEPS,
            case["context"],
            case["scheduler"],
        )
    with pytest.raises(ValueError, match="mask"):
        sarg_signal(
            case["unet"],
            case["latents"],
            case["noise"],
            case["mask"][:1],
            TIMESTEPS,
            case["context"],
            case["scheduler"],
        )
