"""Open the course: JupyterLab on the lessons. `make lab` runs this; extra arguments go to `jupyter lab`.

    python scripts/lab.py [--no-browser] [--port 8888] ...

As root (Docker containers, cloud machines) JupyterLab exits at once ("Running as root is not
recommended") unless it is given --allow-root: it is given it there, and only there.
"""
import os
import sys
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def command(args=()):
    "The `jupyter lab` command line, for this interpreter and this user."
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={NOTEBOOKS}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0: cmd.append("--allow-root")
    return cmd + list(args)


if __name__ == "__main__":
    cmd = command(sys.argv[1:])
    os.execv(cmd[0], cmd)
