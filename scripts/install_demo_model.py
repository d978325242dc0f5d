"""Install a trained demo model as the package's embedded default (``src/attentive_eraser/demo_model``).

    python scripts/install_demo_model.py RUN [--vae-run VAE_RUN]

``RUN`` is a ``train_demo --out`` folder. When its VAE came from another run (``--vae-from``), pass that
run as ``--vae-run``: its VAE-stage record and loss log are merged into the installed ones, so that
``demo_model/training/`` documents both stages. The model folder is replaced as a whole (weights, configs,
tokenizer); ``training/`` receives ``training_config.json`` (one record, the VAE stage's results filled in
from ``--vae-run``), ``loss_log.jsonl`` and ``samples.png``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

TARGET = Path(__file__).resolve().parents[1] / "src" / "attentive_eraser" / "demo_model"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", type=Path, help="train_demo output folder (with model/)")
    parser.add_argument("--vae-run", type=Path, help="the run whose VAE the UNet stage used (--vae-from)")
    args = parser.parse_args()
    model = args.run / "model"
    if not (model / "model_index.json").is_file():
        raise SystemExit(f"error: {model} is not a finished model folder")
    record = json.loads((args.run / "training_config.json").read_text(encoding="utf-8"))
    log = (args.run / "loss_log.jsonl").read_text(encoding="utf-8").splitlines()
    if args.vae_run is not None:
        vae_record = json.loads((args.vae_run / "training_config.json").read_text(encoding="utf-8"))
        record["vae_stage"] = {key: vae_record[key] for key in ("command", "started", "finished", "versions")}
        record["results"]["vae"] = vae_record["results"]["vae"]
        vae_log = (args.vae_run / "loss_log.jsonl").read_text(encoding="utf-8").splitlines()
        log = [line for line in vae_log if json.loads(line).get("stage") == "vae"] + [
            line for line in log if json.loads(line).get("stage") != "vae"
        ]

    staging = TARGET.with_name(TARGET.name + ".new")
    if staging.exists():
        shutil.rmtree(staging)
    shutil.copytree(model, staging)
    training = staging / "training"
    training.mkdir()
    (training / "training_config.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    (training / "loss_log.jsonl").write_text("\n".join(log) + "\n", encoding="utf-8")
    shutil.copy2(args.run / "samples.png", training / "samples.png")
    if TARGET.exists():
        shutil.rmtree(TARGET)
    staging.rename(TARGET)
    size = sum(path.stat().st_size for path in TARGET.rglob("*") if path.is_file()) / 1e6
    print(f"installed {model} -> {TARGET} ({size:.1f} MB)")


if __name__ == "__main__":
    main()
