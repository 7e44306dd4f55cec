"""The repository's pytest configuration.  Its folder goes on ``sys.path`` (so the tests import
``tools`` and ``benchmarks``).  Nothing here changes how the numbers are computed: the unit tests
and the kernels nbval starts run with the machine's own CPU code paths, as a learner's lab does,
and the stored notebook outputs are written so that they do not depend on them.

Under the tests a claim a notebook's text makes and its measurement contradicts fails
(``helpers.claims.STRICT_ENV``; a learner's session only warns).  The variable is set here, so
the kernels nbval starts inherit it."""

import os

os.environ["INIT_NORM_STRICT_CLAIMS"] = "1"  # helpers.claims.STRICT_ENV (not imported: keep torch out)
