"""``ecgjax explain`` and ``ecgjax profile``: thin wrappers over ``ecgjax.attribution.explain``.

No heavy imports at module level (``ecgjax --help`` stays fast).
"""

from __future__ import annotations

import argparse
import ast

from ecgjax.errors import ConfigError


def _hparams(items: list[str]) -> dict:
    out = {}
    for it in items or []:
        if "=" not in it:
            raise ConfigError(f"--hp expects name=value, got {it!r}")
        k, v = it.split("=", 1)
        try:
            out[k] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            out[k] = v
    return out


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="attribution maps of a trained run's test beats, one npz per class")
    p.add_argument("--workdir", required=True, help="a training run (loaded with ecgjax.train.load_run)")
    p.add_argument("--method", default="saliency")
    p.add_argument("--hp", nargs="*", default=[], help="method hyperparameters, name=value")
    p.add_argument("--target", default="label", help="label | pred | all | a class index")
    p.add_argument("--part", default="test", choices=("train", "val", "test"))
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="default: WORKDIR/attributions")
    p.set_defaults(func=_explain)

    q = sub.add_parser("profile", help="segment profiles, comparisons and figures from `explain` output")
    q.add_argument("--attr-dir", required=True, help="the <out>/<method> folder written by explain")
    q.add_argument("--protocol", default=None, help="data protocol of the beats (default: from meta.json)")
    q.add_argument("--transform", default="abs", choices=("signed", "abs", "relu", "paper"))
    q.add_argument("--reduce", default="mean", choices=("mean", "max", "absmean"))
    q.add_argument("--mode", default="valid", choices=("valid", "paper"))
    q.add_argument("--n-boot", type=int, default=1000)
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--out", required=True)
    q.set_defaults(func=_profile)


def _explain(args) -> int:
    import jax

    from ecgjax import attribution as attr
    from ecgjax.attribution.explain import explain_run

    try:
        from ecgjax.train import load_run
    except ImportError as e:
        raise ConfigError("ecgjax explain needs ecgjax.train.load_run (the training package is not installed yet)") from e
    run = load_run(args.workdir)  # expected: .model (nnx), .beats (BeatSet), .split (Split)
    from ecgjax.models import eval_split

    idx = getattr(run.split, args.part)
    target = int(args.target) if args.target.lstrip("-").isdigit() else args.target
    method = attr.get(args.method, **_hparams(args.hp))
    out = args.out or f"{args.workdir}/attributions"
    explain_run(eval_split(run.model), run.beats, idx, method, out, target=target,
                key=jax.random.key(args.seed), batch_size=args.batch_size)
    return 0


def _profile(args) -> int:
    import json
    from pathlib import Path

    from ecgjax import data
    from ecgjax.attribution.explain import profile_run

    meta = json.loads((Path(args.attr_dir) / "meta.json").read_text())
    proto = args.protocol or meta.get("protocol", {}).get("name")
    if not proto:
        raise ConfigError("pass --protocol (meta.json does not name one)")
    beats = data.load_beats(data.protocols.get(proto))
    profile_run(args.attr_dir, beats, args.out, transform=args.transform, reduce=args.reduce, mode=args.mode,
                n_boot=args.n_boot, seed=args.seed)
    return 0
