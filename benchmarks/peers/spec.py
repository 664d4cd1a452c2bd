"""The peer benchmark's models, weights and inputs, numpy only (shared by every framework).

Adapted from the project's peer study (the scripts behind docs/reference/performance.md):
the same architecture spec, the same seeded weights (Keras layout: conv kernels
``(k, c_in, c_out)``, LSTM gates i, f, c, o) and the same seeded inputs, so
that TensorFlow, PyTorch and ecgjax compute the same function. Run by the peer
scripts in this folder inside their own virtual environments, and imported by
``benchmarks/cpu_vs_peers.py`` to load the same weights into ecgjax.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import numpy as np

SEQ_LEN = 860  # two leads of 430 samples, concatenated
N_CLASSES = 8
KERNEL = 16
CONV0_FILTERS = 64
BLOCK_FILTERS = (128, 196, 256, 320)
DOWNSAMPLE = 4
DROPOUT = 0.2
BN_EPS = 1e-3
LSTM_UNITS = 64
LSTM_DENSE = 32
JONES_BLOCK_FILTERS = (64, 64, 128, 128)
LRELU = 0.3  # Keras LeakyReLU default


def same_out(n: int, stride: int) -> int:
    return -(-n // stride)


def same_pads(n: int, k: int, stride: int) -> tuple[int, int]:
    """(left, right) zero padding of TF 'SAME' (the extra sample goes right)."""
    total = max((same_out(n, stride) - 1) * stride + k - n, 0)
    return total // 2, total - total // 2


def block_lengths():
    """[(n_in, n_out, c_in, c_out)] of the ribeiro residual units."""
    out, n, c = [], SEQ_LEN, CONV0_FILTERS
    for f in BLOCK_FILTERS:
        m = same_out(n, DOWNSAMPLE)
        out.append((n, m, c, f))
        n, c = m, f
    return out


FLAT_DIM = block_lengths()[-1][1] * BLOCK_FILTERS[-1]  # 4 x 320


def make_cnn_weights(seed: int = 0) -> dict:
    """Ribeiro CNN weights, Keras layout; BN statistics random (not identity) so a cross-check means something."""
    rng = np.random.default_rng(seed)

    def he(shape, fan_in):
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    def bn(c, affine=True):
        d = {"mean": (0.1 * rng.standard_normal(c)).astype(np.float32), "var": rng.uniform(0.5, 1.5, c).astype(np.float32)}
        if affine:
            d["gamma"] = (1.0 + 0.1 * rng.standard_normal(c)).astype(np.float32)
            d["beta"] = (0.1 * rng.standard_normal(c)).astype(np.float32)
        return d

    w = {"conv0": he((KERNEL, 1, CONV0_FILTERS), KERNEL), "bn0": bn(CONV0_FILTERS), "blocks": []}
    for (_n, _m, ci, co) in block_lengths():
        w["blocks"].append({"conv1": he((KERNEL, ci, co), KERNEL * ci), "bn1": bn(co), "conv2": he((KERNEL, co, co), KERNEL * co),
                            "skip": he((1, ci, co), ci), "bn2": bn(co, affine=False)})
    w["dense_w"] = he((FLAT_DIM, N_CLASSES), FLAT_DIM)
    w["dense_b"] = (0.01 * rng.standard_normal(N_CLASSES)).astype(np.float32)
    return w


def make_lstm_weights(seed: int = 1) -> dict:
    """LSTM(64) weights, Keras layout: kernel (1, 4u), recurrent (u, 4u), bias (4u)."""
    rng = np.random.default_rng(seed)
    u = LSTM_UNITS
    return {
        "kernel": (rng.standard_normal((1, 4 * u)) * 0.5).astype(np.float32),
        "recurrent": (rng.standard_normal((u, 4 * u)) / np.sqrt(u)).astype(np.float32),
        "bias": (0.1 * rng.standard_normal(4 * u)).astype(np.float32),
        "d1_w": (rng.standard_normal((u, LSTM_DENSE)) * np.sqrt(2 / u)).astype(np.float32),
        "d1_b": np.zeros(LSTM_DENSE, np.float32),
        "d2_w": (rng.standard_normal((LSTM_DENSE, N_CLASSES)) * np.sqrt(2 / LSTM_DENSE)).astype(np.float32),
        "d2_b": np.zeros(N_CLASSES, np.float32),
    }


def make_beats(n: int, seed: int = 123):
    """Random beats f32[n, 860, 1] (channel-last) and target classes i32[n]."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, SEQ_LEN, 1)).astype(np.float32), rng.integers(0, N_CLASSES, n).astype(np.int32)


CHECK_BEATS = dict(n=4, seed=7)  # the fixed beats whose logits every framework reports


def time_calls(fn, repeats: int, warmup: int) -> tuple[list[float], float]:
    """(seconds of each of ``repeats`` timed calls, seconds of the first warm-up call); fn blocks."""
    first = None
    for i in range(max(warmup, 1)):
        t0 = time.perf_counter()
        fn()
        if i == 0:
            first = time.perf_counter() - t0
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out, first


def emit(**row) -> None:
    """One result as a JSON line on stdout (what cpu_vs_peers.py reads)."""
    if "seconds" in row:
        rates = [row["batch"] / s for s in row["seconds"]]
        row.update(beats_per_s=statistics.median(rates), beats_per_s_min=min(rates), beats_per_s_max=max(rates))
    print(json.dumps(row), flush=True)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
