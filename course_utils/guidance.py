"""Guidance rules: how the unconditional and conditional noise predictions are combined.

Classifier-free guidance (Ho & Salimans 2022), with u = eps(x_t, "") and c = eps(x_t, prompt):

    eps = u + s * (c - u)

s = 1 is the plain conditional model; s > 1 pushes along the direction the prompt adds. A
negative prompt simply takes the place of "" in u.

The norm-rescaled rule of the DiffEdit seed notebook: step a fixed *relative* amount g along the
normalised direction, then give the result back the norm of u:

    e = u + g * (c - u) / ||c - u|| * ||u||        eps = e * ||u|| / ||e||

Because ||eps|| = ||u||, the prediction keeps the statistics the scheduler expects however large
g is: useful for the small +/- g (0.15 in the seed) used to contrast two directions, where plain
CFG would need scales whose effect depends on ||c - u||. Norms are taken per image (the seed takes
one norm over the whole batch, which couples the images of a batch).
"""
from __future__ import annotations
import torch

__all__ = ["cfg", "rescaled_guidance", "GUIDANCE", "guide"]


def cfg(u: torch.Tensor, c: torch.Tensor, scale: float) -> torch.Tensor:
    "eps = u + s (c - u)."
    return u + scale * (c - u)


def _norm(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).norm(dim=1).view(-1, *[1] * (x.ndim - 1))


def rescaled_guidance(u: torch.Tensor, c: torch.Tensor, scale: float, eps: float = 1e-8) -> torch.Tensor:
    """e = u + g (c-u)/||c-u|| ||u||;  eps = e ||u|| / ||e||  (norms per image). Worked in float32 and
    returned in u's dtype: in float16 the eps of a zero ||c-u|| (c = u: a prompt that is its own negative)
    would round to 0 and give 0/0."""
    u32, c32 = u.float(), c.float()
    nu = _norm(u32)
    e = u32 + scale * (c32 - u32) / (_norm(c32 - u32) + eps) * nu
    return (e * nu / (_norm(e) + eps)).to(u.dtype)


GUIDANCE = {"cfg": cfg, "rescaled": rescaled_guidance}


def guide(u, c, scale, rule: str = "cfg"):
    "Apply the guidance rule named `rule` ('cfg' or 'rescaled')."
    if rule not in GUIDANCE: raise ValueError(f"unknown guidance {rule!r}; choose one of {sorted(GUIDANCE)}")
    return GUIDANCE[rule](u, c, scale)
