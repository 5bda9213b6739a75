"""The coordinator's decisions as a pure, deterministic state machine.

``node.Core`` takes events (client writes, results of round trips, health polls, time)
and hands back a ``Ready`` of plain data (round trips to run per replica, control tasks,
outcomes for clients, events). Nothing in this package does I/O, reads a clock or draws
random numbers; ``tests/test_structure.py`` checks the imports, ``mypy --strict`` the types.
See ``docs/architecture.md``.
"""
