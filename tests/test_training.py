"""The demo model's trainer: a few-step run end to end, its outputs, and determinism on CPU."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from attentive_eraser import AttentiveEraserSIPPipeline
from attentive_eraser.demo.scenes import HELD_OUT_SEEDS, make_scene
from attentive_eraser.training import TrainingConfig
from attentive_eraser.training.train_demo import (
    ExponentialMovingAverage,
    LossLog,
    lr_factor,
    main,
    train_unet,
    train_vae,
)

# The default architecture, trained for a couple of steps on tiny batches: seconds, not hours.
SMOKE = {
    "vae_steps": 2,
    "unet_steps": 3,
    "vae_batch_size": 2,
    "unet_batch_size": 2,
    "validation_scenes": 4,
    "warmup_steps": 1,
}


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}


def _equal(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> bool:
    return first.keys() == second.keys() and all(torch.equal(first[key], second[key]) for key in first)


def test_command_trains_saves_and_the_eraser_loads_the_model(tmp_path: Path) -> None:
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps({**SMOKE, "vae_steps": 5}), encoding="utf-8")
    out = tmp_path / "run"
    arguments = ["--out", str(out), "--config", str(config_path), "--no-progress"]
    assert main([*arguments, "--vae-steps", "2", "--seed", "3"]) == 0

    # Config (command-line values win over the file), seed, versions and results are recorded.
    record = json.loads((out / "training_config.json").read_text(encoding="utf-8"))
    assert record["seed"] == 3 and record["config"]["seed"] == 3
    assert record["config"]["vae_steps"] == 2 and record["config"]["unet_steps"] == 3
    assert TrainingConfig.from_json(out / "training_config.json") == TrainingConfig(**{**SMOKE, "seed": 3})
    assert {"torch", "diffusers", "transformers", "numpy", "attentive_eraser"} <= set(record["versions"])
    results = record["results"]
    assert results["vae"]["steps"] == 2 and results["unet"]["steps"] == 3
    assert results["vae"]["metrics"]["scaling_factor"] > 0
    assert 0 < results["model_megabytes"] <= 30

    # One loss record per step, validations in between.
    lines = [json.loads(line) for line in (out / "loss_log.jsonl").read_text(encoding="utf-8").splitlines()]
    losses = [(line["stage"], line["step"]) for line in lines if "loss" in line]
    assert losses == [("vae", 1), ("vae", 2), ("unet", 1), ("unet", 2), ("unet", 3)]
    assert all(np.isfinite(line["loss"]) for line in lines if "loss" in line)
    assert any("val_psnr_db" in line for line in lines) and any("val_loss_ema" in line for line in lines)
    assert Image.open(out / "samples.png").size == (4 * 64, 3 * 64)  # one column per validation scene

    # The saved folder: safetensors weights, within the size budget, loadable by the eraser.
    model = out / "model"
    assert sorted(path.name for path in model.rglob("*.safetensors"))
    assert not list(model.rglob("*.bin"))
    assert sum(path.stat().st_size for path in model.rglob("*") if path.is_file()) <= 30e6
    pipeline = AttentiveEraserSIPPipeline.from_pretrained(model)
    pipeline.set_progress_bar_config(disable=True)
    assert pipeline.vae_scale_factor == 4 and pipeline.preset.resolution == 64
    scene = make_scene(HELD_OUT_SEEDS[0])
    result = pipeline(
        Image.fromarray(scene.image),
        scene.masks[0],
        num_inference_steps=2,
        generator=torch.Generator().manual_seed(0),
    )
    assert result.images[0].size == (64, 64)

    # An existing model is not overwritten by accident.
    assert main(arguments) == 1


def test_training_is_deterministic_on_cpu(tmp_path: Path) -> None:
    def run(seed: int, name: str) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        config = TrainingConfig(**{**SMOKE, "seed": seed})
        log = LossLog(tmp_path / f"{name}.jsonl")
        try:
            vae, _ = train_vae(config, torch.device("cpu"), log, progress=False)
            context = torch.zeros(1, 77, config.text_hidden_size)
            unet, _ = train_unet(config, vae, context, torch.device("cpu"), log, progress=False)
        finally:
            log.close()
        return _state(vae), _state(unet)

    vae_a, unet_a = run(0, "a")
    vae_b, unet_b = run(0, "b")
    assert _equal(vae_a, vae_b) and _equal(unet_a, unet_b)
    vae_c, unet_c = run(1, "c")
    assert not _equal(vae_a, vae_c) and not _equal(unet_a, unet_c)


def test_config_round_trip_and_validation(tmp_path: Path) -> None:
    config = TrainingConfig(seed=5, unet_block_out_channels=(32, 64, 64))
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config.to_dict()), encoding="utf-8")
    assert TrainingConfig.from_json(path) == config
    assert config.with_overrides(seed=None, unet_steps=7) == TrainingConfig(
        seed=5, unet_block_out_channels=(32, 64, 64), unet_steps=7
    )
    with pytest.raises(ValueError, match="unknown keys"):
        TrainingConfig.from_dict({"learning_rate": 1.0})
    with pytest.raises(ValueError, match="resolution"):
        TrainingConfig(resolution=60)
    with pytest.raises(ValueError, match="unet_block_out_channels"):
        TrainingConfig(unet_block_out_channels=(64, 128))
    with pytest.raises(ValueError, match="save_dtype"):
        TrainingConfig(save_dtype="int8")


def test_learning_rate_schedule_and_ema() -> None:
    factors = [lr_factor(step, 100, 10, 0.1) for step in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(factors[9:]))
    assert factors[-1] == pytest.approx(0.1, abs=1e-3)

    model = torch.nn.Linear(2, 2)
    ema = ExponentialMovingAverage(model, decay=0.99)
    start = _state(ema.model)
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    # Warm-up: the first update moves the average by 1 - 2/11 of the way.
    assert torch.allclose(ema.model.weight, start["weight"] + 9 / 11)
    assert not any(parameter.requires_grad for parameter in ema.model.parameters())


class _Killed(Exception):
    """Stands in for a SIGKILL right after a checkpoint was written."""


def test_resume_after_a_kill_gives_the_uninterrupted_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from attentive_eraser.training import train_demo

    config = TrainingConfig(**{**SMOKE, "vae_steps": 3, "unet_steps": 4})
    whole = train_demo.train(config, tmp_path / "whole", progress=False, checkpoint_every=1)

    original_save = train_demo.Checkpoints.save

    def save_then_die(self: object, stage: str, state: dict) -> None:
        original_save(self, stage, state)  # type: ignore[arg-type]
        if stage == "unet" and state["progress"]["step"] == 2:
            raise _Killed

    monkeypatch.setattr(train_demo.Checkpoints, "save", save_then_die)
    with pytest.raises(_Killed):
        train_demo.train(config, tmp_path / "killed", progress=False, checkpoint_every=1)
    monkeypatch.setattr(train_demo.Checkpoints, "save", original_save)
    assert not (tmp_path / "killed" / "model").exists()
    assert (tmp_path / "killed" / "checkpoints" / "vae" / "config.json").is_file()

    resumed = train_demo.train(config, tmp_path / "killed", progress=False, checkpoint_every=1, resume=True)
    for stage in ("vae", "unet"):
        for name in ("diffusion_pytorch_model.safetensors",):
            first = (tmp_path / "whole" / "model" / stage / name).read_bytes()
            second = (tmp_path / "killed" / "model" / stage / name).read_bytes()
            assert first == second, f"{stage} weights differ after resuming"
    assert resumed["resumed"][0]["unet_step"] == 2 and resumed["resumed"][0]["vae_done"]
    assert resumed["results"]["unet"]["metrics"] == whole["results"]["unet"]["metrics"]

    # The loss log reads as one run: every step once, in order.
    lines = [json.loads(line) for line in (tmp_path / "killed" / "loss_log.jsonl").read_text().splitlines()]
    assert [(line["stage"], line["step"]) for line in lines if "loss" in line] == [
        ("vae", 1),
        ("vae", 2),
        ("vae", 3),
        ("unet", 1),
        ("unet", 2),
        ("unet", 3),
        ("unet", 4),
    ]

    # Resuming needs the same config, and a run to resume.
    with pytest.raises(ValueError, match="config differs"):
        train_demo.train(
            TrainingConfig(**{**SMOKE, "unet_steps": 5}), tmp_path / "killed", progress=False, resume=True
        )
    assert main(["--out", str(tmp_path / "nothing"), "--resume", "--no-progress"]) == 2


def test_unet_validations_log_the_removal_diagnostics(tmp_path: Path) -> None:
    config = TrainingConfig(**{**SMOKE, "validation_scenes": 64})
    log = LossLog(tmp_path / "log.jsonl")
    try:
        vae, _ = train_vae(config, torch.device("cpu"), log, progress=False)
        context = torch.zeros(1, 77, config.text_hidden_size)
        _, result = train_unet(config, vae, context, torch.device("cpu"), log, progress=False)
    finally:
        log.close()
    metrics = result.metrics
    assert 0 < metrics["val_sarg_inside"] and 0 < metrics["val_sarg_outside"]
    assert 0 < metrics["val_sarg_share_inside"] < 1
    for grid in ("16x16", "8x8"):  # the demo UNet's two decoder self-attention grids
        assert 0 < metrics[f"val_attn_entropy_{grid}"] <= 1
        assert 0 < metrics[f"val_attn_share_{grid}"] < 1
        assert 0 < metrics[f"val_attn_object_{grid}"] < 1
