"""Rows per call, bounded by memory: every UNet and VAE call of the helpers goes through `in_chunks`.

A batch of B images is one UNet call per step of (rows per image) x B rows: with guidance 2B, for
DiffEdit's mask 2nB (n = 10 noise samples), for LEDITS++ 1 + (concepts) per image. On a CPU that is
what makes batches fast. On a GPU it can be more than the card holds: SD 1.5 at 512x512 in float16
costs about 60 MB of activations per UNet row (measured on an H100: 3.3 GB for a 20-row call, 2.1 GB
of it the weights), so a DiffEdit mask of ten photos (200 rows) would fill a 15 GB T4; and the VAE
decodes a whole batch of 512x512 images at once.

    models.max_rows = {"unet": 64, "vae": 4}     # rows per call, by hand (absent or None: one call)

By default there is no bound. When a call runs out of GPU memory (CUDA, or Apple's MPS) it is run
again in halves (and halves of those, down to one row), a warning says so, and the size that worked
is kept in `models.max_rows` for every later call (`models.to` forgets it on a move to another device
or dtype). Rows are independent (each image's attention and group norm see its own row alone), so the
result is the same; in float16 on a GPU the kernels change with the row count, which moves results at
rounding level, as any change of batch size does (see the README).
"""
from __future__ import annotations
import warnings
import torch

__all__ = ["in_chunks", "unet_eps", "out_of_memory"]


def out_of_memory(e: BaseException) -> bool:
    "Did a GPU run out of memory? CUDA raises torch.OutOfMemoryError, Apple's MPS a RuntimeError that says so."
    return isinstance(e, torch.OutOfMemoryError) or "MPS backend out of memory" in str(e)


def in_chunks(models, part: str, fn, n: int, rows: int | None = None):
    """fn(i, j) -> a tensor (or a tuple of tensors) for rows i:j of n; the pieces concatenated along rows.

    At most `rows` rows per call (default: `models.max_rows[part]`, and None there means all n at once).
    When the GPU runs out of memory (CUDA or MPS) the rows per call are halved, remembered in
    `models.max_rows[part]`, and the call is made again from where it failed. Any other error goes straight up."""
    k = rows or models.max_rows.get(part) or n
    out, i = [], 0
    while i < n:
        try:
            out.append(fn(i, min(n, i + k)))
            i += k
            continue
        except RuntimeError as e:   # torch.OutOfMemoryError (CUDA) is one; Apple's MPS raises a plain RuntimeError
            if k == 1 or not out_of_memory(e): raise
        # out of the except block: the failed call's tensors (held by its traceback) are free again
        k = (k + 1) // 2
        models.max_rows[part] = k
        warnings.warn(f"out of GPU memory in a {part} call: going on with at most {k} rows per call "
                      f"(models.max_rows[{part!r}] = {k}; set it lower to start there)", RuntimeWarning, stacklevel=3)
        if torch.cuda.is_available(): torch.cuda.empty_cache()
        elif torch.backends.mps.is_available(): torch.mps.empty_cache()
    if len(out) == 1: return out[0]
    return tuple(map(torch.cat, zip(*out))) if isinstance(out[0], tuple) else torch.cat(out)


def unet_eps(models, x: torch.Tensor, t, emb: torch.Tensor, *, store=None, rows: int | None = None):
    """ε_θ(x, t, emb): the UNet's prediction for every row of x (row r conditioned on emb[r]), in calls of
    at most `rows` / `models.max_rows["unet"]` rows. With a cross-attention `store` (attention.py) that the
    UNet fills: (ε, its maps for every row), the store's `mean()` taken call by call."""
    def call(i, j):
        if store is not None: store.clear()
        eps = models.unet(x[i:j], t, encoder_hidden_states=emb[i:j]).sample
        return eps if store is None else (eps, store.mean())
    return in_chunks(models, "unet", call, len(x), rows)
