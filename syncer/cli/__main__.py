"""`python -m syncer.cli`: the command line."""

import sys

from syncer.cli.main import main

sys.exit(main())
