"""Losses against hand formulas written in numpy.

Each loss runs compiled (``jax.jit``), as training runs it: op by op, XLA:CPU would compile every primitive on its own.
"""

import jax
import numpy as np
import pytest

from ecgjax.train import losses


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


LOGITS = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0], [-2.0, 4.0, 0.0], [0.0, 0.0, 0.0]], np.float32)
LABELS = np.array([0, 1, 1, 2], np.int32)


def test_cross_entropy_matches_hand_formula():
    p = _softmax(LOGITS.astype(np.float64))
    want = -np.log(p[np.arange(4), LABELS])
    np.testing.assert_allclose(jax.jit(losses.cross_entropy)(LOGITS, LABELS), want, rtol=1e-5)


@pytest.mark.parametrize("gamma,alpha", [(2.0, 1.0), (0.5, 0.25), (0.0, 1.0)])
def test_focal_matches_keras_snippet_formula(gamma, alpha):
    # Jones et al.'s Keras focal loss: alpha * (1 - p_t)^gamma * -log(p_t + 1e-9), one-hot masked, max over classes
    p = _softmax(LOGITS.astype(np.float64))
    onehot = np.eye(3)[LABELS]
    per_class = onehot * alpha * (1 - p) ** gamma * -np.log(p + 1e-9)
    want = per_class.max(-1)
    got = jax.jit(lambda lg, lb: losses.focal(lg, lb, gamma=gamma, alpha=alpha))(LOGITS, LABELS)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_focal_gamma0_is_cross_entropy_and_downweights_easy_examples():
    focal0, ce, focal2 = jax.jit(lambda lg, lb: (losses.focal(lg, lb, gamma=0.0, alpha=1.0), losses.cross_entropy(lg, lb),
                                                 losses.focal(lg, lb, gamma=2.0)))(LOGITS, LABELS)
    np.testing.assert_allclose(focal0, ce, rtol=1e-5)
    ratio = np.asarray(focal2) / np.asarray(ce)
    p_t = _softmax(LOGITS.astype(np.float64))[np.arange(4), LABELS]
    np.testing.assert_allclose(ratio, (1 - p_t) ** 2, rtol=1e-5)
    assert ratio[2] < ratio[1]  # the confident correct example is down-weighted most


def test_masked_mean_ignores_padding():
    v = np.array([1.0, 2.0, 3.0, 100.0], np.float32)
    masked_mean = jax.jit(losses.masked_mean)
    assert float(masked_mean(v, np.array([1.0, 1.0, 1.0, 0.0], np.float32))) == pytest.approx(2.0)
    assert float(masked_mean(v, np.zeros(4, np.float32))) == 0.0
    with pytest.raises(ValueError):
        losses.get("hinge")


def test_class_weights_closed_form():
    labels = np.array([0] * 80 + [1] * 16 + [2] * 4)
    np.testing.assert_allclose(losses.class_weights(labels, 4, 0.0), [1, 1, 1, 0])
    w = losses.class_weights(labels, 4, 1.0)
    # balanced: every present class carries the same total weight, an absent class 0, mean over beats 1
    totals = w[:3] * np.array([80, 16, 4])
    np.testing.assert_allclose(totals, totals[0], rtol=1e-6)
    assert w[3] == 0
    np.testing.assert_allclose(w[labels].mean(), 1.0, rtol=1e-6)
    # power 0.5: the square root of the balanced ratios, rescaled to mean 1
    h = losses.class_weights(labels, 4, 0.5)
    np.testing.assert_allclose(h[:3] / h[0], np.sqrt(w[:3] / w[0]), rtol=1e-6)
    np.testing.assert_allclose(h[labels].mean(), 1.0, rtol=1e-6)


def test_weighted_loss_is_each_example_times_its_class_weight():
    logits = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0], [0.0, -1.0, 3.0]], np.float32)
    labels = np.array([0, 1, 2], np.int32)
    w = np.array([0.5, 2.0, 4.0], np.float32)
    for name in ("ce", "focal"):
        plain, weighted = jax.jit(lambda lg, lb: (losses.get(name)(lg, lb), losses.get(name, weights=w)(lg, lb)))(logits, labels)
        np.testing.assert_allclose(np.asarray(weighted), np.asarray(plain) * w, rtol=1e-6)
