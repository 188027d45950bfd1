"""The ``sbnn`` command line: one entry point, one subcommand per stage."""
from __future__ import annotations
import sys

def main(argv=None) -> int:
    print("sbnn: no subcommands yet", file=sys.stderr)
    return 2
