"""Every setting of a removal, defined once: the knob schema, per-family presets, the request, every check.

* :data:`KNOBS` (:mod:`.knobs`) describes each knob of the pipelines' ``__call__`` (and of
  :func:`attentive_eraser.remove`): its type, valid range or choices, the paper's symbol and its help text.
  The CLI's options, the web app's controls, the batch manifest's columns and every validation derive from it.
* :class:`Preset` (:mod:`.presets`) holds each knob's default for one model family (the "paper" values are the
  paper's Appendix C, ``docs/method.md``); :mod:`attentive_eraser.families` tells which family a model is.
* :class:`RemovalOptions` (:mod:`.options`) is one request's settings as every surface builds it, checked
  once on construction: knobs, method, strategy, seed, flags, and the rules a pipeline would apply after
  loading (DIP's sampler, at least one denoising step).
* Every check raises :class:`attentive_eraser.imaging.InputError` naming the argument and the value;
  :func:`canonical_knobs`, :func:`check_method`, :func:`check_strategy` and :func:`check_seed` also return
  what a front end passes on: choices in their listed spelling whatever the case, NumPy numbers as Python
  ones.

No torch, no click: every outer layer imports this package cheaply.
"""

from .knobs import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_SEED,
    KNOB_NAMES,
    KNOBS,
    METHODS,
    SEED_LIMIT,
    STRATEGIES,
    Family,
    Knob,
    Method,
    Strategy,
    canonical_knobs,
    check_flag,
    check_knobs,
    check_method,
    check_number,
    check_sampler,
    check_seed,
    check_strategy,
    knob,
    match_choice,
    shown_value,
)
from .options import (
    RemovalOptions,
    check_call_knobs,
    check_denoising_steps,
    shared_preset_value,
)
from .presets import (
    FAST_KNOBS,
    NON_CALL_FIELDS,
    PRESETS,
    SD21_FREEU,
    Preset,
    ddim_config,
    get_preset,
    knob_values,
    preset_field_names,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_SEED",
    "FAST_KNOBS",
    "Family",
    "KNOBS",
    "KNOB_NAMES",
    "Knob",
    "METHODS",
    "Method",
    "NON_CALL_FIELDS",
    "PRESETS",
    "Preset",
    "RemovalOptions",
    "SD21_FREEU",
    "SEED_LIMIT",
    "STRATEGIES",
    "Strategy",
    "canonical_knobs",
    "check_call_knobs",
    "check_denoising_steps",
    "check_flag",
    "check_knobs",
    "check_method",
    "check_number",
    "check_sampler",
    "check_seed",
    "check_strategy",
    "ddim_config",
    "get_preset",
    "knob",
    "knob_values",
    "match_choice",
    "preset_field_names",
    "shared_preset_value",
    "shown_value",
]
