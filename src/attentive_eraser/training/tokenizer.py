"""The demo model's tokenizer: a character-level CLIP tokenizer built without any download.

The demo model only ever sees the empty prompt, so it needs no learned vocabulary: every byte-level
character and its end-of-word form is one token, plus CLIP's start and end tokens. The tiny test models
of :mod:`attentive_eraser.testing.tiny` use the same tokenizer.
"""

from __future__ import annotations

from transformers import CLIPTokenizer

__all__ = ["BOS_TOKEN", "EOS_TOKEN", "MAX_LENGTH", "build_tokenizer"]

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
#: CLIP's context length; the pipelines pad every prompt to ``tokenizer.model_max_length``
MAX_LENGTH = 77


def _byte_level_characters() -> list[str]:
    """The 256 printable characters that byte-level BPE (GPT-2, CLIP) uses for the bytes 0..255, by byte."""
    # Bytes that are printable, non-space Latin-1 characters stand for themselves; the others are
    # shifted past 255, in byte order, so that every byte has a visible, unique character.
    printable = {
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    }
    characters = []
    shifted = 0
    for byte in range(256):
        if byte in printable:
            characters.append(chr(byte))
        else:
            characters.append(chr(256 + shifted))
            shifted += 1
    return characters


def build_tokenizer() -> CLIPTokenizer:
    """A character-level CLIP tokenizer (514 tokens, no merges) built without any download."""
    characters = _byte_level_characters()
    vocab = {character: index for index, character in enumerate(characters)}
    # Without merges every word splits into characters; its last one carries CLIP's end-of-word mark.
    vocab.update({character + "</w>": len(characters) + index for index, character in enumerate(characters)})
    vocab[BOS_TOKEN] = len(vocab)
    vocab[EOS_TOKEN] = len(vocab)
    return CLIPTokenizer(
        vocab=vocab,
        merges=[],
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
        model_max_length=MAX_LENGTH,
    )
