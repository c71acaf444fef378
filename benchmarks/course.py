"""What the whole course costs: every lesson executed top to bottom in a fresh kernel, timed lesson by lesson.

    python benchmarks/course.py [notebooks/03_diffedit_editing.ipynb ...] [--threads 1] [--top 3]

Each lesson runs as `make notebooks` runs it (`scripts/nbtools.py`: a fresh kernel started in
notebooks/), but nothing is saved. Prints each lesson's seconds (wall time, kernel start included)
and its slowest cells, then the course's total against issue 14's goals: the whole course in at most
4 minutes, no lesson over 90 s. `--threads 1` gives every kernel one torch thread, as each of `make
test`'s two workers has on a 2-core machine (`conftest.py`); by default torch takes every core.
Run it alone: two torch processes on two cores slow each other several times over.
"""
import argparse, os, sys, time
from pathlib import Path
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import nbtools  # noqa: E402

COURSE_GOAL, LESSON_GOAL = 240, 90   # seconds: issue 14


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("notebooks", nargs="*", help="lessons to run (default: every notebook in notebooks/)")
    ap.add_argument("--threads", type=int, help="torch threads per kernel (OMP_NUM_THREADS); default: torch's own choice")
    ap.add_argument("--top", type=int, default=3, help="slowest cells to list per lesson")
    a = ap.parse_args(argv)
    paths = [Path(p) for p in a.notebooks] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    if a.threads: os.environ["OMP_NUM_THREADS"] = str(a.threads)   # the kernels inherit it
    print(f"{len(paths)} lessons, {a.threads or 'all'} torch thread(s) per kernel, {os.cpu_count()} cores", flush=True)
    times = {}
    for path in paths:
        t0 = time.perf_counter()
        cells = nbtools.cell_seconds(nbtools.execute(path))
        times[path.name] = time.perf_counter() - t0
        print(f"{path.name:<36} {times[path.name]:6.1f} s{'  (over 90 s)' if times[path.name] > LESSON_GOAL else ''}", flush=True)
        for i, s, line in sorted(cells, key=lambda c: -c[1])[:a.top]:
            print(f"    cell {i:>2}: {s:6.1f} s  {line[:70]}")
    total, over = sum(times.values()), [n[:2] for n, s in times.items() if s > LESSON_GOAL]
    print(f"{'the course':<36} {total:6.1f} s = {total / 60:.1f} min; goal {COURSE_GOAL // 60} min: "
          + ("met" if total <= COURSE_GOAL else f"{total / COURSE_GOAL:.1f}x over")
          + f"; lessons over {LESSON_GOAL} s: {', '.join(over) or 'none'}")


if __name__ == "__main__":
    main()
