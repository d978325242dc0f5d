"""One-call object removal: ``remove(image, mask)``, and loading pipelines from any checkpoint.

``model`` may be a Hugging Face hub id, a local diffusers folder, or a single ``.safetensors``/``.ckpt``
file; the family (SD 1.5, 2.1, 2.1-768, XL) is detected and its preset applied.
"""

from __future__ import annotations

import json
import logging
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import PIL.Image
import torch
from diffusers import DDIMScheduler

from . import imaging, removal
from .families import FAMILIES, family_named, family_of_checkpoint_keys, family_of_config, folder_preset
from .imaging import InputError
from .removal import RemovalRequest
from .runtime import resolve_device, resolve_dtype
from .selection import SelectionRequest
from .settings import (
    DEFAULT_SEED,
    KNOB_NAMES,
    PRESETS,
    RemovalOptions,
)

logger = logging.getLogger(__name__)

Method = Literal["sip", "dip"]
ModelSource = str | os.PathLike | None

#: ``model=None``: the embedded demo model, a small SD-architecture model trained on procedural scenes
#: (``python -m attentive_eraser.training.train_demo``; see README). It loads like any diffusers folder.
DEMO_MODEL = Path(__file__).resolve().with_name("demo_model")
DEFAULT_MODEL = str(DEMO_MODEL)

#: well-known hub ids and their families (from the family registry)
KNOWN_MODELS = {hub_id: family.name for family in FAMILIES.values() for hub_id in family.hub_ids}

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
_SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".bin")
_PIPELINES: dict[tuple, Any] = {}


def _checkpoint_keys(path: Path) -> list[str]:
    """The tensor names of a single-file checkpoint; a damaged file raises one clear ``ValueError``."""
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as handle:
                return list(handle.keys())
        except Exception as error:  # SafetensorError, OSError: a truncated or foreign file
            raise InputError.from_text(
                f"model={str(path)!r} is not a readable .safetensors file "
                f"({type(error).__name__}: {' '.join(str(error).split())[:120]})"
            ) from None
    # Only plain tensors are ever unpickled (weights_only=True); a file that needs more is refused, never
    # loaded the unsafe way.
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the error below says enough
            warnings.simplefilter("ignore")
            checkpoint = torch.load(str(path), map_location="meta", weights_only=True)
    except Exception as error:  # UnpicklingError, RuntimeError, EOFError, OSError
        raise InputError.from_text(
            f"model={str(path)!r} is not a readable checkpoint of plain tensors "
            f"({type(error).__name__}); convert it to .safetensors"
        ) from None
    if not isinstance(checkpoint, dict):
        raise InputError.from_text(
            f"model={str(path)!r} holds a {type(checkpoint).__name__}, not a dictionary of weights"
        )
    weights = checkpoint.get("state_dict", checkpoint)
    return [str(key) for key in weights] if isinstance(weights, dict) else []


def _family_of_single_file(path: Path) -> str:
    family = family_of_checkpoint_keys(_checkpoint_keys(path))
    if family is None:
        raise InputError.from_text(
            f"model={str(path)!r} is not a Stable Diffusion 1.x/2.x/XL checkpoint (unknown keys)"
        )
    return family.name


def _read_config(config_path: Path, model: str) -> dict[str, Any]:
    """A component's ``config.json`` as a dict; damaged JSON raises one clear ``ValueError``."""
    where = f"{config_path.parent.name}/{config_path.name}"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError.from_text(
            f"model={model!r}: {where} is not valid JSON ({' '.join(str(error).split())})"
        ) from None
    if not isinstance(config, dict):
        raise InputError.from_text(
            f"model={model!r}: {where} holds a JSON {type(config).__name__}, not an object"
        )
    return config


#: the pipeline folders that hold weights (every backbone's), and the files they are loaded from
_WEIGHT_FOLDERS = tuple(dict.fromkeys(name for f in FAMILIES.values() for name in f.backbone.weight_folders))
_WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.bin.index.json")


def _check_weights(folder: Path, model: str) -> None:
    """Refuse a diffusers folder whose model index names a component without any weights file."""
    index_path = folder / "model_index.json"
    components: list[str] = ["unet"]
    if index_path.is_file():
        try:
            index = json.loads(index_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            message = " ".join(str(error).split())
            raise InputError.from_text(
                f"model={model!r}: model_index.json is not valid JSON ({message})"
            ) from None
        if not isinstance(index, dict):
            raise InputError.from_text(
                f"model={model!r}: model_index.json holds a JSON {type(index).__name__}, not an object"
            )
        components = [
            name
            for name in _WEIGHT_FOLDERS
            if isinstance(index.get(name), list) and index[name][0] is not None
        ]
    for name in components:
        component = folder / name
        if not component.is_dir():
            raise InputError.from_text(f"model={model!r}: the folder {name}/ is missing")
        if not (component / "config.json").is_file():
            raise InputError.from_text(f"model={model!r}: {name}/config.json is missing")
        _read_config(component / "config.json", model)
        if not any(any(component.glob(pattern)) for pattern in _WEIGHT_PATTERNS):
            expected = (
                "model.safetensors"
                if name.startswith("text_encoder")
                else "diffusion_pytorch_model.safetensors"
            )
            raise InputError.from_text(
                f"model={model!r}: {name}/ has no weights (expected {name}/{expected})"
            )


def _check_config_folder(config: str) -> None:
    """``config`` is a diffusers folder whose JSON files parse (weights not needed), or a hub id."""
    folder = Path(config).expanduser()
    if not folder.is_dir():
        if _HUB_ID.match(config) and not folder.exists():
            return
        raise InputError.from_text(
            f"config={config!r} is not a folder (a local diffusers folder of the same family)"
        )
    for path in sorted([folder / "model_index.json", *folder.glob("*/config.json")]):
        if path.is_file():
            try:
                _read_config(path, config)
            except ValueError as error:
                raise InputError.from_text(str(error).replace("model=", "config=", 1)) from None


def detect_family(model: str | os.PathLike) -> str:
    """The family (``sd15``, ``sd21``, ``sd21-768``, ``sdxl``) of a hub id, diffusers folder or checkpoint
    file."""
    text = str(model)
    path = Path(text).expanduser()
    if path.is_dir():
        config_path = path / "unet" / "config.json"
        if not config_path.is_file():
            raise InputError.from_text(
                f"model={text!r} is a folder but not a diffusers pipeline (no unet/config.json)"
            )
        named = folder_preset(path)  # a folder may name the preset its model was tuned with
        return named.family if named is not None else family_of_config(_read_config(config_path, text)).name
    if path.is_file():
        if path.suffix not in _SINGLE_FILE_SUFFIXES:
            raise InputError.from_text(
                f"model={text!r} is a file but not a checkpoint ({', '.join(_SINGLE_FILE_SUFFIXES)})"
            )
        return _family_of_single_file(path)
    if text in KNOWN_MODELS:
        return KNOWN_MODELS[text]
    if not _HUB_ID.match(text):
        raise InputError.from_text(
            f"model={text!r} is unknown: no such folder or file, and not a hub id (owner/name)"
        )
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    cached = try_to_load_from_cache(text, "unet/config.json")
    if isinstance(cached, str):
        return family_of_config(_read_config(Path(cached), text)).name
    unreachable = _hub_unreachable(text)
    if unreachable is not None:
        raise InputError.from_text(_not_on_this_machine(text, unreachable))
    try:
        config_file = hf_hub_download(text, "unet/config.json")
    except Exception as error:  # missing repo, gated repo: one clear message
        raise InputError.from_text(
            f"model={text!r} could not be found locally nor fetched from the hub ({type(error).__name__}); "
            "pass a local diffusers folder or .safetensors file"
        ) from None
    return family_of_config(_read_config(Path(config_file), text)).name


#: seconds the hub may take to answer before a model that is not cached counts as unobtainable. Without it
#: an unanswering network held a run for minutes (requests without a read timeout, retried per file).
HUB_PROBE_TIMEOUT = 5.0


def _hub_unreachable(model: str) -> str | None:
    """Why the hub cannot give ``model``'s files now (offline mode, no answer in time), or ``None``.

    An answer that is an HTTP error (a missing or gated repository) counts as reachable: the download
    that follows reports it.
    """
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import HfHubHTTPError

    if constants.HF_HUB_OFFLINE:
        return "downloads are off (HF_HUB_OFFLINE=1)"
    try:
        HfApi().model_info(model, timeout=HUB_PROBE_TIMEOUT)
    except HfHubHTTPError:
        return None
    except Exception as error:  # no network, no DNS, no answer in time, a proxy refusing: out of reach
        return f"the hub cannot be reached ({_describe(error)})"
    return None


def _not_on_this_machine(model: str, reason: str) -> str:
    """The one-line message for hub weights that are neither cached here nor downloadable now."""
    from huggingface_hub import constants

    return (
        f"model={model!r}: the weights are not on this machine and {reason}; download them once where the "
        f"hub is reachable (hf download {model}) into the Hugging Face cache ({constants.HF_HUB_CACHE}), "
        "or pass a local diffusers folder or .safetensors file"
    )


def _pipeline_class(family: str, method: Method) -> type:
    return family_named(family).backbone.pipeline_class(method)


def _dtype_kwargs(dtype: torch.dtype) -> dict[str, torch.dtype]:
    """diffusers 0.42 renamed ``torch_dtype`` to ``dtype`` (the old name warns); older releases know only
    ``torch_dtype``."""
    import diffusers
    from packaging.version import Version

    return {"dtype" if Version(diffusers.__version__) >= Version("0.42") else "torch_dtype": dtype}


def _load(model: str, family: str, cls: Any, dtype: torch.dtype, config: str | None) -> Any:
    path = Path(model).expanduser()
    extra: dict[str, Any] = dict(family_named(family).backbone.load_kwargs)
    extra.update(_dtype_kwargs(dtype))
    if path.is_file():
        kwargs = {"config": config} if config else {}
        try:
            return cls.from_single_file(str(path), **kwargs, **extra)
        except (OSError, ValueError) as error:
            raise InputError.from_text(
                f"model={model!r}: loading a single checkpoint file needs its diffusers config; offline, "
                "pass "
                f"config=<a local diffusers folder of the same family> ({_describe(error)})"
            ) from None
        except Exception as error:  # a damaged file: SafetensorError, UnpicklingError, RuntimeError
            raise InputError.from_text(f"model={model!r} could not be loaded ({_describe(error)})") from None
    if path.is_dir():
        _check_weights(path, model)  # diffusers would warn three times and name a file never expected
    else:  # a hub id: the local cache first, so a cached model never waits for the network
        try:
            return cls.from_pretrained(model, local_files_only=True, **extra)
        except OSError:
            pass  # not (fully) cached here
        except Exception as error:  # cached but damaged
            raise InputError.from_text(f"model={model!r} could not be loaded ({_describe(error)})") from None
        unreachable = _hub_unreachable(model)
        if unreachable is not None:
            raise InputError.from_text(_not_on_this_machine(model, unreachable))
    try:
        return cls.from_pretrained(str(path) if path.is_dir() else model, **extra)
    except OSError as error:
        raise InputError.from_text(
            f"model={model!r} could not be loaded: {_describe(error, with_type=False)}"
        ) from None
    except Exception as error:  # damaged weights or configs inside the folder
        raise InputError.from_text(f"model={model!r} could not be loaded ({_describe(error)})") from None


def _describe(error: BaseException, *, with_type: bool = True) -> str:
    """One line about a loading error; never repeats advice to unpickle unsafely (``weights_only=False``)."""
    text = " ".join(str(error).split())
    if "weights_only" in text or "pickle" in text.lower():
        text = "the file needs unpickling of more than plain tensors, which is refused"
    text = _shortened(text, 300)
    return f"{type(error).__name__}: {text}" if with_type else text


def _shortened(text: str, limit: int) -> str:
    """``text`` cut to at most about ``limit`` characters at a sentence end (else a word end, then "…")."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    sentence = max(head.rfind(". "), head.rfind("; "))
    if sentence > limit // 2:
        return head[: sentence + 1].rstrip(";") + " …"
    return head.rsplit(" ", 1)[0] + " …"


def load_pipeline(
    model: ModelSource = None,
    *,
    method: Method = "sip",
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    freeu: bool = False,
    config: str | None = None,
    cache: bool = True,
) -> Any:
    """An eraser pipeline for ``model`` (hub id, diffusers folder or single checkpoint file), ready to call.

    The family is detected, DDIM is set up as the paper does, and the family's preset becomes the
    pipeline's defaults. Pipelines are cached per (model, device, dtype, FreeU); asking for the other
    method of a cached model shares its weights (``from_pipe``). ``freeu=True`` enables FreeU with the
    SD 2.1 factors (docs/method.md). ``config`` is the diffusers config folder for single-file checkpoints.
    """
    model_id = DEFAULT_MODEL if model is None else str(model)
    family = detect_family(model_id)
    if config is not None:
        _check_config_folder(str(config))
    cls = _pipeline_class(family, method)
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    key = (model_id, str(torch_device), torch_dtype, bool(freeu))
    if cache and (key, method) in _PIPELINES:
        return _PIPELINES[(key, method)]
    sibling = next((pipe for (other, _), pipe in _PIPELINES.items() if other == key), None) if cache else None
    if sibling is not None:
        pipe = cls(**sibling.components)  # shares the modules: no second copy of the weights
        pipe.preset = sibling.preset
    else:
        pipe = _load(model_id, family, cls, torch_dtype, config).to(torch_device)
        # the preset its folder names (the demo model's), else its family's at the UNet's resolution
        if pipe.preset.family != family and pipe.preset.resolution == PRESETS[family].resolution:
            pipe.preset = PRESETS[family]
        # the paper's DDIM settings, whatever scheduler config the checkpoint shipped
        pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config, **pipe.preset.scheduler_overrides())
        if freeu:
            from .settings import SD21_FREEU

            b1, b2, s1, s2 = SD21_FREEU
            pipe.enable_freeu(s1=s1, s2=s2, b1=b1, b2=b2)
    if cache:
        _PIPELINES[(key, method)] = pipe
    return pipe


def clear_cache() -> None:
    """Forget every cached pipeline (frees their memory once no one else holds them)."""
    _PIPELINES.clear()


def remove(
    image: str | os.PathLike | PIL.Image.Image,
    mask: str | os.PathLike | PIL.Image.Image | np.ndarray | None = None,
    *,
    model: ModelSource = None,
    config: str | None = None,
    method: Method = "sip",
    seed: int = DEFAULT_SEED,
    num_inference_steps: int | None = None,
    strength: float | None = None,
    removal_guidance_scale: float | None = None,
    suppression_scale: float | None = None,
    suppression_steps: int | None = None,
    mask_dilation: int | None = None,
    feather_radius: float | None = None,
    paste_back: bool = True,
    resize_mask: bool = False,
    resolution: int | None = None,
    scheduler: str | None = None,
    fast: bool = False,
    strategy: Literal["resize", "crop"] = "resize",
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    progress: bool = True,
    max_pixels: int | None = imaging.DEFAULT_MAX_PIXELS,
    points: Sequence[tuple[float, float]] | None = None,
    negative_points: Sequence[tuple[float, float]] | None = None,
    box: Sequence[float] | None = None,
    object: str | None = None,
    segmenter: str | Any | None = None,
) -> PIL.Image.Image:
    """Remove the object under ``mask`` from ``image`` and return the result at the original size.

    ``image`` and ``mask`` are paths or PIL images (``mask`` may also be an array); without ``mask`` the
    image's transparent pixels are the object. ``config`` is a diffusers folder for single-file checkpoints.
    EXIF orientation is applied; an alpha channel of the image is carried to the output when the mask
    comes separately, and its ICC profile always (``result.info["icc_profile"]``). ``None`` knobs take the
    model's preset (see :class:`attentive_eraser.settings.Preset` and ``docs/api.md``); ``seed`` fixes SIP's
    noise. Text choices (``method``, ``strategy``, ``scheduler``) are read regardless of case, and NumPy
    numbers as the Python numbers they hold.
    ``strategy="crop"`` processes only a window around the mask (large photos, small objects).
    ``fast=True`` takes fewer UNet evaluations (:data:`attentive_eraser.settings.FAST_KNOBS`: SIP with
    DPM-Solver++, DIP with fewer inversion and sampling steps); knobs given explicitly still win.
    Images over ``max_pixels`` pixels (default 50 million; ``None``: no limit) are refused, files before
    they are decoded. Every argument is checked before a model is loaded.

    Instead of (or besides) a mask, the object may be selected: ``points`` are clicks on it (pixels,
    ``(x, y)``), ``negative_points`` clicks on what must stay, ``box`` ``(x0, y0, x1, y1)`` a box around it,
    ``object`` its name in words; ``segmenter`` picks who turns that into a mask (default ``"classic"``,
    no weights; ``"sam:<hub id or folder>"``, with ``"+detector:<hub id or folder>"`` for words). See
    :func:`attentive_eraser.selection.select_object`. With a mask too, the selection is added to it.
    """
    # 1. Check the settings (cheap, before any file is decoded or model loaded)
    arguments = dict(locals())
    options = RemovalOptions(
        model=None if model is None else str(model),
        config=config,
        method=method,
        seed=seed,
        knobs={name: arguments[name] for name in KNOB_NAMES},
        fast=fast,
        strategy=strategy,
        paste_back=paste_back,
        device=None if device is None else str(device),
        dtype=None if dtype is None or isinstance(dtype, str) else str(dtype).removeprefix("torch."),
        progress=progress,
        max_pixels=max_pixels,
    )
    if device is not None:
        resolve_device(device)
    if dtype is not None:
        resolve_dtype(dtype, torch.device("cpu"))
    selection = None
    if any(value is not None for value in (points, negative_points, box, object)):
        # checked against the image by select_object, once the image is read
        selection = SelectionRequest(
            points=points or (),  # type: ignore[arg-type]
            negative_points=negative_points or (),  # type: ignore[arg-type]
            box=box,  # type: ignore[arg-type]
            text=object,
            segmenter=segmenter,
        )
    elif segmenter is not None:
        raise imaging.InputError(
            "segmenter", f"{segmenter!r} is given but nothing to select: add points, box or object"
        )
    request = RemovalRequest(image, mask, selection, options, resize_mask=resize_mask)

    # 2. Read the image and the mask, run the selection (files over max_pixels are refused from their header)
    prepared = removal.prepare(request, device=device)

    # 3. Load the model and run
    pipe = load_pipeline(model, method=options.method, device=device, dtype=dtype, config=config)
    pipe.set_progress_bar_config(disable=not progress, leave=False)
    return removal.run(pipe, [prepared])[0][0]
