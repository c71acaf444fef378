"""What the benchmarks share: a timer. (diffusers' own pipelines on the same modules: `Models.pipeline`.)"""
import time


def timed(f):
    "(f(), seconds it took)."
    t0 = time.perf_counter(); out = f(); return out, time.perf_counter() - t0
