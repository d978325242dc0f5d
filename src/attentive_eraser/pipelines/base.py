"""What the SIP and DIP pipelines share, for both the SD 1.x/2.x and the SDXL families.

Family classes (``sd.py``, ``sdxl.py``) supply ``encode_conditioning``; the recipes (``__call__``) live in
:class:`SIPMixin` and :class:`DIPMixin` so that SD and SDXL run the very same loop.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import PIL.Image
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler
from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_img2img import retrieve_latents
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor

from .. import imaging
from ..core.attention import EraserState
from ..core.guidance import SARGBatch
from ..core.inversion import ddim_invert
from ..core.layers import eraser_attention
from ..core.masks import latent_mask
from ..settings import Preset, preset_for_config

logger = logging.getLogger(__name__)

ImageInput = PIL.Image.Image | Sequence[PIL.Image.Image]
MaskInput = PIL.Image.Image | np.ndarray | Sequence[PIL.Image.Image | np.ndarray]
Generator = torch.Generator | list[torch.Generator] | None
Strategy = Literal["resize", "crop"]
#: SIP's samplers: the paper's DDIM (eta = 0), or DPM-Solver++ (2M, data prediction) for fewer steps
Sampler = Literal["ddim", "dpm++"]
SAMPLERS: tuple[str, ...] = ("ddim", "dpm++")
StepCallback = Callable[[Any, int, int, dict[str, torch.Tensor]], dict[str, torch.Tensor]]


@dataclass
class AttentiveEraserPipelineOutput(BaseOutput):
    """Output of the eraser pipelines.

    Args:
        images: the results at each input's original size: PIL images, or an ``(B, H, W, 3)`` float array
            in [0, 1] for ``output_type="np"``, or latents for ``output_type="latent"``.
        masks: the (dilated) object masks used, boolean ``(H, W)`` arrays at each input's original size.
    """

    images: list[PIL.Image.Image] | np.ndarray | torch.Tensor
    masks: list[np.ndarray]


@dataclass
class DIPInversionOutput(BaseOutput):
    """Output of :meth:`DIPMixin.invert`.

    Args:
        latents: clean latents ``z0`` ``(B, C, h, w)``.
        trajectory: ``[z_{t_1}, …, z_{t_n}]``, the inverted latent before each sampling step.
        timesteps: the sampling timesteps ``t_1 > … > t_n`` the trajectory is aligned with.
    """

    latents: torch.Tensor
    trajectory: list[torch.Tensor]
    timesteps: torch.Tensor


@dataclass(frozen=True)
class EraserSettings:
    """The knobs of one call after the preset filled the ``None`` ones (names as in ``__call__``)."""

    num_inference_steps: int
    strength: float
    removal_guidance_scale: float
    suppression_scale: float
    suppression_steps: int
    mask_dilation: int
    feather_radius: float
    resolution: int


@dataclass
class EraserInputs:
    """Images and masks prepared at the working size. ``B`` = images × ``num_images_per_prompt``."""

    originals: list[PIL.Image.Image]  # B RGB images at their original size
    masks: list[np.ndarray]  # B boolean masks at the original size, undilated
    working_size: tuple[int, int]  # (width, height)
    image: torch.Tensor  # (B, 3, H, W) in [-1, 1]
    mask: torch.Tensor  # (B, 1, H, W) in {0, 1}, dilated
    #: "crop" strategy: the (left, top, right, bottom) window of each original that was processed
    windows: list[tuple[int, int, int, int]] | None = None

    @property
    def batch_size(self) -> int:
        return len(self.originals)


def blend(inside: torch.Tensor, outside: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``mask * inside + (1 - mask) * outside``: keep generated latents on the object, known ones elsewhere."""
    return mask * inside + (1 - mask) * outside


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


def _to_pixels(picture: PIL.Image.Image, size: tuple[int, int]) -> torch.Tensor:
    """An RGB image resized to ``size`` as a ``(3, H, W)`` tensor in [-1, 1], the VAE's input range."""
    resized = np.asarray(imaging.resize_image(picture, size), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(resized).permute(2, 0, 1)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def check_number(
    name: str, value: Any, *, low: float, high: float, integer: bool = False, low_open: bool = False
) -> None:
    """Raise ``ValueError`` naming ``name`` and ``value`` unless ``low (<|<=) value <= high``."""
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or (not integer and not math.isfinite(value)):
        raise ValueError(f"{name}={value!r} must be {'an integer' if integer else 'a finite number'}")
    if value < low or value > high or (low_open and value == low):
        bracket = "(" if low_open else "["
        raise ValueError(f"{name}={value!r} is out of range {bracket}{low}, {high}]")


#: valid values of the knobs, shared by the pipelines and the one-call API (which checks them before it
#: loads a model): name -> (low, high, integer, low_open)
KNOB_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "num_inference_steps": (1, 1000, True, False),
    "strength": (0.0, 1.0, False, True),
    "removal_guidance_scale": (0.0, 100.0, False, False),
    "suppression_scale": (0.0, 1.0, False, False),
    "suppression_steps": (0, 1000, True, False),
    "mask_dilation": (0, 1024, True, False),
    "feather_radius": (0.0, 1024.0, False, False),
    "resolution": (64, 8192, True, False),
}


def check_knobs(values: dict[str, Any]) -> None:
    """:func:`check_number` on each knob of ``values`` that is set (``None`` = the preset's)."""
    for name, value in values.items():
        if value is not None and name in KNOB_RANGES:
            low, high, integer, low_open = KNOB_RANGES[name]
            check_number(name, value, low=low, high=high, integer=integer, low_open=low_open)


def _available_memory(device: torch.device) -> int | None:
    """Bytes free for tensors on ``device`` (CUDA: the driver's count; CPU: MemAvailable), else None."""
    if device.type == "cuda" and torch.cuda.is_available():
        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except (RuntimeError, AssertionError):  # pragma: no cover - driver trouble
            return None
    if device.type == "cpu":
        try:
            with open("/proc/meminfo", encoding="ascii") as meminfo:
                for line in meminfo:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            return None
    return None


def estimate_vae_memory(vae: Any, working_size: tuple[int, int], batch_size: int, dtype: torch.dtype) -> int:
    """Rough peak bytes of the VAE at full resolution: a few (batch, C0, H, W) activations at once.

    C0 is the VAE's first block width (128 on SD); the encoder and decoder each hold about six such
    tensors at the working resolution (input, norms, convolutions, residual), the largest part of a run.
    """
    width, height = working_size
    channels = int(vae.config.block_out_channels[0])
    return 6 * batch_size * channels * width * height * torch.finfo(dtype).bits // 8


class EraserPipelineMixin:
    """Shared steps of every eraser pipeline. Mixed into a diffusers Stable Diffusion pipeline class.

    The family class behind it provides ``encode_conditioning(prompts, batch_size, working_size, device)``
    returning the UNet's keyword arguments (text embeddings, SDXL's added conditions) for the batch.
    """

    _preset: Preset | None = None

    def _use_ddim(self, steps_offset: int) -> None:
        """Sampling and inversion are DDIM with eta = 0, as in the paper: swap any other scheduler for DDIM."""
        if not isinstance(self.scheduler, DDIMScheduler):
            config = dict(self.scheduler.config)
            config.update(
                beta_start=0.00085,
                beta_end=0.012,
                beta_schedule="scaled_linear",
                clip_sample=False,
                set_alpha_to_one=False,
                steps_offset=steps_offset,
                timestep_spacing="leading",
            )
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
        raise ValueError(f"scheduler={sampler!r} must be one of {list(SAMPLERS)}")

    @property
    def preset(self) -> Preset:
        """Defaults for this model's family; the ``None`` arguments of ``__call__`` take their values here."""
        if self._preset is None:
            self._preset = preset_for_config(self.unet.config, self.vae_scale_factor)
        return self._preset

    @preset.setter
    def preset(self, value: Preset) -> None:
        self._preset = value

    @property
    def size_multiple(self) -> int:
        """Working sizes are multiples of this: the VAE factor times every UNet downsampling (SD: 64, SDXL: 32)."""
        return self.vae_scale_factor * 2 ** (len(self.unet.config.block_out_channels) - 1)

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
            raise ValueError(
                f"resolution: the working size {width}x{height} for {batch_size} image(s) needs about "
                f"{needed / 2**30:.1f} GiB, more than the {available / 2**30:.1f} GiB free on "
                f"{self._execution_device}; lower the resolution or the batch size"
            )

    def resolve_settings(
        self,
        method: Literal["sip", "dip"],
        *,
        num_inference_steps: int | None = None,
        strength: float | None = None,
        removal_guidance_scale: float | None = None,
        suppression_scale: float | None = None,
        suppression_steps: int | None = None,
        mask_dilation: int | None = None,
        feather_radius: float | None = None,
        resolution: int | None = None,
        num_images_per_prompt: int = 1,
        output_type: str = "pil",
    ) -> EraserSettings:
        """The knobs of one call, ``None`` taken from :attr:`preset`, validated; errors name argument and value."""
        defaults = self.preset.call_kwargs(method)
        given = {
            "num_inference_steps": num_inference_steps,
            "strength": strength,
            "removal_guidance_scale": removal_guidance_scale,
            "suppression_scale": suppression_scale,
            "suppression_steps": suppression_steps,
            "mask_dilation": mask_dilation,
            "feather_radius": feather_radius,
        }
        values = {name: defaults[name] if value is None else value for name, value in given.items()}
        resolution = self.preset.resolution if resolution is None else resolution
        settings = EraserSettings(**values, resolution=resolution)
        check_knobs({**values, "resolution": settings.resolution})
        check_number("num_images_per_prompt", num_images_per_prompt, low=1, high=1024, integer=True)
        if int(settings.num_inference_steps * settings.strength) < 1:
            raise ValueError(
                f"strength={settings.strength!r} with num_inference_steps={settings.num_inference_steps} "
                "runs no denoising step"
            )
        if output_type not in ("pil", "np", "latent"):
            raise ValueError(f"output_type={output_type!r} must be 'pil', 'np' or 'latent'")
        return settings

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
        if strategy not in ("resize", "crop"):
            raise ValueError(f"strategy={strategy!r} must be 'resize' or 'crop'")
        images = [imaging.split_alpha(imaging.load_image(item))[0] for item in _as_list(image)]
        masks = _as_list(mask_image)
        if len(masks) != len(images):
            raise ValueError(f"mask_image has {len(masks)} masks for {len(images)} images")
        sizes = {item.size for item in images}
        if len(sizes) != 1:
            raise ValueError(f"image: all images of one call must share a size, got {sorted(sizes)}")
        size = images[0].size
        bool_masks = []
        for index, item in enumerate(masks):
            argument = "mask_image" if len(masks) == 1 else f"mask_image[{index}]"
            mask = imaging.load_mask(item, size=size, argument=argument)
            imaging.validate_mask(mask, argument=argument)
            bool_masks.append(mask)
        sources, source_masks, windows = images, bool_masks, None
        if strategy == "crop":
            window = imaging.context_window(bool_masks, resolution)
            windows = [imaging.place_window(mask, window) for mask in bool_masks]
            sources = [picture.crop(box) for picture, box in zip(images, windows, strict=False)]
            source_masks = [
                mask[top:bottom, left:right]
                for mask, (left, top, right, bottom) in zip(bool_masks, windows, strict=False)
            ]
        imaging.check_resolution(size, resolution)
        working = imaging.working_size(sources[0].size, resolution, multiple=self.size_multiple)
        self._check_memory(working, len(images) * num_images_per_prompt)
        pixels, mask_pixels = [], []
        for picture, mask in zip(sources, source_masks, strict=False):
            pixels.append(_to_pixels(picture, working))
            dilated = imaging.dilate_mask(imaging.resize_mask(mask, working), mask_dilation)
            mask_pixels.append(torch.from_numpy(dilated.astype(np.float32))[None])
        repeat = num_images_per_prompt
        return EraserInputs(
            originals=[picture for picture in images for _ in range(repeat)],
            masks=[mask for mask in bool_masks for _ in range(repeat)],
            working_size=working,
            image=torch.stack(pixels).repeat_interleave(repeat, dim=0),
            mask=torch.stack(mask_pixels).repeat_interleave(repeat, dim=0),
            windows=None if windows is None else [box for box in windows for _ in range(repeat)],
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
        upcast = dtype == torch.float16 and getattr(self.vae.config, "force_upcast", False)
        if upcast:
            self.vae.to(torch.float32)
        try:
            yield torch.float32 if upcast else dtype
        finally:
            if upcast:
                self.vae.to(dtype)

    def _latent_scaling(self, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """``(shift, scale)`` with ``z0 = (vae_latents - shift) * scale``: per-channel mean/std where the VAE
        config has them, else its ``shift_factor`` (0 for SD) and ``scaling_factor``."""
        config = self.vae.config
        mean, std = getattr(config, "latents_mean", None), getattr(config, "latents_std", None)
        if mean is not None and std is not None:
            shift = torch.tensor(mean, device=device, dtype=dtype).view(1, -1, 1, 1)
            scale = config.scaling_factor / torch.tensor(std, device=device, dtype=dtype).view(1, -1, 1, 1)
        else:
            shift = torch.tensor(getattr(config, "shift_factor", None) or 0.0, device=device, dtype=dtype)
            scale = torch.tensor(config.scaling_factor, device=device, dtype=dtype)
        return shift, scale

    def encode_image(self, image: torch.Tensor, generator: Generator, sample_mode: str) -> torch.Tensor:
        """``z0`` of the SIP/DIP recipes (docs/method.md): scaled VAE latents of ``image`` ``(B, 3, H, W)`` (posterior sample or mode)."""
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
        return self.image_processor.postprocess(decoded.float(), output_type="pil")

    # ------------------------------------------------------------------ UNet
    def predict_noise(
        self, latents: torch.Tensor, t: torch.Tensor, batch: SARGBatch, conditioning: dict[str, Any]
    ) -> torch.Tensor:
        """One batched UNet forward on ``[plain, erased]`` and Eq. 18 (SARG)."""
        model_output = self.unet(batch.expand(latents), t, **conditioning, return_dict=False)[0]
        return batch.combine(model_output)

    def _eraser_context(self, batch: SARGBatch, state: EraserState) -> Any:
        return eraser_attention(self.unet, state) if batch.guided else nullcontext()

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
        working_width = inputs.working_size[0]
        windows = inputs.windows or [(0, 0, *original.size) for original in inputs.originals]
        decoded = None if output_type == "latent" else self.decode_latents_to_images(latents)
        out_masks, images = [], []
        for index, (original, mask, box) in enumerate(
            zip(inputs.originals, inputs.masks, windows, strict=False)
        ):
            region_size = (box[2] - box[0], box[3] - box[1])
            scale = region_size[0] / working_width  # original pixels per working pixel
            out_mask = imaging.dilate_mask(mask, round(mask_dilation * scale))
            out_masks.append(out_mask)
            if decoded is None:
                continue
            result = imaging.resize_image(decoded[index], region_size)
            if paste_back:
                region_mask = out_mask[box[1] : box[3], box[0] : box[2]]
                result = imaging.paste_back(
                    original.crop(box), result, region_mask, feather_radius=feather_radius * scale
                )
            if region_size != original.size:
                whole = original.copy()
                whole.paste(result, box[:2])
                result = whole
            images.append(result)
        if output_type == "latent":
            images = latents
        elif output_type == "np":
            images = np.stack([np.asarray(item, dtype=np.float32) / 255.0 for item in images])
        self.maybe_free_model_hooks()
        if not return_dict:
            return (images, out_masks)
        return AttentiveEraserPipelineOutput(images=images, masks=out_masks)


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
        scheduler: Sampler = "ddim",
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
        # 1. Check inputs (None = the preset's value)
        sampler = self.sampling_scheduler(scheduler)
        settings = self.resolve_settings(
            "sip",
            num_inference_steps=num_inference_steps,
            strength=strength,
            removal_guidance_scale=removal_guidance_scale,
            suppression_scale=suppression_scale,
            suppression_steps=suppression_steps,
            mask_dilation=mask_dilation,
            feather_radius=feather_radius,
            resolution=resolution,
            num_images_per_prompt=num_images_per_prompt,
            output_type=output_type,
        )
        self._interrupt = False
        device = self._execution_device

        # 2. Preprocess images and masks at the working size
        inputs = self.prepare_eraser_inputs(
            image,
            mask_image,
            resolution=settings.resolution,
            mask_dilation=settings.mask_dilation,
            num_images_per_prompt=num_images_per_prompt,
            strategy=strategy,
        )
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
        latents = self.scheduler.add_noise(image_latents, noise, timesteps[:1])
        mask = latent_mask(inputs.mask.to(device), tuple(latents.shape[-2:])).to(latents.dtype)

        # 6. Eraser state the processors read (AAS on the erased half; SS for the first T_SS steps)
        state = EraserState(
            suppression_scale=settings.suppression_scale,
            suppression_steps=settings.suppression_steps,
            enabled=batch.guided,
        )
        state.set_mask(inputs.mask.to(device), tuple(latents.shape[-2:]))

        # 7. Denoising loop
        with self._eraser_context(batch, state), self.progress_bar(total=len(timesteps)) as progress_bar:
            for i, t in enumerate(timesteps):
                if self.interrupt:
                    break
                state.step_index = i
                noise_pred = self.predict_noise(latents, t, batch, conditioning)  # Eq. 18
                latents = sampler_step(sampler, noise_pred, t, latents)
                # blend the known background back in at the next noise level, with the same noise
                if i + 1 < len(timesteps):
                    background = self.scheduler.add_noise(image_latents, noise, timesteps[i + 1 : i + 2])
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


class DIPMixin(EraserPipelineMixin):
    """Deterministic inpainting pipeline (DIP, DiffEdit style) with Attentive Eraser."""

    def invert_latents(
        self, image_latents: torch.Tensor, timesteps: torch.Tensor, conditioning: dict[str, Any]
    ) -> list[torch.Tensor]:
        """Empty-prompt DDIM inversion of ``z0`` over the sampling ``timesteps`` with the plain UNet."""
        with self.progress_bar(total=len(timesteps)) as progress_bar:
            return ddim_invert(
                lambda sample, t: self.unet(sample, t, **conditioning, return_dict=False)[0],
                image_latents,
                timesteps,
                self.scheduler.alphas_cumprod,
                self.scheduler.final_alpha_cumprod,
                self.scheduler.config.prediction_type,
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
            "dip", num_inference_steps=num_inference_steps, strength=strength, resolution=resolution
        )
        self._interrupt = False
        device = self._execution_device
        images = [imaging.split_alpha(imaging.load_image(item))[0] for item in _as_list(image)]
        working = imaging.working_size(images[0].size, settings.resolution, multiple=self.size_multiple)
        pixels = torch.stack([_to_pixels(item, working) for item in images])
        prompts = _as_list(prompt) * (len(images) if isinstance(prompt, str) else 1)
        conditioning = self.encode_conditioning(prompts, len(images), working, device)
        self.scheduler.set_timesteps(settings.num_inference_steps, device=device)
        timesteps, _ = self.get_timesteps(settings.num_inference_steps, settings.strength, device)
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
    ) -> AttentiveEraserPipelineOutput | tuple:
        r"""Remove the masked object(s) from ``image``, deterministically (same inputs, same output).

        The image latents are DDIM-inverted over the schedule sampling uses; sampling starts from the
        inverted noise and, before every UNet call, takes the background from the inversion trajectory.
        Arguments are those of the SIP pipeline, except that there is no randomness (no ``generator``) and
        the defaults are DIP's: 50 inversion + 50 sampling steps, ``strength=1.0``.
        """
        # 1. Check inputs (None = the preset's value)
        settings = self.resolve_settings(
            "dip",
            num_inference_steps=num_inference_steps,
            strength=strength,
            removal_guidance_scale=removal_guidance_scale,
            suppression_scale=suppression_scale,
            suppression_steps=suppression_steps,
            mask_dilation=mask_dilation,
            feather_radius=feather_radius,
            resolution=resolution,
            num_images_per_prompt=1,
            output_type=output_type,
        )
        self._interrupt = False
        device = self._execution_device

        # 2. Preprocess images and masks at the working size
        inputs = self.prepare_eraser_inputs(
            image,
            mask_image,
            resolution=settings.resolution,
            mask_dilation=settings.mask_dilation,
            num_images_per_prompt=1,
            strategy=strategy,
        )

        # 3. Encode the prompt once: inversion and sampling share it
        batch = SARGBatch(inputs.batch_size, settings.removal_guidance_scale)
        prompts = self._prompts(prompt, inputs, 1)
        conditioning = self.encode_conditioning(prompts, inputs.batch_size, inputs.working_size, device)

        # 4. Timesteps: inversion runs over exactly the schedule that sampling uses
        self.scheduler.set_timesteps(settings.num_inference_steps, device=device)
        timesteps, _ = self.get_timesteps(settings.num_inference_steps, settings.strength, device)
        self._num_timesteps = len(timesteps)

        # 5. z0 (posterior mode: no randomness) and its DDIM inversion trajectory
        image_latents = self.encode_image(inputs.image, None, sample_mode="argmax")
        trajectory = self.invert_latents(image_latents, timesteps, conditioning)
        latents = trajectory[0]
        mask = latent_mask(inputs.mask.to(device), tuple(latents.shape[-2:])).to(latents.dtype)

        # 6. Eraser state the processors read
        state = EraserState(
            suppression_scale=settings.suppression_scale,
            suppression_steps=settings.suppression_steps,
            enabled=batch.guided,
        )
        state.set_mask(inputs.mask.to(device), tuple(latents.shape[-2:]))
        conditioning = batch.expand_all(conditioning)

        # 7. Denoising loop: the background follows the inversion trajectory
        with self._eraser_context(batch, state), self.progress_bar(total=len(timesteps)) as progress_bar:
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
