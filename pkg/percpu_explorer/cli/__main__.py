"""`python -m percpu_explorer.cli`: the same command line as `percpu-explorer`."""

import sys

from . import main

sys.exit(main())
