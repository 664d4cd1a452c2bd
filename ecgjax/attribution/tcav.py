"""Concept explanations: TCAV (Kim et al. 2018) at a named layer of the model contract.

A *concept* is a set of example beats (e.g. beats with a wide QRS); its
activation vector (CAV) is the normal of a linear classifier (scikit-learn's
logistic regression) separating the concept's activations at a named layer
(``ModelInfo.layers``) from those of a random set of beats. The TCAV score of
a class is the share of that class's beats whose target logit increases along
the CAV: ``mean_x [grad_A z_k(x) . v > 0]``, the gradient taken at the layer
with ``ecgjax.attribution.layer.logits_and_layer_grad``.

A score means something only against chance: CAVs are trained against several
random sets, and the same is done for a random set posing as the concept; a
two-sided t-test compares the two groups of scores (Kim et al. Sec. 3.2). A
concept is significant for a class when p < ``alpha`` / (number of tests).

Concept example sets for ECG beats (:func:`beat_concepts`): wide QRS and absent
P wave from the delineation (``ecgjax.data.delineation``), premature beat from
the RR interval before the beat against the record's median.

References: Kim, Wattenberg, Gilmer, Cai, Wexler, Viegas & Sayres 2018,
"Interpretability beyond feature attribution: quantitative testing with concept
activation vectors (TCAV)" (ICML).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import numpy as np

from ecgjax.attribution.runner import model_parts
from ecgjax.batched import map_batches


@functools.partial(jax.jit, static_argnums=(0, 1))
def _act_grad(make, layer, params, x, target):
    """(A, dz_target/dA) at ``layer``, both flattened to f32[B, T' F]."""
    from ecgjax.attribution.layer import logits_and_layer_grad

    a, g = logits_and_layer_grad(make(params), layer, x, target)
    return a.reshape(a.shape[0], -1), g.reshape(g.shape[0], -1)


def activations_and_gradients(model: Any, layer: str, x: np.ndarray, target: np.ndarray, *, batch_size: int = 256,
                              memory_budget: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Layer activations and the target logit's gradient there: f32[N, D] each (D = T' F), batched.

    Args:
      model: ``(graphdef, state)`` or ``(make_fns, params)``; layer: a name of ``ModelInfo.layers``.
      x: f32[N, T, L]; target: i32[N].
    """
    make, params = model_parts(model)
    return map_batches(_act_grad, (params,), (np.asarray(x, np.float32), np.asarray(target, np.int32)), static=(make, layer),
                       batch_size=batch_size, memory_budget=memory_budget, desc=f"activations at {layer}").outputs


def concept_vector(concept: np.ndarray, random: np.ndarray, *, seed: int = 0) -> tuple[np.ndarray, float]:
    """The CAV: unit normal f64[D] of a logistic regression separating ``concept`` f[n, D] (positive) from
    ``random`` f[m, D], and its accuracy on a held-out third of each set."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    X = np.concatenate([concept, random]).astype(np.float64)
    y = np.r_[np.ones(len(concept)), np.zeros(len(random))]
    test = np.zeros(len(X), bool)
    for lab in (0, 1):
        rows = np.flatnonzero(y == lab)
        test[rng.choice(rows, size=max(1, len(rows) // 3), replace=False)] = True
    mu, sd = X[~test].mean(0), X[~test].std(0) + 1e-8
    clf = LogisticRegression(max_iter=2000).fit((X[~test] - mu) / sd, y[~test])
    acc = float(clf.score((X[test] - mu) / sd, y[test]))
    v = clf.coef_[0] / sd  # the direction in the original activation space
    return v / (np.linalg.norm(v) + 1e-30), acc


def tcav_score(grads: np.ndarray, v: np.ndarray) -> float:
    """Share of rows of ``grads`` f[n, D] with a positive directional derivative along ``v`` f[D]."""
    return float(np.mean(np.asarray(grads, np.float64) @ v > 0))


@dataclasses.dataclass(frozen=True)
class TcavResult:
    """One concept, one class, one layer.

    Attributes:
      concept, cls, layer: what was tested.
      scores: f64[R] TCAV scores of the concept's CAVs (one per random set).
      random_scores: f64[R] TCAV scores of random-vs-random CAVs (the null).
      cav_accuracy: f64[R] held-out accuracy of the concept's CAVs.
      p_value: two-sided Welch t-test of ``scores`` against ``random_scores``.
      n_concept, n_class: beats in the concept set and of the class.
    """

    concept: str
    cls: str
    layer: str
    scores: np.ndarray
    random_scores: np.ndarray
    cav_accuracy: np.ndarray
    p_value: float
    n_concept: int
    n_class: int

    def summary(self) -> dict:
        return {"concept": self.concept, "class": self.cls, "layer": self.layer, "score_mean": float(np.mean(self.scores)),
                "score_sd": float(np.std(self.scores)), "random_mean": float(np.mean(self.random_scores)),
                "cav_accuracy": float(np.mean(self.cav_accuracy)), "p_value": self.p_value,
                "n_concept": self.n_concept, "n_class": self.n_class, "n_random_sets": int(len(self.scores))}


def _t_test(a: np.ndarray, b: np.ndarray) -> float:
    import warnings

    from scipy.stats import ttest_ind

    if np.std(a) == 0 and np.std(b) == 0:
        return 1.0 if np.mean(a) == np.mean(b) else 0.0
    with warnings.catch_warnings():  # one constant group (all scores 1) is a valid Welch test; scipy warns about it
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(ttest_ind(a, b, equal_var=False).pvalue)


def tcav(concept_acts: np.ndarray, random_pool: np.ndarray, class_grads: np.ndarray, *, n_random: int = 10, set_size: int | None = None,
         seed: int = 0, concept: str = "concept", cls: str = "class", layer: str = "") -> TcavResult:
    """TCAV of one concept for one class, tested against random concepts.

    Args:
      concept_acts: f[n, D] layer activations of the concept's example beats.
      random_pool: f[m, D] activations of beats random sets are drawn from (without replacement, ``set_size``
        each, default ``n``); needs ``m >= 2 set_size``.
      class_grads: f[k, D] the class logit's gradients at the layer, one row per beat of the class.
      n_random: random sets (CAVs per group).
      seed: draws of the random sets and the CAVs' held-out parts.
    Returns:
      :class:`TcavResult`.
    """
    concept_acts, random_pool = np.asarray(concept_acts), np.asarray(random_pool)
    n = set_size or len(concept_acts)
    if len(random_pool) < 2 * n:
        raise ValueError(f"TCAV needs at least {2 * n} random beats (2 x the set size), got {len(random_pool)}")
    if n_random < 2:
        raise ValueError(f"TCAV needs at least 2 random sets for its test, got {n_random}")
    rng = np.random.default_rng(seed)
    scores, null, acc = [], [], []
    for i in range(n_random):
        pick = rng.permutation(len(random_pool))
        r1, r2 = random_pool[pick[:n]], random_pool[pick[n : 2 * n]]
        c = concept_acts if set_size is None else concept_acts[rng.choice(len(concept_acts), n, replace=False)]
        v, a = concept_vector(c, r1, seed=seed + i)
        scores.append(tcav_score(class_grads, v))
        acc.append(a)
        null.append(tcav_score(class_grads, concept_vector(r2, r1, seed=seed + i)[0]))
    scores, null = np.array(scores), np.array(null)
    return TcavResult(concept, cls, layer, scores, null, np.array(acc), _t_test(scores, null), len(concept_acts), len(class_grads))


def beat_concepts(beats, idx: np.ndarray, waves=None, *, wide_qrs_s: float = 0.12, premature_ratio: float = 0.85) -> dict[str, np.ndarray]:
    """Example beats of each concept among ``idx`` (i64[M] positions in ``beats``): {concept: i64[K]}.

    * ``wide_qrs``: QRS (``waves``, quality beats only) longer than ``wide_qrs_s``.
    * ``absent_p``: P onset and offset not found, on beats whose delineation passed its quality flag (QRS and T
      found and plausible; the flag allows an absent P).
    * ``premature``: the RR interval before the beat below ``premature_ratio`` x its record's median.

    Args:
      beats: the ``BeatSet``; waves: ``ecgjax.data.delineation.Waves`` of ``beats.subset(idx)`` (None: the
        delineation concepts are left out).
    """
    idx = np.asarray(idx)
    out = {}
    if waves is not None:
        from ecgjax.data.delineation import BOUNDS

        b = np.asarray(waves.bounds, np.float64)
        qrs = waves.durations(beats.fs)[:, 2]
        out["wide_qrs"] = idx[np.asarray(waves.quality) & (qrs > wide_qrs_s)]
        p = [BOUNDS.index("P_on"), BOUNDS.index("P_off")]
        out["absent_p"] = idx[np.asarray(waves.quality) & np.isnan(b[:, p]).all(1)]
    rr = np.asarray(beats.rr_prev, np.float64)
    rec = np.asarray(beats.record)
    med = {r: np.median(rr[rec == r][rr[rec == r] > 0]) if (rr[rec == r] > 0).any() else np.nan for r in np.unique(rec[idx])}
    ratio = np.array([rr[i] / med[rec[i]] if rr[i] > 0 else np.nan for i in idx])
    out["premature"] = idx[np.nan_to_num(ratio, nan=np.inf) < premature_ratio]
    return out
