"""Tiny random stand-ins for the evaluation networks (FID Inception, LPIPS VGG-16, CLIP), saved in the
formats ``attentive-eraser eval`` loads, so that the metric code runs offline end to end.

Python::

    from attentive_eraser.testing.tiny_metrics import save_tiny_metric_networks
    paths = save_tiny_metric_networks("/tmp/nets")   # {"inception": …, "vgg": …, "heads": …, "clip": …}

The values they give mean nothing; the plumbing (file formats, shapes, calls) is the real one.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from ..evaluation.metrics import VGG16Features
from .tiny import build_tokenizer

__all__ = ["TinyInception", "save_tiny_metric_networks"]


class TinyInception(nn.Module):
    """Called like NVlabs' TorchScript Inception: ``model(uint8 images, return_features=True)``.

    It returns 16 features per image.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        x = nn.functional.interpolate(x.float() / 255.0, size=(32, 32), mode="bilinear", align_corners=False)
        return torch.tanh(self.conv(x)).mean(dim=(2, 3))


def save_tiny_metric_networks(folder: str | os.PathLike[str], seed: int = 0) -> dict[str, Path]:
    """Write a TorchScript Inception, VGG-16-layout weights, LPIPS heads and a CLIP folder.

    All of them go under ``folder``.
    """
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "inception": folder / "inception.pt",
        "vgg": folder / "vgg16.pth",
        "heads": folder / "lpips-heads.pth",
        "clip": folder / "clip",
    }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.jit.script(TinyInception()).save(str(paths["inception"]))
        vgg = VGG16Features(widths=(4, 4, 8, 8, 8))
        # torchvision's file also holds the classifier, which LPIPS ignores
        torch.save({**vgg.state_dict(), "classifier.0.weight": torch.zeros(2, 2)}, paths["vgg"])
        torch.save(
            {f"lin{k}.model.1.weight": torch.rand(1, width, 1, 1) for k, width in enumerate(vgg.widths)},
            paths["heads"],
        )
        tokenizer = build_tokenizer()
        config = CLIPConfig(
            text_config={
                "vocab_size": len(tokenizer),
                "hidden_size": 16,
                "intermediate_size": 32,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "max_position_embeddings": 77,
                "bos_token_id": tokenizer.bos_token_id,
                "eos_token_id": tokenizer.eos_token_id,
                "pad_token_id": tokenizer.pad_token_id,
            },
            vision_config={
                "hidden_size": 16,
                "intermediate_size": 32,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "image_size": 32,
                "patch_size": 8,
            },
            projection_dim=8,
        )
        CLIPModel(config).save_pretrained(paths["clip"])
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(paths["clip"])
    return paths
