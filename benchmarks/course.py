"""What the whole course costs: every lesson executed top to bottom in a fresh kernel, timed lesson by lesson.

    python benchmarks/course.py [notebooks/03_diffedit_editing.ipynb ...] [--threads 1] [--top 3]
    python benchmarks/course.py --nbval [--workers 2]

Each lesson runs as `make notebooks` runs it (`scripts/nbtools.py`: a fresh kernel started in
notebooks/), but nothing is saved. Prints each lesson's seconds (wall time, kernel start included)
and its slowest cells, then the course's total against issue 14's goals: the whole course in at most
4 minutes, no lesson over 90 s. `--threads 1` gives every kernel one torch thread, as each of `make
test`'s two workers has on a 2-core machine (`conftest.py`); by default torch takes every core.

`--nbval` runs the lessons as `make test` does instead: pytest's nbval over the notebooks alone, on
`--workers` pytest-xdist workers (one torch thread each on 2 cores; 0: one process), longest lesson
first (conftest.py's order). It prints each lesson's seconds as nbval reports them (its cells and
the widget check, summed: the kernel's start is not in them) and the wall time of the whole run.
Run it alone: two torch processes on two cores slow each other several times over.
"""
import argparse, os, subprocess, sys, tempfile, time
import xml.etree.ElementTree as ET
from pathlib import Path
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import nbtools  # noqa: E402

COURSE_GOAL, LESSON_GOAL = 240, 90   # seconds: issue 14


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("notebooks", nargs="*", help="lessons to run (default: every notebook in notebooks/)")
    ap.add_argument("--threads", type=int, help="torch threads per kernel (OMP_NUM_THREADS); default: torch's own choice, under --nbval conftest.py's share of the cores")
    ap.add_argument("--top", type=int, default=3, help="slowest cells to list per lesson (not with --nbval)")
    ap.add_argument("--nbval", action="store_true", help="run the lessons under nbval, as make test does")
    ap.add_argument("--workers", type=int, default=2, help="with --nbval: pytest-xdist workers (0: one process)")
    a = ap.parse_args(argv)
    paths = [Path(p).resolve() for p in a.notebooks] or sorted((ROOT / "notebooks").glob("*.ipynb"))   # nbval runs from ROOT
    if a.threads: os.environ["OMP_NUM_THREADS"] = str(a.threads)   # the kernels inherit it (and conftest.py keeps it)
    if a.nbval: return nbval(paths, a.workers)
    print(f"{len(paths)} lessons, {a.threads or 'all'} torch thread(s) per kernel, {os.cpu_count()} cores", flush=True)
    times = {}
    for path in paths:
        t0 = time.perf_counter()
        cells = nbtools.cell_seconds(nbtools.execute(path))
        times[path.name] = time.perf_counter() - t0
        print(f"{path.name:<36} {times[path.name]:6.1f} s{'  (over 90 s)' if times[path.name] > LESSON_GOAL else ''}", flush=True)
        for i, s, line in sorted(cells, key=lambda c: -c[1])[:a.top]:
            print(f"    cell {i:>2}: {s:6.1f} s  {line[:70]}")
    print(verdict(times, sum(times.values()), "the course"))


def verdict(times: dict, total: float, what: str) -> str:
    over = [n[:2] for n, t in times.items() if t > LESSON_GOAL]
    return (f"{what:<36} {total:6.1f} s = {total / 60:.1f} min; goal {COURSE_GOAL // 60} min: "
            + ("met" if total <= COURSE_GOAL else f"{total / COURSE_GOAL:.1f}x over")
            + f"; lessons over {LESSON_GOAL} s: {', '.join(over) or 'none'}")


def make_test_options(workers: int) -> list[str]:
    "pytest's options as `make test` gives them (the Makefile's TEST_ARGS, its paths left out), with `workers` xdist workers."
    line = next(l for l in (ROOT / "Makefile").read_text().splitlines() if l.startswith("TEST_ARGS :="))
    return [a for a in line.split(":=", 1)[1].replace("$(WORKERS)", str(workers)).split() if a not in ("notebooks/*.ipynb", "tests")]


def nbval(paths, workers: int):
    "The lessons under nbval as `make test` runs them (Makefile's TEST_ARGS without tests/): seconds per lesson, and the run's wall time."
    xml = Path(tempfile.mkdtemp()) / "nbval.xml"
    cmd = [sys.executable, "-m", "pytest", *map(str, paths), *make_test_options(workers), "-q", f"--junitxml={xml}"]
    print(f"{len(paths)} lessons under nbval, {workers or 'no'} xdist workers, {os.cpu_count()} cores", flush=True)
    t0 = time.perf_counter()
    rc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"}).returncode
    wall = time.perf_counter() - t0
    times = {}
    for case in ET.parse(xml).iter("testcase"):
        name = case.get("classname").removeprefix("notebooks.")
        times[name] = times.get(name, 0.0) + float(case.get("time"))
    for name, t in sorted(times.items()):
        print(f"{name:<36} {t:6.1f} s{'  (over 90 s)' if t > LESSON_GOAL else ''}")
    print(f"{'the lessons, one after another':<36} {sum(times.values()):6.1f} s")
    print(verdict(times, wall, f"the run, {workers or 1} at a time"))
    if rc: sys.exit(f"nbval failed (exit {rc}): the times above are of a failing run")


if __name__ == "__main__":
    main()
