"""Metric correctness against closed forms and hand-computed values, and ``eval`` end to end on tiny
random networks (a TorchScript "Inception", a narrow VGG-16 with LPIPS heads, a tiny CLIP)."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner, Result
from PIL import Image
from torch import nn

from attentive_eraser.cli import main
from attentive_eraser.evaluation.evaluate import PAPER_TABLE_1, _fid, mask_box, square_crop, to_markdown
from attentive_eraser.evaluation.metrics import (
    LPIPS,
    VGG16Features,
    clip_consensus,
    load_clip,
    load_lpips,
    masked_psnr,
    masked_ssim,
)
from attentive_eraser.testing.tiny_metrics import save_tiny_metric_networks


def invoke(*args: object) -> Result:
    return CliRunner().invoke(main, [str(arg) for arg in args])


# --------------------------------------------------------------------------------------------------
# Tiny networks


@pytest.fixture(scope="module")
def networks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return save_tiny_metric_networks(tmp_path_factory.mktemp("networks"))


# --------------------------------------------------------------------------------------------------
# FID: the Fréchet distance of two Gaussians


class FirstPixel(nn.Module):
    """Feature extractor returning the channels of the first pixel: feeds samples straight to FID."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images[:, :, 0, 0].float()


def test_fid_of_two_known_gaussians_matches_the_closed_form() -> None:
    generator = torch.Generator().manual_seed(0)
    mean_a, std_a = torch.tensor([0.0, 1.0, -2.0]), torch.tensor([1.0, 2.0, 0.5])
    mean_b, std_b = torch.tensor([1.0, -1.0, 0.0]), torch.tensor([3.0, 1.0, 0.5])
    a = mean_a + std_a * torch.randn(40000, 3, generator=generator, dtype=torch.float64).float()
    b = mean_b + std_b * torch.randn(40000, 3, generator=generator, dtype=torch.float64).float()
    fid = _fid(FirstPixel(), "cpu")
    fid.update(a[:, :, None, None], real=True)
    fid.update(b[:, :, None, None], real=False)
    value = float(fid.compute())
    # diagonal covariances: |μa − μb|² + Σ (σa − σb)² = 9 + 5 = 14
    closed_form = float(((mean_a - mean_b) ** 2).sum() + ((std_a - std_b) ** 2).sum())
    assert value == pytest.approx(closed_form, rel=0.03)
    same = _fid(FirstPixel(), "cpu")  # a set against itself: zero, up to the square root's rounding
    same.update(a[:, :, None, None], real=True)
    same.update(a[:, :, None, None], real=False)
    assert abs(float(same.compute())) < 1e-3
    # and exactly the Fréchet distance of the samples' own moments, with the symmetric form of the trace
    # term: tr (Σa Σb)^½ = tr (Σa^½ Σb Σa^½)^½, square roots by eigendecomposition
    a64, b64 = a.double().numpy(), b.double().numpy()
    sigma_a, sigma_b = np.cov(a64, rowvar=False), np.cov(b64, rowvar=False)
    values, vectors = np.linalg.eigh(sigma_a)
    root_a = vectors @ np.diag(np.sqrt(values)) @ vectors.T
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ sigma_b @ root_a), 0, None)).sum()
    sample_form = ((a64.mean(0) - b64.mean(0)) ** 2).sum() + np.trace(sigma_a + sigma_b) - 2 * cross
    assert value == pytest.approx(sample_form, rel=1e-4)


# --------------------------------------------------------------------------------------------------
# CLIP consensus and score


def test_clip_consensus_identical_embeddings_is_zero_and_a_hand_computed_case() -> None:
    same = torch.randn(1, 5, 8).expand(3, 5, 8)
    assert torch.equal(clip_consensus(same), torch.zeros(5))
    # one item, three seeds, two dimensions: dim 0 = (1, 2, 3) -> std 1; dim 1 = (0, 0, 3) -> std √3
    embeddings = torch.tensor([[[1.0, 0.0]], [[2.0, 0.0]], [[3.0, 3.0]]])
    assert clip_consensus(embeddings).item() == pytest.approx((1 + math.sqrt(3)) / 2)
    with pytest.raises(ValueError, match="at least 2"):
        clip_consensus(embeddings[:1])


def test_clip_score_is_clips_logit_with_a_tiny_random_model(networks: dict[str, Path]) -> None:
    scorer = load_clip(networks["clip"])
    images = [Image.new("RGB", (40, 30), (200, 30, 30)), Image.new("RGB", (30, 40), (20, 160, 90))]
    scores = scorer.logits(scorer.embed_images(images), scorer.embed_text("background"))
    inputs = scorer.processor(text=["background"], images=images, return_tensors="pt", padding=True)
    with torch.no_grad():
        expected = scorer.model(**inputs).logits_per_image[:, 0]
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-5)
    assert scores[0] != scores[1]


def test_clip_absent_offline_is_a_clear_error() -> None:
    from attentive_eraser.evaluation.metrics import WeightsError

    with pytest.raises(WeightsError, match="could not be loaded.*--clip DIR"):
        load_clip("openai/clip-vit-base-patch32")


# --------------------------------------------------------------------------------------------------
# PSNR, SSIM, LPIPS


def test_masked_psnr_and_ssim_sanity() -> None:
    torch.manual_seed(0)
    truth = torch.rand(1, 3, 32, 32)
    mask = torch.zeros(1, 1, 32, 32, dtype=torch.bool)
    mask[..., 8:24, 8:24] = True
    outside = truth.clone()
    outside[..., :4, :] = 0  # changes outside the mask do not count
    assert masked_psnr(outside, truth, mask).item() == pytest.approx(120.0)  # MSE 0, clamped at 1e-12
    assert masked_ssim(truth, truth, mask).item() == pytest.approx(1.0, abs=1e-6)
    offset = truth + 0.1 * mask  # an error of exactly 0.1 on every masked pixel: PSNR = 20 dB
    assert masked_psnr(offset, truth, mask).item() == pytest.approx(20.0, abs=1e-4)
    noisy = (truth + 0.3 * torch.randn_like(truth) * mask).clamp(0, 1)
    assert masked_ssim(noisy, truth, mask).item() < 0.9
    assert masked_ssim(noisy, truth, ~mask).item() > masked_ssim(noisy, truth, mask).item()


def test_vgg16_layout_matches_torchvision_names(networks: dict[str, Path]) -> None:
    # torchvision's vgg16().features has its convolutions at these positions
    assert VGG16Features.conv_indices() == [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    full = VGG16Features()
    assert sorted(full.state_dict(), key=lambda k: (int(k.split(".")[1]), k)) == [
        f"features.{i}.{p}" for i in VGG16Features.conv_indices() for p in ("bias", "weight")
    ]
    assert full.taps == [3, 8, 15, 22, 29]  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
    assert sum(p.numel() for p in full.parameters()) == 14_714_688  # VGG-16's convolutional parameters
    lpips = load_lpips(networks["vgg"], networks["heads"])
    assert lpips.backbone.widths == (4, 4, 8, 8, 8)


def test_lpips_properties(networks: dict[str, Path]) -> None:
    lpips: LPIPS = load_lpips(networks["vgg"], networks["heads"])
    torch.manual_seed(0)
    x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    assert torch.allclose(lpips(x, x), torch.zeros(2), atol=1e-6)
    torch.testing.assert_close(lpips(x, y), lpips(y, x))
    assert (lpips(x, y) > 0).all()
    spatial = lpips(x, y, spatial=True)
    assert spatial.shape == (2, 1, 64, 64) and (spatial >= 0).all()
    # hand-computed with the same network: one layer's term, by its definition
    features_x = lpips.backbone((x * 2 - 1 - lpips.shift) / lpips.scale)
    features_y = lpips.backbone((y * 2 - 1 - lpips.shift) / lpips.scale)
    expected = torch.zeros(2)
    for fx, fy, head in zip(features_x, features_y, lpips.heads, strict=False):
        ux = fx / (fx.norm(dim=1, keepdim=True) + 1e-10)
        uy = fy / (fy.norm(dim=1, keepdim=True) + 1e-10)
        expected += torch.einsum("nchw,c->n", (ux - uy) ** 2, head.flatten()) / (fx.shape[2] * fx.shape[3])
    torch.testing.assert_close(lpips(x, y), expected, rtol=1e-5, atol=1e-6)


def test_box_and_square_crop() -> None:
    mask = np.zeros((40, 60), bool)
    mask[10:20, 5:35] = True
    assert mask_box(mask) == (5, 10, 35, 20)
    image = Image.new("RGB", (60, 40), (255, 255, 255))
    crop = square_crop(image, mask_box(mask))
    assert crop.size == (30, 30)
    pixels = np.asarray(crop)
    assert (pixels[:10] == 0).all() and (pixels[10:20] == 255).all() and (pixels[20:] == 0).all()
    assert square_crop(image, mask_box(mask), 16).size == (16, 16)


def test_markdown_table_has_the_paper_rows() -> None:
    table = to_markdown({**PAPER_TABLE_1, "ours": {"fid": 1.0, "lpips": None}})
    assert "| SD2.1+SIP w/ SARG (ours) | 7.352 | 0.3113 | 5.835 | 0.0734 | 23.56 |" in table
    assert "| ours | 1.000 | – |" in table


# --------------------------------------------------------------------------------------------------
# The command


@pytest.fixture
def scored(tmp_path: Path) -> dict[str, Path]:
    """4 images with masks, their true backgrounds, and three "seeds" of results."""
    rng = np.random.default_rng(0)
    paths = {name: tmp_path / name for name in ("in", "bg", "r123", "r321", "r777")}
    for folder in paths.values():
        folder.mkdir()
    for index in range(4):
        background = rng.integers(60, 200, (48, 64, 3), dtype=np.uint8)
        mask = np.zeros((48, 64), bool)
        mask[10 + index : 30, 20 : 40 + index] = True
        image = background.copy()
        image[mask] = (230, 20, 20)  # the object
        Image.fromarray(image).save(paths["in"] / f"s{index}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(paths["in"] / f"s{index}_mask.png")
        Image.fromarray(background).save(paths["bg"] / f"s{index}.png")
        for seed, folder in zip((123, 321, 777), ("r123", "r321", "r777"), strict=False):
            noise = np.random.default_rng(seed + index).integers(-20, 21, background.shape)
            result = background.astype(int)
            result[mask] += noise[mask]
            Image.fromarray(np.clip(result, 0, 255).astype(np.uint8)).save(paths[folder] / f"s{index}.png")
    return paths


def test_eval_command_end_to_end_with_tiny_networks(
    scored: dict[str, Path], networks: dict[str, Path], tmp_path: Path
) -> None:
    nets = [
        "--inception",
        networks["inception"],
        "--lpips-backbone",
        networks["vgg"],
        "--lpips-heads",
        networks["heads"],
        "--clip",
        networks["clip"],
        "--size",
        "64",
        "--crop-size",
        "32",
        "-q",
    ]
    output = tmp_path / "metrics.json"
    result = invoke(
        "eval",
        scored["in"],
        "-r",
        scored["r123"],
        "-r",
        scored["r321"],
        "-r",
        scored["r777"],
        "--backgrounds",
        scored["bg"],
        *nets,
        "-o",
        output,
    )
    assert result.exit_code == 0, result.output
    report = json.loads(output.read_text())
    metrics = report["metrics"]
    assert report["items"] == 4 and report["missing"] == []
    for name in (
        "fid",
        "lpips",
        "local_fid",
        "clip_consensus",
        "clip_score",
        "psnr_masked",
        "ssim_masked",
        "lpips_masked",
    ):
        assert metrics[name] is not None and math.isfinite(metrics[name]), name
    assert metrics["clip_consensus"] > 0 and 20 < metrics["psnr_masked"] < 40
    assert "| FID ↓ |" in result.output and output.with_suffix(".md").is_file()

    # the originals scored against themselves: no distance, full consensus, perfect fidelity vs themselves
    same = tmp_path / "same"
    shutil.copytree(scored["in"], same)
    result = invoke("eval", scored["in"], "-r", same, "-r", same, "--backgrounds", same, *nets, "-o", output)
    assert result.exit_code == 0, result.output
    metrics = json.loads(output.read_text())["metrics"]
    assert abs(metrics["fid"]) < 1e-3 and abs(metrics["local_fid"]) < 1e-3
    assert metrics["lpips"] == pytest.approx(0, abs=1e-6) and metrics["lpips_masked"] == pytest.approx(
        0, abs=1e-6
    )
    assert metrics["clip_consensus"] == 0 and metrics["psnr_masked"] == pytest.approx(120)


def test_eval_reports_what_it_cannot_compute(scored: dict[str, Path], networks: dict[str, Path]) -> None:
    result = invoke(
        "eval",
        scored["in"],
        "-r",
        scored["r123"],
        "--metrics",
        "clip_score,clip_consensus,masked",
        "--clip",
        networks["clip"],
        "-q",
    )
    assert result.exit_code == 0, result.output
    assert "clip_consensus: not computed (needs 2+ --results" in result.output
    assert "masked: not computed (needs --backgrounds)" in result.output
    (scored["r123"] / "s0.png").unlink()
    result = invoke(
        "eval",
        scored["in"],
        "-r",
        scored["r123"],
        "--metrics",
        "clip_score",
        "--clip",
        networks["clip"],
        "-q",
    )
    assert result.exit_code == 0 and "1 item(s) without a result" in result.output


def test_eval_without_weights_offline_fails_clearly(
    scored: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    result = invoke("eval", scored["in"], "-r", scored["r123"], "--metrics", "fid", "-q")
    assert result.exit_code == 2
    assert "inception" in result.output and "HF_HUB_OFFLINE" in result.output
    result = invoke("eval", scored["in"], "-r", scored["r123"], "--metrics", "lpips", "-q")
    assert result.exit_code == 2 and "vgg16-397923af.pth" in result.output
    result = invoke("eval", scored["in"], "-r", scored["r123"], "--metrics", "clip_score", "-q")
    assert result.exit_code == 2 and "--clip DIR" in result.output


# --------------------------------------------------------------------------------------------------
# The paper protocol script

PROTOCOL = Path(__file__).resolve().parents[1] / "benchmarks" / "paper_protocol.py"


def protocol(*args: object) -> subprocess.CompletedProcess:
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    return subprocess.run(
        [sys.executable, str(PROTOCOL), *map(str, args)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )


@pytest.mark.slow
def test_paper_protocol_tiny_path_prints_table_1_beside_the_paper(tmp_path: Path) -> None:
    completed = protocol("tiny", "--work", tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = completed.stdout.splitlines()
    assert lines[0].startswith("8 samples")  # prepare sampled 8 of the 12 fake instance masks
    assert "| paper: SD2.1+SIP w/ SARG (ours) | 7.352 | 0.3113 | 5.835 | 0.0734 | 23.56 |  |" in lines
    for method in ("SD2.1+SIP w/ SARG (ours)", "SD2.1+SIP w/o SARG", "SD2.1inp (mask only)"):
        [row] = [line for line in lines if line.startswith(f"| this run: {method} |")]
        assert row.endswith("| 8 |") and "–" not in row  # every metric computed over the 8 samples
    for method in ("sip_sarg", "sip_plain", "sd2_inpaint"):
        for seed in (123, 321, 777):
            assert len(list((tmp_path / "runs" / method / f"seed{seed}").glob("*.png"))) == 8
    with Image.open(next((tmp_path / "data" / "images").glob("*.png"))) as square:
        assert square.size == (64, 64)


def test_paper_protocol_without_weights_offline_fails_clearly(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "manifest.csv").write_text("image,mask,output\n")
    completed = protocol("run", "--data", tmp_path / "data", "--runs", tmp_path / "runs")
    assert completed.returncode == 2
    assert (
        "stabilityai/stable-diffusion-2-1-base" in completed.stderr
        and "cannot run offline" in completed.stderr
    )
    completed = protocol("prepare", "--openimages", tmp_path, "--data", tmp_path / "data")
    assert completed.returncode == 2 and "docs/evaluation.md" in completed.stderr
