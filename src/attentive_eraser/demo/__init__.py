"""The demo: procedural scenes with exact ground truth (:mod:`.scenes`, which draws on :mod:`.backgrounds`
and :mod:`.objects`), the offline demo (:mod:`.run`).

The scenes train the embedded demo model and feed the removal benchmarks; nothing in the method depends
on them.
"""

from .run import example_scene, run_demo

__all__ = ["example_scene", "run_demo"]
