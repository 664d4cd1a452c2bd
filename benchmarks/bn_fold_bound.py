"""How much folding ribeiro_cnn's eval-mode BatchNorm into its convolutions could buy saliency on CPU (issue 15).

The whole model's saliency (B beats, the peers' weights, as ``cpu_vs_peers.py``) as it is, against the same
program with every BatchNorm replaced by the identity (a ``Hooks`` subclass; the model is not changed). Folding
can save at most that difference. The two compiled programs are timed alternately, ``--rounds`` times
``--repeats`` calls; one JSON line per program is appended to ``--out`` (device, versions, command, load).

  python benchmarks/bn_fold_bound.py --batch 256 --out benchmarks/results/cpu_bn_fold_bound.jsonl
"""

from __future__ import annotations

import argparse
import sys

import _common as C


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5, help="timed calls per program and round")
    ap.add_argument("--rounds", type=int, default=3, help="alternations of the two programs")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    base = C.env_record(argv)

    import jax
    from flax import nnx

    import cpu_vs_peers as CV
    from ecgjax.models.base import Hooks

    class NoNorm(Hooks):
        """BatchNorm layers as the identity; every other layer unchanged."""

        def linear(self, layer, x):
            return x if isinstance(layer, nnx.BatchNorm) else layer(x)

    progs = {}  # variant: (compiled saliency, its arguments)
    for v, h in (("as is", None), ("BatchNorm removed", NoNorm())):
        fn, call_args = CV.saliency_program("ribeiro_cnn", args.batch, h)
        progs[v] = (fn.lower(*call_args).compile(), call_args)
    for c, a in progs.values():
        jax.block_until_ready(c(*a))
    secs = {v: [] for v in progs}
    for _ in range(args.rounds):
        for v, (c, a) in progs.items():
            secs[v] += C.time_calls(lambda c=c, a=a: c(*a), args.repeats)
    rows = [dict(base, model="ribeiro_cnn", method="saliency", variant=v, batch=args.batch, **C.summarize(args.batch, s))
            for v, s in secs.items()]
    for r in rows:
        C.log(f"{r['variant']:18s} {r['beats_per_s']:7.1f} beats/s [{r['beats_per_s_min']:.1f}, {r['beats_per_s_max']:.1f}]")
    C.append_jsonl(args.out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
