"""What the SIP and DIP pipelines share, for both the SD 1.x/2.x and the SDXL families.

Family classes (``sd.py``, ``sdxl.py``) supply ``encode_conditioning``; the recipes (``__call__``) live in
:class:`~.sip.SIPMixin` (``sip.py``) and :class:`~.dip.DIPMixin` (``dip.py``) so that SD and SDXL run the
very same loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import PIL.Image
import torch
from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_img2img import retrieve_latents
from diffusers.schedulers.scheduling_ddim import DDIMScheduler
from diffusers.schedulers.scheduling_dpmsolver_multistep import DPMSolverMultistepScheduler

from ..core.attention import EraserState
from ..core.guidance import SARGBatch
from ..core.layers import eraser_attention
from ..families import Backbone, folder_preset, preset_for_config
from ..imaging import InputError
from ..settings import (
    KNOB_NAMES,
    Preset,
    check_denoising_steps,
    check_knobs,
    check_number,
    check_sampler,
    ddim_config,
    knob,
)
from .inputs import (
    EraserInputs,
    ImageInput,
    MaskInput,
    Strategy,
    _as_bool_mask,
    _as_list,
    _available_memory,
    _to_pixels,
    estimate_vae_memory,
    prepare_inputs,
)
from .outputs import AttentiveEraserPipelineOutput, DIPInversionOutput, _as_float_batch, restore_originals

__all__ = [
    "AttentiveEraserPipelineOutput",
    "DIPInversionOutput",
    "EraserInputs",
    "EraserPipelineMixin",
    "Generator",
    "ImageInput",
    "MaskInput",
    "Sampler",
    "StepCallback",
    "Strategy",
    "_as_bool_mask",
    "_as_float_batch",
    "_as_list",
    "_available_memory",
    "_to_pixels",
    "blend",
    "estimate_vae_memory",
    "knobs_of",
    "latent_grid",
    "sampler_step",
    "truncated_timesteps",
]

logger = logging.getLogger(__name__)

Generator = torch.Generator | list[torch.Generator] | None
#: SIP's samplers: the paper's DDIM (eta = 0), or DPM-Solver++ (2M, data prediction) for fewer steps
Sampler = Literal["ddim", "dpm++"]
StepCallback = Callable[[Any, int, int, dict[str, torch.Tensor]], dict[str, torch.Tensor]]


def blend(inside: torch.Tensor, outside: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``mask * inside + (1 - mask) * outside``: generated latents on the object, known ones elsewhere."""
    return mask * inside + (1 - mask) * outside


def latent_grid(latents: torch.Tensor) -> tuple[int, int]:
    """``(h, w)`` of a ``(B, C, h, w)`` latent batch."""
    return int(latents.shape[-2]), int(latents.shape[-1])


def knobs_of(arguments: dict[str, Any]) -> dict[str, Any]:
    """The knob arguments (:data:`~attentive_eraser.settings.KNOBS` names) of a call, from ``locals()``."""
    return {name: arguments[name] for name in KNOB_NAMES}


def truncated_timesteps(
    scheduler: Any, num_inference_steps: int, strength: float, device: torch.device | str
) -> torch.Tensor:
    """The last ``int(num_inference_steps * strength)`` timesteps of ``scheduler``'s schedule (img2img).

    Sets the schedule on ``scheduler`` and, for the schedulers that keep a step index (DPM-Solver), the
    index the first step starts from.
    """
    scheduler.set_timesteps(num_inference_steps, device=device)
    run = min(int(num_inference_steps * strength), num_inference_steps)
    start = (num_inference_steps - run) * scheduler.order
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(start)
    return scheduler.timesteps[start:]


def sampler_step(
    scheduler: Any, noise_pred: torch.Tensor, t: torch.Tensor, latents: torch.Tensor
) -> torch.Tensor:
    """One sampler update ``z_t -> z_{t-1}``; DDIM deterministically (eta = 0)."""
    if isinstance(scheduler, DDIMScheduler):
        return scheduler.step(noise_pred, t, latents, eta=0.0, return_dict=False)[0]
    return scheduler.step(noise_pred, t, latents, return_dict=False)[0]


class EraserPipelineMixin:
    """Shared steps of every eraser pipeline. Mixed into a diffusers Stable Diffusion pipeline class.

    The family class behind it provides ``encode_conditioning(prompts, batch_size, working_size, device)``
    returning the UNet's keyword arguments (text embeddings, SDXL's added conditions) for the batch.
    """

    _preset: Preset | None = None
    #: what the eraser needs to know about the denoiser (set by each family's pipeline class)
    backbone: Backbone

    if TYPE_CHECKING:  # provided by the diffusers pipeline class this is mixed into
        from diffusers.image_processor import VaeImageProcessor
        from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL
        from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel

        unet: UNet2DConditionModel
        vae: AutoencoderKL
        scheduler: DDIMScheduler
        image_processor: VaeImageProcessor
        vae_scale_factor: int
        config: Any  # diffusers' FrozenDict of the pipeline (``_name_or_path``: where it was loaded from)
        _execution_device: torch.device

        def progress_bar(self, iterable: Any = None, total: int | None = None) -> Any: ...

        def maybe_free_model_hooks(self) -> None: ...

        def encode_conditioning(
            self, prompt: list[str], batch_size: int, working_size: tuple[int, int], device: torch.device
        ) -> dict[str, Any]: ...

    def _progress(self, total: int, label: str) -> Any:
        """diffusers' progress bar over ``total`` steps, labelled ``label`` unless the user set a ``desc``."""
        config = getattr(self, "_progress_bar_config", {})
        if config.get("desc"):
            return self.progress_bar(total=total)
        # the label must be there when tqdm draws the bar's first frame: pass it in the config for this bar
        self._progress_bar_config = {**config, "desc": label}
        try:
            return self.progress_bar(total=total)
        finally:
            self._progress_bar_config = config

    def _use_ddim(self, steps_offset: int) -> None:
        """Sampling and inversion are DDIM with eta = 0, as in the paper: swap another scheduler for DDIM."""
        if not isinstance(self.scheduler, DDIMScheduler):
            config = {**self.scheduler.config, **ddim_config(steps_offset)}
            logger.info(
                "Replacing %s with DDIMScheduler (the method samples with DDIM).",
                type(self.scheduler).__name__,
            )
            self.scheduler = DDIMScheduler.from_config(config)

    def sampling_scheduler(self, sampler: str) -> Any:
        """The scheduler SIP samples with: the pipeline's DDIM itself, or a DPM-Solver++ (2M) built from it.

        The solver shares DDIM's noise schedule (``alphas_cumprod``), so the noised background that SIP
        blends back in is the same for both, and ``self.scheduler`` (DDIM) is never replaced.
        """
        if sampler == "ddim":
            return self.scheduler
        if sampler == "dpm++":
            return DPMSolverMultistepScheduler.from_config(
                self.scheduler.config,
                algorithm_type="dpmsolver++",
                solver_order=2,
                lower_order_final=True,
                final_sigmas_type="zero",
            )
        knob("scheduler").check(sampler)  # raises, naming the choices
        raise AssertionError(f"scheduler={sampler!r} is a choice without a sampler")

    @property
    def denoiser(self) -> Any:
        """The module the eraser acts on (the backbone names it: ``unet`` here)."""
        return getattr(self, self.backbone.denoiser)

    @property
    def preset(self) -> Preset:
        """Defaults for this model; the ``None`` arguments of ``__call__`` take their values here.

        The preset the model's folder names (:data:`attentive_eraser.families.FOLDER_SETTINGS`, as the
        embedded demo model does), else its family's, at the resolution the denoiser's config implies.
        """
        if self._preset is None:
            source = getattr(self.config, "_name_or_path", None)
            named = folder_preset(source) if source else None
            self._preset = named or preset_for_config(self.denoiser.config, self.vae_scale_factor)
        return self._preset

    @preset.setter
    def preset(self, value: Preset) -> None:
        self._preset = value

    @property
    def size_multiple(self) -> int:
        """Working sizes are multiples of this (SD: 64, SDXL: 32; the backbone says)."""
        return self.backbone.size_multiple(self.denoiser.config, self.vae_scale_factor)

    @property
    def interrupt(self) -> bool:
        return getattr(self, "_interrupt", False)

    # ------------------------------------------------------------------ inputs
    def _check_memory(self, working_size: tuple[int, int], batch_size: int) -> None:
        """Refuse a working size whose VAE pass clearly cannot fit in the device's free memory."""
        if getattr(self.vae, "use_tiling", False):
            return  # tiled decoding bounds the activations by the tile size
        available = _available_memory(self._execution_device)
        needed = estimate_vae_memory(self.vae, working_size, batch_size, self.vae.dtype)
        if available is not None and needed > available:
            width, height = working_size
            raise InputError.from_text(
                f"resolution: the working size {width}x{height} for {batch_size} image(s) needs about "
                f"{needed / 2**30:.1f} GiB, more than the {available / 2**30:.1f} GiB free on "
                f"{self._execution_device}; lower the resolution or the batch size"
            )

    def resolve_settings(
        self,
        method: Literal["sip", "dip"],
        knobs: dict[str, Any] | None = None,
        *,
        num_images_per_prompt: int = 1,
        output_type: str = "pil",
    ) -> Preset:
        """The knobs of one call (:data:`~attentive_eraser.settings.KNOBS` names), ``None`` taken from
        :attr:`preset` (DIP's own values where it has them), validated; errors name argument and value.

        Returns the preset with this call's values in its knob fields.
        """
        given = {name: value for name, value in (knobs or {}).items() if value is not None}
        unknown = sorted(set(given) - set(KNOB_NAMES))
        if unknown:
            raise TypeError(f"unknown setting(s) {', '.join(unknown)}")
        values = {**self.preset.for_method(method), **given}
        check_knobs(values)
        settings = replace(self.preset, **values)
        check_number("num_images_per_prompt", num_images_per_prompt, low=1, high=1024, integer=True)
        check_denoising_steps(settings.num_inference_steps, settings.strength)
        check_sampler(method, settings.scheduler)
        if output_type not in ("pil", "np", "latent"):
            raise InputError.from_text(f"output_type={output_type!r} must be 'pil', 'np' or 'latent'")
        return settings

    def _begin(
        self,
        method: Literal["sip", "dip"],
        image: ImageInput,
        mask_image: MaskInput,
        knobs: dict[str, Any],
        *,
        strategy: Strategy,
        num_images_per_prompt: int,
        output_type: str,
    ) -> tuple[Preset, EraserInputs]:
        """Steps 1 and 2 of both recipes: the call's settings, then images and masks at the working size."""
        settings = self.resolve_settings(
            method, knobs, num_images_per_prompt=num_images_per_prompt, output_type=output_type
        )
        self._interrupt = False
        inputs = self.prepare_eraser_inputs(
            image,
            mask_image,
            resolution=settings.resolution,
            mask_dilation=settings.mask_dilation,
            num_images_per_prompt=num_images_per_prompt,
            strategy=strategy,
        )
        return settings, inputs

    def prepare_eraser_inputs(
        self,
        image: ImageInput,
        mask_image: MaskInput,
        *,
        resolution: int,
        mask_dilation: int,
        num_images_per_prompt: int,
        strategy: Strategy = "resize",
    ) -> EraserInputs:
        """Images and masks at the working size (aspect ratio kept, area ≈ ``resolution``²), masks dilated.

        ``strategy="resize"`` works on the whole image; ``"crop"`` on a window around the mask with the
        image's aspect ratio (:func:`imaging.context_window`), for large photos with small objects.
        """
        return prepare_inputs(
            image,
            mask_image,
            resolution=resolution,
            mask_dilation=mask_dilation,
            num_images_per_prompt=num_images_per_prompt,
            strategy=strategy,
            size_multiple=self.size_multiple,
            check_memory=self._check_memory,
        )

    def _prompts(self, prompt: str | list[str], inputs: EraserInputs, repeat: int) -> list[str]:
        prompts = _as_list(prompt)
        if len(prompts) == 1:
            return prompts * inputs.batch_size
        if len(prompts) * repeat != inputs.batch_size:
            raise ValueError(f"prompt has {len(prompts)} entries for {inputs.batch_size // repeat} images")
        return [text for text in prompts for _ in range(repeat)]

    # ------------------------------------------------------------------ VAE
    @contextmanager
    def _vae_precision(self) -> Iterator[torch.dtype]:
        """Run an fp16 VAE that asks for it (``force_upcast``, SDXL) in fp32, then put it back."""
        dtype = self.vae.dtype
        upcast = dtype == torch.float16 and self.vae.config.get("force_upcast", False)
        if upcast:
            self.vae.to(torch.float32)  # type: ignore[arg-type]  # diffusers' .to wrapper is typed unbound
        try:
            yield torch.float32 if upcast else dtype
        finally:
            if upcast:
                self.vae.to(dtype)  # type: ignore[arg-type]  # diffusers' .to wrapper is typed unbound

    def _latent_scaling(self, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """``(shift, scale)`` with ``z0 = (vae_latents - shift) * scale``: per-channel mean/std where the VAE
        config has them, else its ``shift_factor`` (0 for SD) and ``scaling_factor``."""
        config = self.vae.config
        mean, std = config.get("latents_mean"), config.get("latents_std")
        if mean is not None and std is not None:
            shift = torch.tensor(mean, device=device, dtype=dtype).view(1, -1, 1, 1)
            scale = config["scaling_factor"] / torch.tensor(std, device=device, dtype=dtype).view(1, -1, 1, 1)
        else:
            shift = torch.tensor(config.get("shift_factor") or 0.0, device=device, dtype=dtype)
            scale = torch.tensor(config["scaling_factor"], device=device, dtype=dtype)
        return shift, scale

    def encode_image(self, image: torch.Tensor, generator: Generator, sample_mode: str) -> torch.Tensor:
        """``z0`` of the SIP/DIP recipes (docs/method.md): scaled VAE latents of ``image`` ``(B, 3, H, W)``
        (posterior sample or mode)."""
        device = self._execution_device
        with self._vae_precision() as dtype:
            pixels = image.to(device=device, dtype=dtype)
            if isinstance(generator, list):
                latents = torch.cat(
                    [
                        retrieve_latents(self.vae.encode(pixels[i : i + 1]), generator[i], sample_mode)
                        for i in range(pixels.shape[0])
                    ]
                )
            else:
                latents = retrieve_latents(self.vae.encode(pixels), generator, sample_mode)
        shift, scale = self._latent_scaling(latents.device, latents.dtype)
        latents = (latents - shift) * scale
        return latents.to(self.unet.dtype)

    def decode_latents_to_images(self, latents: torch.Tensor) -> list[PIL.Image.Image]:
        """Decode scaled latents to PIL images at the working size."""
        with self._vae_precision() as dtype:
            latents = latents.to(dtype)
            shift, scale = self._latent_scaling(latents.device, dtype)
            latents = latents / scale + shift
            decoded = self.vae.decode(latents, return_dict=False)[0]
        images = self.image_processor.postprocess(decoded.float(), output_type="pil")
        assert isinstance(images, list)  # output_type="pil": one PIL image per latent
        return images

    # ------------------------------------------------------------------ UNet
    def predict_noise(
        self, latents: torch.Tensor, t: torch.Tensor, batch: SARGBatch, conditioning: dict[str, Any]
    ) -> torch.Tensor:
        """One batched UNet forward on ``[plain, erased]`` and Eq. 18 (SARG)."""
        model_output = self.unet(batch.expand(latents), t, **conditioning, return_dict=False)[0]
        return batch.combine(model_output)

    def _eraser_state(
        self, settings: Preset, batch: SARGBatch, mask: torch.Tensor, latent_size: Any
    ) -> EraserState:
        """The state the processors read: AAS on the erased half, SS for the first T_SS steps."""
        state = EraserState(
            suppression_scale=settings.suppression_scale,
            suppression_steps=settings.suppression_steps,
            enabled=batch.guided,
            layout=self.backbone.token_layout,
        )
        state.set_mask(mask, latent_size)
        return state

    def _eraser_context(self, batch: SARGBatch, state: EraserState) -> Any:
        if not batch.guided:
            return nullcontext()
        return eraser_attention(self.denoiser, state, self.backbone.eraser_layers)

    def _step_callback(
        self,
        callback: StepCallback | None,
        tensor_inputs: Sequence[str],
        index: int,
        t: torch.Tensor,
        values: dict[str, torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        if callback is None:
            return values
        requested = {name: values[name] for name in tensor_inputs if name in values}
        returned = callback(self, index, int(t), requested) or {}
        return {**values, **returned}

    # ------------------------------------------------------------------ outputs
    def finish(
        self,
        latents: torch.Tensor,
        inputs: EraserInputs,
        *,
        output_type: str,
        paste_back: bool,
        mask_dilation: int,
        feather_radius: float,
        return_dict: bool,
    ) -> AttentiveEraserPipelineOutput | tuple:
        """Decode, resize to each input's original size (or crop window) and paste the original back."""
        decoded = None if output_type == "latent" else self.decode_latents_to_images(latents)
        pictures, out_masks = restore_originals(
            decoded, inputs, paste_back=paste_back, mask_dilation=mask_dilation, feather_radius=feather_radius
        )
        images: list[PIL.Image.Image] | np.ndarray | torch.Tensor = pictures
        if output_type == "latent":
            images = latents
        elif output_type == "np":
            images = _as_float_batch(pictures)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (images, out_masks)
        return AttentiveEraserPipelineOutput(images=images, masks=out_masks)
