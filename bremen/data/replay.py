"""A circular replay buffer of real transitions (SAC's, deployment-limited model-free learners')."""

from __future__ import annotations

import numpy as np


class ReplayBuffer:
    """A circular NumPy replay buffer of transitions with separate terminal and timeout flags.

    ``terminal`` marks a true termination (no bootstrap); ``timeout`` marks a time-limit cut (the
    transition still bootstraps from ``next_obs``). Both are stored; SAC's target uses only ``terminal``.
    """

    FIELDS = ("obs", "act", "rew", "next_obs", "terminal", "timeout")

    def __init__(self, obs_dim: int, act_dim: int, capacity: int = 1_000_000):
        self.capacity = int(capacity)
        self.obs = np.zeros((self.capacity, obs_dim), np.float32)
        self.act = np.zeros((self.capacity, act_dim), np.float32)
        self.rew = np.zeros((self.capacity,), np.float32)
        self.next_obs = np.zeros((self.capacity, obs_dim), np.float32)
        self.terminal = np.zeros((self.capacity,), bool)
        self.timeout = np.zeros((self.capacity,), bool)
        self.size = 0
        self.ptr = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs, act, rew, next_obs, terminal: bool, timeout: bool) -> None:
        i = self.ptr
        self.obs[i] = obs
        self.act[i] = act
        self.rew[i] = rew
        self.next_obs[i] = next_obs
        self.terminal[i] = terminal
        self.timeout[i] = timeout
        self.ptr = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, rng: np.random.Generator, batch_size: int, k: int | None = None, sizes=None) -> dict:
        """Uniform minibatches with replacement, drawn with one ``rng.integers`` call.

        ``k=None`` gives one batch ``[B, ...]``; an int gives ``k`` stacked batches ``[k, B, ...]``.
        ``sizes`` (length ``k``) restricts batch j to the first ``sizes[j]`` stored rows, so K updates
        done after K env steps see the same data as interleaved step/update would have.
        """
        if k is None:
            idx = rng.integers(0, self.size, size=batch_size)
        else:
            high = self.size if sizes is None else np.minimum(np.asarray(sizes), self.capacity)[:, None]
            idx = rng.integers(0, high, size=(k, batch_size))
        return {
            "obs": self.obs[idx],
            "act": self.act[idx],
            "rew": self.rew[idx],
            "next_obs": self.next_obs[idx],
            "terminal": self.terminal[idx],
        }

    def state_dict(self) -> dict:
        """The stored rows in insertion-slot order plus the write pointer (for checkpoints)."""
        out = {f: getattr(self, f)[: self.size] for f in self.FIELDS}
        out["ptr"] = np.asarray(self.ptr)
        out["capacity"] = np.asarray(self.capacity)
        return out

    def load_state_dict(self, d: dict) -> None:
        n = len(d["rew"])
        if int(d["capacity"]) != self.capacity:
            raise ValueError(f"replay capacity {int(d['capacity'])} does not match {self.capacity}")
        for f in self.FIELDS:
            getattr(self, f)[:n] = d[f]
        self.size = n
        self.ptr = int(d["ptr"])
