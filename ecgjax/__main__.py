import sys

from ecgjax.cli import main

sys.exit(main())
