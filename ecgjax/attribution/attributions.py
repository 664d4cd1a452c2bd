"""``Attributions``: one method's maps on a set of beats, with what they explain, and their folder format.

A stored ``Attributions`` is a folder::

    class_<c>.npz   one per class c (beats grouped by true label): index, target, pred, label, maps, meta
    meta.json       method, settings, model identity, classes, fs, files; written last (the completion mark)

Every file is written atomically and read with ``allow_pickle=False``. The maps
of one class are written in row chunks from a (memory-mapped) source, so a
dataset never has to fit in memory; :meth:`Attributions.load_classes` reads the
classes back one at a time for the same reason.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ecgjax.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Attributions:
    """Maps of one method on N beats.

    Attributes:
      maps: f32[N, T, L] (f32[N, C, T, L] for target "all"), signed; may be a memmap.
      target: i32[N] the class each map explains (-1 for "all").
      pred: i32[N] the model's predicted class.
      label: i32[N] the true class.
      index: i64[N] beat ids (positions in the BeatSet).
      method: the registered method name.
      settings: ``{"hparams": {field: repr}, "target": "label" | "pred" | "all" | class}`` as explained.
      model: the model's identity: ``{"name", "run", "checkpoint", "protocol"}`` (what is known).
      classes: class names; fs: sampling rate in Hz.
    """

    maps: np.ndarray
    target: np.ndarray
    pred: np.ndarray
    label: np.ndarray
    index: np.ndarray
    method: str
    settings: dict
    model: dict
    classes: tuple[str, ...]
    fs: float

    def __len__(self) -> int:
        return len(self.index)

    def select(self, rows: np.ndarray) -> "Attributions":
        """The beats at ``rows`` (i64[K] positions or bool[N])."""
        return dataclasses.replace(self, maps=self.maps[rows], target=self.target[rows], pred=self.pred[rows],
                                   label=self.label[rows], index=self.index[rows])

    def of_class(self, cls: int | str, by: str = "label") -> "Attributions":
        """The beats whose ``by`` (``label``, ``pred`` or ``target``) is ``cls`` (an index or a class name)."""
        c = self.classes.index(cls) if isinstance(cls, str) else int(cls)
        if by not in ("label", "pred", "target"):
            raise ValueError(f"by must be 'label', 'pred' or 'target', got {by!r}")
        return self.select(np.flatnonzero(getattr(self, by) == c))

    def save(self, out_dir: str | os.PathLike) -> Path:
        """Write as a folder (one ``class_<c>.npz`` per true class, then ``meta.json``); returns the folder."""
        d = Path(out_dir)
        d.mkdir(parents=True, exist_ok=True)
        files = {}
        for c in range(len(self.classes)):
            rows = np.flatnonzero(self.label == c)
            files[c] = write_class_file(d / f"class_{c}.npz", self.maps, rows, index=self.index[rows], target=self.target[rows],
                                        pred=self.pred[rows], label=self.label[rows], meta={"method": self.method, "class": c})
        write_meta(d, method=self.method, settings=self.settings, model=self.model, classes=self.classes, fs=self.fs,
                   n=len(self), files=files)
        return d

    @classmethod
    def load_classes(cls, attr_dir: str | os.PathLike) -> Iterator["Attributions"]:
        """The stored attributions one class file at a time (memory: one class's maps)."""
        d = Path(attr_dir)
        meta = read_meta(d)
        for fname in sorted(meta["files"].values()):
            z = load_class_npz(d / fname)
            yield cls(z["maps"], z["target"], z["pred"], z["label"], z["index"], meta["method"],
                      {"hparams": meta.get("hparams", {}), "target": meta.get("target")}, meta.get("model", {}),
                      tuple(meta["classes"]), float(meta["fs"]))

    @classmethod
    def load(cls, attr_dir: str | os.PathLike) -> "Attributions":
        """All stored attributions in one value (beats in class-file order)."""
        parts = list(cls.load_classes(attr_dir))
        if not parts:
            raise ConfigError(f"{attr_dir} holds no class files; rerun `ecgjax explain`")
        cat = lambda k: np.concatenate([getattr(p, k) for p in parts])  # noqa: E731
        return dataclasses.replace(parts[0], maps=cat("maps"), target=cat("target"), pred=cat("pred"), label=cat("label"),
                                   index=cat("index"))


# -- the folder format -----------------------------------------------------------------


def write_class_file(path: Path, maps_src: np.ndarray, rows: np.ndarray, *, meta: dict, chunk: int = 2048, **arrays) -> Path:
    """Write ``arrays`` plus ``maps = maps_src[rows]`` and ``meta`` (JSON) into an npz at ``path`` atomically.

    ``maps_src`` may be a memmap; it is copied ``chunk`` rows at a time into the
    zip member, so host memory is one chunk. Loadable with ``np.load`` (no pickle).
    """
    from ecgjax.io import atomic_open

    arrays = {**arrays, "meta": np.asarray(json.dumps(meta))}
    shape = (len(rows),) + maps_src.shape[1:]
    with atomic_open(path) as out, zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, a in arrays.items():
            with zf.open(name + ".npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asarray(a), allow_pickle=False)
        with zf.open("maps.npy", "w", force_zip64=True) as f:
            hdr = {"descr": np.lib.format.dtype_to_descr(maps_src.dtype), "fortran_order": False, "shape": shape}
            np.lib.format.write_array_header_2_0(f, hdr)
            for s in range(0, len(rows), chunk):
                f.write(np.ascontiguousarray(maps_src[rows[s : s + chunk]]).tobytes())
    return path


def load_class_npz(path: str | os.PathLike) -> dict[str, Any]:
    """Read one ``class_<c>.npz`` (``allow_pickle=False``).

    Returns a dict with ``index`` i64[n], ``maps`` f32[n, T, L] (or f32[n, C, T, L]),
    ``target``, ``pred`` (and ``label``) i32[n], and ``meta`` (a dict).
    """
    from ecgjax.io import load_npz

    out = load_npz(path, "attribution file")
    out["meta"] = json.loads(str(out["meta"]))
    return out


def write_meta(attr_dir: Path, *, method: str, settings: dict, model: dict, classes, fs: float, n: int,
               files: dict[int, Path], **extra) -> None:
    """``meta.json``, the folder's completion mark: written after every class file."""
    from ecgjax.io import atomic_write_json

    meta = {"method": method, **settings, "n": int(n), "model": model, "classes": list(classes), "fs": float(fs),
            "files": {int(c): Path(p).name for c, p in files.items()}, **extra}
    atomic_write_json(Path(attr_dir) / "meta.json", meta)


def read_meta(attr_dir: Path) -> dict:
    """``meta.json`` of a stored ``Attributions`` folder, or a clear error naming what to run."""
    from ecgjax.io import read_json

    p = Path(attr_dir) / "meta.json"
    if not p.exists():
        raise ConfigError(f"{attr_dir} holds no finished attributions (no meta.json); run `ecgjax explain` first")
    return read_json(p, "attributions' meta.json")
