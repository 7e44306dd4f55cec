"""``make classroom-bench``: a whole class on one server, measured with a real JupyterHub.

A JupyterHub with a dummy authenticator and a local-process spawner is started on
localhost; N simulated students are created through the hub's REST API, each gets a
single-user server and a token, runs a course notebook through the kernel protocol
(the single-user server's REST and websocket kernel API, as JupyterLab does) and then
moves the notebook's slider the way the browser does (a widget ``comm_msg``), waiting for
the redrawn picture.  Results go to ``benchmarks/CLASSROOM.md`` and ``classroom.json``.

Modules:

- :mod:`~benchmarks.classroom.wire`: the kernel websocket messages (pure).
- :mod:`~benchmarks.classroom.results`: statistics, the sizing rule and the reports (pure).
- :mod:`~benchmarks.classroom.processes`: which process is what, memory sampling, clean-up.
- :mod:`~benchmarks.classroom.hub`: the hub's configuration, start and REST API.
- :mod:`~benchmarks.classroom.student`: one student's notebook run and slider moves.
- :mod:`~benchmarks.classroom.run`: the command line (``python -m benchmarks.classroom``).
"""
