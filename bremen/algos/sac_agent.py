"""SAC as a model-free agent of the run driver: the deployment-limited SAC baseline of BREMEN's comparison.

``recursive.py --algorithm sac`` collects each deployment's batch with the current SAC actor (its own
stochastic samples a = m + h·tanh(μ + σε), the policy fixed during the collection) and, between deployments,
trains SAC off-policy on all real data so far: ``steps`` updates of :class:`bremen.algos.sac.SAC` (the
update rule, equations and BRAC's order of the critic, actor and temperature steps are documented there),
minibatches drawn uniformly from the data so far. ``offline.py --algorithm sac`` is the same agent on a fixed
dataset: unregularized off-policy actor-critic, the naive baseline the behavior-regularized methods are
built to beat.

The evaluation policy is the deterministic a = m + h·tanh(μ(s)); exported as a ``tanh_gaussian`` policy, whose
stochastic samples are the deployment's exploration.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from bremen.algos.agent import Batch, Spec, actor_mode, tanh_gaussian_export
from bremen.algos.sac import SAC, SACConfig, SACState

NAME = "sac"


@dataclass(frozen=True)
class SACAgentConfig(SACConfig):
    """SAC's hyperparameters (:class:`bremen.algos.sac.SACConfig`: BRAC's online SAC) and the schedule of
    training on a fixed batch. ``warmup_steps`` and ``buffer_capacity`` are online settings, unused here."""

    steps: int = 200_000
    """Updates per deployment (offline: in all); the default is one update per step of a 200k-step
    deployment, online SAC's update-to-data ratio over each new batch."""
    eval_every: int = 10_000
    """Updates between evaluations."""


# "cpu": BRAC's networks kept (Q 2 x 300-300, actor 200-200: 120-128 updates/s here, bench/results/sac_speed.json);
# 20k updates per deployment, one per real step of the recursive cpu plan's 20k-step deployments (~3 min each).
PRESETS = {
    "paper": {},
    "cpu": {"steps": 20_000, "eval_every": 5_000},
    "smoke": {"actor_hidden": (32, 32), "q_hidden": (32, 32), "steps": 200, "eval_every": 100, "batch_size": 64},
}

OPTION_NAMES: dict = {}  # no seed repository of its own: settings through --set algo.KEY=VALUE


def validate(config: SACAgentConfig) -> None:
    """Raise ValueError with one line naming the first bad field."""
    c = config
    for name in ("q_lr", "actor_lr", "alpha_lr", "batch_size", "steps", "eval_every", "n_q", "tau"):
        if getattr(c, name) <= 0:
            raise ValueError(f"sac: {name} must be positive, got {getattr(c, name)}")
    if not 0 <= c.discount < 1 or c.tau > 1:
        raise ValueError(f"sac: need 0 <= discount < 1 and 0 < tau <= 1, got {c.discount}, {c.tau}")
    if c.log_std_min >= c.log_std_max:
        raise ValueError(f"sac: log_std_min must be < log_std_max, got [{c.log_std_min}, {c.log_std_max}]")
    for name in ("actor_hidden", "q_hidden"):
        if not getattr(c, name) or any(int(h) <= 0 for h in getattr(c, name)):
            raise ValueError(f"sac: {name} must be positive sizes, got {getattr(c, name)}")


@dataclass(frozen=True)
class SACAgent:
    """SAC behind the agent contract (``bremen.algos.agent``); the update is :meth:`SAC.update`'s."""

    spec: Spec
    config: SACAgentConfig = SACAgentConfig()

    def __post_init__(self):
        validate(self.config)

    @cached_property
    def sac(self) -> SAC:
        return SAC(self.spec.obs_dim, self.spec.act_dim, self.spec.act_low, self.spec.act_high, self.config)

    def init(self, key) -> SACState:
        return self.sac.init(key)

    def update(self, state: SACState, batch: Batch):
        return self.sac._update(state, {"obs": batch.observations, "act": batch.actions, "rew": batch.rewards,
                                        "next_obs": batch.next_observations, "terminal": batch.terminals})

    def act(self, state: SACState, obs, key=None):
        """The deterministic test policy a = m + h·tanh(μ(s))."""
        return actor_mode(state.actor, obs, self.spec, self.config.log_std_min, self.config.log_std_max)

    def export(self, state: SACState):
        c = self.config
        return tanh_gaussian_export(state.actor, self.spec, c.actor_hidden, c.log_std_min, c.log_std_max)
