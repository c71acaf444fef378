"""Equality to float tolerance, for results computed two ways (in a batch or alone, in chunks or in one call).

A batched convolution rounds differently from a single one (~1e-6 relative; which kernel oneDNN picks
depends on the batch size and the CPU), and inversion, guidance (s = 7.5) or a mask's difference of
two noise predictions on random weights amplify that to ~1e-5..1e-4 of the result's norm. A wrong
seed, prompt, mask or image per row is off by 10 % or more, so a relative bound of 1e-4..1e-3 on
the whole tensor tells the two apart on any CPU."""
import torch


def close(a: torch.Tensor, b: torch.Tensor, rel: float = 1e-4):
    "Assert ‖a − b‖ / ‖b‖ <= rel over the whole tensor (shapes must match)."
    assert a.shape == b.shape, (a.shape, b.shape)
    err = ((a.float() - b.float()).norm() / b.float().norm()).item()
    assert err <= rel, f"relative error {err:.1e} > {rel:.0e}"
