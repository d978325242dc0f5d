"""Tiny random-weight Segment Anything and OWLv2 models: offline tests of :mod:`attentive_eraser.selection`.

Built from configs (nothing is downloaded) and saved with their processors, so that
``load_segmenter("sam:<dir>+detector:<dir>")`` loads them exactly as it loads real checkpoints. The
weights are random: masks and boxes are meaningless, but shapes, prompts, processors and the choice among
SAM's three candidate masks are those of the real models.

Python::

    from attentive_eraser.testing.tiny_selection import save_tiny_sam, save_tiny_owlv2
    sam_dir = save_tiny_sam("/tmp/tiny-sam")        # SamModel + SamProcessor, 64 px input
    owl_dir = save_tiny_owlv2("/tmp/tiny-owlv2")    # Owlv2ForObjectDetection + Owlv2Processor, 64 px input
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .tiny import build_tokenizer

#: the side of the square the tiny models see (the real ones: SAM 1024, OWLv2 960)
IMAGE_SIZE = 64


def build_tiny_sam(seed: int = 0) -> tuple[Any, Any]:
    """A ~40 k-parameter ``SamModel`` (64 px input, 8 px patches) and its ``SamProcessor``."""
    import transformers

    torch.manual_seed(seed)
    config = transformers.SamConfig(
        vision_config={
            "hidden_size": 32,
            "output_channels": 16,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": IMAGE_SIZE,
            "patch_size": 8,
            "window_size": 4,
            "global_attn_indexes": [1],
            "mlp_dim": 64,
            "num_pos_feats": 8,
        },
        prompt_encoder_config={
            "hidden_size": 16,
            "image_size": IMAGE_SIZE,
            "patch_size": 8,
            "mask_input_channels": 4,
        },
        mask_decoder_config={
            "hidden_size": 16,
            "mlp_dim": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "iou_head_hidden_dim": 16,
        },
    )
    model = transformers.SamModel(config).eval()
    image_processor = _pil_processor("SamImageProcessor")(
        size={"longest_edge": IMAGE_SIZE},
        pad_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        mask_size={"longest_edge": IMAGE_SIZE // 4},
        mask_pad_size={"height": IMAGE_SIZE // 4, "width": IMAGE_SIZE // 4},
    )
    return model, transformers.SamProcessor(image_processor)


def build_tiny_owlv2(seed: int = 0) -> tuple[Any, Any]:
    """A ~77 k-parameter ``Owlv2ForObjectDetection`` (64 px input, 16 px patches) and its ``Owlv2Processor``
    (the character-level CLIP tokenizer of :mod:`attentive_eraser.testing.tiny`)."""
    import transformers

    torch.manual_seed(seed)
    tokenizer = build_tokenizer()
    tokenizer.model_max_length = 16
    config = transformers.Owlv2Config(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 16,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": IMAGE_SIZE,
            "patch_size": 16,
        },
        projection_dim=32,
    )
    model = transformers.Owlv2ForObjectDetection(config).eval()
    image_processor = _pil_processor("Owlv2ImageProcessor")(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    return model, transformers.Owlv2Processor(image_processor=image_processor, tokenizer=tokenizer)


def _pil_processor(name: str) -> Any:
    """The Pillow image processor ``<name>Pil`` where transformers has one (no torchvision), else ``name``."""
    import transformers

    return getattr(transformers, f"{name}Pil", None) or getattr(transformers, name)


def _save(model: Any, processor: Any, folder: str | os.PathLike) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def save_tiny_sam(folder: str | os.PathLike, seed: int = 0) -> Path:
    """Write :func:`build_tiny_sam`'s model and processor to ``folder``; returns it."""
    return _save(*build_tiny_sam(seed), folder)


def save_tiny_owlv2(folder: str | os.PathLike, seed: int = 0) -> Path:
    """Write :func:`build_tiny_owlv2`'s model and processor to ``folder``; returns it."""
    return _save(*build_tiny_owlv2(seed), folder)
