"""The ground-truth check of a study config alone, its tables printed as Markdown:
``python experiments/ground_truth.py --config experiments/configs/corrected_study.py:quick --workdir DIR``.

Runs ``ecgjax.study.groundtruth.ground_truth_check`` with the config's ``ground_truth`` spec into
``DIR/ground_truth.json`` (kept: a rerun only prints it; ``--force`` recomputes) and prints the report section.
"""

import argparse
import sys
from pathlib import Path

from ecgjax.cli import run_guarded, setup_logging


def run(args) -> int:
    from ecgjax.errors import ConfigError
    from ecgjax.io import read_json
    from ecgjax.study.config import load_study_config
    from ecgjax.study.groundtruth import ground_truth_check
    from ecgjax.study.report_waves import ground_truth_markdown

    spec = load_study_config(args.config).ground_truth
    if spec is None:
        raise ConfigError(f"{args.config} has no ground_truth spec")
    path = Path(args.workdir) / "ground_truth.json"
    if path.exists() and not args.force:
        summary = read_json(path, "ground-truth summary")
    else:
        summary = ground_truth_check(spec, Path(args.workdir), data_dir=args.data_dir, cache=args.cache_dir)
    print(ground_truth_markdown(summary))
    return 0


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="experiments/configs/corrected_study.py:quick")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    setup_logging(args.verbose)
    return run_guarded(run, args, prog=ap.prog)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
