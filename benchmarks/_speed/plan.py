"""What one run of the speed benchmark measures (its plan), and running it."""

from __future__ import annotations

import argparse
import gc
import time
from dataclasses import dataclass, field

import torch

from attentive_eraser.testing.tiny import build_components

from .benches import Results, bench_end_to_end, bench_layer, bench_step, bench_strategies
from .measuring import Setup
from .models import SD21_UNET, SDXL_UNET, build_unet, sd21_components, to_device


@dataclass
class Plan:
    """What one run measures; see :func:`make_plan`. By default no real-size UNet is measured."""

    tiny_sizes: list[tuple[int, int]]
    tiny_repeats: int
    layers: list[tuple[str, int, int, tuple[int, int], int]]  # label, channels, heads, size, level
    layer_repeats: int
    tiny_e2e_size: int
    tiny_e2e_steps: int
    tiny_e2e_repeats: int
    strategy_resolution: int
    notes: list[str]
    sd21_sizes: list[tuple[tuple[int, int], int]] = field(default_factory=list)  # (size, repeats)
    sd21_e2e_steps: int = 0
    sdxl_size: tuple[int, int] | None = None
    sdxl_repeats: int = 0
    sdxl_warmup: list[str] = field(default_factory=list)
    #: the large photo of the strategies table (width, height)
    strategy_photo: tuple[int, int] = (4000, 3000)


def quick_plan(args: argparse.Namespace) -> Plan:
    """``--quick``: the tiny models only, at small sizes."""
    return Plan(
        tiny_sizes=[(128, 128), (128, 192)],
        tiny_repeats=args.repeats or 3,
        layers=[("tiny", 32, 2, (128, 128), 0), ("tiny", 32, 2, (256, 256), 0)],
        layer_repeats=3,
        tiny_e2e_size=128,
        tiny_e2e_steps=10,
        tiny_e2e_repeats=1,
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
        strategy_resolution=512,
        notes=notes,
    )


def make_plan(args: argparse.Namespace, device: torch.device) -> Plan:
    """What to measure: :func:`quick_plan` with ``--quick``, else :func:`full_plan`."""
    return quick_plan(args) if args.quick else full_plan(args, device)


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
    components = to_device(build_components(family), setup.device, setup.dtype)
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
        # crop-around-mask vs whole-image resize on a large photo with a small mask
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
    components = to_device(sd21_components(unet), setup.device, setup.dtype)
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
