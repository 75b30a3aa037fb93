"""The ``arc-atlas`` command line.

Also reachable as ``python -m atlas.cli.export``, ``atlas.export`` and ``atlas-export``.
"""
