"""Benchmark harness: how long every notebook and every slider redraw takes.

Run it with ``make bench`` or ``python -m benchmarks.run`` from the repository root; it
writes ``benchmarks/RESULTS.md`` (for people) and ``benchmarks/results.json`` (for tools).
"""
