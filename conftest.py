"""Two things for the whole suite: cores shared out between pytest-xdist's workers, and widgets after Run All.

**Cores.** `make test` runs the suite on 2 workers (`-n 2 --dist loadscope`: each notebook, with its
widget probe, and each test module stays on one worker; the lessons go first, longest first, so that
the two workers finish together: `LONGEST_FIRST`). Each worker, and each lesson kernel it
starts, gets its share of the cores as torch's thread count (`OMP_NUM_THREADS`, which the kernels
inherit): on a 2-core machine one thread each, which does more work per second than two processes of
two threads fighting (~5x slower) or one process of two (the tiny model's small ops use the second
core badly: lesson 7's training step is only 1.4x faster on two threads than on one).

**Widgets after Run All.** nbval runs a lesson top to bottom but never moves a slider.

For every notebook that uses ipywidgets, one more test item runs in nbval's kernel after the last
cell (so every later cell has already rebound whatever names it rebinds, as after Run All). It moves
each control the way a learner would: a numeric control to its maximum, its minimum and back; a
choice to the next option and back; a checkbox off and on. Each move must redraw a figure in the
widget's output and raise nothing.
"""
import json
import os
import sys
import pytest

try:
    from nbval.plugin import IPyNbCell
except ImportError:  # nbval not installed: nothing to add
    IPyNbCell = None

# Kernel-side helpers, defined once in the notebook's kernel under names no lesson uses.
PROBE_SETUP = r'''
def _nbprobe_controls():
    import ipywidgets as w
    from ipywidgets.widgets.widget import _instances
    from ipywidgets.widgets.widget_int import _Int
    from ipywidgets.widgets.widget_float import _Float
    from ipywidgets.widgets.widget_selection import _Selection
    from ipywidgets.widgets.widget_bool import _Bool
    progress = (w.FloatProgress, w.IntProgress)           # tqdm's bars: not controls
    return [x for x in list(_instances.values()) if isinstance(x, (_Int, _Float, _Selection, _Bool))
            and not isinstance(x, progress) and not x.disabled]

def _nbprobe_moves(x):
    "The values a learner would try, ending where the control started."
    from ipywidgets.widgets.widget_selection import _Selection
    from ipywidgets.widgets.widget_bool import _Bool
    if isinstance(x, _Selection): return [("index", (x.index + 1) % len(x.options)), ("index", x.index)] if len(x.options) > 1 else []
    if isinstance(x, _Bool): return [("value", not x.value), ("value", x.value)]
    lo, hi = getattr(x, "min", x.value - 1), getattr(x, "max", x.value + 1)
    moves, now = [], x.value
    for v in (hi, lo, x.value):                            # a move to the value it has is no move: skip it
        if v != now: moves.append(("value", v)); now = v
    return moves

_nbprobe = [(x, _nbprobe_moves(x)) for x in _nbprobe_controls()]
print(__import__("json").dumps([[type(x).__name__, x.description, len(m)] for x, m in _nbprobe]))
'''


def _run(kernel, code, timeout):
    "Execute `code` in nbval's kernel; return the iopub messages it caused."
    msg_id = kernel.execute_cell_input(code, allow_stdin=False)
    kernel.await_reply(msg_id, timeout=timeout)
    msgs = []
    while True:
        msg = kernel.get_message(stream="iopub", timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id: continue
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle": return msgs
        msgs.append(msg)


def _errors(msgs):
    out = [f"{m['content']['ename']}: {m['content']['evalue']}" for m in msgs if m["msg_type"] == "error"]
    return out + [m["content"]["text"] for m in msgs if m["msg_type"] == "stream" and m["content"]["name"] == "stderr"
                  and "Traceback" in m["content"]["text"]]


class WidgetProbe(pytest.Item):
    "Moves every control of a notebook's widgets after Run All; each move must redraw without an error."
    timeout = 300

    def runtest(self):
        kernel = self.parent.kernel
        if kernel is None or not kernel.is_alive(): raise RuntimeError("the notebook's kernel is not running")
        msgs = _run(kernel, PROBE_SETUP, self.timeout)
        if _errors(msgs): raise AssertionError("probe set-up failed: " + "; ".join(_errors(msgs)))
        listing = "".join(m["content"]["text"] for m in msgs if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")
        controls = json.loads(listing.strip().splitlines()[-1])
        assert controls, "the notebook uses ipywidgets but shows no control after Run All"
        problems = []
        for i, (kind, desc, n_moves) in enumerate(controls):
            for j in range(n_moves):
                code = f"_x, _m = _nbprobe[{i}]; setattr(_x, *_m[{j}]); del _x, _m"
                msgs = _run(kernel, code, self.timeout)
                what = f"{kind} {desc!r}, move {j + 1}/{n_moves}"
                if _errors(msgs): problems.append(f"{what}: " + "; ".join(_errors(msgs)))
                elif not any(m["msg_type"] == "display_data" and "image/png" in m["content"]["data"] for m in msgs):
                    problems.append(f"{what}: no figure was redrawn")
        assert not problems, "widgets broken after Run All:\n  " + "\n  ".join(problems)

    def reportinfo(self):
        return self.path, None, f"{self.name}"


def pytest_configure(config):
    "Under xdist, this worker's share of the cores becomes its (and its kernels') torch thread count."
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers <= 1 or "OMP_NUM_THREADS" in os.environ: return   # one process, or the caller chose
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    config.worker_threads = max(1, cores // workers)               # tests/test_environment.py checks it
    os.environ["OMP_NUM_THREADS"] = str(config.worker_threads)
    if "torch" in sys.modules: sys.modules["torch"].set_num_threads(config.worker_threads)


# The lessons, longest first as nbval runs them (one torch thread each: `benchmarks/course.py --nbval`,
# 2026-12-06: 191, 102, 92, 69, 55, 48, 21, 11 s), so that two workers that each take the next lesson
# finish together; a notebook not listed, then every test module, keep their order after these.
LONGEST_FIRST = ("07_", "06_", "01_", "03_", "05_", "02_", "04_", "00_")


def _lesson_rank(item) -> int:
    name = item.path.name
    return next((k for k, p in enumerate(LONGEST_FIRST) if name.startswith(p) and name.endswith(".ipynb")), len(LONGEST_FIRST))


def pytest_collection_modifyitems(session, config, items):
    """Lessons longest first (a stable sort: each notebook's cells keep their order); then, after the
    last cell of each notebook that imports ipywidgets, its widget probe."""
    items[:] = sorted(items, key=_lesson_rank)
    if IPyNbCell is None: return
    last = {}
    for k, item in enumerate(items):
        if isinstance(item, IPyNbCell): last[item.parent] = k
    for nb, k in sorted(last.items(), key=lambda kv: -kv[1]):
        if any("ipywidgets" in c.source for c in nb.nb.cells if c.cell_type == "code"):
            items.insert(k + 1, WidgetProbe.from_parent(nb, name="widgets after Run All"))
