"""Performance plumbing, never timings: the benchmark's quick run, its eager baseline, and GPU readiness.

The benchmark (``benchmarks/speed.py``) runs as a script, as users run it; its eager baseline lives in the
package (:mod:`attentive_eraser.testing.eager_reference`), where the benchmark and these tests import it.

GPU readiness is checked on CPU with the tiny models: ``torch.compile(fullgraph=True)`` of a UNet with our
processor, VAE tiling/slicing and channels_last in the pipeline, and the SDPA backends our additive key
bias may run on. CUDA-only options (model CPU offload, the fused CUDA kernels) run where a GPU exists.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch._dynamo
from diffusers.models.attention_processor import Attention
from torch.nn.attention import SDPBackend, sdpa_kernel

from attentive_eraser import AttentiveEraserSIPPipeline
from attentive_eraser.core.attention import AttentiveEraserAttnProcessor, EraserState
from attentive_eraser.core.layers import eraser_attention
from attentive_eraser.testing.eager_reference import eager_eraser_attention
from attentive_eraser.testing.tiny import build_components

ROOT = Path(__file__).resolve().parents[1]
SPEED = ROOT / "benchmarks" / "speed.py"
BEGIN, END = "<!-- speed.py:begin -->", "<!-- speed.py:end -->"

LATENT = (16, 16)
CUDA = torch.cuda.is_available()


def _state(*, full_grid: bool = False, suppression_steps: int = 10) -> EraserState:
    """An enabled state for one erased sample on a 128 px image (latent 16x16, grids 16, 8, 4, 2, 1)."""
    state = EraserState(suppression_scale=0.3, suppression_steps=suppression_steps, enabled=True)
    mask = torch.zeros(1, 1, 128, 128)
    if full_grid:
        mask[..., 8:120, 8:120] = 1  # covers the whole 4x4 (and 2x2) grid: those layers stay stock
    else:
        mask[..., 40:80, 50:90] = 1
    state.set_mask(mask, LATENT)
    return state


def _unet_inputs(unet: torch.nn.Module) -> tuple[torch.Tensor, int, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(1, 4, *LATENT, generator=generator).repeat(2, 1, 1, 1)  # [plain, erased]
    embeddings = torch.randn(2, 77, unet.config.cross_attention_dim, generator=generator)
    return latents, 500, embeddings


def _decoder_attention(unet: torch.nn.Module, level: int) -> tuple[Attention, torch.Tensor]:
    """The first decoder self-attention module at UNet ``level``, and ``[plain, erased]`` tokens for it."""
    block = len(unet.config.block_out_channels) - 1 - level
    attn = unet.up_blocks[block].attentions[0].transformer_blocks[0].attn1
    tokens = (LATENT[0] >> level) * (LATENT[1] >> level)
    hidden = torch.randn(1, tokens, attn.to_q.in_features, generator=torch.Generator().manual_seed(0))
    return attn, hidden.repeat(2, 1, 1)


@pytest.fixture(scope="module")
def tiny_unet() -> torch.nn.Module:
    return build_components("sd21")["unet"].eval()


# ------------------------------------------------------------------------------------- the benchmark
@pytest.fixture(scope="module")
def quick_speed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, Path]:
    """``speed.py --quick`` once, writing its tables to a new page and into an existing hand-written one.

    Returns the printed output, the new page and the existing page.
    """
    folder = tmp_path_factory.mktemp("speed")
    new_page = folder / "performance.md"
    existing = folder / "page.md"
    existing.write_text(f"# Title\n\nbefore\n\n{BEGIN}\nold table\n{END}\n\nafter\n")
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    command = [
        sys.executable,
        str(SPEED),
        "--quick",
        "--markdown",
        str(new_page),
        "--markdown",
        str(existing),
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=900, env=env, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout, new_page, existing


@pytest.mark.slow
def test_quick_benchmark_prints_every_row(quick_speed_run: tuple[str, Path, Path]) -> None:
    """``speed.py --quick`` runs and prints every row and the two ratio lines (figures are never asserted)."""
    out, markdown, _ = quick_speed_run
    for family in ("sd15", "sd21", "sdxl"):
        for size in ("128×128", "192×128"):
            assert re.search(rf"^\| tiny {family} \| {size} \| .+ \|$", out, re.M), (family, size)
    for size, tokens in (("128×128", 256), ("256×256", 1024)):
        assert re.search(rf"^\| tiny \| {size} \| {tokens} \| .+ \|$", out, re.M), size
    for family in ("sd21", "sdxl"):
        assert re.search(
            rf"^\| tiny {family} \| 128×128 \| 8 \| [\d.]+ \| 10 \+ 10 \| [\d.]+ \|", out, re.M
        ), family
    for strategy in ("resize", "crop"):
        assert re.search(rf"^\| tiny sd21 \| 4000×3000 \| .+ \| {strategy} \| .+ \|$", out, re.M), strategy
    for name in ("ours/floor", "ours/eager"):
        match = re.search(rf"^{name} (\S+)$", out, re.M)
        assert match is not None, name
        assert float(match.group(1)) > 0  # a number, whatever its value
    written = markdown.read_text()
    assert written.startswith(BEGIN) and END in written  # a new page holds the generated block alone
    assert "| tiny sd21 | 128×128 |" in written


@pytest.mark.slow
def test_markdown_keeps_the_hand_written_text(quick_speed_run: tuple[str, Path, Path]) -> None:
    """``--markdown`` replaces only the generated block of an existing page."""
    _, generated, page = quick_speed_run
    text = page.read_text()
    assert "old table" not in text and "| tiny sd21 | 128×128 |" in text
    assert text.startswith("# Title\n\nbefore\n") and text.rstrip().endswith("after")
    assert generated.read_text() in text  # the same block as on a new page


@pytest.mark.parametrize("step_index", [0, 20], ids=["SS on", "SS off"])
def test_eager_baseline_computes_what_our_processor_computes(
    tiny_unet: torch.nn.Module, step_index: int
) -> None:
    """The benchmark compares like with like: the eager baseline gives our processor's output."""
    state = _state()
    state.step_index = step_index
    latents, timestep, embeddings = _unet_inputs(tiny_unet)
    with torch.no_grad():
        with eraser_attention(tiny_unet, state):
            ours = tiny_unet(latents, timestep, embeddings).sample
        with eager_eraser_attention(tiny_unet, state):
            eager = tiny_unet(latents, timestep, embeddings).sample
        plain = tiny_unet(latents, timestep, embeddings).sample
    torch.testing.assert_close(eager, ours, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(ours[1], plain[1], atol=1e-4)  # the erased half really is erased
    torch.testing.assert_close(ours[0], plain[0], atol=1e-5, rtol=1e-4)  # the plain half is not


# ------------------------------------------------------------------------------------- torch.compile
@pytest.mark.slow
def test_compile_fullgraph_matches_eager(tiny_unet: torch.nn.Module) -> None:
    """The UNet with our processor and an enabled state compiles as one graph and computes the same.

    ``fullgraph=True`` raises on any graph break. The ``eager`` backend keeps the test fast on 2 CPU cores:
    graph breaks are decided by Dynamo's tracing, which every backend shares (inductor was checked by hand).
    """
    state = _state()
    latents, timestep, embeddings = _unet_inputs(tiny_unet)
    torch._dynamo.reset()
    with torch.no_grad(), eraser_attention(tiny_unet, state):
        expected = tiny_unet(latents, timestep, embeddings).sample
        compiled = torch.compile(tiny_unet, fullgraph=True, backend="eager")
        actual = compiled(latents, timestep, embeddings).sample
    torch._dynamo.reset()
    torch.testing.assert_close(actual, expected, atol=1e-6, rtol=1e-5)


@pytest.mark.slow
def test_compile_does_not_recompile_every_step(tiny_unet: torch.nn.Module) -> None:
    """A denoising run needs 2 graphs per layer once the state's cache is filled: SS steps, later steps.

    One decoder self-attention module is compiled rather than the UNet: same processor code, faster tracing.
    """
    state = _state(suppression_steps=1)
    attn, hidden = _decoder_attention(tiny_unet, level=0)
    torch._dynamo.reset()
    try:
        with (
            torch.no_grad(),
            eraser_attention(tiny_unet, state),
            torch._dynamo.config.patch(recompile_limit=2),
        ):
            attn(hidden)  # eager call: fills the state's per-grid cache
            compiled = torch.compile(attn, fullgraph=True, backend="eager")
            for step in range(4):
                state.step_index = step
                compiled(hidden)
    finally:
        torch._dynamo.reset()


@pytest.mark.slow
def test_compile_fullgraph_with_a_mask_covering_a_coarse_grid(tiny_unet: torch.nn.Module) -> None:
    state = _state(full_grid=True)
    attn, hidden = _decoder_attention(tiny_unet, level=2)  # the 4x4 grid, entirely object
    torch._dynamo.reset()
    try:
        with torch.no_grad(), eraser_attention(tiny_unet, state):
            torch.compile(attn, fullgraph=True, backend="eager")(hidden)
    finally:
        torch._dynamo.reset()


# ------------------------------------------------------------------------------------- memory options
def _pipeline() -> AttentiveEraserSIPPipeline:
    pipe = AttentiveEraserSIPPipeline(**build_components("sd21"))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _scene() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    image = (rng.random((128, 128, 3)) * 255).astype(np.uint8)
    mask = np.zeros((128, 128), dtype=bool)
    mask[40:80, 50:90] = True
    return image, mask


def test_pipeline_with_vae_tiling_slicing_and_channels_last() -> None:
    """The memory options users expect keep working with our processor (the tiny VAE tiles above 64 px)."""
    from PIL import Image

    image, mask = _scene()
    picture = Image.fromarray(image)
    kwargs = {
        "num_inference_steps": 4,
        "strength": 1.0,
        "output_type": "np",
        "paste_back": False,
        "resolution": 128,
        "num_images_per_prompt": 2,
    }
    pipe = _pipeline()

    def run() -> np.ndarray:
        return pipe(
            picture, mask, generator=[torch.Generator().manual_seed(s) for s in (1, 2)], **kwargs
        ).images

    reference = run()
    # channels_last and batch slicing change the memory layout and the batching, not the values
    pipe.vae.enable_slicing()
    pipe.unet.to(memory_format=torch.channels_last)
    before = dict(pipe.unet.attn_processors)
    images = run()
    np.testing.assert_allclose(images, reference, atol=2 / 255)
    assert dict(pipe.unet.attn_processors) == before  # our processors were restored after the run

    # tiling: the tiny VAE works in 64 px tiles, so a 128 px image is encoded and decoded tile by tile
    pipe.vae.enable_tiling()
    calls = {"encode": 0, "decode": 0}
    tiled_encode, tiled_decode = pipe.vae._tiled_encode, pipe.vae.tiled_decode

    def count(name: str, function):  # noqa: ANN001, ANN202
        def wrapper(*args, **kw):  # noqa: ANN002, ANN003, ANN202
            calls[name] += 1
            return function(*args, **kw)

        return wrapper

    pipe.vae._tiled_encode, pipe.vae.tiled_decode = (
        count("encode", tiled_encode),
        count("decode", tiled_decode),
    )
    tiled = run()
    assert calls["encode"] >= 1 and calls["decode"] >= 1
    assert tiled.shape == (2, 128, 128, 3) and np.isfinite(tiled).all()


# ------------------------------------------------------------------------------------- SDPA backends
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("backend", [SDPBackend.FLASH_ATTENTION, SDPBackend.MATH], ids=["flash-cpu", "math"])
def test_processor_runs_on_cpu_sdpa_backends(backend: SDPBackend, dtype: torch.dtype) -> None:
    """On CPU the fused (flash) kernel accepts our additive float key bias: no N x N fallback is forced."""
    torch.manual_seed(0)
    attn = Attention(query_dim=32, heads=2, dim_head=16).to(dtype).eval()
    state = _state()
    hidden = torch.randn(1, 256, 32).to(dtype).repeat(2, 1, 1)  # the 16x16 grid, [plain, erased]
    processor = AttentiveEraserAttnProcessor(state)
    with torch.no_grad():
        expected = processor(attn, hidden)
        with sdpa_kernel(backend):
            actual = processor(attn, hidden)
    tolerance = 1e-5 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(actual, expected, atol=tolerance, rtol=tolerance)


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
def test_cuda_backends_accept_the_key_bias(dtype: torch.dtype) -> None:
    """Memory-efficient attention runs with our bias; flash attention refuses any attn_mask."""
    torch.manual_seed(0)
    attn = Attention(query_dim=320, heads=5, dim_head=64).to("cuda", dtype).eval()
    state = _state()
    hidden = torch.randn(1, 256, 320, device="cuda", dtype=dtype).repeat(2, 1, 1)
    processor = AttentiveEraserAttnProcessor(state)
    with torch.no_grad():
        expected = processor(attn, hidden)
        with sdpa_kernel(SDPBackend.EFFICIENT_ATTENTION):
            torch.testing.assert_close(processor(attn, hidden), expected, atol=2e-2, rtol=2e-2)
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION), pytest.raises(RuntimeError):
            processor(attn, hidden)


@pytest.mark.cuda
def test_model_cpu_offload_in_half_precision() -> None:
    from PIL import Image

    image, mask = _scene()
    pipe = AttentiveEraserSIPPipeline(**build_components("sd21"))
    pipe.set_progress_bar_config(disable=True)
    pipe.to(torch.float16)
    pipe.enable_model_cpu_offload()
    images = pipe(
        Image.fromarray(image),
        mask,
        num_inference_steps=4,
        strength=1.0,
        resolution=128,
        output_type="np",
        generator=torch.Generator().manual_seed(0),
    ).images
    assert np.isfinite(images).all()
