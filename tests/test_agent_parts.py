"""The shared pieces of the model-free agents: several samples per state with the state's work done once."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bremen.algos.agent import Spec, actor_init, actor_sample, q_apply, q_init, repeat_rows, vae_init, vae_sample
from bremen.models.nets import mlp_apply, mlp_apply_concat, mlp_init

SPEC = Spec.of(5, 2, -1.0, 1.0)
B, N = 7, 4


def arrays(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [jnp.asarray(rng.normal(size=s), jnp.float32) for s in shapes]


def test_split_first_layer_equals_the_mlp_of_the_concatenation_and_broadcasts():
    params = mlp_init(jax.random.PRNGKey(0), [5 + 2, 16, 16, 3])
    obs, act = arrays((B, 5), (N, B, 2))
    want = mlp_apply(params, jnp.concatenate([repeat_rows(obs, N), act], axis=-1))
    got = mlp_apply_concat(params, (obs, act))
    assert got.shape == (N, B, 3)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)
    one_layer = mlp_init(jax.random.PRNGKey(1), [7, 3])  # the first layer is also the last: no activation
    np.testing.assert_allclose(np.asarray(mlp_apply_concat(one_layer, (obs, act[0]))),
                               np.asarray(mlp_apply(one_layer, jnp.concatenate([obs, act[0]], -1))), rtol=1e-5)
    with pytest.raises(ValueError, match="the parts have 6 features, the first layer takes 7"):
        mlp_apply_concat(params, (obs[:, :4], act))


def test_n_samples_per_state_are_the_samples_of_the_repeated_states():
    obs, = arrays((B, 5))
    key = jax.random.PRNGKey(3)
    actor = actor_init(jax.random.PRNGKey(1), SPEC, (16, 16))
    shared = actor_sample(actor, obs, key, SPEC, noise_clip=0.5, n=N)
    repeated = actor_sample(actor, repeat_rows(obs, N), key, SPEC, noise_clip=0.5)
    for got, want in zip(shared, repeated):  # action, log-probability, pre-squash sample
        assert got.shape == want.shape
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)
    vae = vae_init(jax.random.PRNGKey(2), SPEC, (16, 16), 4)
    for got, want in zip(vae_sample(vae, obs, key, SPEC, 4, n=N), vae_sample(vae, repeat_rows(obs, N), key, SPEC, 4)):
        assert got.shape == (N, B, 2)
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)
    q = q_init(jax.random.PRNGKey(4), SPEC, (16, 16), 3)
    np.testing.assert_allclose(np.asarray(q_apply(q, obs, shared[0])),
                               np.asarray(q_apply(q, repeat_rows(obs, N), shared[0])), rtol=1e-5, atol=1e-6)
