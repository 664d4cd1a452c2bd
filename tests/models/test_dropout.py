"""The models' Dropout draws jax's own masks (bit for bit) in a fused pass, and is nnx.Dropout in every other respect."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from ecgjax.models.layers import Dropout, bernoulli_mask, fused_bernoulli_applies


@pytest.mark.parametrize("shape,p", [((7, 33, 5), 0.8), ((3,), 0.5), ((64, 100), 0.123456), ((2, 9), 0.75),
                                     ((40, 40), 1e-6), ((40, 40), 1 - 1e-7), ((1000,), 0.2)])
def test_bernoulli_mask_is_jax_bernoulli_bit_for_bit(shape, p):
    for seed in range(3):
        key = jax.random.fold_in(jax.random.key(seed), 17)
        assert fused_bernoulli_applies(key, shape) == (jax.default_backend() == "cpu")
        want = jax.jit(lambda k: jax.random.bernoulli(k, p, shape))(key)
        got = jax.jit(lambda k: bernoulli_mask(k, p, shape))(key)
        np.testing.assert_array_equal(got, want)


def test_bernoulli_mask_frequency():
    m = bernoulli_mask(jax.random.key(0), 0.8, (200_000,))
    assert abs(float(m.mean()) - 0.8) < 0.005  # 4.5 standard errors


def test_dropout_is_nnx_dropout():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(16, 30, 4)), jnp.float32)
    ours, theirs = Dropout(0.3, rngs=nnx.Rngs(5)), nnx.Dropout(0.3, rngs=nnx.Rngs(5))
    step = nnx.jit(lambda m, x: m(x))
    for _ in range(3):  # each call draws the next key of the stream, in both
        a, b = step(ours, x), step(theirs, x)
        np.testing.assert_array_equal(a, b)
        assert 0.2 < float((a == 0).mean()) < 0.4
    np.testing.assert_array_equal(ours(x, rngs=jax.random.key(9)), theirs(x, rngs=jax.random.key(9)))  # a key passed in
    ours.eval()
    np.testing.assert_array_equal(ours(x), x)  # eval mode: identity
    assert isinstance(ours, nnx.Dropout)
