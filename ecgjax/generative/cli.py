"""``ecgjax traverse``: generative explanations of a trained run (a thin wrapper over ``generative.pipeline.traverse_run``).

No heavy imports at module level (``ecgjax --help`` stays fast).
"""

from __future__ import annotations

import argparse
import shlex

from ecgjax.cli import nonnegative_int, positive_int


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {v}")
    return v


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("traverse", help="morph a run's test beats of one class towards another through a beat VAE "
                                        "(query-based latent space traversal), with change maps and sanity checks",
                       epilog_fn=_epilog)
    p.add_argument("--workdir", required=True, help="a training run (ecgjax train's workdir)")
    p.add_argument("--target", required=True, help="the query: the class to move towards (a class name of the run)")
    p.add_argument("--source", default="N", help="the class of the test beats to traverse (default N)")
    p.add_argument("--max-beats", type=positive_int, default=200, help="source beats traversed, and target beats profiled")
    p.add_argument("--fidelity-beats", type=positive_int, default=4000,
                   help="test beats classified as originals and as reconstructions")
    p.add_argument("--vae", default=None, help="VAE folder (default WORKDIR/vae; trained on the run's training beats if empty)")
    p.add_argument("--latent", type=positive_int, default=16, help="latent size of a VAE trained here")
    p.add_argument("--beta", type=_positive_float, default=1.0, help="KL weight of a VAE trained here")
    p.add_argument("--sigma", type=_positive_float, default=0.1,
                   help="decoder standard deviation (beats' units) of a VAE trained here; smaller: sharper reconstructions")
    p.add_argument("--width", type=positive_int, default=16, help="first convolution's channels of a VAE trained here")
    p.add_argument("--vae-epochs", type=positive_int, default=10)
    p.add_argument("--vae-max-train", type=positive_int, default=20000, help="training beats of a VAE trained here")
    p.add_argument("--steps", type=positive_int, default=300, help="Adam steps in latent space per beat")
    p.add_argument("--proximity", type=_positive_float, default=0.05, help="weight of ||z - z0||^2 / 2")
    p.add_argument("--points", type=positive_int, default=11, help="points along each path (start and end included)")
    p.add_argument("--method", default="saliency", help="attribution method of the target's profile")
    p.add_argument("--no-waves", action="store_true", help="skip the per-wave change (it delineates the records with neurokit2)")
    p.add_argument("--compare", default=None, metavar="WORKDIR",
                   help="a second run of the same config from another training seed: the seed sanity check")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--batch-size", type=positive_int, default=256)
    p.add_argument("--memory-budget", default=None, metavar="SIZE", help="4G, 512M or a share like 30%% (default 50%%)")
    p.add_argument("--data-dir", default=None, help="data root (default: $ECGJAX_DATA_DIR)")
    p.add_argument("--out", default=None, help="default: WORKDIR/traversals/SOURCE-to-TARGET")
    p.set_defaults(func=_traverse)


def _epilog() -> str:
    from ecgjax import attribution, models

    return (f"models (any registered one, through the model contract): {', '.join(models.available())}\n"
            f"methods (--method): {', '.join(attribution.available())}\n"
            "classes (--target/--source): the run's classes, e.g. N, S, V, F, Q for the aami protocols\n\n"
            "example:\n  ecgjax traverse --workdir runs/traverse_rr_net --target V --source N --max-beats 100")


def _traverse(args) -> int:
    if args.points < 2:
        from ecgjax.errors import ConfigError

        raise ConfigError(f"--points {args.points}: a path needs at least 2 points (its start and end)")
    from ecgjax.batched import parse_memory
    from ecgjax.generative.pipeline import traverse_run

    s = traverse_run(args.workdir, target=args.target, source=args.source, out=args.out, vae_dir=args.vae,
                     max_beats=args.max_beats, fidelity_beats=args.fidelity_beats, latent=args.latent, beta=args.beta, sigma=args.sigma,
                     width=args.width, vae_epochs=args.vae_epochs, vae_max_train=args.vae_max_train, steps=args.steps,
                     proximity=args.proximity, n_points=args.points, method=args.method, waves=not args.no_waves, compare=args.compare, seed=args.seed,
                     batch_size=args.batch_size, memory_budget=parse_memory(args.memory_budget), data_dir=args.data_dir,
                     command="ecgjax " + " ".join(shlex.quote(a) for a in args.argv))
    t, f = s["trained"], s["fidelity"]
    print(f"{t['n']} {args.source} beats towards {args.target}: median rho {t['median_spearman']:.3f}, crossing 0.5 "
          f"{t['frac_cross_0_5']:.2f}, agreement {t['median_agreement']:.3f} (randomised {s['randomised']['median_agreement']:.3f}); "
          f"accuracy originals {f['acc_original']:.3f} / reconstructions {f['acc_reconstructed']:.3f}")
    return 0
