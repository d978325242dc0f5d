#!/usr/bin/env python
"""Speed and memory of Attentive Eraser, side by side with the authors' eager attention and the plain UNet.

Usage::

    python benchmarks/speed.py [--quick] [--device cpu|cuda] [--dtype fp32|fp16|bf16] [--markdown PATH]
                               [--sdxl-size PX] [--repeats K] [--clock cpu|wall]

Every figure of one table comes from one run, the variants of a row measured in interleaved turns (a, b,
c, then b, c, a, ...) so that a busy machine slows them alike; compare ratios, not absolute seconds. On CPU
the seconds are this process's CPU time (other programs sharing the cores do not inflate it), on CUDA
synchronised wall-clock time.

Rows of the per-step table, for one image at each size:

* **ours**: one SIP step with SARG -- the UNet on ``[plain, erased]`` (batch 2) with the package's processor
  installed by :func:`attentive_eraser.core.layers.eraser_attention`, Similarity Suppression on
  (step 0 < T_SS), a centred box mask of 15 % of the image, then Eq. 18, the DDIM step and the background
  blend;
* **eager**: the same step with :mod:`attentive_eraser.testing.eager_reference` (explicit ``N x N``
  logits, mask added, softmax, lambda-softmax combined row by row -- the authors' way) installed on the
  same decoder layers;
* **floor**: a plain diffusers UNet forward at the same batch of 2 with the stock processor. SARG cannot
  cost less.

The UNets are the real SD 2.1 (base) and SDXL (base 1.0) architectures, built from their published configs
(written below, SDXL's as its changes to SD 2.1's) with random weights -- time and memory do not depend on
weight values -- plus the tiny test models of :mod:`attentive_eraser.testing.tiny`. Nothing is downloaded.

Memory: on CPU the process's resident-set high-water mark during the call (Linux resets it through
``/proc/self/clear_refs``), on CUDA ``torch.cuda.max_memory_allocated``. Attention's own extra memory is
measured on one decoder self-attention layer at several sizes and set against its formula.

``--quick`` runs the tiny models only, at small sizes (well under a minute on 2 CPU cores); the test suite
runs it and checks that every row is printed -- never a timing.
"""

from __future__ import annotations

import os

# Before torch loads its OpenMP runtime: spinning workers slow everything on a shared CPU machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import gc  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from contextlib import AbstractContextManager, nullcontext  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import PIL.Image  # noqa: E402
import torch  # noqa: E402
from diffusers import DDIMScheduler, UNet2DConditionModel  # noqa: E402
from diffusers.models.attention_processor import Attention  # noqa: E402

from attentive_eraser import (  # noqa: E402
    AttentiveEraserDIPPipeline,
    AttentiveEraserSDXLDIPPipeline,
    AttentiveEraserSDXLSIPPipeline,
    AttentiveEraserSIPPipeline,
)
from attentive_eraser.core.attention import AttentiveEraserAttnProcessor, EraserState  # noqa: E402
from attentive_eraser.core.guidance import SARGBatch  # noqa: E402
from attentive_eraser.core.layers import eraser_attention, select_layers  # noqa: E402
from attentive_eraser.testing.eager_reference import (  # noqa: E402
    EagerEraserAttnProcessor,
    eager_eraser_attention,
)
from attentive_eraser.testing.tiny import build_components, build_tokenizer  # noqa: E402

# ------------------------------------------------------------------------------------- configurations
#: UNet of stabilityai/stable-diffusion-2-1-base (its unet/config.json), 866 M parameters
SD21_UNET: dict[str, Any] = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": (
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    ),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    "block_out_channels": (320, 640, 1280, 1280),
    "layers_per_block": 2,
    "attention_head_dim": (5, 10, 20, 20),  # head counts, under diffusers' legacy name
    "cross_attention_dim": 1024,
    "use_linear_projection": True,
    "norm_num_groups": 32,
    "norm_eps": 1e-5,
    "act_fn": "silu",
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "downsample_padding": 1,
    "mid_block_scale_factor": 1,
    "upcast_attention": False,
}

#: UNet of stabilityai/stable-diffusion-xl-base-1.0 (its unet/config.json), 2.57 B parameters: SD 2.1's
#: conventions (channels, norms, activation, padding) with these architecture changes
SDXL_UNET: dict[str, Any] = SD21_UNET | {
    "sample_size": 128,
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    "block_out_channels": (320, 640, 1280),
    "transformer_layers_per_block": (1, 2, 10),
    "attention_head_dim": (5, 10, 20),
    "cross_attention_dim": 2048,
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 2816,
}

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
#: share of the image covered by the centred box mask
MASK_AREA = 0.15
SUPPRESSION_SCALE = 0.3
SUPPRESSION_STEPS = 10
GB = 1024**3
MB = 1024**2


# ------------------------------------------------------------------------------------- measuring
class PeakMemory:
    """Peak memory of this process during a call: CPU resident set (Linux), or the CUDA allocator's peak."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._sampler: threading.Thread | None = None
        self._sampled = 0
        self._stop = threading.Event()
        self.method = "torch.cuda.max_memory_allocated" if device.type == "cuda" else self._cpu_method()

    @staticmethod
    def _cpu_method() -> str:
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")  # 5 = reset the resident-set high-water mark (Linux >= 4.0)
            return "RSS high-water mark (/proc/self/status VmHWM, reset per call)"
        except OSError:
            return "RSS sampled every 2 ms"

    @staticmethod
    def _status(field_name: str) -> int:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) * 1024
        return 0

    @staticmethod
    def _rss() -> int:
        try:
            return PeakMemory._status("VmRSS")
        except OSError:  # not Linux
            import resource

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def current(self) -> int:
        if self.device.type == "cuda":
            return torch.cuda.memory_allocated(self.device)
        return self._rss()

    def reset(self) -> None:
        """Start a new peak at the current usage."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        elif self.method.startswith("RSS high"):
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
        else:
            self._stop.clear()
            self._sampled = self._rss()
            self._sampler = threading.Thread(target=self._sample, daemon=True)
            self._sampler.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self._sampled = max(self._sampled, self._rss())

    def peak(self) -> int:
        """Peak bytes since :meth:`reset`."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            return torch.cuda.max_memory_allocated(self.device)
        if self.method.startswith("RSS high"):
            return self._status("VmHWM")
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join()
        return max(self._sampled, self._rss())


@dataclass(frozen=True)
class Clock:
    """What "seconds" means in the tables."""

    name: str
    read: Callable[[], float]


#: CPU time of the whole process (user + system, every thread): what a step costs the machine, hardly
#: affected by other programs competing for the cores (their time is not counted, unlike wall time)
PROCESS_TIME = Clock("CPU time of this process (user + system, all threads)", time.process_time)
WALL_TIME = Clock("wall-clock time", time.perf_counter)


@dataclass(frozen=True)
class Setup:
    """Where and how everything is measured."""

    device: torch.device
    dtype: torch.dtype
    memory: PeakMemory
    clock: Clock

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


@dataclass
class Variant:
    """One way of running a step: a context that installs its processors, and the call to time."""

    context: Callable[[], AbstractContextManager[Any]]
    call: Callable[[], torch.Tensor | None]


@dataclass
class Measurement:
    #: per call, on the setup's clock
    seconds: list[float] = field(default_factory=list)
    #: per call, wall-clock
    wall: list[float] = field(default_factory=list)
    #: highest absolute peak over the timed calls
    peak: int = 0
    #: highest (peak - usage before the call) over the timed calls
    working: int = 0
    output: torch.Tensor | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def wall_median(self) -> float:
        return statistics.median(self.wall)


def measure(
    variants: dict[str, Variant], *, repeats: int, warmup: Sequence[str], setup: Setup
) -> dict[str, Measurement]:
    """Time each variant ``repeats`` times in rotating order, after a warm-up call of each ``warmup`` one."""
    results = {name: Measurement() for name in variants}
    names = list(variants)
    rounds: list[tuple[bool, list[str]]] = [(False, list(warmup))]
    for index in range(repeats):
        shift = index % len(names)
        rounds.append((True, names[shift:] + names[:shift]))  # a b c, b c a, c a b, ...
    gc.collect()  # once: tensors are freed by reference counting, and a full collection takes ~0.2 s
    with torch.inference_mode():
        for timed, order in rounds:
            for name in order:
                variant, result = variants[name], results[name]
                with variant.context():
                    setup.synchronize()
                    before = setup.memory.current()
                    setup.memory.reset()
                    start, wall_start = setup.clock.read(), time.perf_counter()
                    output = variant.call()
                    setup.synchronize()
                    elapsed, wall = setup.clock.read() - start, time.perf_counter() - wall_start
                    peak = setup.memory.peak()
                if timed:
                    result.seconds.append(elapsed)
                    result.wall.append(wall)
                    result.peak = max(result.peak, peak)
                    result.working = max(result.working, peak - before)
                result.output = None if output is None else output.float().cpu()
                del output
    return results


# ------------------------------------------------------------------------------------- inputs
def centred_box(height: int, width: int, area: float = MASK_AREA) -> torch.Tensor:
    """``(1, 1, H, W)`` pixel mask: a centred box with the image's aspect ratio covering ``area`` of it."""
    side = math.sqrt(area)
    box_h, box_w = round(height * side), round(width * side)
    top, left = (height - box_h) // 2, (width - box_w) // 2
    mask = torch.zeros(1, 1, height, width)
    mask[..., top : top + box_h, left : left + box_w] = 1.0
    return mask


def unet_conditioning(
    unet: UNet2DConditionModel,
    batch: int,
    size: tuple[int, int],
    device: torch.device,
    dtype: torch.dtype,
    generator: torch.Generator,
) -> dict[str, Any]:
    """Random text embeddings (and SDXL's pooled embeddings and size ids) shaped as the UNet config wants."""
    config = unet.config
    conditioning: dict[str, Any] = {
        "encoder_hidden_states": torch.randn(batch, 77, config.cross_attention_dim, generator=generator).to(
            device, dtype
        )
    }
    if config.addition_embed_type == "text_time":
        pooled = config.projection_class_embeddings_input_dim - 6 * config.addition_time_embed_dim
        height, width = size
        conditioning["added_cond_kwargs"] = {
            "text_embeds": torch.randn(batch, pooled, generator=generator).to(device, dtype),
            "time_ids": torch.tensor(
                [[height, width, 0, 0, height, width]] * batch, device=device, dtype=dtype
            ),
        }
    return conditioning


@dataclass
class StepCase:
    """Everything one SIP denoising step needs, for one image of ``size`` pixels."""

    unet: UNet2DConditionModel
    size: tuple[int, int]  # (height, width) in pixels
    latents: torch.Tensor  # (1, 4, h, w)
    image_latents: torch.Tensor
    noise: torch.Tensor
    latent_mask: torch.Tensor  # (1, 1, h, w)
    conditioning: dict[str, Any]  # already laid out as [plain, erased]
    batch: SARGBatch
    scheduler: DDIMScheduler
    timestep: torch.Tensor
    next_timestep: torch.Tensor
    state: EraserState

    def sarg_step(self) -> torch.Tensor:
        """One SIP step: SARG noise prediction (Eq. 18), DDIM step, background blended back."""
        model_output = self.unet(
            self.batch.expand(self.latents), self.timestep, **self.conditioning, return_dict=False
        )[0]
        noise_pred = self.batch.combine(model_output)
        latents = self.scheduler.step(noise_pred, self.timestep, self.latents, eta=0.0, return_dict=False)[0]
        background = self.scheduler.add_noise(self.image_latents, self.noise, self.next_timestep)
        return self.latent_mask * latents + (1 - self.latent_mask) * background

    def floor(self) -> torch.Tensor:
        """The plain UNet at the same batch of 2, stock processors."""
        return self.unet(
            self.batch.expand(self.latents), self.timestep, **self.conditioning, return_dict=False
        )[0]


def make_step_case(
    unet: UNet2DConditionModel, size: tuple[int, int], device: torch.device, dtype: torch.dtype
) -> StepCase:
    generator = torch.Generator().manual_seed(0)
    height, width = size
    latent_size = (height // 8, width // 8)
    latents = torch.randn(1, unet.config.in_channels, *latent_size, generator=generator).to(device, dtype)
    pixel_mask = centred_box(height, width).to(device)
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    scheduler.set_timesteps(50, device=device)
    timesteps = scheduler.timesteps[10:]  # strength 0.8: the last 40 of 50 steps
    state = EraserState(
        suppression_scale=SUPPRESSION_SCALE, suppression_steps=SUPPRESSION_STEPS, enabled=True
    )
    state.set_mask(pixel_mask, latent_size)
    state.step_index = 0  # Similarity Suppression on: the dearer of the two kinds of step
    batch = SARGBatch(1, removal_guidance_scale=9.0)
    return StepCase(
        unet=unet,
        size=size,
        latents=latents,
        image_latents=torch.randn(latents.shape, generator=generator).to(device, dtype),
        noise=torch.randn(latents.shape, generator=generator).to(device, dtype),
        latent_mask=torch.nn.functional.adaptive_max_pool2d(pixel_mask, latent_size).to(dtype),
        conditioning=batch.expand_all(unet_conditioning(unet, 1, size, device, dtype, generator)),
        batch=batch,
        scheduler=scheduler,
        timestep=timesteps[0],
        next_timestep=timesteps[1:2],
        state=state,
    )


# ------------------------------------------------------------------------------------- report rows
@dataclass
class StepRow:
    model: str
    size: tuple[int, int]
    latent: tuple[int, int]
    layers: int
    max_tokens: int
    repeats: int
    ours: Measurement
    eager: Measurement
    floor: Measurement
    max_difference: float

    @property
    def ours_over_eager(self) -> float:
        return self.ours.median / self.eager.median

    @property
    def ours_over_floor(self) -> float:
        return self.ours.median / self.floor.median


@dataclass
class LayerRow:
    label: str
    size: tuple[int, int]
    tokens: int
    heads: int
    head_dim: int
    batch: int
    dtype_bytes: int
    ours: Measurement
    eager: Measurement
    stock: Measurement

    @property
    def ours_analytic(self) -> tuple[int, int]:
        """(bias + row scale, cached per grid; the lambda-scaled query copy during SS steps), bytes."""
        cached = 2 * self.batch * self.tokens * self.dtype_bytes
        query_copy = self.batch * self.tokens * self.heads * self.head_dim * self.dtype_bytes
        return cached, query_copy

    @property
    def eager_analytic(self) -> tuple[int, int]:
        """(one logits tensor, the peak as written: logits + AAS map + SS logits), bytes."""
        square = self.tokens * self.tokens * self.heads * self.dtype_bytes
        return self.batch * square, (self.batch + self.batch + self.batch // 2) * square


@dataclass
class EndToEndRow:
    model: str
    size: tuple[int, int]
    sip_steps: int
    dip_steps: int
    sip: float
    dip: float
    note: str = ""


@dataclass
class StrategyRow:
    model: str
    photo: tuple[int, int]
    mask_fraction: float
    strategy: str
    working: str
    steps: int
    seconds: float


@dataclass
class Results:
    """The rows of every table, filled in as they are measured, and the headline row among the steps."""

    steps: list[StepRow] = field(default_factory=list)
    layers: list[LayerRow] = field(default_factory=list)
    end_to_end: list[EndToEndRow] = field(default_factory=list)
    strategies: list[StrategyRow] = field(default_factory=list)
    headline: StepRow | None = None


# ------------------------------------------------------------------------------------- benchmarks
def decoder_self_attention(unet: UNet2DConditionModel, latent: tuple[int, int]) -> tuple[int, int]:
    """(number of decoder self-attention layers, largest token count among them) at ``latent``."""
    names = select_layers(unet)
    levels = len(unet.config.block_out_channels)
    # an up block i works at the grid of down level (levels - 1 - i); count ceil halvings to there
    largest = 0
    for name in names:
        block = int(name.split(".")[1])
        height, width = latent
        for _ in range(levels - 1 - block):
            height, width = -(-height // 2), -(-width // 2)
        largest = max(largest, height * width)
    return len(names), largest


def bench_step(
    model: str,
    unet: UNet2DConditionModel,
    size: tuple[int, int],
    *,
    repeats: int,
    warmup: Sequence[str],
    setup: Setup,
) -> StepRow:
    case = make_step_case(unet, size, setup.device, setup.dtype)
    variants = {
        "ours": Variant(lambda: eraser_attention(unet, case.state), case.sarg_step),
        "eager": Variant(lambda: eager_eraser_attention(unet, case.state), case.sarg_step),
        "floor": Variant(nullcontext, case.floor),
    }
    results = measure(variants, repeats=repeats, warmup=warmup, setup=setup)
    ours, eager = results["ours"].output, results["eager"].output
    difference = float((ours - eager).abs().max()) if ours is not None and eager is not None else float("nan")
    latent = (size[0] // 8, size[1] // 8)
    layers, tokens = decoder_self_attention(unet, latent)
    row = StepRow(
        model,
        size,
        latent,
        layers,
        tokens,
        repeats,
        results["ours"],
        results["eager"],
        results["floor"],
        difference,
    )
    print(
        f"  step  {model:<10} {size[1]}x{size[0]}: ours {row.ours.median:.3f} s, "
        f"eager {row.eager.median:.3f} s, floor {row.floor.median:.3f} s",
        flush=True,
    )
    return row


def bench_layer(
    label: str,
    channels: int,
    heads: int,
    size: tuple[int, int],
    latent_level: int,
    *,
    repeats: int,
    setup: Setup,
) -> LayerRow:
    """One decoder self-attention layer, ``channels`` wide, on ``[plain, erased]`` at ``latent_level``."""
    device, dtype = setup.device, setup.dtype
    generator = torch.Generator().manual_seed(0)
    height, width = size
    latent = (height // 8, width // 8)
    grid = latent
    for _ in range(latent_level):
        grid = (-(-grid[0] // 2), -(-grid[1] // 2))
    tokens = grid[0] * grid[1]
    torch.manual_seed(0)
    attn = Attention(query_dim=channels, heads=heads, dim_head=channels // heads).to(device, dtype).eval()
    state = EraserState(
        suppression_scale=SUPPRESSION_SCALE, suppression_steps=SUPPRESSION_STEPS, enabled=True
    )
    state.set_mask(centred_box(height, width).to(device), latent)
    hidden = torch.randn(1, tokens, channels, generator=generator).to(device, dtype).repeat(2, 1, 1)
    ours, eager, stock = AttentiveEraserAttnProcessor(state), EagerEraserAttnProcessor(state), attn.processor

    def run(processor: Any) -> Callable[[], torch.Tensor]:
        return lambda: processor(attn, hidden)

    variants = {
        "ours": Variant(nullcontext, run(ours)),
        "eager": Variant(nullcontext, run(eager)),
        "stock": Variant(nullcontext, run(stock)),
    }
    results = measure(variants, repeats=repeats, warmup=list(variants), setup=setup)
    element = torch.finfo(dtype).bits // 8
    row = LayerRow(
        label,
        size,
        tokens,
        heads,
        channels // heads,
        2,
        element,
        results["ours"],
        results["eager"],
        results["stock"],
    )
    print(
        f"  layer {label:<10} {width}x{height} N={tokens}: ours {row.ours.median * 1e3:.1f} ms, "
        f"eager {row.eager.median * 1e3:.1f} ms, stock {row.stock.median * 1e3:.1f} ms",
        flush=True,
    )
    return row


def _image_and_mask(
    size: tuple[int, int], mask_fraction: float, seed: int = 0
) -> tuple[PIL.Image.Image, np.ndarray]:
    """A random RGB photo of ``size`` (width, height) and a centred box mask covering ``mask_fraction``."""
    width, height = size
    rng = np.random.default_rng(seed)
    # smooth random colours (a photo is not white noise), upsampled from a coarse grid
    coarse = rng.integers(0, 256, size=(max(2, height // 64), max(2, width // 64), 3), dtype=np.uint8)
    image = PIL.Image.fromarray(coarse).resize((width, height), PIL.Image.BILINEAR)
    mask = centred_box(height, width, mask_fraction)[0, 0].numpy() > 0.5
    return image, mask


def _time_call(call: Callable[[], Any], setup: Setup) -> float:
    setup.synchronize()
    start = setup.clock.read()
    call()
    setup.synchronize()
    return setup.clock.read() - start


def bench_end_to_end(
    model: str,
    components: dict[str, Any],
    size: int,
    *,
    num_inference_steps: int,
    sip_strength: float,
    repeats: int,
    setup: Setup,
    note: str = "",
) -> EndToEndRow:
    """Seconds per image of a whole SIP call and a whole DIP call (inversion included), median of repeats."""
    sdxl = "text_encoder_2" in components
    sip = (AttentiveEraserSDXLSIPPipeline if sdxl else AttentiveEraserSIPPipeline)(**components).to(
        setup.device
    )
    dip = (AttentiveEraserSDXLDIPPipeline if sdxl else AttentiveEraserDIPPipeline)(**components).to(
        setup.device
    )
    for pipe in (sip, dip):
        pipe.set_progress_bar_config(disable=True)
    image, mask = _image_and_mask((size, size), MASK_AREA)
    common = {
        "image": image,
        "mask_image": mask,
        "num_inference_steps": num_inference_steps,
        "resolution": size,
    }

    def run_sip() -> Any:
        return sip(**common, strength=sip_strength, generator=torch.Generator().manual_seed(123))

    def run_dip() -> Any:
        return dip(**common, strength=1.0)

    sip_times, dip_times = [], []
    for index in range(repeats):
        order = (run_sip, run_dip) if index % 2 == 0 else (run_dip, run_sip)
        for call in order:
            (sip_times if call is run_sip else dip_times).append(_time_call(call, setup))
    sip_steps = min(int(num_inference_steps * sip_strength), num_inference_steps)
    row = EndToEndRow(
        model,
        (size, size),
        sip_steps,
        num_inference_steps,
        statistics.median(sip_times),
        statistics.median(dip_times),
        note,
    )
    print(
        f"  e2e   {model:<10} {size}x{size}: SIP {row.sip:.2f} s ({sip_steps} steps), "
        f"DIP {row.dip:.2f} s ({num_inference_steps} + {num_inference_steps} steps)",
        flush=True,
    )
    return row


def bench_strategies(
    model: str,
    components: dict[str, Any],
    photo: tuple[int, int],
    mask_fraction: float,
    *,
    resolution: int,
    num_inference_steps: int,
    setup: Setup,
) -> list[StrategyRow]:
    """A SIP call on a large photo with a small mask: the whole image resized vs a crop around the mask."""
    sdxl = "text_encoder_2" in components
    sip = (AttentiveEraserSDXLSIPPipeline if sdxl else AttentiveEraserSIPPipeline)(**components).to(
        setup.device
    )
    sip.set_progress_bar_config(disable=True)
    image, mask = _image_and_mask(photo, mask_fraction, seed=1)
    rows = []
    for strategy in ("resize", "crop"):

        def call(strategy: str = strategy) -> None:
            sip(
                image,
                mask,
                num_inference_steps=num_inference_steps,
                strength=1.0,
                resolution=resolution,
                strategy=strategy,
                generator=torch.Generator().manual_seed(123),
            )

        seconds = _time_call(call, setup)
        inputs = sip.prepare_eraser_inputs(
            image,
            mask,
            resolution=resolution,
            mask_dilation=sip.preset.mask_dilation,
            num_images_per_prompt=1,
            strategy=strategy,
        )
        width, height = inputs.working_size
        rows.append(
            StrategyRow(
                model, photo, mask_fraction, strategy, f"{width}x{height}", num_inference_steps, seconds
            )
        )
        print(
            f"  crop  {model:<10} {photo[0]}x{photo[1]} {strategy}: {seconds:.2f} s at {width}x{height}",
            flush=True,
        )
    return rows


def sd21_components(unet: UNet2DConditionModel) -> dict[str, Any]:
    """The real-size SD 2.1 UNet with the tiny VAE and a small 1024-wide text encoder (``unet`` is shared)."""
    from transformers import CLIPTextConfig, CLIPTextModel

    components = build_components("sd21")
    tokenizer = build_tokenizer()
    torch.manual_seed(0)
    components["text_encoder"] = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=unet.config.cross_attention_dim,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=16,
            max_position_embeddings=77,
            projection_dim=64,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    ).eval()
    components["unet"] = unet
    return components


def _to(components: dict[str, Any], device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    """Move the modules of ``components`` to ``device`` and ``dtype`` (fp32 modules are only moved)."""
    moved = {}
    for name, value in components.items():
        if isinstance(value, torch.nn.Module):
            value = value.to(device)
            if dtype != torch.float32:
                value = value.to(dtype)
        moved[name] = value
    return moved


def build_unet(config: dict[str, Any], device: torch.device, dtype: torch.dtype) -> UNet2DConditionModel:
    torch.manual_seed(0)
    return _to({"unet": UNet2DConditionModel(**config)}, device, dtype)["unet"].eval()


# ------------------------------------------------------------------------------------- report
def machine_description(device: torch.device) -> str:
    import diffusers

    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as handle:
            ram = f", {int(handle.readline().split()[1]) / 1024**2:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        ram = ""
    text = (
        f"{cpu}, {os.cpu_count()} cores ({torch.get_num_threads()} torch threads){ram}; "
        f"torch {torch.__version__}, diffusers {diffusers.__version__}, Python {platform.python_version()}"
    )
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        text += f"; GPU {props.name}, {props.total_memory / GB:.0f} GiB"
    return text


def _gb(value: int) -> str:
    return f"{value / GB:.2f}"


def _mb(value: float) -> str:
    return f"{value / MB:+.0f}" if abs(value) >= MB else f"{value / 1024:+.0f} KiB"


def _size(size: tuple[int, int]) -> str:
    return f"{size[1]}×{size[0]}"


def _bytes(value: float) -> str:
    if value >= GB:
        return f"{value / GB:.2f} GiB"
    if value >= MB:
        return f"{value / MB:.1f} MiB"
    return f"{value / 1024:.0f} KiB"


def _command(args: argparse.Namespace, dtype_name: str) -> str:
    """The command line that reproduces this run, as the report shows it."""
    return "python benchmarks/speed.py" + " ".join(
        [
            "",
            *(["--quick"] if args.quick else []),
            f"--device {args.device}",
            f"--dtype {dtype_name}",
            *([f"--clock {args.clock}"] if args.clock else []),
        ]
    )


def render_preamble(
    args: argparse.Namespace, setup: Setup, dtype_name: str, notes: list[str], elapsed: float
) -> list[str]:
    """Where the figures come from: command, date, machine, settings, clock and the plan's notes."""
    device = setup.device
    return [
        f"Generated by `{_command(args, dtype_name)}` on {datetime.date.today().isoformat()} "
        f"in {elapsed / 60:.1f} min.",
        "",
        f"* Machine: {machine_description(device)}.",
        f"* Device `{device.type}`, dtype {dtype_name}; "
        "random weights (time and memory do not depend on them).",
        f"* Mask: a centred box covering {MASK_AREA:.0%} of the image; "
        "SARG batch `[plain, erased]` = 2 for one image; "
        f"Similarity Suppression on (λ = {SUPPRESSION_SCALE}, step 0 of T_SS = {SUPPRESSION_STEPS}).",
        f"* Seconds: {setup.clock.name}; ratios use these. Memory: {setup.memory.method}.",
        *[f"* {note}" for note in notes],
    ]


def _step_line(row: StepRow) -> str:
    return (
        f"| {row.model} | {_size(row.size)} | {row.latent[1]}×{row.latent[0]} | "
        f"{row.layers} ({row.max_tokens}) | "
        f"{row.repeats} | {row.ours.median:.3f} | {row.eager.median:.3f} | {row.floor.median:.3f} | "
        f"**{row.ours_over_eager:.2f}** | **{row.ours_over_floor:.3f}** | {row.ours.wall_median:.3f} / "
        f"{row.eager.wall_median:.3f} / {row.floor.wall_median:.3f} | {_gb(row.ours.peak)} / "
        f"{_gb(row.eager.peak)} / {_gb(row.floor.peak)} | {_mb(row.ours.peak - row.floor.peak)} / "
        f"{_mb(row.eager.peak - row.floor.peak)} | {row.max_difference:.1e} |"
    )


def render_steps(steps: list[StepRow], device: torch.device) -> list[str]:
    """The per-step table: ours, eager and floor side by side for each model and size."""
    memory_name = "peak GPU memory (GiB)" if device.type == "cuda" else "peak RSS (GiB)"
    return [
        "",
        "### One denoising step",
        "",
        "ours = one SIP step with SARG (UNet on `[plain, erased]` with our processor, Eq. 18, DDIM step, "
        "blend); eager = the same step with the authors' eager attention (N×N logits, mask added, softmax, "
        "λ-softmax combined row-wise) on the same decoder layers; floor = the plain diffusers UNet at "
        "batch 2. "
        "Seconds are medians of k interleaved repetitions after a warm-up (wall-clock medians beside them); "
        "Δ = the largest difference between ours and eager outputs.",
        "",
        f"| model | image (W×H) | latent | decoder self-attn layers (largest N) | k | ours (s) | eager (s) | "
        f"floor (s) | **ours/eager** | **ours/floor** | wall (s) ours / eager / floor | "
        f"{memory_name} ours / eager / floor | peak − floor (MiB) ours / eager | Δ ours vs eager |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *[_step_line(row) for row in steps],
    ]


def render_headline(headline: StepRow | None) -> list[str]:
    """The headline ratios in a code block, or nothing when no row is the headline."""
    if headline is None:
        return []
    return [
        "",
        f"Headline ({headline.model}, {_size(headline.size)}):",
        "",
        "```",
        f"ours/floor {headline.ours_over_floor:.3f}",
        f"ours/eager {headline.ours_over_eager:.3f}",
        "```",
    ]


def _layer_line(layer: LayerRow) -> str:
    cached, copy = layer.ours_analytic
    logits, peak = layer.eager_analytic
    return (
        f"| {layer.label} | {_size(layer.size)} | {layer.tokens} | {layer.heads} × {layer.head_dim} | "
        f"{_bytes(max(0, layer.ours.working - layer.stock.working))} | "
        f"{_bytes(cached)} + {_bytes(copy)} | "
        f"{_bytes(max(0, layer.eager.working - layer.stock.working))} | "
        f"{_bytes(logits)} / {_bytes(peak)} | "
        f"{layer.ours.median * 1e3:.1f} / {layer.eager.median * 1e3:.1f} / "
        f"{layer.stock.median * 1e3:.1f} |"
    )


def render_layers(layers: list[LayerRow]) -> list[str]:
    """The attention-memory table: measured extra memory of one layer against its formula."""
    return [
        "",
        "### Attention's extra memory (one decoder self-attention layer, batch 2)",
        "",
        "Measured: the layer's working memory (peak − usage before the call) minus the stock processor's. "
        "Analytic, ours: key bias + query row scale `2·(2B)·N` elements, cached once per grid, plus one "
        "λ-scaled copy of the queries `2B·N·C` during SS steps — O(N). Analytic, eager: one logits tensor "
        "`2B·h·N²`; as written its peak holds the logits, the AAS map and the λ-logits, "
        "`(2B + 2B + B)·h·N²` — O(N²).",
        "",
        "| layer | image (W×H) | N | heads × d | ours − stock measured | ours analytic (cached + SS copy) | "
        "eager − stock measured | eager analytic (logits / peak) | ms ours / eager / stock |",
        "|---|---|---|---|---|---|---|---|---|",
        *[_layer_line(layer) for layer in layers],
    ]


def render_end_to_end(end_to_end: list[EndToEndRow]) -> list[str]:
    """The end-to-end table: seconds per image of whole SIP and DIP calls."""
    return [
        "",
        "### End to end (seconds per image)",
        "",
        "Whole pipeline calls on one image (preprocessing, VAE encode, denoising, decode, paste-back). "
        "DIP includes its DDIM inversion (as many plain UNet calls at batch 1 as sampling steps).",
        "",
        "| model | image | SIP steps | SIP (s) | DIP steps (inversion + sampling) | DIP (s) | note |",
        "|---|---|---|---|---|---|---|",
        *[
            f"| {row.model} | {_size(row.size)} | {row.sip_steps} | {row.sip:.2f} | "
            f"{row.dip_steps} + {row.dip_steps} | {row.dip:.2f} | {row.note} |"
            for row in end_to_end
        ],
    ]


def render_strategies(strategies: list[StrategyRow]) -> list[str]:
    """The large-photo table (issue 4 item 4): whole image resized vs crop around the mask."""
    return [
        "",
        "### Large photos: whole image resized vs crop around the mask",
        "",
        "| model | photo | mask | strategy | working size | steps | SIP (s) |",
        "|---|---|---|---|---|---|---|",
        *[
            f"| {row.model} | {row.photo[0]}×{row.photo[1]} | {row.mask_fraction:.1%} | {row.strategy} | "
            f"{row.working} | {row.steps} | {row.seconds:.2f} |"
            for row in strategies
        ],
    ]


def render(
    *,
    args: argparse.Namespace,
    setup: Setup,
    dtype_name: str,
    results: Results,
    notes: list[str],
    elapsed: float,
) -> str:
    """The whole markdown report: preamble, then the step, layer, end-to-end and strategy tables."""
    lines = [
        *render_preamble(args, setup, dtype_name, notes, elapsed),
        *render_steps(results.steps, setup.device),
        *render_headline(results.headline),
        *render_layers(results.layers),
        *render_end_to_end(results.end_to_end),
        *render_strategies(results.strategies),
    ]
    return "\n".join(lines) + "\n"


BEGIN, END = "<!-- speed.py:begin -->", "<!-- speed.py:end -->"


def write_markdown(path: Path, table: str) -> None:
    """Write ``table`` to ``path``, between the generated-block markers if the file already has them."""
    block = f"{BEGIN}\n{table}{END}\n"
    if path.exists():
        text = path.read_text()
        if BEGIN in text and END in text:
            head, rest = text.split(BEGIN, 1)
            tail = rest.split(END, 1)[1].lstrip("\n")
            path.write_text(head + block + ("\n" + tail if tail else ""))
            return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(block)


# ------------------------------------------------------------------------------------- main
@dataclass
class Plan:
    """What one run measures; see :func:`make_plan`."""

    tiny_sizes: list[tuple[int, int]]
    tiny_repeats: int
    sd21_sizes: list[tuple[tuple[int, int], int]]  # (size, repeats)
    sdxl_size: tuple[int, int] | None
    sdxl_repeats: int
    sdxl_warmup: list[str]
    layers: list[tuple[str, int, int, tuple[int, int], int]]  # label, channels, heads, size, level
    layer_repeats: int
    tiny_e2e_size: int
    tiny_e2e_steps: int
    tiny_e2e_repeats: int
    sd21_e2e_steps: int
    strategy_photo: tuple[int, int]
    strategy_resolution: int
    notes: list[str]


def quick_plan(args: argparse.Namespace) -> Plan:
    """``--quick``: the tiny models only, at small sizes."""
    return Plan(
        tiny_sizes=[(128, 128), (128, 192)],
        tiny_repeats=args.repeats or 3,
        sd21_sizes=[],
        sdxl_size=None,
        sdxl_repeats=0,
        sdxl_warmup=[],
        layers=[("tiny", 32, 2, (128, 128), 0), ("tiny", 32, 2, (256, 256), 0)],
        layer_repeats=3,
        tiny_e2e_size=128,
        tiny_e2e_steps=10,
        tiny_e2e_repeats=1,
        sd21_e2e_steps=0,
        strategy_photo=(4000, 3000),
        strategy_resolution=128,
        notes=["Quick run: tiny models only, small sizes; the full run covers the real-size UNets."],
    )


def full_plan(args: argparse.Namespace, device: torch.device) -> Plan:
    """The full run: tiny models, then the real-size SD 2.1 and SDXL UNets (SDXL at 512² on CPU)."""
    notes: list[str] = []
    cuda = device.type == "cuda"
    sdxl_px = args.sdxl_size or (1024 if cuda else 512)
    if sdxl_px != 1024:
        notes.append(
            f"SDXL measured at {sdxl_px}×{sdxl_px} instead of its native 1024×1024: "
            "one SDXL forward at batch 2 and 1024² took about 3 minutes here, too long for three variants "
            "side by side; the SDXL attention layer is measured at 1024² in the memory table. "
            "`--sdxl-size 1024` measures it anyway."
        )
    repeats = args.repeats
    return Plan(
        tiny_sizes=[(256, 256), (256, 384)],
        tiny_repeats=repeats or 5,
        sd21_sizes=[
            ((512, 512), repeats or (10 if cuda else 3)),
            ((512, 768), repeats or (10 if cuda else 2)),
        ],
        sdxl_size=(sdxl_px, sdxl_px),
        sdxl_repeats=repeats or (10 if cuda else 1),
        sdxl_warmup=["ours", "eager", "floor"] if cuda else ["floor"],
        layers=[
            ("SD 2.1", 320, 5, (384, 384), 0),
            ("SD 2.1", 320, 5, (512, 512), 0),
            ("SD 2.1", 320, 5, (768, 512), 0),
            ("SDXL", 640, 10, (1024, 1024), 1),
        ],
        layer_repeats=repeats or 3,
        tiny_e2e_size=256,
        tiny_e2e_steps=50,
        tiny_e2e_repeats=3,
        sd21_e2e_steps=2,
        strategy_photo=(4000, 3000),
        strategy_resolution=512,
        notes=notes,
    )


def make_plan(args: argparse.Namespace, device: torch.device) -> Plan:
    """What to measure: :func:`quick_plan` with ``--quick``, else :func:`full_plan`."""
    return quick_plan(args) if args.quick else full_plan(args, device)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny models at small sizes only (< 1 min on 2 cores)"
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument(
        "--dtype", choices=tuple(DTYPES), default=None, help="default: fp32 on cpu, fp16 on cuda"
    )
    parser.add_argument(
        "--markdown",
        type=Path,
        action="append",
        default=None,
        help="also write the tables to this file (between its speed.py markers if it has them); repeatable",
    )
    parser.add_argument(
        "--sdxl-size",
        type=int,
        default=None,
        help="SDXL image side in pixels (default: 1024 on cuda, 512 on cpu)",
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed repetitions per variant (default: per row)"
    )
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default=None,
        help="cpu: this process's CPU time, robust on a shared machine (default on cpu); "
        "wall: wall-clock time (always on cuda)",
    )
    return parser.parse_args(argv)


def make_setup(args: argparse.Namespace) -> tuple[Setup, str]:
    """The device, dtype, memory meter and clock of this run (and the dtype's name), torch configured."""
    device = torch.device(args.device)
    dtype_name = args.dtype or ("fp16" if device.type == "cuda" else "fp32")
    dtype = DTYPES[dtype_name]
    if device.type == "cpu" and dtype == torch.float16:
        warnings.warn("fp16 on CPU is slow and partly emulated; use fp32 or bf16 there", stacklevel=1)
    torch.set_flush_denormal(True)  # denormals would slow the CPU unevenly across variants
    # The full-grid warning and tqdm chatter are not what this script reports.
    logging.getLogger("attentive_eraser").setLevel(logging.ERROR)
    clock = PROCESS_TIME if device.type == "cpu" and args.clock != "wall" else WALL_TIME
    return Setup(device=device, dtype=dtype, memory=PeakMemory(device), clock=clock), dtype_name


def _progress(started: float, stage: str) -> None:
    print(f"[{time.perf_counter() - started:6.1f} s] {stage}", flush=True)


def run_layers(plan: Plan, setup: Setup, results: Results) -> None:
    """The attention-memory table: one decoder self-attention layer at each planned size."""
    for label, channels, heads, size, level in plan.layers:
        results.layers.append(
            bench_layer(label, channels, heads, size, level, repeats=plan.layer_repeats, setup=setup)
        )


def run_tiny_family(family: str, plan: Plan, setup: Setup, results: Results, *, quick: bool) -> None:
    """One tiny model: its step rows, then (not for sd15) end to end, then (sd21) the strategies."""
    components = _to(build_components(family), setup.device, setup.dtype)
    unet = components["unet"].eval()
    for size in plan.tiny_sizes:
        row = bench_step(
            f"tiny {family}",
            unet,
            size,
            repeats=plan.tiny_repeats,
            warmup=["ours", "eager", "floor"],
            setup=setup,
        )
        results.steps.append(row)
        if quick and family == "sd21" and results.headline is None:
            results.headline = row
    if family != "sd15":
        results.end_to_end.append(
            bench_end_to_end(
                f"tiny {family}",
                components,
                plan.tiny_e2e_size,
                num_inference_steps=plan.tiny_e2e_steps,
                sip_strength=0.8,
                repeats=plan.tiny_e2e_repeats,
                setup=setup,
                note=f"median of {plan.tiny_e2e_repeats}; SIP strength 0.8, DIP strength 1.0",
            )
        )
    if family == "sd21":
        # Issue 4 item 4: crop-around-mask vs whole-image resize on a large photo with a small mask
        results.strategies += bench_strategies(
            "tiny sd21",
            components,
            plan.strategy_photo,
            0.005,
            resolution=plan.strategy_resolution,
            num_inference_steps=4,
            setup=setup,
        )
    del unet, components
    gc.collect()


def run_sd21(plan: Plan, setup: Setup, results: Results) -> None:
    """The real-size SD 2.1 UNet: its step rows (512² is the headline), end to end, the strategies."""
    unet = build_unet(SD21_UNET, setup.device, setup.dtype)
    for size, repeats in plan.sd21_sizes:
        row = bench_step(
            "SD 2.1", unet, size, repeats=repeats, warmup=["ours", "eager", "floor"], setup=setup
        )
        results.steps.append(row)
        if size == (512, 512):
            results.headline = row
    components = _to(sd21_components(unet), setup.device, setup.dtype)
    results.end_to_end.append(
        bench_end_to_end(
            "SD 2.1 UNet",
            components,
            512,
            num_inference_steps=plan.sd21_e2e_steps,
            sip_strength=1.0,
            repeats=1,
            setup=setup,
            note="real-size UNet, tiny VAE and text encoder; SIP and DIP both at strength 1.0",
        )
    )
    results.strategies += bench_strategies(
        "SD 2.1 UNet",
        components,
        plan.strategy_photo,
        0.005,
        resolution=plan.strategy_resolution,
        num_inference_steps=plan.sd21_e2e_steps,
        setup=setup,
    )
    del unet, components
    gc.collect()


def run_sdxl(plan: Plan, setup: Setup, results: Results) -> None:
    """The real-size SDXL UNet: one step row at the planned size."""
    assert plan.sdxl_size is not None
    unet = build_unet(SDXL_UNET, setup.device, setup.dtype)
    results.steps.append(
        bench_step(
            "SDXL", unet, plan.sdxl_size, repeats=plan.sdxl_repeats, warmup=plan.sdxl_warmup, setup=setup
        )
    )
    del unet
    gc.collect()


def run_benchmarks(plan: Plan, setup: Setup, *, quick: bool, started: float) -> Results:
    """Every measurement of the plan, in this order: layers, tiny models, SD 2.1, SDXL."""
    results = Results()
    _progress(started, "attention layers")
    run_layers(plan, setup, results)
    _progress(started, "tiny models")
    for family in ("sd15", "sd21", "sdxl"):
        run_tiny_family(family, plan, setup, results, quick=quick)
    if plan.sd21_sizes:
        _progress(started, "SD 2.1 UNet (real size)")
        run_sd21(plan, setup, results)
    if plan.sdxl_size is not None:
        _progress(started, "SDXL UNet (real size)")
        run_sdxl(plan, setup, results)
    return results


def publish(table: str, headline: StepRow | None, pages: Sequence[Path]) -> None:
    """Print the tables (and the headline's plain ratio lines), and write them into each markdown page."""
    print()
    print(table)
    if headline is not None:
        # plain lines for scripts (the headline row: SD 2.1 at 512², or tiny sd21 in a quick run)
        print(f"ours/floor {headline.ours_over_floor:.3f}")
        print(f"ours/eager {headline.ours_over_eager:.3f}")
    for page in pages:
        write_markdown(page, table)
        print(f"wrote {page}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but CUDA is not available", file=sys.stderr)
        return 2
    setup, dtype_name = make_setup(args)
    plan = make_plan(args, setup.device)
    results = run_benchmarks(plan, setup, quick=args.quick, started=started)
    table = render(
        args=args,
        setup=setup,
        dtype_name=dtype_name,
        results=results,
        notes=plan.notes,
        elapsed=time.perf_counter() - started,
    )
    publish(table, results.headline, args.markdown or ())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
