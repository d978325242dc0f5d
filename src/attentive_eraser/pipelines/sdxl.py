"""Attentive Eraser pipelines for Stable Diffusion XL (two text encoders, size conditioning)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel
from diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl_img2img import (
    StableDiffusionXLImg2ImgPipeline,
)
from diffusers.schedulers import KarrasDiffusionSchedulers
from transformers import (
    CLIPImageProcessor,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
    CLIPVisionModelWithProjection,
)

from ..families.stable_diffusion_xl import SDXL_UNET
from .dip import DIPMixin
from .sip import SIPMixin


class _StableDiffusionXLEraser(StableDiffusionXLImg2ImgPipeline):
    """SDXL plumbing: pooled text embeddings and the (original, crop, target) size time ids."""

    backbone = SDXL_UNET

    if TYPE_CHECKING:  # from the eraser mixin the public classes below add

        def _use_ddim(self, steps_offset: int) -> None: ...

    def __init__(
        self,
        vae: AutoencoderKL,
        text_encoder: CLIPTextModel,
        text_encoder_2: CLIPTextModelWithProjection,
        tokenizer: CLIPTokenizer,
        tokenizer_2: CLIPTokenizer,
        unet: UNet2DConditionModel,
        scheduler: KarrasDiffusionSchedulers,
        image_encoder: CLIPVisionModelWithProjection | None = None,
        feature_extractor: CLIPImageProcessor | None = None,
        requires_aesthetics_score: bool = False,
        force_zeros_for_empty_prompt: bool = True,
        add_watermarker: bool | None = False,
    ) -> None:
        super().__init__(
            vae,
            text_encoder,
            text_encoder_2,
            tokenizer,
            tokenizer_2,
            unet,
            scheduler,
            image_encoder,  # type: ignore[arg-type]  # diffusers accepts None (optional components)
            feature_extractor,  # type: ignore[arg-type]
            requires_aesthetics_score,
            force_zeros_for_empty_prompt,
            add_watermarker,
        )
        self._use_ddim(steps_offset=0)

    def encode_conditioning(
        self, prompt: list[str], batch_size: int, working_size: tuple[int, int], device: torch.device
    ) -> dict[str, Any]:
        """Text embeddings, pooled embeddings and size time ids for ``batch_size`` samples (CFG off)."""
        prompt_embeds, _, pooled_prompt_embeds, _ = self.encode_prompt(
            prompt,  # type: ignore[arg-type]  # a list of prompts, one per image, as diffusers accepts
            device=device,
            num_images_per_prompt=1,
            do_classifier_free_guidance=False,
        )
        width, height = working_size
        if self.text_encoder_2 is not None:
            projection_dim = self.text_encoder_2.config.projection_dim
        else:
            projection_dim = int(pooled_prompt_embeds.shape[-1])
        # original = target = the working size, no crop: the image is seen whole, as it was resized
        time_ids, _ = self._get_add_time_ids(
            (height, width),
            (0, 0),
            (height, width),
            6.0,
            2.5,
            (height, width),
            (0, 0),
            (height, width),
            dtype=prompt_embeds.dtype,
            text_encoder_projection_dim=projection_dim,
        )
        dtype = self.unet.dtype
        return {
            "encoder_hidden_states": prompt_embeds.to(dtype),
            "added_cond_kwargs": {
                "text_embeds": pooled_prompt_embeds.to(device, dtype),
                "time_ids": time_ids.to(device, dtype).repeat(batch_size, 1),
            },
        }


# For type checkers: the eraser's encode_image (VAE latents) replaces diffusers' IP-Adapter image
# encoder of that name, which these pipelines never use
class AttentiveEraserSDXLSIPPipeline(SIPMixin, _StableDiffusionXLEraser):  # type: ignore[misc]
    """Object removal on SDXL with the stochastic inpainting pipeline (SIP) and SARG."""


# For type checkers: the eraser's encode_image (VAE latents) replaces diffusers' IP-Adapter image
# encoder of that name, which these pipelines never use
class AttentiveEraserSDXLDIPPipeline(DIPMixin, _StableDiffusionXLEraser):  # type: ignore[misc]
    """Object removal on SDXL with the deterministic inpainting pipeline (DIP) and SARG."""
