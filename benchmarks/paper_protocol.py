#!/usr/bin/env python
"""The paper's Table 1 protocol: OpenImages V5 test masks, SD 2.1 + SIP with and without SARG, and the
SD 2-inpainting baseline, scored with the paper's metrics and printed beside the paper's figures.

Phases (see docs/evaluation.md for fetching OpenImages)::

    python benchmarks/paper_protocol.py prepare --openimages OI_DIR --data DATA [--samples 10000]
    python benchmarks/paper_protocol.py run     --data DATA --runs RUNS [--methods ...] [--seeds 123,321,777]
    python benchmarks/paper_protocol.py score   --data DATA --runs RUNS [--inception F --clip D ...]
                                                [-o table.md]
    python benchmarks/paper_protocol.py tiny    --work DIR    # offline: fake data, tiny random models

``run`` needs the weights (``stabilityai/stable-diffusion-2-1-base`` and
``stabilityai/stable-diffusion-2-inpainting``, from the hub or local folders) and, in practice, GPUs; it can
be
launched with ``accelerate launch --multi_gpu --num_processes N benchmarks/paper_protocol.py run ...``: the
items are split between the processes as in ``attentive-eraser batch``. Everything is resumable.

Results are written as raw decodes (no paste-back), at 512×512, one folder per method and seed:
``RUNS/<method>/seed<seed>/<sample>.png``. Methods: ``sip_sarg`` (ours, s = 9), ``sip_plain`` (SARG off,
s = 0), ``sd2_inpaint`` (diffusers' StableDiffusionInpaintPipeline, empty prompt).

This file is the command line; each phase lives in its module of ``_protocol/``.
"""

from __future__ import annotations

import os

# Before torch loads its OpenMP runtime: spinning workers slow everything on a shared CPU machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


import argparse  # noqa: E402
import sys  # noqa: E402
from dataclasses import fields  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Any, TypeVar  # noqa: E402

from attentive_eraser import imaging  # noqa: E402
from attentive_eraser.runtime import require_extra  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _protocol.common import METHODS, SD2_INPAINT, SD21, SEEDS, ProtocolError  # noqa: E402
from _protocol.prepare import PrepareSettings, prepare  # noqa: E402
from _protocol.run import RunSettings, run  # noqa: E402
from _protocol.score import ScoreSettings, score  # noqa: E402
from _protocol.tiny import tiny  # noqa: E402

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

#: a phase's settings
Settings = TypeVar("Settings", bound="DataclassInstance")


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    phases = parser.add_subparsers(dest="phase", required=True)

    p = phases.add_parser(
        "prepare", help="sample OpenImages V5 test masks into DATA (512² squares + manifest)"
    )
    p.add_argument("--openimages", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--samples", type=int, default=10000)
    p.add_argument("--sample-seed", type=int, default=0)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--min-area", type=float, default=0.01, help="smallest mask share of the square kept")
    p.add_argument("--max-area", type=float, default=0.5, help="largest mask share of the square kept")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", type=Path, required=True)
        p.add_argument("--runs", type=Path, required=True)
        p.add_argument(
            "--methods", default=",".join(METHODS), help=f"comma-separated, of {', '.join(METHODS)}"
        )
        p.add_argument("--seeds", default=",".join(map(str, SEEDS)))
        p.add_argument("--batch-size", type=int, default=4)
        p.add_argument("--device", default=None)

    p = phases.add_parser("run", help="remove the objects with each method and seed (needs weights)")
    common(p)
    p.add_argument("--model", default=SD21, help="SD 2.1 (base) weights: hub id or local folder")
    p.add_argument("--inpaint-model", default=SD2_INPAINT, help="SD 2-inpainting weights: hub id or folder")
    p.add_argument(
        "--no-freeu",
        dest="freeu",
        action="store_false",
        help="run SD 2.1 without FreeU (FreeU very likely gave the paper's SD 2.1 numbers)",
    )
    p.add_argument("--inpaint-steps", type=int, default=50)
    p.add_argument("--size", type=int, default=512)

    p = phases.add_parser("score", help="the paper's metrics per method, beside Table 1")
    common(p)
    p.add_argument("--inception", type=Path, default=None)
    p.add_argument("--lpips-backbone", type=Path, default=None)
    p.add_argument("--lpips-heads", type=Path, default=None)
    p.add_argument("--clip", default=None)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--crop-size", type=int, default=299)
    p.add_argument("-o", "--output", type=Path, default=None)

    p = phases.add_parser(
        "tiny", help="all phases offline on fake data with tiny random models (a smoke test)"
    )
    p.add_argument("--work", type=Path, required=True)
    return parser.parse_args(argv)


def _settings(kind: type[Settings], args: argparse.Namespace, **given: Any) -> Settings:
    """A phase's settings (a dataclass): each field as ``given``, or else the option of the same name."""
    names = [entry.name for entry in fields(kind)]
    return kind(**{name: given[name] if name in given else getattr(args, name) for name in names})


def _methods_and_seeds(args: argparse.Namespace) -> dict[str, Any]:
    """``--methods`` and ``--seeds`` (comma-separated) as lists."""
    return {"methods": args.methods.split(","), "seeds": [int(s) for s in args.seeds.split(",")]}


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    if args.phase in ("score", "tiny"):  # the metrics: torchmetrics' FID and SSIM, its LPIPS heads
        require_extra("benchmarks/paper_protocol.py", "torchmetrics")
    try:
        if args.phase == "prepare":
            sampling = _settings(PrepareSettings, args, seed=args.sample_seed)
            count = prepare(args.openimages, args.data, sampling)
            print(f"{count} samples in {args.data / 'manifest.csv'}")
        elif args.phase == "run":
            running = _settings(RunSettings, args, **_methods_and_seeds(args), options={}, progress=True)
            run(args.data, args.runs, running)
        elif args.phase == "score":
            networks = {
                "inception": args.inception,
                "vgg": args.lpips_backbone,
                "heads": args.lpips_heads,
                "clip": args.clip,
            }
            scoring = _settings(ScoreSettings, args, **_methods_and_seeds(args), networks=networks)
            print(score(args.data, args.runs, scoring), end="")
        else:
            print(tiny(args.work), end="")
    except (ProtocolError, imaging.InputError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
