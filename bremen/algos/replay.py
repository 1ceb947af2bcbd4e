"""A circular replay buffer on the device (online SAC's): an :class:`bremen.algos.agent.Batch` of ``capacity``
rows, of which the first ``size`` hold transitions; ``update_many(..., sizes=...)`` draws minibatches from it
inside the compiled call, so no batch crosses from the host."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from bremen.algos.agent import Batch


@partial(jax.jit, donate_argnums=0)
def _write(data: Batch, rows: Batch, start):
    """``rows`` written at slots start, start + 1, ... (mod capacity), in place (the buffer is donated)."""
    capacity = data.observations.shape[0]
    idx = (start + jnp.arange(rows.observations.shape[0])) % capacity
    return jax.tree.map(lambda d, r: d.at[idx].set(r), data, rows)


@partial(jax.jit, donate_argnums=0)
def _write_first(data: Batch, rows: Batch, start, count):
    """The first ``count`` of ``rows`` written at slots start, start + 1, ... (mod capacity); the slots the
    other rows would reach keep their contents (fixed shapes, so one compiled call for any count)."""
    capacity = data.observations.shape[0]
    j = jnp.arange(rows.observations.shape[0])
    idx = (start + j) % capacity

    def put(d, r):
        keep = (j < count).reshape((-1,) + (1,) * (r.ndim - 1))
        return d.at[idx].set(jnp.where(keep, r, d[idx]))

    return jax.tree.map(put, data, rows)


class ReplayBuffer:
    """Transitions in a device-resident ring. ``terminals`` is 1.0 only on a true termination (no bootstrap);
    a time-limit cut is stored with 0.0 and bootstraps from ``next_observations``. ``next_actions`` is not
    known online and stays zero."""

    def __init__(self, obs_dim: int, act_dim: int, capacity: int = 1_000_000):
        self.capacity, self.obs_dim, self.act_dim = int(capacity), int(obs_dim), int(act_dim)
        self.data = self._zeros()
        self.size = 0
        self.ptr = 0

    def _zeros(self) -> Batch:
        n, o, a = self.capacity, self.obs_dim, self.act_dim
        return Batch(jnp.zeros((n, o)), jnp.zeros((n, a)), jnp.zeros((n,)), jnp.zeros((n, o)), jnp.zeros((n,)),
                     jnp.zeros((n, a)))

    def __len__(self) -> int:
        return self.size

    def add(self, observations, actions, rewards, next_observations, terminals) -> list[int]:
        """Append K transitions (arrays [K, ...]) in one device write; returns the buffer size after each of
        them (what update j of the following K may draw from)."""
        k = len(rewards)
        f = lambda x: jnp.asarray(np.asarray(x, np.float32))  # noqa: E731
        rows = Batch(f(observations), f(actions), f(rewards), f(next_observations), f(terminals),
                     jnp.zeros((k, self.act_dim)))
        self.data = _write(self.data, rows, self.ptr)
        sizes = [min(self.size + i + 1, self.capacity) for i in range(k)]
        self.ptr = (self.ptr + k) % self.capacity
        self.size = sizes[-1] if sizes else self.size
        return sizes

    def add_rows(self, rows: Batch, count: int) -> None:
        """Append the first ``count`` rows of a device-resident :class:`Batch` (model rollouts: the valid rows
        first); at most ``capacity`` rows per call."""
        n = rows.observations.shape[0]
        if n > self.capacity:
            raise ValueError(f"{n} rows do not fit a replay buffer of {self.capacity}")
        self.data = _write_first(self.data, rows, self.ptr, count)
        self.ptr = (self.ptr + count) % self.capacity
        self.size = min(self.size + count, self.capacity)

    def state_dict(self) -> dict:
        """The stored rows in slot order, the write pointer and the capacity (for checkpoints)."""
        out = {f: np.asarray(getattr(self.data, f)[: self.size]) for f in Batch._fields if f != "next_actions"}
        out["ptr"] = np.asarray(self.ptr)
        out["capacity"] = np.asarray(self.capacity)
        return out

    def load_state_dict(self, d: dict) -> None:
        if int(d["capacity"]) != self.capacity:
            raise ValueError(f"replay capacity {int(d['capacity'])} does not match {self.capacity}")
        n = len(d["rewards"])
        rows = {f: np.asarray(d[f], np.float32) for f in Batch._fields if f != "next_actions"}
        self.data = _write(self._zeros(), Batch(**rows, next_actions=np.zeros((n, self.act_dim), np.float32)), 0)
        self.size, self.ptr = n, int(d["ptr"])
