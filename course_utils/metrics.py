"""Measurements the lessons and benchmarks share: PSNR, IoU, and prompt adherence judged on ToyWorld."""
from __future__ import annotations
import numpy as np
import torch

__all__ = ["psnr", "iou", "mask_iou", "held_out_scenes", "prompt_adherence", "edit_scores", "held_out_edits", "wilson_interval"]

HELD_OUT = 10_000_000  # ToyWorld seeds >= this were never trained on (see toyworld/training.py)


def psnr(a, b, mask=None) -> float:
    """PSNR in dB between two images, over `mask` (H x W) if given. Each is a PIL image, an H x W x 3 uint8
    array, or a [-1, 1] tensor of 3 x H x W (or 1 x 3 x H x W, as `image_to_latents` takes): the two kinds mix."""
    def pixels(x):
        if not isinstance(x, torch.Tensor): return np.asarray(x, np.float64)
        x = x.detach().double().cpu()
        if x.ndim == 4 and len(x) == 1: x = x[0]
        if x.ndim == 3 and x.shape[0] == 3: x = x.permute(1, 2, 0)   # channels last, as PIL's arrays
        return (x.numpy() + 1) * 127.5
    a, b = pixels(a), pixels(b)
    if a.shape != b.shape: raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    err = (a - b) ** 2
    if mask is not None: err = err[np.asarray(mask, bool)]
    mse = err.mean()
    return float("inf") if mse == 0 else float(10 * np.log10(255 ** 2 / mse))


def iou(pred, target) -> float:
    "Intersection over union of two boolean masks."
    p, t = np.asarray(pred, bool), np.asarray(target, bool)
    union = (p | t).sum()
    return float((p & t).sum() / union) if union else 1.0


def mask_iou(mask, region) -> float:
    "IoU of a latent-grid mask (h x w, > 0 inside) with a pixel region, the mask upsampled (nearest) to the region's size."
    import torch.nn.functional as F
    m = torch.as_tensor(mask, dtype=torch.float32).cpu()[None, None]
    return iou(F.interpolate(m, size=np.shape(region), mode="nearest")[0, 0].numpy() > 0, region)


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % (z = 1.96) Wilson score interval of a success rate seen `successes` times in `n`
    trials. With 12 or 24 edits per kind it is wide: 9 / 12 is anywhere from 0.47 to 0.91."""
    if not 0 <= successes <= n: raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0: return (0.0, 1.0)
    p, z2 = successes / n, z * z
    mid = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    lo = 0.0 if successes == 0 else max(0.0, float(mid - half))    # exactly: mid − half is 1e-17 off 0 in floating point
    hi = 1.0 if successes == n else min(1.0, float(mid + half))
    return lo, hi


def held_out_scenes(n: int, offset: int = 5000) -> list:
    "n ToyWorld scenes the model never saw in training."
    from .toyworld import random_scene
    return [random_scene(HELD_OUT + offset + i) for i in range(n)]


def prompt_adherence(models, judge, scenes, *, guidance_scale, num_inference_steps=25, batch_size=50, seed=0,
                     guidance="cfg", progress=False) -> dict:
    """Generate every scene's caption and let the judge read the images.

    Image i draws its noise from seed + i alone (`generate` with one seed per caption), so the images,
    and so the numbers, do not depend on `batch_size`, which only bounds how many are drawn in one call.
    Returns {'attribute_accuracy': mean share of attributes right, 'all_right': share of images
    with every attribute right, 'per_attribute': {name: accuracy}, 'images': [PIL]}."""
    from .sampling import generate
    rows, images = [], []
    for i in range(0, len(scenes), batch_size):
        chunk = scenes[i:i + batch_size]
        ims = generate(models, [s.caption for s in chunk], guidance_scale=guidance_scale, guidance=guidance,
                       num_inference_steps=num_inference_steps, seed=[seed + i + k for k in range(len(chunk))], progress=progress)
        rows += [judge.score(im, s) for im, s in zip(ims, chunk)]
        images += ims
    names = list(rows[0])
    return {"attribute_accuracy": float(np.mean([np.mean(list(r.values())) for r in rows])),
            "all_right": float(np.mean([all(r.values()) for r in rows])),
            "per_attribute": {k: float(np.mean([r[k] for r in rows])) for k in names}, "images": images}


def edit_scores(edit, image, judge) -> dict:
    """How well `image` realises `edit` (a ToyWorld Edit), against its exact ground truth.

    success (strict): the judge reads EVERY attribute of the target scene right (the edit landed
    and nothing else changed) and, inside the edit region, the image is closer (MSE) to the target
    render than to the source render. lenient: only the changed attributes read right, and closer
    (an edit that also breaks something else still counts). judge / kept: the changed attributes
    all read right / the share of unchanged ones read right; psnr_outside: PSNR outside the region
    against the source render (preservation)."""
    from .toyworld import render
    src, tgt = render(edit.source).array.astype(np.float64), render(edit.target).array.astype(np.float64)
    im = np.asarray(image.convert("RGB"), np.float64)
    if im.shape != src.shape: raise ValueError(f"the edited image is {image.size[0]}x{image.size[1]}, ToyWorld's renders "
                                               f"{src.shape[1]}x{src.shape[0]}: edit and score at the renders' size")
    r = edit.region
    changed = [k for k, v in edit.target.attributes().items() if edit.source.attributes()[k] != v]
    read = judge.score(image, edit.target)
    ok_judge = all(read[k] for k in changed)
    closer = ((im[r] - tgt[r]) ** 2).mean() < ((im[r] - src[r]) ** 2).mean()
    return {"success": bool(all(read.values()) and closer), "lenient": bool(ok_judge and closer),
            "judge": bool(ok_judge), "closer": bool(closer), "psnr_outside": psnr(im, src, ~r),
            "kept": float(np.mean([read[k] for k in read if k not in changed]))}


def held_out_edits(kind: str, n: int, offset: int = 30_000) -> list:
    "n applicable held-out edits of `kind` (scenes the model never saw; a seeded choice per scene)."
    from .toyworld import EDITS, random_scene
    if kind not in EDITS: raise ValueError(f"unknown kind of edit {kind!r}; choose one of {list(EDITS)}")
    out, i = [], 0
    while len(out) < n:
        try: out.append(EDITS[kind](random_scene(HELD_OUT + offset + i), np.random.default_rng(i)))
        except ValueError: pass
        i += 1
    return out
