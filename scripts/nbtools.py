"""Notebook upkeep: execute lessons top to bottom and save them clean (outputs kept, no widgets).

    python scripts/nbtools.py run notebooks/01_sampling_and_guidance.ipynb [...]   (or: make notebooks)
    python scripts/nbtools.py check-env

Runs each notebook in a fresh kernel of this interpreter from notebooks/, then strips its widgets:
the widget state (`metadata.widgets`, blobs that hold every image an explorer drew) and the outputs
that display a widget (progress bars, explorers). Without their state JupyterLab draws each of those
as "Error displaying widget: model not found" until the cell runs again, and other viewers print the
bar's first frame ("0%|"); so a saved lesson shows its text and figures, and its progress bars and
explorers appear when the learner runs it. Lessons are saved only from the locked environment
(requirements/lock.txt): `run` stops if an installed version differs from the lock (`--any-env`
overrides, for experiments not to commit).
"""
import sys, time
from importlib.metadata import version, PackageNotFoundError
from pathlib import Path
import nbformat
from nbconvert.preprocessors import ExecutePreprocessor
from packaging.requirements import Requirement

LOCK = Path(__file__).resolve().parent.parent / "requirements" / "lock.txt"


def lock_mismatches(lock=LOCK):
    "Every package the lock pins for this platform whose installed version differs: [(name, locked, installed)]."
    out = []
    for line in Path(lock).read_text().splitlines():
        if not line or line[0] in " #": continue
        req = Requirement(line.rstrip(" \\"))
        if req.marker is not None and not req.marker.evaluate(): continue
        (pin,) = req.specifier
        try: installed = version(req.name)
        except PackageNotFoundError: installed = None
        if installed != pin.version: out.append((req.name, pin.version, installed))
    return out


def check_env():
    wrong = lock_mismatches()
    for name, locked, installed in wrong: print(f"{name}: locked {locked}, installed {installed or 'nothing'}")
    return not wrong


WIDGET_VIEW, WIDGET_STATE = "application/vnd.jupyter.widget-view+json", "application/vnd.jupyter.widget-state+json"


def strip_widgets(nb):
    "`nb` without widget state and without the outputs that display a widget (they cannot render without it)."
    nb.metadata.pop("widgets", None)
    for c in nb.cells:
        if "outputs" not in c: continue
        c.outputs = [o for o in c.outputs if WIDGET_VIEW not in o.get("data", {})]
        for o in c.outputs: o.get("data", {}).pop(WIDGET_STATE, None)
    return nb


def execute(path, timeout=1800):
    "The notebook at `path` executed top to bottom in a fresh kernel started in its folder (in memory; nothing saved)."
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    ExecutePreprocessor(timeout=timeout, kernel_name="python3").preprocess(nb, {"metadata": {"path": str(path.parent)}})
    return nb


def cell_seconds(nb) -> list:
    "[(cell index, seconds, its first line)] for every executed code cell, from the timings the kernel client records."
    from datetime import datetime
    at = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
    out = []
    for i, c in enumerate(nb.cells):
        e = c.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in e and "shell.execute_reply" in e:
            out.append((i, (at(e["shell.execute_reply"]) - at(e["iopub.execute_input"])).total_seconds(),
                        c.source.strip().splitlines()[0] if c.source.strip() else ""))
    return out


def run(path, timeout=1800):
    t0 = time.time()
    nbformat.write(strip_widgets(execute(path, timeout)), path)
    print(f"{path}: executed in {time.time() - t0:.0f}s")


if __name__ == "__main__":
    cmd, *args = sys.argv[1:] or [""]
    if cmd == "check-env": sys.exit(0 if check_env() else 1)
    if cmd != "run": sys.exit(__doc__)
    paths = [a for a in args if a != "--any-env"]
    if "--any-env" not in args and not check_env():
        sys.exit("This environment is not the lock's: lessons saved from it would differ from what the tests expect. "
                 "Use `make notebooks` (it installs the lock), or pass --any-env for a run not to commit.")
    for p in paths: run(p)
