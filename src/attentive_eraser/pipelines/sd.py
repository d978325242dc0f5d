"""Attentive Eraser pipelines for Stable Diffusion 1.x and 2.x (epsilon and v-prediction)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel
from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_img2img import (
    StableDiffusionImg2ImgPipeline,
)
from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
from diffusers.schedulers import KarrasDiffusionSchedulers
from transformers import CLIPImageProcessor, CLIPTextModel, CLIPTokenizer, CLIPVisionModelWithProjection

from ..families.stable_diffusion import SD_UNET
from .dip import DIPMixin
from .sip import SIPMixin


class _StableDiffusionEraser(StableDiffusionImg2ImgPipeline):
    """SD 1.x/2.x plumbing: one CLIP text encoder; the safety checker is optional and off by default."""

    backbone = SD_UNET

    if TYPE_CHECKING:  # from the eraser mixin the public classes below add

        def _use_ddim(self, steps_offset: int) -> None: ...

    def __init__(
        self,
        vae: AutoencoderKL,
        text_encoder: CLIPTextModel,
        tokenizer: CLIPTokenizer,
        unet: UNet2DConditionModel,
        scheduler: KarrasDiffusionSchedulers,
        safety_checker: StableDiffusionSafetyChecker | None = None,
        feature_extractor: CLIPImageProcessor | None = None,
        image_encoder: CLIPVisionModelWithProjection | None = None,
        requires_safety_checker: bool = False,
    ) -> None:
        super().__init__(
            vae,
            text_encoder,
            tokenizer,
            unet,
            scheduler,
            safety_checker,  # type: ignore[arg-type]  # diffusers accepts None (and says so in its docs)
            feature_extractor,  # type: ignore[arg-type]
            image_encoder,  # type: ignore[arg-type]
            requires_safety_checker,
        )
        self._use_ddim(steps_offset=1)

    def encode_conditioning(
        self, prompt: list[str], batch_size: int, working_size: tuple[int, int], device: torch.device
    ) -> dict[str, Any]:
        """Text embeddings ``(B, 77, D)`` of the prompts; no negative prompt (CFG is off while SARG is on,
        as in the paper)."""
        prompt_embeds, _ = self.encode_prompt(prompt, device, 1, do_classifier_free_guidance=False)
        return {"encoder_hidden_states": prompt_embeds.to(self.unet.dtype)}


# For type checkers: the eraser's encode_image (VAE latents) replaces diffusers' IP-Adapter image
# encoder of that name, which these pipelines never use
class AttentiveEraserSIPPipeline(SIPMixin, _StableDiffusionEraser):  # type: ignore[misc]
    """Object removal on SD 1.x/2.x with the stochastic inpainting pipeline (SIP) and SARG.

    Example:
        >>> from attentive_eraser import AttentiveEraserSIPPipeline
        >>> pipe = AttentiveEraserSIPPipeline.from_pretrained("stabilityai/stable-diffusion-2-1-base")
        >>> result = pipe(image, mask, generator=torch.Generator().manual_seed(123)).images[0]
    """


# For type checkers: the eraser's encode_image (VAE latents) replaces diffusers' IP-Adapter image
# encoder of that name, which these pipelines never use
class AttentiveEraserDIPPipeline(DIPMixin, _StableDiffusionEraser):  # type: ignore[misc]
    """Object removal on SD 1.x/2.x with the deterministic inpainting pipeline (DIP) and SARG."""
