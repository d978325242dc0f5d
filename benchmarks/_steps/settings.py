"""The settings the steps benchmark runs: a solver at a budget of UNet evaluations, and its pipeline knobs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

EVALUATIONS = (40, 30, 20, 15, 10, 6, 4)
SOLVERS = ("ddim", "dpm++", "dip")
#: the default's DIP budget (50 inversion + 50 sampling steps), always in the DIP curve
DIP_DEFAULT_EVALUATIONS = 100
LABELS = {"ddim": "SIP, DDIM", "dpm++": "SIP, DPM-Solver++ 2M", "dip": "DIP, DDIM"}
#: DIP rows are compared with DIP's default (50 inversion + 50 sampling steps), SIP rows with SIP's
DIP_REFERENCE = f"dip_{DIP_DEFAULT_EVALUATIONS}"


@dataclass(frozen=True)
class Setting:
    """One point of a curve: a solver at a budget of UNet evaluations, and the pipeline knobs for it."""

    solver: str
    evaluations: int
    call: dict[str, Any]

    @property
    def key(self) -> str:
        return f"{self.solver.replace('+', 'p')}_{self.evaluations}"

    @property
    def kind(self) -> Literal["sip", "dip"]:
        return "dip" if self.solver == "dip" else "sip"

    @property
    def label(self) -> str:
        return LABELS[self.solver]

    def visited_timesteps(self, pipe: Any) -> list[int]:
        """The timesteps at which this setting's run calls the UNet with SARG (sampling steps only)."""
        from attentive_eraser.pipelines.base import truncated_timesteps

        scheduler = pipe.sampling_scheduler(self.call.get("scheduler", "ddim"))
        steps = truncated_timesteps(scheduler, self.call["num_inference_steps"], self.call["strength"], "cpu")
        return [int(t) for t in steps]


def schedule_for(evaluations: int, strength: float) -> int:
    """The smallest full-schedule step count ``N`` with ``int(N * strength) == evaluations``."""
    steps = max(1, math.ceil(evaluations / strength))
    while int(steps * strength) < evaluations:
        steps += 1
    while steps > 1 and int((steps - 1) * strength) >= evaluations:
        steps -= 1
    if int(steps * strength) != evaluations:
        raise ValueError(f"no step count runs exactly {evaluations} steps at strength {strength}")
    return steps


def scaled_suppression_steps(steps_run: int, preset_steps: int, preset_run: int) -> int:
    """T_SS at the preset's share of the steps run (at least 1)."""
    return max(1, round(preset_steps * steps_run / preset_run))


def make_settings(preset: Any, evaluations: Sequence[int], solvers: Sequence[str]) -> list[Setting]:
    s, lam = preset.removal_guidance_scale, preset.suppression_scale
    sip_run = int(preset.num_inference_steps * preset.strength)  # 40 at the paper's 50 x 0.8
    settings = []
    for solver in solvers:
        if solver == "dip":
            budgets = sorted(
                {*(e for e in evaluations if e % 2 == 0), 2 * preset.dip_num_inference_steps}, reverse=True
            )
            for budget in budgets:
                steps = budget // 2
                settings.append(
                    Setting(
                        "dip",
                        budget,
                        {
                            "num_inference_steps": steps,
                            "strength": preset.dip_strength,
                            "removal_guidance_scale": s,
                            "suppression_scale": lam,
                            "suppression_steps": scaled_suppression_steps(
                                steps, preset.suppression_steps, preset.dip_num_inference_steps
                            ),
                            "mask_dilation": preset.mask_dilation,
                        },
                    )
                )
            continue
        for budget in sorted(set(evaluations), reverse=True):
            settings.append(
                Setting(
                    solver,
                    budget,
                    {
                        "num_inference_steps": schedule_for(budget, preset.strength),
                        "strength": preset.strength,
                        "removal_guidance_scale": s,
                        "suppression_scale": lam,
                        "suppression_steps": scaled_suppression_steps(
                            budget, preset.suppression_steps, sip_run
                        ),
                        "mask_dilation": preset.mask_dilation,
                        "scheduler": solver,
                    },
                )
            )
    return settings
