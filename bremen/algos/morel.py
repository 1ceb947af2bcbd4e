"""MOReL (Kidambi et al., 2020): natural-gradient policy optimization in a pessimistic model, from BC.

The pessimistic MDP is the model env with an unknown-state detector (bremen.models.model_env): after the
ensemble's fit, the threshold is the largest disagreement max_{i,j} ‖f_i(s, a) − f_j(s, a)‖ of the members over
the training data divided by ``pessimism``; an imaginary step whose disagreement exceeds it halts the episode
(terminal, no bootstrap) and loses κ (``halt_penalty``) of its reward. The policy starts from behavior cloning
and is optimized by BREMEN's TRPO (a natural-gradient step with a KL trust region and a line search) on that
model, with no KL penalty towards BC.

Settings and their sources (MOReL's public code, aravindr93/mjrl branch v2: projects/morel/run_morel.py,
configs/d4rl_hopper_medium.txt; docs/baselines.md has the table): 4 models, pessimism coefficient 3.0,
κ = 0 (the released configs' truncate_reward; the paper's −κ is the option), start states the first state of
each data episode, γ 0.999, GAE λ 0.97, normalized NPG step 0.02, which is a KL of 0.01 per step (½·δ), used
here as TRPO's δ. What stays BREMEN's: the members' width and training, the policy network, the sampling noise
(BC leaves the policy's own σ at its floor, so actions are sampled with a fixed σ = 0.1, as BREMEN's) and the
batch size, so a BREMEN and a MOReL run of one preset differ in the pessimistic MDP and the settings above.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NAME, LABEL = "morel", "MOReL"

FLAGS: dict[str, Any] = {"bc_init": True, "alpha": 0.0, "use_s_0": True, "use_s_t": False, "target_kl": 0.01,
                         "ensemble_model_count": 4, "trpo.gamma": 0.999, "trpo.gae": 0.97}
"""Flag values (and ``section.key`` param-file values) this algorithm sets, after the preset."""


@dataclass(frozen=True)
class MOReLConfig:
    """MOReL's own settings."""

    pessimism: float = 3.0
    """Threshold = the data's largest member disagreement / pessimism (MOReL's pessimism_coef)."""
    halt_penalty: float = 0.0
    """κ, subtracted from the reward of a halting step (the released code's truncate_reward: 0)."""


PRESETS = {"paper": {}, "cpu": {}, "smoke": {}}

OPTION_NAMES = {"pessimism_coef": "pessimism"}
"""MOReL's own option names -> fields (κ: ``--set algo.halt_penalty=100``)."""


def validate(c: MOReLConfig) -> None:
    if not c.pessimism > 0:
        raise ValueError(f"morel: pessimism must be positive, got {c.pessimism}")
    if c.halt_penalty < 0:
        raise ValueError(f"morel: halt_penalty (κ) must be >= 0, got {c.halt_penalty}")
