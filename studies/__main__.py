"""``python -m studies``: see :mod:`studies.cli`."""

import sys

from studies.cli import main

sys.exit(main())
