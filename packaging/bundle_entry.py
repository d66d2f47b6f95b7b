"""Entry point of the frozen bundle.

The bundle holds one executable, `lorawhisper-studio`, and `lorawhisper`, a symbolic link to
it: started under the name `lorawhisper` it is the command line, under any other name the
desktop app. One executable keeps one copy of the Python code (each PyInstaller executable
carries its own archive of it).

`lorawhisper-studio -m MODULE ARGS` runs MODULE as `python -m MODULE ARGS` would: the app
starts its training child as `sys.executable -m lorawhisper_app.cli.main train …`, and in
the bundle `sys.executable` is this program.
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Sequence
from pathlib import Path

CLI_NAME = "lorawhisper"


def run(argv: Sequence[str]) -> int:
    """Run the CLI, a module, or the app, chosen by the program's name and first argument."""
    if len(argv) > 2 and argv[1] == "-m":
        sys.argv = [argv[2], *argv[3:]]
        runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
        return 0
    if Path(argv[0]).name == CLI_NAME:
        from lorawhisper_app.cli.main import main as cli_main

        return cli_main(list(argv[1:]))
    from lorawhisper_app.gui.app import main as app_main

    return app_main(list(argv))


if __name__ == "__main__":
    sys.exit(run(sys.argv))
