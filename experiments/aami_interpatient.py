"""Inter-patient benchmark: ``python experiments/aami_interpatient.py --config experiments/configs/aami_rr.py [--workdir DIR]``.

Trains on DS1, tests once on DS2, explains; see ``ecgjax.interpatient``.
"""

import sys

from ecgjax.interpatient import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
