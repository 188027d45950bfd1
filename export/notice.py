"""Warnings for the user: one line on stderr each, next to the ``sbnn: error:`` lines of sbnn.cli.

For a setting that works but does not give what the user asked for (a lossy ``--frac-bits``, an
unreachable ``--target-fps``): the run goes on, the line says what was measured and what to do,
and the report JSON records the same figures.
"""

from __future__ import annotations

import sys


def warn(message: str) -> None:
    print(f"sbnn: warning: {message}", file=sys.stderr, flush=True)
