"""A model-free agent from outside the package, for tests/test_registry.py: a linear tanh-Gaussian policy whose
mode is fitted to the batch's actions (mean squared error, Adam). One file plus one ``registry.register`` line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from bremen.algos.agent import Spec, actor_init, actor_mode, adam_step, tanh_gaussian_export


@dataclass(frozen=True)
class ToyConfig:
    learning_rate: float = 3e-3
    batch_size: int = 64
    steps: int = 2000
    eval_every: int = 1000


PRESETS = {"paper": {}, "cpu": {}, "smoke": {"steps": 400, "eval_every": 200}}


def validate(config: ToyConfig) -> None:
    if config.learning_rate <= 0:
        raise ValueError(f"toy: learning_rate must be positive, got {config.learning_rate}")


class ToyState(NamedTuple):
    actor: list
    opt: optax.OptState
    step: jax.Array
    key: jax.Array


@dataclass(frozen=True)
class ToyAgent:
    spec: Spec
    config: ToyConfig

    def init(self, key) -> ToyState:
        actor = actor_init(key, self.spec, ())
        return ToyState(actor, optax.adam(self.config.learning_rate).init(actor), jnp.zeros((), jnp.int32), key)

    def update(self, state: ToyState, batch):
        def loss_fn(actor):
            return jnp.mean((actor_mode(actor, batch.observations, self.spec) - batch.actions) ** 2)

        loss, grads = jax.value_and_grad(loss_fn)(state.actor)
        actor, opt = adam_step(optax.adam(self.config.learning_rate), grads, state.opt, state.actor)
        return state._replace(actor=actor, opt=opt, step=state.step + 1), {"mse": loss}

    def act(self, state: ToyState, obs, key=None):
        return actor_mode(state.actor, obs, self.spec)

    def export(self, state: ToyState):
        return tanh_gaussian_export(state.actor, self.spec, ())
