"""``make classroom-bench``: a whole class on one server (``benchmarks/CLASSROOM.md``).  Modules:
``student`` (one simulated student), ``processes`` (the kernels' memory and CPU time), ``results``
(fits and reports, pure) and ``run`` (the command line, ``python -m benchmarks.classroom``)."""
