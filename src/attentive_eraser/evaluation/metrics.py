"""Networks and tensor maths behind ``attentive-eraser eval`` (the engine:
:mod:`attentive_eraser.evaluation.evaluate`).

* :class:`TorchScriptInception`: the FID feature extractor torchmetrics' ``FrechetInceptionDistance`` takes
  (NVlabs' TorchScript port of the TensorFlow FID Inception; no torchvision needed).
* :class:`LPIPS` on :class:`VGG16Features`: LPIPS (VGG, "lin") with torchvision's VGG-16 parameter names, so
  torchvision's ImageNet weights load as they are, and the LPIPS heads torchmetrics ships.
* :class:`ClipScorer`: CLIP image/text embeddings and logits through transformers' ``CLIPModel``.
* :func:`clip_consensus`, :func:`masked_psnr`, :func:`masked_ssim`: per-item values.

Each ``load_*`` takes a local file or folder, else looks in the usual cache and downloads once; when the
weights are absent and cannot be fetched, :class:`WeightsError` says which file to supply.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from .. import imaging

__all__ = [
    "CLIP_MODEL",
    "INCEPTION_URL",
    "VGG16_URL",
    "WeightsError",
    "clip_consensus",
    "masked_psnr",
    "masked_ssim",
    "VGG16Features",
    "LPIPS",
    "TorchScriptInception",
    "ClipScorer",
    "load_inception",
    "load_lpips",
    "load_clip",
]

INCEPTION_URL = (
    "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt"
)
VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
CLIP_MODEL = "openai/clip-vit-base-patch32"


class WeightsError(imaging.InputError):
    """Network weights that can be found neither locally nor on the network."""


# --------------------------------------------------------------------------------------------------
# Per-item values


def clip_consensus(embeddings: torch.Tensor) -> torch.Tensor:
    """CLIP consensus of each item: std over seeds (unbiased) of its embedding, averaged over dimensions.

    ``embeddings``: ``(seeds, items, dim)``; returns ``(items,)``. Identical embeddings give 0.
    """
    if embeddings.shape[0] < 2:
        raise ValueError(f"embeddings has {embeddings.shape[0]} seed(s); consensus needs at least 2")
    return embeddings.std(dim=0, unbiased=True).mean(dim=-1)


def masked_psnr(result: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """PSNR (dB) over the masked pixels only; images ``(N, 3, H, W)`` in [0, 1], mask ``(N, 1, H, W)``."""
    weight = mask.expand_as(result).to(result.dtype)
    squared = ((result - truth) ** 2 * weight).flatten(1).sum(1) / weight.flatten(1).sum(1).clamp_min(1)
    return 10 * torch.log10(1.0 / squared.clamp_min(1e-12))


def masked_ssim(result: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """SSIM (Gaussian 11×11, σ 1.5) averaged over the masked pixels; torchmetrics computes the SSIM map."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    _, ssim_map = structural_similarity_index_measure(
        result, truth, data_range=1.0, reduction="none", return_full_image=True
    )
    weight = mask.expand_as(ssim_map).to(ssim_map.dtype)
    return (ssim_map * weight).flatten(1).sum(1) / weight.flatten(1).sum(1).clamp_min(1)


# --------------------------------------------------------------------------------------------------
# Networks


class VGG16Features(nn.Module):
    """The convolutional part of VGG-16 with torchvision's parameter names (``features.N.weight``).

    Returns the five ReLU outputs LPIPS compares (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3). Widths other
    than VGG-16's serve tiny test networks.
    """

    STAGES = (2, 2, 3, 3, 3)  # convolutions per stage, a 2×2 max-pool between stages

    def __init__(self, widths: Sequence[int] = (64, 128, 256, 512, 512)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        self.taps: list[int] = []
        channels = 3
        for stage, (count, width) in enumerate(zip(self.STAGES, widths, strict=True)):
            if stage:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            for _ in range(count):
                layers += [nn.Conv2d(channels, width, kernel_size=3, padding=1), nn.ReLU()]
                channels = width
            self.taps.append(len(layers) - 1)
        self.features = nn.Sequential(*layers)
        self.widths = tuple(int(width) for width in widths)

    @classmethod
    def conv_indices(cls) -> list[int]:
        """Positions of the convolutions in ``features`` (0, 2, 5, 7, 10, …, 28, as in torchvision)."""
        indices, position = [], 0
        for stage, count in enumerate(cls.STAGES):
            position += 1 if stage else 0
            for _ in range(count):
                indices.append(position)
                position += 2
        return indices

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> VGG16Features:
        """Built with the widths the weights have, weights loaded.

        ``state`` is torchvision's VGG-16 file, or a tiny one of the same layout.
        """
        features = {key: value for key, value in state.items() if key.startswith("features.")}
        convs = cls.conv_indices()
        widths, last = [], 0
        try:
            for count in cls.STAGES:
                last += count
                widths.append(int(features[f"features.{convs[last - 1]}.weight"].shape[0]))
            network = cls(widths)
            network.load_state_dict(features)
        except (KeyError, RuntimeError) as error:
            raise WeightsError(
                "lpips-backbone", f"not VGG-16 weights ({type(error).__name__}: {error})"
            ) from None
        return network

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for index, layer in enumerate(self.features):
            images = layer(images)
            if index in self.taps:
                outputs.append(images)
        return outputs


class LPIPS(nn.Module):
    """LPIPS (Zhang et al. 2018, "lin"): unit-normalised deep features, squared differences weighted by
    learned 1×1 heads, averaged over space and summed over the layers."""

    # input normalisation of the LPIPS networks: the channels of [-1, 1] images are shifted and scaled
    SHIFT = (-0.030, -0.088, -0.188)
    SCALE = (0.458, 0.448, 0.450)
    # buffers (registered in __init__)
    shift: torch.Tensor
    scale: torch.Tensor

    def __init__(self, backbone: VGG16Features, heads: Sequence[torch.Tensor]) -> None:
        super().__init__()
        if len(heads) != len(backbone.widths):
            raise WeightsError("lpips-heads", f"{len(heads)} heads for {len(backbone.widths)} layers")
        self.backbone = backbone.eval().requires_grad_(False)
        self.heads = nn.ParameterList(
            [nn.Parameter(head.reshape(1, -1, 1, 1).float(), requires_grad=False) for head in heads]
        )
        for head, width in zip(self.heads, backbone.widths, strict=False):
            if head.shape[1] != width:
                raise WeightsError(
                    "lpips-heads", f"a head of {head.shape[1]} channels for a layer of {width}"
                )
        self.register_buffer("shift", torch.tensor(self.SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(self.SCALE).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor, y: torch.Tensor, spatial: bool = False) -> torch.Tensor:
        """Distance of ``(N, 3, H, W)`` images in [0, 1].

        Returns ``(N,)``, or an ``(N, 1, H, W)`` map if ``spatial``.
        """
        size = x.shape[-2:]
        features_x = self.backbone((x * 2 - 1 - self.shift) / self.scale)
        features_y = self.backbone((y * 2 - 1 - self.shift) / self.scale)
        total = torch.zeros((), device=x.device)
        for a, b, head in zip(features_x, features_y, self.heads, strict=False):
            a = a / (a.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            b = b / (b.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            weighted = ((a - b) ** 2 * head).sum(dim=1, keepdim=True)  # (N, 1, h, w)
            if spatial:
                total = total + F.interpolate(weighted, size=size, mode="bilinear", align_corners=False)
            else:
                total = total + weighted.mean(dim=(2, 3))
        return total if spatial else total.flatten()


class TorchScriptInception(nn.Module):
    """A TorchScript Inception-v3 called as ``model(uint8 images, return_features=True)`` → ``(N, 2048)``.

    NVlabs' ``inception-2015-12-05.pt`` (the TensorFlow FID network, ported) resizes its input to 299².
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.model = torch.jit.load(str(path), map_location="cpu").eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images, return_features=True)


class ClipScorer:
    """CLIP image embeddings and image-text logits with transformers' ``CLIPModel`` (ViT-B/32 by default)."""

    def __init__(self, model: Any, processor: Any, device: torch.device | str = "cpu") -> None:
        self.model, self.processor, self.device = model.to(device).eval(), processor, device

    @staticmethod
    def _features(output: Any) -> torch.Tensor:
        # transformers 5 returns a model output whose pooler_output is the projection; 4.x a tensor
        return (output if isinstance(output, torch.Tensor) else output.pooler_output).float().cpu()

    @torch.no_grad()
    def embed_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Projected image embeddings ``(N, D)``, not normalised."""
        pixels = self.processor(images=list(images), return_tensors="pt")["pixel_values"].to(self.device)
        return self._features(self.model.get_image_features(pixel_values=pixels))

    @torch.no_grad()
    def embed_text(self, text: str) -> torch.Tensor:
        """Projected text embedding ``(1, D)``."""
        tokens = self.processor(text=[text], return_tensors="pt", padding=True).to(self.device)
        return self._features(self.model.get_text_features(**tokens))

    def logits(self, image_embeddings: torch.Tensor, text_embedding: torch.Tensor) -> torch.Tensor:
        """CLIP's ``logits_per_image``: ``logit_scale.exp() · cos(image, text)``, ``(N,)``."""
        scale = float(self.model.logit_scale.detach().exp())
        return scale * F.cosine_similarity(
            image_embeddings, text_embedding.expand_as(image_embeddings), dim=-1
        )


# --------------------------------------------------------------------------------------------------
# Loading


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").strip().lower() not in ("", "0", "false", "no")


def _cached_download(url: str, path: str | os.PathLike[str] | None, argument: str, what: str) -> Path:
    """``path`` if given, else the file of ``url`` in torch's hub cache, downloaded there once.

    ``what`` names the weights without an article; the messages read the same for one file or "weights".
    """
    if path is not None:
        if not Path(path).is_file():
            raise WeightsError(argument, f"{what}: {str(path)!r} is not a file")
        return Path(path)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    if cached.is_file():
        return cached
    if _offline():
        raise WeightsError(
            argument,
            f"{what} not found at {str(cached)!r} and HF_HUB_OFFLINE is set; download "
            f"{url} there, or pass --{argument} FILE",
        )
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(cached), progress=False)
    except Exception as error:  # noqa: BLE001 -- offline, proxy, disk: one clear message
        raise WeightsError(
            argument,
            f"{what} could not be downloaded from {url} ({type(error).__name__}); "
            f"save it as {str(cached)!r} or pass --{argument} FILE",
        ) from None
    return cached


def load_inception(path: str | os.PathLike[str] | None = None) -> TorchScriptInception:
    """The FID feature extractor: a TorchScript Inception file.

    By default NVlabs' one (from the cache, else downloaded).
    """
    file = _cached_download(INCEPTION_URL, path, "inception", "FID Inception network")
    try:
        return TorchScriptInception(file)
    except RuntimeError as error:
        message = " ".join(str(error).split())[:200]
        raise WeightsError("inception", f"{str(file)!r} is not a TorchScript network ({message})") from None


def packaged_lpips_heads() -> Path:
    """The LPIPS v0.1 VGG heads torchmetrics ships (read as a file: no torchvision import)."""
    from importlib.util import find_spec

    spec = find_spec("torchmetrics")
    if spec is None or spec.origin is None:
        raise WeightsError(
            "lpips-heads",
            "torchmetrics is not installed (the 'eval' extra: pip install -e '.[eval]'), "
            "or pass --lpips-heads FILE",
        )
    return Path(spec.origin).parent / "functional" / "image" / "lpips_models" / "vgg.pth"


def load_lpips(
    backbone: str | os.PathLike[str] | None = None, heads: str | os.PathLike[str] | None = None
) -> LPIPS:
    """LPIPS (VGG): torchvision's VGG-16 ImageNet weights (cached, else downloaded) and the LPIPS heads."""
    backbone_file = _cached_download(VGG16_URL, backbone, "lpips-backbone", "VGG-16 ImageNet weights")
    heads_file = Path(heads) if heads is not None else packaged_lpips_heads()
    if not heads_file.is_file():
        raise WeightsError("lpips-heads", f"{str(heads_file)!r} is not a file")
    state = torch.load(backbone_file, map_location="cpu", weights_only=True)
    head_state = torch.load(heads_file, map_location="cpu", weights_only=True)
    names = sorted(
        (key for key in head_state if key.startswith("lin")), key=lambda key: int(key[3:].split(".")[0])
    )
    return LPIPS(VGG16Features.from_state_dict(state), [head_state[name] for name in names]).eval()


def load_clip(model: str | os.PathLike[str] | None = None, device: torch.device | str = "cpu") -> ClipScorer:
    """CLIP from a local folder or the hub (``openai/clip-vit-base-patch32``).

    Raises a clear error when the weights are absent offline.
    """
    from transformers import CLIPModel, CLIPProcessor

    name = str(model) if model is not None else CLIP_MODEL
    try:
        processor = CLIPProcessor.from_pretrained(name)
        network = CLIPModel.from_pretrained(name)
    except (OSError, ValueError) as error:
        raise WeightsError(
            "clip",
            f"CLIP {name!r} could not be loaded from a local folder nor the hub "
            f"({type(error).__name__}); pass --clip DIR holding a saved CLIPModel and "
            "CLIPProcessor",
        ) from None
    return ClipScorer(network, processor, device)
