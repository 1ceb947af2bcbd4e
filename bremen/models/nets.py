"""Plain-JAX multilayer perceptrons.

Parameters are pytrees (a list of ``{"w": [in, out], "b": [out]}`` dicts), so an ensemble is the same
pytree with a leading member axis (build it with ``jax.vmap(mlp_init)`` over keys) and every update is a
pure function. Layers compute ``x @ w + b``.
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp

Params = list  # list of {"w": Array[in, out], "b": Array[out]}

ACTIVATIONS: dict[str, Callable] = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "swish": jax.nn.swish,
    "selu": jax.nn.selu,
}


def dense_init(key, n_in: int, n_out: int, kind: str = "glorot", scale: float = 1.0) -> dict:
    """One dense layer.

    kind="glorot": Glorot-uniform kernel (TensorFlow/Keras default), times ``scale``.
    kind="normc": standard-normal kernel whose every output column is rescaled to L2 norm ``scale``
    (the "normc" initializer of the original policy networks).
    Biases start at zero.
    """
    if kind == "glorot":
        limit = scale * jnp.sqrt(6.0 / (n_in + n_out))
        w = jax.random.uniform(key, (n_in, n_out), jnp.float32, -limit, limit)
    elif kind == "normc":
        w = jax.random.normal(key, (n_in, n_out), jnp.float32)
        w = w * (scale / jnp.sqrt(jnp.sum(w**2, axis=0, keepdims=True)))
    else:
        raise ValueError(f"unknown initializer {kind!r}")
    return {"w": w, "b": jnp.zeros((n_out,), jnp.float32)}


def mlp_init(key, sizes: Sequence[int], kind: str = "glorot", out_scale: float = 1.0) -> Params:
    """An MLP with layer sizes ``sizes = [in, h1, ..., out]``; ``out_scale`` scales the last layer."""
    keys = jax.random.split(key, len(sizes) - 1)
    n = len(sizes) - 1
    return [
        dense_init(k, a, b, kind, out_scale if i == n - 1 else 1.0)
        for i, (k, a, b) in enumerate(zip(keys, sizes[:-1], sizes[1:]))
    ]


def mlp_apply(params: Params, x, activation: str | Callable = "relu", out_activation: Callable | None = None):
    """Apply an MLP: hidden layers use ``activation``, the last layer is linear unless ``out_activation``."""
    return _layers(params, x @ params[0]["w"] + params[0]["b"], activation, out_activation)


def mlp_apply_concat(params: Params, parts: Sequence, activation: str | Callable = "relu",
                     out_activation: Callable | None = None):
    """``mlp_apply(params, concatenate(parts, -1))`` without the concatenation: the first layer is split into
    one row block per part, x_1 @ W_1 + x_2 @ W_2 + b, so the parts may broadcast against each other (a state
    [B, d] against n actions [n, B, a]) and the state's block is computed once, not once per action."""
    rows, offset = [], 0
    for x in parts:
        rows.append(x @ params[0]["w"][offset:offset + x.shape[-1]])
        offset += x.shape[-1]
    if offset != params[0]["w"].shape[0]:
        raise ValueError(f"mlp_apply_concat: the parts have {offset} features, the first layer takes "
                         f"{params[0]['w'].shape[0]}")
    return _layers(params, sum(rows[1:], rows[0]) + params[0]["b"], activation, out_activation)


def _layers(params: Params, first, activation, out_activation):
    """The MLP from the first layer's pre-activation ``first`` on."""
    act = ACTIVATIONS[activation] if isinstance(activation, str) else activation
    x = first
    for layer in params[1:]:
        x = act(x) @ layer["w"] + layer["b"]
    return x if out_activation is None else out_activation(x)
