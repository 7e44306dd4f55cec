"""``python -m benchmarks.classroom``: see :mod:`benchmarks.classroom.run`."""
import sys

from benchmarks.classroom.run import main

sys.exit(main())
