"""What the benchmarks share: timers. (diffusers' own pipelines on the same modules: `Models.pipeline`.)"""
import time


def timed(f):
    "(f(), seconds it took)."
    t0 = time.perf_counter(); out = f(); return out, time.perf_counter() - t0


class ModuleClock:
    """Seconds spent inside the forward of any of `modules`, summed (forward pre- and post-hooks; the
    modules must not call one another). `remove()` takes the hooks off."""
    def __init__(self, *modules):
        self.total, self._t0 = 0.0, None
        self._hooks = [h for mod in modules for h in (mod.register_forward_pre_hook(self._start), mod.register_forward_hook(self._stop))]
    def _start(self, *a): self._t0 = time.perf_counter()
    def _stop(self, *a): self.total += time.perf_counter() - self._t0
    def remove(self): [h.remove() for h in self._hooks]
