"""Where a trained jones2020_lstm looks and how long it remembers, from its weights and activations.

On a seeded sample of validation beats (default 256) of a finished or
checkpointed run, prints one JSON object:

* ``forget_gate_mean`` and ``memory_steps_median`` / ``memory_s_median``: the
  forget gate's mean over units, steps and beats, and the median of
  1 / (1 - f), the time constant over which a unit's cell state decays, in
  recurrent steps and in seconds;
* ``grad_share_near_r`` and ``grad_share_last_0.2s``: the share of
  |d logit_pred / d x| (summed over leads) within 0.1 s of the beat's R peak
  and in the last 0.2 s of its real signal (the window up to ``hi``; the
  padding after it is left out), mean over beats.

Command (the corrected recipe's diagnosis in docs/results.md)::

    python experiments/lstm_diagnose.py runs/lstm_corrected_s0
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the ecgjax next to this file

import numpy as np  # noqa: E402


def diagnose(workdir: str, n: int = 256, seed: int = 0) -> dict:
    import jax
    import jax.numpy as jnp

    from ecgjax import models
    from ecgjax.train import load_run

    run = load_run(workdir)
    m = models.eval_view(run.model)
    if run.config.model.name != "jones2020_lstm":
        raise SystemExit(f"{workdir}: a {run.config.model.name} run; this diagnosis reads jones2020_lstm's gates")
    b = run.beats
    idx = np.sort(np.random.default_rng(seed).permutation(run.split.val)[:n])
    x = jnp.asarray(b.x[idx])
    # gates along the sequence: the LSTM's inputs and the hidden state before each step
    seq = m._sequence(x)
    hs = m.features(x)
    h_prev = jnp.concatenate([jnp.zeros_like(hs[:, :1]), hs[:, :-1]], axis=1)
    w_in, w_rec, bias = m.lstm.w_in[...], m.lstm.w_rec[...], m.lstm.bias[...]
    f_gate = np.asarray(jax.nn.sigmoid(jnp.split(seq @ w_in + h_prev @ w_rec + bias, 4, axis=-1)[1]), np.float64)
    tau = 1.0 / np.maximum(1.0 - f_gate, 1e-12)
    step_s = m.info().step_s("lstm")
    # input gradient of the predicted class's logit
    graphdef, state = models.eval_split(run.model)
    fn = models.pure_fns(graphdef, state).logit_fn
    pred = jnp.argmax(fn(x), -1)
    g = jax.grad(lambda v: jnp.take_along_axis(fn(v), pred[:, None], 1).sum())(x)
    g = np.abs(np.asarray(g, np.float64)).sum(-1)  # [B, T]
    near_r, last = [], []
    w = int(round(0.1 * b.fs))
    for i, k in enumerate(idx):
        lo, hi, r = int(b.lo[k]), int(b.hi[k]), int(b.r[k])
        total = g[i, lo:hi].sum()
        near_r.append(g[i, max(lo, r - w) : min(hi, r + w)].sum() / total)
        last.append(g[i, max(lo, hi - 2 * w) : hi].sum() / total)
    return {"run": str(workdir), "beats": int(len(idx)), "model_kwargs": run.config.model.kwargs,
            "forget_gate_mean": float(f_gate.mean()), "memory_steps_median": float(np.median(tau)),
            "memory_s_median": float(np.median(tau) * step_s), "step_s": step_s,
            "grad_share_near_r": float(np.mean(near_r)), "grad_share_last_0.2s": float(np.mean(last)),
            "val_accuracy_of_sample": float(np.mean(np.asarray(pred) == b.y[idx]))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("workdir")
    p.add_argument("--beats", type=int, default=256)
    args = p.parse_args(argv)
    from ecgjax.cli import run_guarded

    return run_guarded(lambda a: print(json.dumps(diagnose(a.workdir, a.beats), indent=1)), args, prog="lstm_diagnose")


if __name__ == "__main__":
    raise SystemExit(main())
