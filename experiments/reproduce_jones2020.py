"""Reproduce Jones et al. (2020) end to end: ``python experiments/reproduce_jones2020.py --config FILE[:arg] --workdir DIR``."""

import sys

from ecgjax.study.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], default_config="experiments/configs/reproduce_jones2020.py"))
