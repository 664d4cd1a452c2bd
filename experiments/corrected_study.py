"""The corrected study: ``python experiments/corrected_study.py --config FILE[:arg] --workdir DIR``."""

import sys

from ecgjax.study.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], default_config="experiments/configs/corrected_study.py"))
