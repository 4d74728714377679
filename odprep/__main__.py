"""The console entry point. Its first act is to catch Ctrl-C, SIGTERM and SIGHUP: until a
command starts (and installs the handlers that clean up), nothing has been written, so a
signal ends the process at once with one line and the shell's exit code, never a traceback."""

from __future__ import annotations

import os
import signal
import sys


def _quit_quietly(signum: int, _frame) -> None:
    sys.stderr.write("interrupted: no output was written\n")
    os._exit(128 + signum)


def main() -> None:
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _quit_quietly)
    from odprep.cli import main as cli

    cli()


if __name__ == "__main__":
    main()
