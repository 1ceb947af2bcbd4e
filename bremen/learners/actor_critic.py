"""The learner of the model-free offline agents (BC, BCQ, BEAR, BRAC; bremen.algos.agent).

``fit`` puts the data on the device and runs the agent's updates in chunks of ``eval_every`` updates (each
chunk several compiled calls of ``steps_per_call`` updates, minibatches drawn on the device); after each
chunk it calls ``hooks.step("train", chunk, info)``, where the run driver evaluates, logs, exports and
checkpoints, as for the model-based learner. In a recursive run each deployment trains on the data so far,
from the previous deployment's networks and optimizer moments (``warm_start``, the default) or from a fresh
agent (``--reinit_agent``); either way a deployment runs the agent's whole schedule (``steps`` updates, the
step counter restarted: BRAC's behavior cloning on the data so far and the warm-ups included).

The agent's state holds its PRNG key, so a run resumed from the checkpoint after any chunk continues
exactly as an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import jax
import numpy as np

from bremen.algos.agent import Spec, batch_from_arrays, update_many
from bremen.algos.brac_config import read_behavior_policy
from bremen.errors import UserError
from bremen.io.checkpoint import CHECKPOINT_FILE, arrays_to_pytree, load_checkpoint, pytree_to_arrays
from bremen.io.policy_io import policy_from_export
from bremen.learners import ChunkReport
from bremen.models.waiting import wait

K_AGENT = 11  # derived key of the agent's initial state (deployment d > 0 without warm start: + d)
# progress.csv's columns for this learner (the run driver fills all but updates, and puts a recursive run's
# deployment columns after Iteration)
PROGRESS_KEYS = ["Iteration", "updates", "episode_mean", "episode_min", "episode_max", "episode_std", "episodes",
                 "TotalSamples", "best_return", "time_train", "time_eval", "time_total"]


@dataclass(frozen=True)
class ActorCriticConfig:
    """What the learner needs: the agent and its typed config (bremen.algos.registry), and the schedule."""

    algorithm: str
    agent: Any
    """The agent (a frozen dataclass built by bremen.algos.registry.make_agent)."""
    steps: int
    """Updates per deployment (offline: in all)."""
    eval_every: int
    """Updates per chunk: the driver evaluates, logs and checkpoints after each."""
    batch_size: int
    """Minibatch size of every update."""
    steps_per_call: int = 1000
    """Updates per compiled call (the chunk is split into calls of at most this many)."""
    warm_start: bool = True
    """Recursive runs: continue from the previous deployment's state (else re-initialize every deployment)."""


class ActorCriticLearner:
    """Trains one agent on the data it is given (see the module docstring)."""

    phases = ("train",)
    chunk_phase = "train"
    progress_keys = PROGRESS_KEYS
    detail_log, detail_keys = "agent.csv", None  # agent.csv: Iteration and the agent's info keys, sorted
    eval_scalars = ("episode_mean", "best_return")
    tb_steps_per_chunk = 1

    def __init__(self, task, config: ActorCriticConfig, seed: int, say: Callable[[str], None] = print):
        self.task, self.config, self.seed, self.say = task, config, int(seed), say
        self.agent = config.agent
        path = getattr(self.agent.config, "behavior_ckpt_file", None)  # BRAC's π_b from a file: read (and
        self.behavior = (read_behavior_policy(path, self.agent.spec, getattr(task, "name", None))  # checked) once
                         if path else None)
        self.state = None
        self.model_val_loss = self.bc_loss = None
        self.last_info: dict = {}

    @property
    def chunks(self) -> int:
        c = self.config
        return -(-c.steps // c.eval_every)

    def _init_state(self, deployment: int):
        state = self.agent.init(jax.random.fold_in(jax.random.PRNGKey(self.seed), K_AGENT + deployment))
        if self.behavior is not None:  # BRAC's π_b from a file instead of the cloning phase
            state = self.agent.with_behavior(state, [{"w": w, "b": b} for w, b in self.behavior.layers])
        return state

    def fit(self, data, train, val, hooks, phase: str = "new", start: int = 0, deployment: int = 0,
            bc_data=None, end: Optional[int] = None) -> None:
        """Chunks ``start`` .. ``end`` (default: this deployment's last) on ``data``; ``start`` counts chunks
        over the whole run (a recursive run's deployment d holds chunks d·chunks .. (d+1)·chunks − 1)."""
        c = self.config
        first = deployment * self.chunks
        end = first + self.chunks if end is None else end
        if self.state is None or (phase == "new" and deployment > 0 and not c.warm_start):
            self.state = self._init_state(deployment if deployment > 0 and not c.warm_start else 0)
        elif phase == "new" and deployment > 0:
            # warm start: the networks carry over, the schedule restarts (BRAC re-clones its behavior policy on
            # the data so far, warm-ups run again)
            self.state = self.state._replace(step=jax.numpy.zeros_like(self.state.step))
        if phase == "new":
            start = first
        device_data = device_batch(data)

        def after(chunk, state, infos):
            self.state, self.last_info = state, mean_info(infos)
            return state, hooks.step("train", chunk, dict(self.last_info, updates=self.updates_after(chunk - first))) is False

        self.state = run_chunks(self.state, range(start, end), lambda chunk: self.calls(chunk - first),
                                lambda state, n: update_many(self.agent, state, device_data, n, c.batch_size), after)

    def report(self, chunk: int, info: dict, transitions=None) -> ChunkReport:
        """A chunk's logs: one agent.csv row (the updates' mean info), progress.csv's ``updates``."""
        return ChunkReport({"updates": info["updates"]}, [{"Iteration": chunk, **info}],
                           [(f"train/{k}", float(v), chunk) for k, v in info.items()])

    def sampling_noise(self, policy) -> str:
        """How the deployed policy samples (a recursive batch's metadata)."""
        return f"the {policy.kind} policy's own samples"

    def export_meta(self) -> dict:
        """What an exported policy's metadata adds about the learner (nothing beyond the driver's)."""
        return {}

    def summary(self, chunks: int) -> dict:
        return {"updates": self.config.steps}

    def calls(self, chunk: int) -> list[int]:
        """The updates of each compiled call of this deployment's chunk ``chunk``."""
        c = self.config
        todo = min(c.eval_every, c.steps - chunk * c.eval_every)
        return [min(c.steps_per_call, todo - i) for i in range(0, todo, c.steps_per_call)]

    def updates_after(self, chunk: int) -> int:
        """Updates done in this deployment after its chunk ``chunk``."""
        return min((chunk + 1) * self.config.eval_every, self.config.steps)

    def policy(self):
        fields, arrays = self.agent.export(self.state)
        return policy_from_export(fields, arrays, {"algorithm": self.config.algorithm})

    # ------------------------------------------------------------------ checkpoints
    def state_arrays(self, phase: str) -> dict:
        return pytree_to_arrays(self.state, "agent")

    def state_meta(self) -> dict:
        return {"agent_info": self.last_info}

    def restore(self, path: Path, data) -> dict:
        arrays, meta = load_checkpoint(Path(path) if not Path(path).is_dir() else Path(path) / CHECKPOINT_FILE)
        try:
            self.state = arrays_to_pytree(self._init_state(0), arrays, "agent")
        except (KeyError, ValueError) as e:
            raise UserError(f"--resume: {path} does not hold this {self.config.algorithm} agent's state ({e}); "
                            f"start over with --force")
        self.last_info = meta.get("agent_info", {})
        return meta


def run_chunks(state, chunks, calls: Callable, update: Callable, after_chunk: Callable):
    """The agents' training loop, for one seed (ActorCriticLearner.fit) or a vmapped stack (fit_seeds): for each
    chunk, the compiled calls of ``calls(chunk)`` updates each (``update(state, n)`` → (state, info)), then
    ``after_chunk(chunk, state, [(n, info), ...])`` → (state, stop). Returns the last state."""
    for chunk in chunks:
        infos = []
        for n in calls(chunk):
            state, info = update(state, n)
            infos.append((n, jax.device_get(wait(info))))
        state, stop = after_chunk(chunk, state, infos)
        if stop:
            break
    return state


def device_batch(data):
    """A dataset's transitions as one device-resident Batch, with the dataset's next actions where it has them
    (bremen.data.Dataset.next_actions: BRAC's a2, which the dual form's value penalty uses)."""
    next_act = data.next_actions()[0] if hasattr(data, "next_actions") else None
    return batch_from_arrays(data.observations, data.actions, data.rewards, data.next_observations, data.terminals,
                             next_act)


def mean_info(infos: list) -> dict:
    """The infos of several calls ``[(updates, info), ...]`` averaged with the updates as weights."""
    total = sum(n for n, _ in infos)
    return {k: float(sum(n * np.asarray(i[k]) for n, i in infos) / total) for k in infos[0][1]}


@partial(jax.jit, static_argnums=(0, 3, 4, 5))
def update_many_seeds(agent, states, data, n: int, batch_size: int, shared_data: bool):
    """:func:`update_many` of every seed at once: ``states`` stacked on a leading seed axis, ``data`` one
    dataset for all (``shared_data``) or stacked too. One XLA program for all seeds.

    The seeds run in lockstep, so their update counter ``step`` is passed unbatched (:func:`fit_seeds` keeps it
    equal): a schedule that branches on it (BRAC's cloning phase, BEAR's warm-up) then stays one branch under
    vmap instead of becoming a select that runs both branches for every seed."""
    axes = jax.tree.map(lambda _: 0, states)
    if hasattr(states, "step"):
        axes, states = axes._replace(step=None), states._replace(step=states.step[0])
    return jax.vmap(lambda s, d: update_many(agent, s, d, n, batch_size),
                    (axes, None if shared_data else 0))(states, data)


def fit_seeds(learners: Sequence[ActorCriticLearner], datasets: Sequence, hooks: Sequence, starts: Sequence[int]):
    """Train the learners of several seeds of one offline agent as one compiled program (``--vmap_seeds``).

    Every learner must hold the same agent and schedule; ``starts`` are the chunks each seed's run resumes at
    (all 0 for new runs). Chunks run from the earliest start for all seeds together; a seed whose checkpoint is
    ahead (a kill between two seeds' checkpoints) gets its restored state put back into the stack once the
    others reach it, and its hooks are only called from its own start on. Each seed's updates draw from its own
    key, so the results equal sequential runs' up to float rounding (the batched matmuls may sum differently).
    """
    first = learners[0]
    c, agent = first.config, first.agent
    if any(L.agent != agent or L.config != c for L in learners):
        raise ValueError("fit_seeds: the learners differ in more than their seed")
    for L in learners:
        if L.state is None:
            L.state = L._init_state(0)
    shared = all(d is datasets[0] for d in datasets)
    data = (device_batch(datasets[0]) if shared else
            jax.tree.map(lambda *x: jax.numpy.stack(x), *[device_batch(d) for d in datasets]))
    restored = [L.state for L in learners]
    stacked = jax.tree.map(lambda *x: jax.numpy.stack(x), *restored)
    lead = int(np.argmin(starts))  # a seed of the earliest start: its counter is the stack's until the others rejoin
    if hasattr(stacked, "step"):
        stacked = stacked._replace(step=jax.numpy.full_like(stacked.step, restored[lead].step))

    def after(chunk, stacked, infos):
        stop = False
        for i, (L, h) in enumerate(zip(learners, hooks)):
            if chunk + 1 == starts[i]:  # this seed's checkpoint was ahead: its own state joins the stack here
                if hasattr(stacked, "step") and int(restored[i].step) != int(stacked.step[lead]):
                    raise ValueError(f"fit_seeds: seed {i}'s checkpoint is at update {int(restored[i].step)}, the "
                                     f"other seeds at {int(stacked.step[lead])} after the same chunk")
                stacked = jax.tree.map(lambda s, r: s.at[i].set(r), stacked, restored[i])
            if chunk < starts[i]:
                continue
            L.state = jax.tree.map(lambda s: s[i], stacked)
            L.last_info = mean_info([(n, {k: v[i] for k, v in info.items()}) for n, info in infos])
            stop |= h.step("train", chunk, dict(L.last_info, updates=first.updates_after(chunk))) is False
        return stacked, stop

    run_chunks(stacked, range(min(starts), first.chunks), first.calls,
               lambda state, n: update_many_seeds(agent, state, data, n, c.batch_size, shared), after)


def spec_of(task) -> Spec:
    """The agent spec of a bremen task."""
    return Spec.of(task.obs_dim, task.act_dim, task.act_low, task.act_high)
