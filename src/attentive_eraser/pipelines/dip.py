"""The deterministic inpainting pipeline (DIP): DDIM inversion, then sampling with SARG, SD and SDXL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch

from .. import imaging
from ..core.guidance import SARGBatch
from ..core.inversion import ddim_invert
from ..core.masks import latent_mask
from .base import (
    AttentiveEraserPipelineOutput,
    DIPInversionOutput,
    EraserPipelineMixin,
    ImageInput,
    MaskInput,
    Sampler,
    StepCallback,
    Strategy,
    _as_list,
    _to_pixels,
    blend,
    knobs_of,
    latent_grid,
    truncated_timesteps,
)


class DIPMixin(EraserPipelineMixin):
    """Deterministic inpainting pipeline (DIP, DiffEdit style) with Attentive Eraser."""

    def invert_latents(
        self, image_latents: torch.Tensor, timesteps: torch.Tensor, conditioning: dict[str, Any]
    ) -> list[torch.Tensor]:
        """Empty-prompt DDIM inversion of ``z0`` over the sampling ``timesteps`` with the plain UNet."""
        with self._progress(len(timesteps), "DIP inversion") as progress_bar:
            return ddim_invert(
                lambda sample, t: self.unet(sample, t, **conditioning, return_dict=False)[0],
                image_latents,
                timesteps,
                self.scheduler.alphas_cumprod,
                self.scheduler.final_alpha_cumprod,
                self.scheduler.config["prediction_type"],
                progress=progress_bar.update,
                should_stop=lambda: self.interrupt,
            )

    @torch.no_grad()
    def invert(
        self,
        image: ImageInput,
        prompt: str | list[str] = "",
        num_inference_steps: int | None = None,
        strength: float | None = None,
        resolution: int | None = None,
    ) -> DIPInversionOutput:
        """DDIM-invert ``image`` (at the working size) over the timesteps a DIP run would sample."""
        settings = self.resolve_settings(
            "dip",
            {"num_inference_steps": num_inference_steps, "strength": strength, "resolution": resolution},
        )
        self._interrupt = False
        device = self._execution_device
        images = [imaging.split_alpha(imaging.load_image(item))[0] for item in _as_list(image)]
        working = imaging.working_size(images[0].size, settings.resolution, multiple=self.size_multiple)
        pixels = torch.stack([_to_pixels(item, working) for item in images])
        prompts = _as_list(prompt) * (len(images) if isinstance(prompt, str) else 1)
        conditioning = self.encode_conditioning(prompts, len(images), working, device)
        timesteps = truncated_timesteps(
            self.scheduler, settings.num_inference_steps, settings.strength, device
        )
        image_latents = self.encode_image(pixels, None, sample_mode="argmax")
        trajectory = self.invert_latents(image_latents, timesteps, conditioning)
        return DIPInversionOutput(latents=image_latents, trajectory=trajectory, timesteps=timesteps)

    @torch.no_grad()
    def __call__(
        self,
        image: ImageInput,
        mask_image: MaskInput,
        prompt: str | list[str] = "",
        num_inference_steps: int | None = None,
        strength: float | None = None,
        removal_guidance_scale: float | None = None,
        suppression_scale: float | None = None,
        suppression_steps: int | None = None,
        mask_dilation: int | None = None,
        feather_radius: float | None = None,
        paste_back: bool = True,
        resolution: int | None = None,
        strategy: Strategy = "resize",
        output_type: Literal["pil", "np", "latent"] = "pil",
        return_dict: bool = True,
        callback_on_step_end: StepCallback | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
        scheduler: Sampler | None = None,
    ) -> AttentiveEraserPipelineOutput | tuple:
        r"""Remove the masked object(s) from ``image``, deterministically (same inputs, same output).

        The image latents are DDIM-inverted over the schedule sampling uses; sampling starts from the
        inverted noise and, before every UNet call, takes the background from the inversion trajectory.
        Arguments are those of the SIP pipeline, except that there is no randomness (no ``generator``) and
        the defaults are DIP's: 50 inversion + 50 sampling steps, ``strength=1.0``. ``scheduler`` may only
        be ``"ddim"``: sampling must retrace the DDIM inversion.
        """
        # 1-2. Check inputs (None = the preset's value); images and masks at the working size
        settings, inputs = self._begin(
            "dip",
            image,
            mask_image,
            knobs_of(locals()),
            strategy=strategy,
            num_images_per_prompt=1,
            output_type=output_type,
        )
        device = self._execution_device

        # 3. Encode the prompt once: inversion and sampling share it
        batch = SARGBatch(inputs.batch_size, settings.removal_guidance_scale)
        prompts = self._prompts(prompt, inputs, 1)
        conditioning = self.encode_conditioning(prompts, inputs.batch_size, inputs.working_size, device)

        # 4. Timesteps: inversion runs over exactly the schedule that sampling uses
        timesteps = truncated_timesteps(
            self.scheduler, settings.num_inference_steps, settings.strength, device
        )
        self._num_timesteps = len(timesteps)

        # 5. z0 (posterior mode: no randomness) and its DDIM inversion trajectory
        image_latents = self.encode_image(inputs.image, None, sample_mode="argmax")
        trajectory = self.invert_latents(image_latents, timesteps, conditioning)
        latents = trajectory[0]
        mask = latent_mask(inputs.mask.to(device), latent_grid(latents)).to(latents.dtype)

        # 6. Eraser state the processors read
        state = self._eraser_state(settings, batch, inputs.mask.to(device), latent_grid(latents))
        conditioning = batch.expand_all(conditioning)

        # 7. Denoising loop: the background follows the inversion trajectory
        with (
            self._eraser_context(batch, state),
            self._progress(len(timesteps), "DIP denoising") as progress_bar,
        ):
            for i, t in enumerate(timesteps):
                if self.interrupt:
                    break
                state.step_index = i
                latents = blend(latents, trajectory[i], mask)
                noise_pred = self.predict_noise(latents, t, batch, conditioning)  # Eq. 18
                latents = self.scheduler.step(noise_pred, t, latents, eta=0.0, return_dict=False)[0]
                latents = self._step_callback(
                    callback_on_step_end, callback_on_step_end_tensor_inputs, i, t, {"latents": latents}
                )["latents"]
                progress_bar.update()
        latents = blend(latents, image_latents, mask)

        # 8. Decode, back to the original size, paste back
        return self.finish(
            latents,
            inputs,
            output_type=output_type,
            paste_back=paste_back,
            mask_dilation=settings.mask_dilation,
            feather_radius=settings.feather_radius,
            return_dict=return_dict,
        )
