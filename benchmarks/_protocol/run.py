"""The run phase: the three methods, three seeds each, resumable and split between processes."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from attentive_eraser import imaging

from .common import ProtocolError


def check_weights(model: str, what: str) -> None:
    """Fail now, in one clear line, when ``model`` is neither a local folder/file nor reachable on the hub."""
    if Path(model).expanduser().exists():
        return
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(model, allow_patterns=["model_index.json"])
    except Exception as error:  # noqa: BLE001 -- offline, gated, missing
        raise ProtocolError(
            f"{what} weights {model!r} are not available ({type(error).__name__}): this phase needs the "
            "network "
            "or a local copy (pass its folder); it cannot run offline"
        ) from None


@dataclass(frozen=True)
class RunSettings:
    """What the run phase runs: ``methods`` × ``seeds``; ours on the SD 2.1 weights ``model`` (with FreeU
    or not, ``options`` the removal's further options), the baseline on ``inpaint_model`` for
    ``inpaint_steps`` steps at ``size`` pixels; ``batch_size`` images a call, on ``device``."""

    methods: list[str]
    seeds: list[int]
    model: str
    inpaint_model: str
    options: dict[str, Any]
    inpaint_steps: int
    size: int
    batch_size: int
    freeu: bool
    device: str | None
    progress: bool


def run_ours(data: Path, out: Path, settings: RunSettings, *, seed: int, guidance: float) -> Any:
    """Attentive Eraser (SIP) at removal guidance ``guidance`` on every item, through the batch runner."""
    from attentive_eraser.runner import list_items, run_batch
    from attentive_eraser.settings import KNOB_NAMES, RemovalOptions

    options = {**settings.options, "device": settings.device}
    knobs = {"removal_guidance_scale": guidance, **{k: v for k, v in options.items() if k in KNOB_NAMES}}
    fields = {k: v for k, v in options.items() if k not in KNOB_NAMES}
    removal = RemovalOptions(
        model=settings.model, seed=seed, knobs=knobs, paste_back=False, progress=False, **fields
    )
    items = list_items(data / "manifest.csv", out, base_seed=seed, fixed_seed=True)
    return run_batch(
        items,
        removal,
        report_path=out / "batch-report.jsonl",
        batch_size=settings.batch_size,
        progress=settings.progress,
        freeu=settings.freeu,
    )


def run_inpaint_baseline(data: Path, out: Path, settings: RunSettings, *, seed: int) -> int:
    """diffusers' SD 2-inpainting with the empty prompt (the paper's mask-only row); resumable, split by
    process."""
    import torch
    from accelerate import PartialState
    from diffusers import StableDiffusionInpaintPipeline
    from tqdm.auto import tqdm

    from attentive_eraser.api import resolve_device, resolve_dtype
    from attentive_eraser.runner import list_items, output_status

    device, batch_size = settings.device, settings.batch_size
    state = PartialState(cpu=not torch.cuda.is_available())
    torch_device = (
        torch.device(device) if device else (state.device if state.num_processes > 1 else resolve_device())
    )
    pipe = StableDiffusionInpaintPipeline.from_pretrained(
        settings.inpaint_model,
        torch_dtype=resolve_dtype(None, torch_device),
        safety_checker=None,
        requires_safety_checker=False,
    )
    pipe = pipe.to(torch_device)
    pipe.set_progress_bar_config(disable=True)
    items = [
        item
        for item in list_items(data / "manifest.csv", out, base_seed=seed, fixed_seed=True)
        if output_status(item) != "valid"
    ]
    state.wait_for_everyone()  # every process lists the pending items before anyone writes one
    done = 0
    with (
        state.split_between_processes(items) as mine,
        tqdm(total=len(mine), disable=not settings.progress, desc=f"sd2_inpaint seed {seed}") as bar,
    ):
        for start in range(0, len(mine), batch_size):
            chunk = mine[start : start + batch_size]
            images = [imaging.split_alpha(imaging.load_image(item.image))[0] for item in chunk]
            masks = [Image.open(item.mask).convert("L") for item in chunk]
            generators = [torch.Generator(device="cpu").manual_seed(item.seed) for item in chunk]
            results = pipe(
                prompt=[""] * len(chunk),
                image=images,
                mask_image=masks,
                height=settings.size,
                width=settings.size,
                num_inference_steps=settings.inpaint_steps,
                generator=generators,
            ).images
            for item, result in zip(chunk, results, strict=False):
                imaging.save_image(result, item.output)
                done += 1
            bar.update(len(chunk))
    state.wait_for_everyone()
    return done


def run(data: Path, runs: Path, settings: RunSettings) -> None:
    """Every method with every seed, into ``runs/<method>/seed<seed>``; each resumes where it stopped."""
    methods = settings.methods
    if not (data / "manifest.csv").is_file():
        raise ProtocolError(f"{data / 'manifest.csv'} not found: run the prepare phase first")
    if {"sip_sarg", "sip_plain"} & set(methods):
        check_weights(settings.model, "SD 2.1")
    if "sd2_inpaint" in methods:
        check_weights(settings.inpaint_model, "SD 2-inpainting")
    for method in methods:
        for seed in settings.seeds:
            out = runs / method / f"seed{seed}"
            if method == "sd2_inpaint":
                run_inpaint_baseline(data, out, settings, seed=seed)
            else:
                guidance = 9.0 if method == "sip_sarg" else 0.0
                summary = run_ours(data, out, settings, seed=seed, guidance=guidance)
                if summary.failed:
                    print(
                        f"{method} seed {seed}: {summary.failed} item(s) failed; "
                        f"see {out}/batch-report.jsonl",
                        file=sys.stderr,
                    )
