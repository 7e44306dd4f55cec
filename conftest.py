"""The repository's pytest configuration.  Its folder goes on ``sys.path`` (so the tests import
``tools`` and ``benchmarks``).  Nothing here changes how the numbers are computed: the unit tests
and the kernels nbval starts run with the machine's own CPU code paths, as a learner's lab does,
and the stored notebook outputs are written so that they do not depend on them."""
