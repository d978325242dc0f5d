"""The stochastic inpainting pipeline (SIP): blended latent diffusion with SARG, for SD and SDXL alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, cast

import torch
from diffusers.utils.torch_utils import randn_tensor

from ..core.guidance import SARGBatch
from ..core.masks import latent_mask
from .base import (
    AttentiveEraserPipelineOutput,
    EraserPipelineMixin,
    Generator,
    ImageInput,
    MaskInput,
    Sampler,
    StepCallback,
    Strategy,
    blend,
    knobs_of,
    latent_grid,
    sampler_step,
    truncated_timesteps,
)


class SIPMixin(EraserPipelineMixin):
    """Stochastic inpainting pipeline (SIP, blended latent diffusion) with Attentive Eraser."""

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
        num_images_per_prompt: int = 1,
        generator: Generator = None,
        output_type: Literal["pil", "np", "latent"] = "pil",
        return_dict: bool = True,
        callback_on_step_end: StepCallback | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
        scheduler: Sampler | None = None,
    ) -> AttentiveEraserPipelineOutput | tuple:
        r"""Remove the masked object(s) from ``image``.

        Args:
            image: the photo(s); any size and aspect ratio. Several images must share one size.
            mask_image: object mask(s), same size as the image(s); non-zero / white = remove.
            prompt: text condition, empty by default (the method needs none; CFG is off).
            num_inference_steps: DDIM steps of the full schedule (paper: 50).
            strength: share of the schedule that is run (paper: 0.8, i.e. the last 40 of 50 steps).
            removal_guidance_scale: ``s`` of Eq. 18 (SARG); 0 gives plain blended inpainting (paper: 9).
            suppression_scale: ``λ`` of Eq. 13 (Similarity Suppression; paper: 0.3).
            suppression_steps: ``T_SS``: SS applies during the first ``T_SS`` steps run (paper: 10).
            mask_dilation: outward mask growth in pixels at the working resolution (SD: 2, SDXL: 15).
            feather_radius: paste-back band width in working-resolution pixels (paper notebooks: 15).
            paste_back: paste the original pixels back outside the feathered mask (False: raw decode).
            resolution: working resolution; the image is resized to about ``resolution``² pixels, keeping
                its aspect ratio, sides multiples of 64 (default: the model's native size).
            strategy: ``"resize"`` processes the whole image at the working size; ``"crop"`` only a
                window around the mask (``context`` × its bounding box, at least ``resolution``², the
                image's aspect ratio) and pastes it back at full resolution: for large photos with small
                objects, it keeps the detail and costs the same as a native-size run.
            num_images_per_prompt: results per image (e.g. one per generator for several seeds).
            generator: ``torch.Generator`` or one per result, for the VAE sample and the noise.
            output_type: ``"pil"``, ``"np"`` or ``"latent"``.
            return_dict: return an :class:`AttentiveEraserPipelineOutput` rather than a tuple.
            callback_on_step_end: ``fn(pipe, step, timestep, tensors) -> tensors`` after each step; set
                ``pipe._interrupt = True`` in it to stop early.
            callback_on_step_end_tensor_inputs: tensors passed to the callback (``"latents"``).
            scheduler: ``"ddim"`` (the paper's sampler, eta = 0) or ``"dpm++"`` (DPM-Solver++ 2M with the
                same schedule, for fewer steps; the background is blended back after every solver step).
        """
        # 1-2. Check inputs (None = the preset's value); images and masks at the working size
        settings, inputs = self._begin(
            "sip",
            image,
            mask_image,
            knobs_of(locals()),
            strategy=strategy,
            num_images_per_prompt=num_images_per_prompt,
            output_type=output_type,
        )
        device = self._execution_device
        sampler = self.sampling_scheduler(settings.scheduler)
        if isinstance(generator, list) and len(generator) != inputs.batch_size:
            raise ValueError(f"generator has {len(generator)} entries for {inputs.batch_size} results")

        # 3. Encode the prompt (empty by default) and lay out [plain x B, erased x B]
        batch = SARGBatch(inputs.batch_size, settings.removal_guidance_scale)
        prompts = self._prompts(prompt, inputs, num_images_per_prompt)
        conditioning = batch.expand_all(
            self.encode_conditioning(prompts, inputs.batch_size, inputs.working_size, device)
        )

        # 4. Timesteps: the sampler's schedule truncated by strength
        timesteps = truncated_timesteps(sampler, settings.num_inference_steps, settings.strength, device)
        self._num_timesteps = len(timesteps)

        # 5. Latents: z0, one noise draw, the noised start
        image_latents = self.encode_image(inputs.image, generator, sample_mode="sample")
        noise = randn_tensor(
            image_latents.shape, generator=generator, device=device, dtype=image_latents.dtype
        )
        latents = self.scheduler.add_noise(image_latents, noise, cast(torch.IntTensor, timesteps[:1]))
        mask = latent_mask(inputs.mask.to(device), latent_grid(latents)).to(latents.dtype)

        # 6. Eraser state the processors read (AAS on the erased half; SS for the first T_SS steps)
        state = self._eraser_state(settings, batch, inputs.mask.to(device), latent_grid(latents))

        # 7. Denoising loop
        with (
            self._eraser_context(batch, state),
            self._progress(len(timesteps), "SIP denoising") as progress_bar,
        ):
            for i, t in enumerate(timesteps):
                if self.interrupt:
                    break
                state.step_index = i
                noise_pred = self.predict_noise(latents, t, batch, conditioning)  # Eq. 18
                latents = sampler_step(sampler, noise_pred, t, latents)
                # blend the known background back in at the next noise level, with the same noise
                if i + 1 < len(timesteps):
                    background = self.scheduler.add_noise(
                        image_latents, noise, cast(torch.IntTensor, timesteps[i + 1 : i + 2])
                    )
                else:
                    background = image_latents
                latents = blend(latents, background, mask)
                latents = self._step_callback(
                    callback_on_step_end, callback_on_step_end_tensor_inputs, i, t, {"latents": latents}
                )["latents"]
                progress_bar.update()

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
