"""Each beat minus its record's running template: a causal, per-patient waveform normalisation.

A network trained on the raw beats of the DS1 patients learns what those
patients' normal beats look like, and that does not carry over to new
patients (the inter-patient benchmark, ``ecgjax.interpatient``). What does
carry over is how a beat *differs* from the same patient's usual beat, the
idea behind de Chazal et al.'s (2004) per-record feature normalisation. Here
the usual beat is the mean of the record's ``k`` preceding beats (in file
order; past beats only, so a test beat's input is known when it arrives), and
the model sees ``x - template``, zero outside the beat's valid samples. The
first beat of a record has no past: its template is itself (input 0).

Pure numpy, vectorised per record (a cumulative sum), no loop over beats.
"""

from __future__ import annotations

import dataclasses

import numpy as np


def running_template(x: np.ndarray, record: np.ndarray, k: int) -> np.ndarray:
    """The mean of each beat's ``k`` preceding beats of the same record.

    Args:
      x: f[N, T, L] beats, each record's beats in file order (records may
        interleave; order within a record is what counts).
      record: [N] record names.
      k: preceding beats averaged (>= 1).

    Returns:
      f32[N, T, L]: ``mean(x[j] for the up-to-k beats j of the record before i)``,
      and ``x[i]`` for a record's first beat.
    """
    if k < 1:
        raise ValueError(f"running_template: k must be >= 1, got {k}")
    x = np.asarray(x)
    out = np.empty(x.shape, np.float32)
    for r in np.unique(record):  # one vectorised pass per record
        i = np.flatnonzero(record == r)
        xr = x[i].astype(np.float64)
        c = np.concatenate([np.zeros((1, *xr.shape[1:])), np.cumsum(xr, axis=0)])
        j = np.arange(len(i))
        start = np.maximum(j - k, 0)
        n = (j - start).astype(np.float64)
        mean = (c[j] - c[start]) / np.maximum(n, 1.0)[:, None, None]
        out[i] = np.where((n > 0)[:, None, None], mean, xr)
    return out


def subtract_template(beats, k: int):
    """The beats minus their running template (``running_template``), zero outside the valid samples.

    Args:
      beats: a ``BeatSet`` with x f32[N, T, L] (the whole of each record it
        holds: the template is read from the beats present).
      k: preceding beats averaged.

    Returns:
      A ``BeatSet`` with x f32[N, T, L] = (x - template) * valid; everything else unchanged.
    """
    diff = (beats.x - running_template(beats.x, beats.record, k)) * beats.valid[..., None]
    return dataclasses.replace(beats, x=diff.astype(beats.x.dtype))
