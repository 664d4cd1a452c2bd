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

Two references (``REFERENCES``): ``mean``, all k preceding beats; ``sinus``,
the ``SINUS_BEATS`` of them that followed the longest RR intervals. Where
ectopic beats dominate a record (DS2's 232: most beats are premature atrial
beats, its sinus beats follow long pauses) the mean template is an ectopic
beat and an ectopic beat's input is near zero; the beats after the longest
intervals are the least premature ones, so their mean stays a sinus beat.

The same preceding beats also say whether the atria beat in step with the ventricles: ``atrial_lock``, the
share of the P window's energy that is locked to R over them (a P wave: near 1; the f waves of atrial
fibrillation: near 1/k). The template subtraction removes exactly that context from the leads, so a model
that should tell a premature atrial beat from an early beat of atrial fibrillation gets it as a feature
(``DataConfig.atrial_lock_beats``).

Pure numpy, vectorised per record (``mean``: a cumulative sum; ``sinus``: a sort of each beat's k
preceding intervals), no loop over beats.
"""

from __future__ import annotations

import dataclasses

import numpy as np

REFERENCES = ("mean", "sinus")
# The ``sinus`` template: the mean of this many of the k preceding beats, those after the longest RR intervals.
SINUS_BEATS = 8
# ``atrial_lock``'s P window, seconds relative to R: after the window's usual start (0.25 s before R) and before the QRS.
P_WINDOW = (-0.25, -0.07)


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


def sinus_template(x: np.ndarray, record: np.ndarray, pre: np.ndarray, k: int, m: int = SINUS_BEATS) -> np.ndarray:
    """The mean of the ``m`` beats, among each beat's ``k`` preceding beats of its record, with the longest ``pre``.

    Args:
      x: f[N, T, L] beats, each record's beats in file order.
      record: [N] record names.
      pre: f[N] each beat's preceding RR interval (any unit; ties: the most recent beat first).
      k: preceding beats considered (>= 1).
      m: of those, how many are averaged (1 <= m; all of them when fewer precede).

    Returns:
      f32[N, T, L]; ``x[i]`` for a record's first beat. With ``m >= k`` it equals ``running_template``.
    """
    if k < 1 or m < 1:
        raise ValueError(f"sinus_template: k and m must be >= 1, got k={k}, m={m}")
    x, pre = np.asarray(x), np.asarray(pre, np.float64)
    out = np.empty(x.shape, np.float32)
    m = min(m, k)
    for r in np.unique(record):  # one vectorised pass per record
        i = np.flatnonzero(record == r)
        n = len(i)
        xr = x[i].astype(np.float64)
        # past[j, q]: the pre-RR of beat j - 1 - q (q = 0: the beat just before), -inf before the record's start
        padded = np.concatenate([np.full(k, -np.inf), pre[i]])
        past = np.lib.stride_tricks.sliding_window_view(padded, k)[:n, ::-1]
        q = np.argsort(-past, axis=1, kind="stable")[:, :m]  # longest first; ties: the most recent
        ok = np.take_along_axis(past, q, 1) > -np.inf
        j = np.maximum(np.arange(n)[:, None] - 1 - q, 0)
        cnt = ok.sum(1)
        mean = (xr[j] * ok[:, :, None, None]).sum(1) / np.maximum(cnt, 1)[:, None, None]
        out[i] = np.where((cnt > 0)[:, None, None], mean, xr)
    return out


def atrial_lock(x: np.ndarray, record: np.ndarray, r: int, fs: float, k: int, *, lead: int = 0,
                window: tuple[float, float] = P_WINDOW) -> np.ndarray:
    """How much of the atrial activity before each beat's R peak is locked to it: a P wave, or fibrillation.

    In each of the ``k`` beats before beat i (its record's; past only), the P window ``window`` (seconds
    relative to R) of lead ``lead``, with its mean and linear trend removed (baseline), is a vector p_j. The
    phase-locked ratio is ``|mean_j p_j|^2 / mean_j |p_j|^2``: 1 when the k windows are equal (a P wave at a
    fixed PR interval), about 1/k when they are independent (the f waves of atrial fibrillation are not locked
    to the ventricular beat), 0 when they cancel. A record's first beat has no past: 1 (no evidence of
    fibrillation).

    Args:
      x: f[N, T, >= lead + 1] beats (the leads before any template subtraction), each record's in file order.
      record: [N] record names.
      r: the R peak's sample in every window (one for all beats, as the protocols' fixed windows have it).
      fs: sampling rate (Hz).
      k: preceding beats (>= 1).
      lead: the lead read.
      window: (start, end) seconds relative to R; start is clipped to the window's first sample.

    Returns:
      f32[N] in [0, 1].
    """
    if k < 1:
        raise ValueError(f"atrial_lock: k must be >= 1, got {k}")
    lo, hi = max(int(round(r + window[0] * fs)), 0), int(round(r + window[1] * fs))
    if hi - lo < 3:
        raise ValueError(f"atrial_lock: the window {window} s before R at sample {r} ({fs} Hz) holds {max(hi - lo, 0)} samples")
    p = np.asarray(x)[:, lo:hi, lead].astype(np.float64)
    t = np.arange(hi - lo) - (hi - lo - 1) / 2
    p = p - p.mean(1, keepdims=True)
    p = p - ((p * t).sum(1) / (t**2).sum())[:, None] * t  # least-squares line removed
    energy = (p**2).sum(1)
    out = np.ones(len(p), np.float32)
    for rec in np.unique(record):  # one vectorised pass per record (cumulative sums over the beats)
        i = np.flatnonzero(record == rec)
        c = np.concatenate([np.zeros((1, p.shape[1])), np.cumsum(p[i], axis=0)])
        ce = np.concatenate([[0.0], np.cumsum(energy[i])])
        j = np.arange(len(i))
        start = np.maximum(j - k, 0)
        n = (j - start).astype(np.float64)
        mean = (c[j] - c[start]) / np.maximum(n, 1.0)[:, None]
        mean_energy = (ce[j] - ce[start]) / np.maximum(n, 1.0)
        ratio = (mean**2).sum(1) / np.maximum(mean_energy, 1e-30)
        out[i] = np.where((n > 0) & (mean_energy > 0), np.clip(ratio, 0.0, 1.0), 1.0)
    return out


def subtract_template(beats, k: int, reference: str = "mean"):
    """The beats minus their running template, zero outside the valid samples.

    Args:
      beats: a ``BeatSet`` with x f32[N, T, L] (the whole of each record it
        holds: the template is read from the beats present).
      k: preceding beats considered.
      reference: ``mean`` (``running_template``: all k) or ``sinus`` (``sinus_template``: the ``SINUS_BEATS`` of
        them after the longest intervals, ``rr_prev``).

    Returns:
      A ``BeatSet`` with x f32[N, T, L] = (x - template) * valid; everything else unchanged.
    """
    diff = (beats.x - template_of(beats.x, beats.record, beats.rr_prev, k, reference)) * beats.valid[..., None]
    return dataclasses.replace(beats, x=diff.astype(beats.x.dtype))


def template_of(x: np.ndarray, record: np.ndarray, pre: np.ndarray, k: int, reference: str = "mean") -> np.ndarray:
    """f32[N, T, L]: the ``reference`` template (``REFERENCES``) of each beat of ``x`` f[N, T, L] (``pre`` f[N]: each
    beat's preceding RR interval, read by ``sinus`` only)."""
    if reference == "mean":
        return running_template(x, record, k)
    if reference == "sinus":
        return sinus_template(x, record, pre, k)
    raise ValueError(f"template reference {reference!r}: use one of {REFERENCES}")
