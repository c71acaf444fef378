"""Notebook upkeep: execute lessons top to bottom and save them clean (outputs kept, no widget state).

    python scripts/nbtools.py run notebooks/01_sampling_and_guidance.ipynb [...]

Runs each notebook in a fresh kernel from notebooks/, then strips `metadata.widgets` (widget state
blobs) so that saved lessons carry their outputs but no widget state.
"""
import sys, time
from pathlib import Path
import nbformat
from nbconvert.preprocessors import ExecutePreprocessor


def strip_widget_state(nb):
    nb.metadata.pop("widgets", None)
    for c in nb.cells:
        for o in c.get("outputs", []):
            o.get("data", {}).pop("application/vnd.jupyter.widget-state+json", None)
    return nb


def run(path, timeout=1800):
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    t0 = time.time()
    ExecutePreprocessor(timeout=timeout, kernel_name="python3").preprocess(nb, {"metadata": {"path": str(path.parent)}})
    nbformat.write(strip_widget_state(nb), path)
    print(f"{path}: executed in {time.time() - t0:.0f}s")


if __name__ == "__main__":
    cmd, *paths = sys.argv[1:]
    if cmd != "run": sys.exit(__doc__)
    for p in paths: run(p)
