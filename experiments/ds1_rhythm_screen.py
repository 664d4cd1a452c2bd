"""Trained inter-patient seeds on synthetic ectopic-dominant rhythms of held-out DS1 beats (no DS2 record is read).

Command::

    python experiments/ds1_rhythm_screen.py --run experiments/configs/aami_rr.py:both runs/cv_both \
        --run experiments/configs/aami_rr.py:both,aug runs/cv_both_aug [--out benchmarks/results/ds1_rhythm_screen.jsonl]
    python experiments/ds1_rhythm_screen.py --table   # the markdown table from that file
    python experiments/ds1_rhythm_screen.py --table --template-order source   # rows of the screen before eeb3698

Each ``--run CONFIG WORKDIR`` is a finished ``experiments/aami_interpatient.py`` workdir (``--ds1-only`` is
enough); ``ecgjax.interpatient.rhythm_screen`` fills ``ecgjax.data.rhythm.synthetic_record`` rhythms (S fractions
10-85%) with each seed's validation-fold records' real beats and scores S Se and the share of N beats called S
with the workdir's DS1-CV offsets. One JSON line per run in ``--out`` (with versions, the command, its time and
``"template_order": "sequence"``: the leads' running template recomputed in each rhythm's beat order, as the pipeline
would on such a record; rows without the key are from before commit eeb3698, which kept each source beat's
template from its own record, ``source`` in ``--table --template-order``).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"  # the repo's result files, from any folder


def table(rows: list[dict], template_order: str = "sequence") -> str:
    """Markdown: per run (the last line of each workdir among the rows of ``template_order``) and S fraction, % of S
    beats called S with the run's DS1-CV offsets / at the plain argmax, and % of N beats called S with the offsets."""
    last = {r["workdir"]: r for r in rows if r.get("template_order", "source") == template_order}
    fr = sorted({f for r in last.values() for f in r["fractions"]}, key=float)
    out = ["| run (S offset) | " + " | ".join(f"{100 * float(f):.0f}% S beats" for f in fr) + " |", "|---|" + "---|" * len(fr)]
    for wd, r in last.items():
        cell = lambda d: f"{100 * d['offsets']['S_se']:.1f} / {100 * d['argmax']['S_se']:.1f} / {100 * d['offsets']['N_called_S']:.1f}"  # noqa: E731
        config = r["config"].removeprefix(f"{RESULTS.parents[1]}/")  # a config given by its absolute path: as the repo's
        out.append(f"| {config} ({r['offsets']['S']:+.2f}) | " + " | ".join(cell(r["fractions"][f]) for f in fr) + " |")
    return "\n".join(out)


def main(argv=None) -> int:
    from ecgjax.errors import EcgjaxError

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", nargs=2, action="append", metavar=("CONFIG", "WORKDIR"), default=[])
    ap.add_argument("--out", type=Path, default=RESULTS / "ds1_rhythm_screen.jsonl")
    ap.add_argument("--data-dir", default=os.environ.get("ECGJAX_DATA_DIR"))
    ap.add_argument("--n-rhythms", type=int, default=2, help="rhythms per held-out record and S fraction")
    ap.add_argument("--table", action="store_true", help="print the markdown table of --out and exit")
    ap.add_argument("--template-order", choices=("sequence", "source"), default="sequence",
                    help="--table: rows of the current screen (sequence) or of the screen before eeb3698 (source)")
    args = ap.parse_args(argv)
    if args.table:
        from ecgjax.errors import DataError
        from ecgjax.io import read_jsonl

        try:
            print(table(read_jsonl(args.out, "ds1_rhythm_screen result file"), args.template_order))
        except (DataError, KeyError) as e:  # KeyError: rows of another file
            print(f"error: {args.out}: not a readable ds1_rhythm_screen result file ({type(e).__name__}: {e})", file=sys.stderr)
            return 2
        return 0
    if not args.run:
        print("error: pass --run CONFIG WORKDIR at least once (a finished experiments/aami_interpatient.py workdir)", file=sys.stderr)
        return 2
    from ecgjax import interpatient
    from ecgjax.io import append_jsonl, describe_device, environment_info

    env = environment_info()
    for spec, wd in args.run:
        t0 = time.time()
        try:
            res = interpatient.rhythm_screen(interpatient.load_config(spec), wd, n_rhythms=args.n_rhythms, data_dir=args.data_dir)
        except EcgjaxError as e:
            print(f"error: {wd}: {e}", file=sys.stderr)
            return 2
        except OSError as e:
            print(f"error: {wd}: not a finished experiments/aami_interpatient.py workdir (run it with --ds1-only first): {e}", file=sys.stderr)
            return 2
        row = {"config": spec, "workdir": wd, **res, "template_order": "sequence", "wall_s": time.time() - t0,
               "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0)), "device": describe_device(env),
               "command": "python experiments/ds1_rhythm_screen.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
               "versions": env.get("versions")}
        append_jsonl(args.out, [row])
        print(f"{spec}: " + "; ".join(f"{f}: S Se {100 * d['offsets']['S_se']:.1f}, N called S {100 * d['offsets']['N_called_S']:.1f}"
                                      for f, d in res["fractions"].items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
