"""Equality to float tolerance, for results computed two ways (in a batch or alone, in chunks or in one call).

A batched convolution rounds differently from a single one (~1e-6 relative; which kernel oneDNN picks
depends on the batch size, the thread count and the CPU), and inversion, guidance (s = 7.5) or a
mask's difference of two noise predictions on random weights amplify that: 1e-6..3e-4 of the
result's norm measured across the suite (2026-12-06, one and two threads, AVX-512). A wrong seed,
prompt, mask or image per row is off by 10 % or more, so a relative bound of 1e-3 on the whole tensor
(3e-3 after a DDIM inversion and guidance 7.5) tells the two apart with room on either side."""
import torch


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    "‖a − b‖ / ‖b‖ over the whole tensor."
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def close(a: torch.Tensor, b: torch.Tensor, rel: float = 1e-3):
    "Assert ‖a − b‖ / ‖b‖ <= rel over the whole tensor (shapes must match)."
    assert a.shape == b.shape, (a.shape, b.shape)
    err = rel_err(a, b)
    assert err <= rel, f"relative error {err:.1e} > {rel:.0e}"


def distinct(rows, rel: float = 0.1):
    "Assert every two of `rows` (a batch's per-image results) differ by more than rel: a row swapped or shared would fail close()."
    rows = list(rows)
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            assert rel_err(rows[i], rows[j]) > rel, f"rows {i} and {j} are within {rel:.0e} of each other"
