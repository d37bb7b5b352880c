"""`python -m bench`: the same as `homeward bench`."""

import sys

from bench.cli import main

sys.exit(main())
