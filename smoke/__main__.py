"""`python -m smoke`: the prod smoke suite (see smoke/cli.py)."""

import sys

from smoke.cli import main

sys.exit(main())
