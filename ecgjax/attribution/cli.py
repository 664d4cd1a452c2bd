"""``ecgjax explain`` and ``ecgjax profile``: thin wrappers over ``explain_run`` and ``profile_run``.

No heavy imports at module level (``ecgjax --help`` stays fast).
"""

from __future__ import annotations

import argparse
import ast
import logging

from ecgjax.analysis.transforms import TRANSFORMS
from ecgjax.cli import nonnegative_int, positive_int
from ecgjax.errors import ConfigError

log = logging.getLogger(__name__)


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
    p = sub.add_parser("explain", help="attribution maps of a trained run's test beats, one npz per class",
                       epilog_fn=_explain_epilog)
    p.add_argument("--workdir", required=True, help="a training run (loaded with ecgjax.train.load_run)")
    p.add_argument("--method", default="saliency", help="a registered method (ecgjax.attribution.available())")
    p.add_argument("--hp", nargs="*", default=[], help="method hyperparameters, name=value")
    p.add_argument("--target", default="label", help="label (the true class) | pred | all | a class name or index")
    p.add_argument("--part", default="test", choices=("train", "val", "test"))
    p.add_argument("--batch-size", type=positive_int, default=256, help="beats per step at most (the memory budget may lower it)")
    p.add_argument("--memory-budget", default=None, metavar="SIZE",
                   help="memory one step may hold: 4G, 512M or a share of the available memory like 30%% (default 50%%)")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--data-dir", default=None, help="data root (default: $ECGJAX_DATA_DIR)")
    p.add_argument("--out", default=None, help="default: WORKDIR/attributions")
    p.add_argument("--name", default=None, help="folder under --out (default: METHOD-TARGET, e.g. saliency-label)")
    p.add_argument("--force", action="store_true", help="overwrite a folder holding other settings' maps")
    p.set_defaults(func=_explain)

    q = sub.add_parser("profile", help="segment profiles, comparisons and figures from `explain` output",
                       epilog_fn=_profile_epilog)
    q.add_argument("--workdir", required=True, help="the training run that was explained")
    q.add_argument("--method", default="saliency", help="which explained method (WORKDIR/attributions/METHOD-TARGET)")
    q.add_argument("--target", default="label", help="which explained target (as given to explain; not all)")
    q.add_argument("--attr-dir", default=None, help="explain's output folder if not WORKDIR/attributions/METHOD-TARGET")
    q.add_argument("--transform", default="abs", choices=TRANSFORMS)
    q.add_argument("--reduce", default="mean", choices=("mean", "max", "absmean"))
    q.add_argument("--mode", default="valid", choices=("valid", "paper"))
    q.add_argument("--n-boot", type=positive_int, default=1000)
    q.add_argument("--seed", type=nonnegative_int, default=0)
    q.add_argument("--data-dir", default=None, help="data root (default: $ECGJAX_DATA_DIR)")
    q.add_argument("--out", default=None, help="default: WORKDIR/profiles/<the attributions' folder name>")
    q.set_defaults(func=_profile)


def _methods_line() -> str:
    from ecgjax import attribution

    return "methods: " + ", ".join(attribution.available())


def _explain_epilog() -> str:
    return (f"{_methods_line()}\n"
            "targets: label (the true class), pred (the model's class), all (every class), a class name or index\n\n"
            "example:\n  ecgjax explain --workdir runs/smoke --method integrated_gradients --hp steps=32 --target label")


def _profile_epilog() -> str:
    return (f"{_methods_line()}\ntargets: label, pred, a class name or index (as given to explain)\n\n"
            "example:\n  ecgjax profile --workdir runs/smoke --method saliency --target label")


def target_word(text: str) -> str:
    """``--target`` with the old word ``true`` replaced by ``label`` (one deprecation line)."""
    if text == "true":
        log.warning("--target true is deprecated: it is now called --target label")
        return "label"
    return text


def parse_target(text: str, classes) -> str | int:
    """``label``, ``pred``, ``all``, a class name (case-exact) or an index -> what the runner takes."""
    text = target_word(text)
    if text == "label":
        return "label"
    if text in ("pred", "all"):
        return text
    if text in classes:
        return list(classes).index(text)
    if text.lstrip("-").isdigit() and 0 <= int(text) < len(classes):
        return int(text)
    raise ConfigError(f"--target {text!r}: use label, pred, all, a class name {list(classes)} or an index < {len(classes)}")


def _explain(args) -> int:
    import jax

    from ecgjax import attribution as attr
    from ecgjax.attribution.explain import check_folder_name, explain_run, model_identity
    from ecgjax.models import eval_split, model_info
    from ecgjax.train import load_run

    method = attr.get(args.method, **_hparams(args.hp))  # flags first: before the run is loaded
    out = args.out or f"{args.workdir}/attributions"
    name = args.name or f"{args.method}-{target_word(args.target)}"
    check_folder_name(name, out)
    from ecgjax.batched import parse_memory

    budget = parse_memory(args.memory_budget)
    run = load_run(args.workdir, data_dir=args.data_dir)
    attr.check_supported(method, model_info(run.model))  # before any attribution work: one line, exit 2
    target = parse_target(args.target, run.beats.classes)
    res = explain_run(eval_split(run.model), run.beats, getattr(run.split, args.part), method, out, target=target,
                      key=jax.random.key(args.seed), batch_size=args.batch_size, memory_budget=budget, name=name, overwrite=args.force,
                      model_info=model_identity(run), background_idx=run.split.train)
    print(f"{res['n']} beats explained with {method.name} ({res['beats_per_s']:.1f} beats/s) -> {res['dir']}")
    return 0


def _profile(args) -> int:
    from pathlib import Path

    from ecgjax.analysis.attribution_profiles import profile_run
    from ecgjax.train import load_run

    if args.target == "all":
        raise ConfigError("profile --target all: profiles need one map per beat, and `all` gives one per class; "
                          "explain and profile with --target label, pred or a class name")
    attr_dir = Path(args.attr_dir or Path(args.workdir) / "attributions" / f"{args.method}-{target_word(args.target)}")
    if args.attr_dir is None and not attr_dir.exists() and args.target in ("label", "true"):
        old = attr_dir.with_name(f"{args.method}-true")  # the folder name before `true` became `label`
        attr_dir = old if old.exists() else attr_dir
    if not (attr_dir / "meta.json").exists():
        raise ConfigError(f"{attr_dir} holds no explain output (meta.json); run "
                          f"`ecgjax explain --workdir {args.workdir} --method {args.method} --target {args.target}` first")
    run = load_run(args.workdir, data_dir=args.data_dir)
    out = Path(args.out or Path(args.workdir) / "profiles" / attr_dir.name)
    res = profile_run(attr_dir, run.beats, out, transform=args.transform, reduce=args.reduce, mode=args.mode,
                      n_boot=args.n_boot, seed=args.seed)
    n = len(res.correct_vs_incorrect) + len(res.mistaken_vs_class)
    print(f"profiles, {n} group comparisons and figures -> {out}")
    return 0
