"""The expert-rule checks on a finished study's explained run, its table printed as Markdown:
``python experiments/expert_rules.py --study STUDY_WORKDIR [--run NAME] --out DIR``.

Reads the study's explain stage (``STUDY_WORKDIR/stages/explain.json``) and the run's model and beats
(``ecgjax.train.load_run``), runs ``ecgjax.study.expert_rules.expert_rule_check`` into ``DIR/expert_rules.json``
and prints the report section. The study's folder is only read. A study with ``expert_rules=True`` does the same
as its own stage.
"""

import argparse
import sys
from pathlib import Path

from ecgjax.cli import run_guarded, setup_logging


def run(args) -> int:
    from ecgjax.errors import ConfigError
    from ecgjax.io import read_json
    from ecgjax.report import Report
    from ecgjax.study.expert_rules import expert_rule_check
    from ecgjax.study.report_waves import add_expert_rules_section
    from ecgjax.train import load_run

    study = Path(args.study)
    runs = read_json(study / "stages" / "explain.json", "explain stage marker")["runs"]
    name = args.run or next(iter(runs), None)
    if name not in runs:
        raise ConfigError(f"{study} has no explained run {name!r}; explained: {sorted(runs)}")
    out = expert_rule_check(load_run(study / "runs" / name, data_dir=args.data_dir, cache=args.cache_dir), runs[name],
                            Path(args.out), data_dir=args.data_dir, cache=args.cache_dir, n_boot=args.n_boot)
    rep = Report("Expert-rule checks")
    add_expert_rules_section(rep, {**out, "run": name})
    print(rep.to_markdown())
    return 0


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--study", required=True, help="a finished study's workdir (read only)")
    ap.add_argument("--run", default=None, help="the explained run (default: the first)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    setup_logging(args.verbose)
    return run_guarded(run, args, prog=ap.prog)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
