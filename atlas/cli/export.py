"""``python -m atlas.cli.export``: the same command line as ``arc-atlas``.

Kept as its own module so the exporter can be run without relying on PATH
order when another tool also installs an ``atlas`` command.
"""

from __future__ import annotations

from atlas.cli.main import main, run

__all__ = ["main"]

if __name__ == "__main__":
    run()
