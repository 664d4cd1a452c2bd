"""The one place where seconds become samples (and back)."""

from __future__ import annotations

MITBIH_FS = 360.0


def to_samples(seconds: float, fs: float) -> int:
    """Whole samples in ``seconds`` at ``fs`` Hz (``int(seconds * fs)``, as the paper's 0.1 s -> 36).

    Rounds to the nearest integer first when ``seconds * fs`` is within 1e-9 of
    one, so 0.1 s at 360 Hz is 36 samples, not 35 from floating-point error.
    """
    if fs <= 0:
        raise ValueError(f"sampling rate must be positive, got {fs}")
    if seconds < 0:
        raise ValueError(f"duration must be non-negative, got {seconds}")
    v = seconds * fs
    r = round(v)
    return int(r) if abs(v - r) < 1e-9 else int(v)


def to_seconds(samples: int | float, fs: float) -> float:
    """Samples to seconds at ``fs`` Hz."""
    if fs <= 0:
        raise ValueError(f"sampling rate must be positive, got {fs}")
    return samples / fs
