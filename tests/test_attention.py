"""The AAS/SS processor against the eager reference (tests/reference.py), token grids and token masks."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import reference
import torch
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

from attentive_eraser.core.attention import AttentiveEraserAttnProcessor, EraserState, key_bias
from attentive_eraser.core.masks import token_grid, token_mask
from attentive_eraser.testing.tiny import build_components

LOGGER = "attentive_eraser.core.attention"
LATENT = (8, 12)  # a non-square latent grid: self-attention grids 8x12, 4x6, 2x3
PIXELS = (64, 96)
LEVELS = {0: 96, 1: 24, 2: 6}  # UNet level -> number of tokens of its self-attention


@pytest.fixture(scope="module")
def attn() -> Attention:
    torch.manual_seed(0)
    module = Attention(query_dim=32, heads=4, dim_head=8)
    return module.eval()


def _hidden(batch: int, num_tokens: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, num_tokens, 32, generator=generator).to(dtype)


def _box(top: int, left: int, bottom: int, right: int, size: tuple[int, int] = PIXELS) -> np.ndarray:
    mask = np.zeros(size, dtype=bool)
    mask[top:bottom, left:right] = True
    return mask


def _nearly_full() -> np.ndarray:
    """Object everywhere but one 8x8 latent cell: background survives at 8x12 only, not at 4x6 or 2x3."""
    mask = np.ones(PIXELS, dtype=bool)
    mask[16:24, 40:48] = False
    return mask


MASKS: dict[str, list[np.ndarray]] = {
    "box": [_box(8, 16, 40, 56)],
    "single_pixel": [_box(37, 70, 38, 71)],
    "touches_border": [_box(0, 60, 30, 96)],
    "two_different": [_box(8, 16, 40, 56), _box(40, 0, 64, 30)],
    "one_nearly_full": [_box(20, 20, 44, 70), _nearly_full()],
}


def _state(
    masks: list[np.ndarray],
    *,
    step_index: int = 0,
    suppression_steps: int = 10,
    suppression_scale: float = 0.3,
    enabled: bool = True,
    latent_size: tuple[int, int] = LATENT,
) -> EraserState:
    state = EraserState(
        suppression_scale=suppression_scale,
        suppression_steps=suppression_steps,
        step_index=step_index,
        enabled=enabled,
    )
    pixel = torch.from_numpy(np.stack(masks).astype(np.float32))[:, None]  # (E, 1, H, W)
    state.set_mask(pixel, latent_size)
    return state


def _reference_tokens(
    masks: list[np.ndarray], level: int, latent_size: tuple[int, int] = LATENT
) -> torch.Tensor:
    return torch.from_numpy(np.stack([reference.token_object_mask(m, latent_size, level) for m in masks]))


# ------------------------------------------------------------------------------------ the reference
def test_reference_without_mask_is_sdpa() -> None:
    generator = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 4, 24, 8, generator=generator, dtype=torch.float64) for _ in range(3))
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(reference.eraser_attention(q, k, v, None), expected)
    empty = torch.zeros(2, 24, dtype=torch.bool)
    torch.testing.assert_close(reference.eraser_attention(q, k, v, empty, suppress=True), expected)


def test_reference_aas_ignores_object_keys_and_ss_only_changes_object_rows() -> None:
    generator = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(1, 2, 12, 8, generator=generator, dtype=torch.float64) for _ in range(3))
    m = torch.zeros(1, 12, dtype=torch.bool)
    m[0, 3:7] = True
    aas = reference.eraser_attention(q, k, v, m)
    v2 = v.clone()
    v2[:, :, 3:7] += 100.0  # object values are never read
    torch.testing.assert_close(reference.eraser_attention(q, k, v2, m), aas)
    ss = reference.eraser_attention(q, k, v, m, suppression_scale=0.3, suppress=True)
    torch.testing.assert_close(ss[:, :, ~m[0]], aas[:, :, ~m[0]])
    assert not torch.allclose(ss[:, :, m[0]], aas[:, :, m[0]])
    # lambda = 1 makes SS the identity
    torch.testing.assert_close(
        reference.eraser_attention(q, k, v, m, suppression_scale=1.0, suppress=True), aas
    )


def test_reference_module_forward_matches_stock_processor(attn: Attention) -> None:
    hidden = _hidden(2, 24)
    expected = AttnProcessor2_0()(attn, hidden)
    torch.testing.assert_close(
        reference.attention_module_forward(attn, hidden).float(), expected, atol=1e-5, rtol=1e-5
    )


# ------------------------------------------------------------------------------- processor parity
@pytest.mark.parametrize("mask_name", sorted(MASKS))
@pytest.mark.parametrize("level", sorted(LEVELS))
@pytest.mark.parametrize("with_plain_half", [False, True], ids=["erased_only", "plain_and_erased"])
@pytest.mark.parametrize("suppress", [False, True], ids=["aas", "aas_ss"])
def test_processor_matches_eager_reference(
    attn: Attention, mask_name: str, level: int, with_plain_half: bool, suppress: bool
) -> None:
    masks = MASKS[mask_name]
    erased = len(masks)
    num_tokens = LEVELS[level]
    # SS is on while step_index < suppression_steps
    state = _state(masks, step_index=2 if suppress else 3, suppression_steps=3, suppression_scale=0.3)
    assert state.suppressing is suppress
    plain = erased if with_plain_half else 0
    hidden = _hidden(plain + erased, num_tokens, seed=level)

    out = AttentiveEraserAttnProcessor(state)(attn, hidden)

    objects = _reference_tokens(masks, level)  # (E, N)
    layout = torch.cat([torch.zeros(plain, num_tokens, dtype=torch.bool), objects])  # [plain x B, erased x B]
    expected = reference.attention_module_forward(
        attn, hidden, layout, suppression_scale=0.3, suppress=suppress
    )
    assert out.dtype == torch.float32 and out.shape == hidden.shape
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-5)
    if plain:
        # the plain half is what the stock processor computes for those samples
        stock = AttnProcessor2_0()(attn, hidden[:plain])
        torch.testing.assert_close(out[:plain], stock, atol=1e-6, rtol=1e-5)


def test_processor_is_not_plain_attention_on_erased_samples(attn: Attention) -> None:
    """Guards the parity test against a reference and a processor that both forgot the mask."""
    masks = MASKS["box"]
    hidden = _hidden(1, 96)
    out = AttentiveEraserAttnProcessor(_state(masks))(attn, hidden)
    stock = AttnProcessor2_0()(attn, hidden)
    assert (out - stock).abs().max() > 1e-3


def test_background_rows_never_read_the_object(attn: Attention) -> None:
    """AAS: changing the object tokens' features changes no background token's output (Eq. 11)."""
    masks = MASKS["box"]
    objects = _reference_tokens(masks, 0)[0]
    processor = AttentiveEraserAttnProcessor(_state(masks, step_index=0))
    hidden = _hidden(1, 96)
    changed = hidden.clone()
    changed[:, objects] = torch.randn(int(objects.sum()), 32) * 5
    out, out_changed = processor(attn, hidden), processor(attn, changed)
    torch.testing.assert_close(out_changed[:, ~objects], out[:, ~objects], atol=1e-6, rtol=1e-6)
    assert not torch.allclose(out_changed[:, objects], out[:, objects])


def test_ss_uses_suppression_scale(attn: Attention) -> None:
    masks = MASKS["box"]
    hidden = _hidden(1, 24)
    outputs = [
        AttentiveEraserAttnProcessor(_state(masks, suppression_scale=lam))(attn, hidden) for lam in (0.1, 0.7)
    ]
    objects = _reference_tokens(masks, 1)[0]
    assert not torch.allclose(outputs[0][:, objects], outputs[1][:, objects])
    torch.testing.assert_close(outputs[0][:, ~objects], outputs[1][:, ~objects], atol=1e-6, rtol=1e-6)


def test_set_mask_replaces_cached_token_masks(attn: Attention) -> None:
    state = _state(MASKS["box"])
    processor = AttentiveEraserAttnProcessor(state)
    hidden = _hidden(1, 24)
    processor(attn, hidden)  # fills the per-grid cache
    other = MASKS["touches_border"]
    state.set_mask(torch.from_numpy(np.stack(other).astype(np.float32))[:, None], LATENT)
    expected = reference.attention_module_forward(attn, hidden, _reference_tokens(other, 1), suppress=True)
    torch.testing.assert_close(processor(attn, hidden).double(), expected, atol=1e-5, rtol=1e-5)


def test_more_masks_than_samples_is_an_error(attn: Attention) -> None:
    processor = AttentiveEraserAttnProcessor(_state(MASKS["two_different"]))
    with pytest.raises(ValueError, match="2 masks"):
        processor(attn, _hidden(1, 24))


def test_set_mask_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="mask"):
        EraserState().set_mask(torch.zeros(1, 64, 96), LATENT)


# ---------------------------------------------------------------------------- exactly the stock one
@pytest.mark.parametrize("batch", [1, 2])
def test_empty_mask_is_exactly_stock(attn: Attention, batch: int) -> None:
    state = _state([np.zeros(PIXELS, dtype=bool)] * batch)
    processor = AttentiveEraserAttnProcessor(state)
    stock = AttnProcessor2_0()
    for num_tokens in LEVELS.values():
        hidden = _hidden(2 * batch, num_tokens)
        assert torch.equal(processor(attn, hidden), stock(attn, hidden))


def test_disabled_state_is_exactly_stock(attn: Attention) -> None:
    state = _state(MASKS["box"], enabled=False)
    processor = AttentiveEraserAttnProcessor(state)
    hidden = _hidden(2, 96)
    assert torch.equal(processor(attn, hidden), AttnProcessor2_0()(attn, hidden))
    # and with no mask at all
    assert torch.equal(
        AttentiveEraserAttnProcessor(EraserState(enabled=True))(attn, hidden),
        AttnProcessor2_0()(attn, hidden),
    )


def test_cross_attention_call_is_exactly_stock(attn: Attention) -> None:
    processor = AttentiveEraserAttnProcessor(_state(MASKS["box"]))
    hidden, context = _hidden(1, 96), _hidden(1, 7, seed=5)
    assert torch.equal(processor(attn, hidden, context), AttnProcessor2_0()(attn, hidden, context))


# ------------------------------------------------------------------------- mask covering a whole grid
def test_full_mask_leaves_that_sample_unmodified_and_warns_once(
    attn: Attention, caplog: pytest.LogCaptureFixture
) -> None:
    full = np.ones(PIXELS, dtype=bool)
    box = MASKS["box"][0]
    caplog.set_level(logging.WARNING, logger=LOGGER)
    state = _state([full, box])
    processor = AttentiveEraserAttnProcessor(state)
    for _ in range(2):  # two "steps"
        for level, num_tokens in LEVELS.items():
            hidden = _hidden(4, num_tokens, seed=level)  # [plain x 2, erased x 2]
            out = processor(attn, hidden)
            assert torch.isfinite(out).all()
            # sample 2 (full mask) is plain attention, sample 3 (box) is erased
            layout = torch.zeros(4, num_tokens, dtype=torch.bool)
            layout[3] = _reference_tokens([box], level)[0]
            expected = reference.attention_module_forward(attn, hidden, layout, suppress=True)
            torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-5)
            stock = AttnProcessor2_0()(attn, hidden)
            torch.testing.assert_close(out[:3], stock[:3], atol=1e-6, rtol=1e-5)
    warnings = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]
    assert len(warnings) == 1

    # a new state (a new call of the pipeline) warns again, once
    processor = AttentiveEraserAttnProcessor(_state([full]))
    for num_tokens in LEVELS.values():
        processor(attn, _hidden(1, num_tokens))
    warnings = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]
    assert len(warnings) == 2


def test_mask_full_on_coarse_grids_only(attn: Attention, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    nearly = _nearly_full()
    processor = AttentiveEraserAttnProcessor(_state([nearly]))
    hidden = _hidden(1, 96)
    # at 8x12 one background token remains: every row reads only that token's value
    fine = processor(attn, hidden)
    objects = _reference_tokens([nearly], 0)
    assert int((~objects).sum()) == 1
    torch.testing.assert_close(
        fine.double(),
        reference.attention_module_forward(attn, hidden, objects, suppress=True),
        atol=1e-5,
        rtol=1e-5,
    )
    assert not caplog.records
    for num_tokens in (24, 6):  # entirely object: unmodified
        hidden = _hidden(1, num_tokens)
        torch.testing.assert_close(
            processor(attn, hidden), AttnProcessor2_0()(attn, hidden), atol=1e-6, rtol=1e-5
        )
    assert len([r for r in caplog.records if r.name == LOGGER]) == 1


# ---------------------------------------------------------------------------------- low precision
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_key_bias_is_finite_in_low_precision(dtype: torch.dtype) -> None:
    objects = torch.tensor([[True, False, True, False]])
    bias = key_bias(objects, dtype)
    assert bias.dtype == dtype and bias.shape == (1, 1, 1, 4)
    assert torch.isfinite(bias).all()
    assert (bias[..., [1, 3]] == 0).all()
    assert (bias[..., [0, 2]] < -1e4).all()
    # adding it to the most negative logit a layer could produce cannot overflow to -inf
    most_negative = torch.full_like(bias, torch.finfo(dtype).min / 2)
    assert torch.isfinite(bias + most_negative).all()
    weights = torch.softmax(torch.zeros(1, 1, 1, 4, dtype=dtype) + bias, dim=-1)
    assert torch.isfinite(weights).all() and float(weights[..., [0, 2]].abs().max()) == 0.0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_processor_in_low_precision_has_no_nan(attn: Attention, dtype: torch.dtype) -> None:
    low = Attention(query_dim=32, heads=4, dim_head=8).eval()
    low.load_state_dict(attn.state_dict())
    low.to(dtype)
    masks = MASKS["one_nearly_full"]
    for suppress_step in (0, 20):
        processor = AttentiveEraserAttnProcessor(_state(masks, step_index=suppress_step))
        for level, num_tokens in LEVELS.items():
            hidden = _hidden(4, num_tokens, seed=level)
            out = processor(low, hidden.to(dtype))
            assert out.dtype == dtype and not torch.isnan(out).any() and torch.isfinite(out).all()
            layout = torch.cat(
                [torch.zeros(2, num_tokens, dtype=torch.bool), _reference_tokens(masks, level)]
            )
            layout[2:] &= ~layout[2:].all(dim=1, keepdim=True)  # a fully covered sample is left plain
            expected = reference.attention_module_forward(attn, hidden, layout, suppress=suppress_step == 0)
            torch.testing.assert_close(out.double(), expected, atol=5e-2, rtol=5e-2)


# ------------------------------------------------------------------------------ token grids and masks
@pytest.mark.parametrize(
    ("latent", "num_tokens", "grid"),
    [
        ((8, 12), 96, (8, 12)),
        ((8, 12), 24, (4, 6)),
        ((8, 12), 6, (2, 3)),
        ((16, 8), 32, (8, 4)),
        ((16, 8), 8, (4, 2)),
        ((9, 13), 117, (9, 13)),
        ((9, 13), 35, (5, 7)),
        ((9, 13), 12, (3, 4)),
        ((9, 13), 4, (2, 2)),
        ((9, 13), 1, (1, 1)),
        ((7, 7), 16, (4, 4)),
    ],
)
def test_token_grid(latent: tuple[int, int], num_tokens: int, grid: tuple[int, int]) -> None:
    assert token_grid(latent, num_tokens) == grid


@pytest.mark.parametrize("num_tokens", [50, 36, 118, 2])
def test_token_grid_error_names_the_token_count(num_tokens: int) -> None:
    with pytest.raises(ValueError, match=rf"{num_tokens} tokens.*9x13"):
        token_grid((9, 13), num_tokens)


def test_token_grids_are_those_of_a_real_unet_on_an_odd_latent() -> None:
    """The ceil-halving rule of token_grid is the UNet's own: run the tiny SD UNet on a 9x13 latent."""
    unet: UNet2DConditionModel = build_components("sd15", seed=0)["unet"]
    seen: list[int] = []

    class Recorder(AttnProcessor2_0):
        def __call__(self, attn, hidden_states, *args, **kwargs):  # type: ignore[no-untyped-def]
            seen.append(hidden_states.shape[1])
            return super().__call__(attn, hidden_states, *args, **kwargs)

    processors = dict(unet.attn_processors)
    recorder = Recorder()
    processors.update(
        {name: recorder for name in processors if name.startswith("up_blocks") and ".attn1." in name}
    )
    unet.set_attn_processor(processors)
    with torch.no_grad():
        unet(torch.randn(1, 4, 9, 13), 500, encoder_hidden_states=torch.randn(1, 77, 32))
    assert sorted({token_grid((9, 13), n) for n in seen}) == [(3, 4), (5, 7), (9, 13)]


@pytest.mark.parametrize("level", sorted(LEVELS))
def test_token_mask_any_pixel_rule_on_random_masks(level: int) -> None:
    rng = np.random.default_rng(level)
    grid = token_grid(LATENT, LEVELS[level])
    for _ in range(5):
        # sparse random pixels so that cells with exactly one object pixel are common
        mask = rng.random(PIXELS) < 0.002
        got = token_mask(torch.from_numpy(mask)[None, None].float(), grid, LATENT)[0]
        assert torch.equal(got, torch.from_numpy(reference.token_object_mask(mask, LATENT, level)))


def test_token_mask_rejects_a_grid_that_is_no_unet_level() -> None:
    with pytest.raises(ValueError, match=r"grid=\(3, 5\)"):
        token_mask(torch.zeros(1, 1, 64, 96), (3, 5), LATENT)


@pytest.mark.parametrize(
    ("row", "col"), [(0, 0), (7, 7), (8, 8), (15, 16), (16, 15), (63, 95), (31, 48), (32, 47)]
)
def test_token_mask_single_pixel_marks_its_cell(row: int, col: int) -> None:
    mask = np.zeros(PIXELS, dtype=bool)
    mask[row, col] = True
    state = _state([mask])
    for level, num_tokens in LEVELS.items():
        objects, usable = state.grid_masks(num_tokens, torch.float32, torch.device("cpu"))
        assert bool(usable[0])
        cell = 8 * 2**level  # pixels per token side at this level
        width = PIXELS[1] // cell
        assert objects[0].nonzero().flatten().tolist() == [(row // cell) * width + col // cell]


def test_token_mask_odd_grid_follows_unet_cells() -> None:
    """Odd latent sizes: a token's cell is the 2x2 block of the finer level it is downsampled from.

    With ``ceil`` halving (9 -> 5 -> 3 rows, 13 -> 7 -> 4 columns), token ``j`` of the 3x4 grid covers
    latent columns ``4j .. 4j+3``. Every single-latent-pixel mask must mark exactly the token whose
    cell holds that pixel, at every grid (also when the mask comes at pixel resolution, 72x104).
    """
    latent = (9, 13)
    mismatches = []
    for row in range(9):
        for col in range(13):
            cell_mask = np.zeros(latent, dtype=bool)
            cell_mask[row, col] = True
            pixel_mask = np.kron(cell_mask, np.ones((8, 8), dtype=bool))
            for given, mask in (("latent", cell_mask), ("pixel", pixel_mask)):
                state = _state([mask], latent_size=latent)
                for level, num_tokens in ((1, 35), (2, 12)):
                    objects, _ = state.grid_masks(num_tokens, torch.float32, torch.device("cpu"))
                    expected = reference.token_object_mask(mask, latent, level)
                    if not np.array_equal(objects[0].numpy(), expected):
                        mismatches.append((given, row, col, level))
    assert not mismatches, f"{len(mismatches)} probes marked the wrong token, e.g. {mismatches[:6]}"
