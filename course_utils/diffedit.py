"""DiffEdit (Couairon et al. 2022, arXiv 2210.11427): the model tells where an edit must happen.

§3.1, the mask. Noise the image's latents halfway (strength 0.5), predict the noise conditioned on
a reference prompt R and on a query prompt Q, for n noise samples, and look where the two
predictions differ:

    D = mean_i  mean_channels | ε(x_t^i, t, Q) − ε(x_t^i, t, R) |          (h x w)
    D ← min(D, ratio · mean(D))           remove extremes
    M = (D − min D) / (max D − min D)     rescale to [0, 1];  binary mask: M > threshold (0.5)

Optionally (`grow`, not in the paper) the binary mask grows by hysteresis, as Canny's edge detector
keeps weak edges: a cell with M > grow joins it where it connects (8-neighbours) to cells above the
threshold, so the faint rim of a change is kept without letting in faint cells elsewhere.

All 2n predictions come from ONE batched UNet call (in pieces only when GPU memory runs out:
chunks.py). With CFG the unconditional prediction cancels in the difference (ε_Q − ε_R = s (c_Q − c_R)),
and the rescaling removes s: the mask does not depend on the guidance scale, so none is computed.

The seed notebook's single-prompt variant contrasts +g and −g of the norm-rescaled rule for one
prompt (`guidance.rescaled_guidance`): where the prompt matters, the two predictions disagree.

§3.2–3.3, the edit. DDIM-encode the image with the empty prompt up to ratio r, then decode with Q
and, after every step, put back the *inverted latents of the same timestep* outside the mask.
(diffusers' pipeline blends with the latents one step noisier than its step's output.)
Comparisons: the seed's blend with the clean latents, and plain img2img (SDEdit), no mask.

Batches: every function takes one image, or B images as a list or a B x 3 x H x W tensor (a prompt,
mask or seed for all, or a list of one per image), and runs them in one UNet call per step; a batch
gets a list back. Each image draws its noise from its own seed, so a batch gives, image by image, what
B single calls give (to float32 rounding; in float16 on a GPU, whose kernels change with the batch size,
0.4-0.6 % off on random weights).
"""
from __future__ import annotations
from dataclasses import dataclass
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .text import encode_prompt, encode_cfg_prompts
from .guidance import rescaled_guidance
from .chunks import unet_eps
from .inversion import (per_image_seeds, ddim_invert, check_unit_interval, encode_image, sampling_timesteps, DDIMInversion, as_images,
                        per_image, per_image_prompts, generators)
from .sampling import denoise
from .latents import latents_to_pil

__all__ = ["DiffEditMask", "hysteresis", "diffedit_mask", "diffedit_mask_single_prompt", "latent_mask", "diffedit", "img2img", "diffusers_diffedit",
           "diffusers_diffedit_edit", "diffusers_diffedit_decode", "BLENDS"]


def hysteresis(soft: torch.Tensor, threshold: float, grow: float | None = None) -> torch.Tensor:
    "h x w soft mask -> bool: soft > threshold, grown through 8-connected cells with soft > grow (None: no growth)."
    binary = soft > threshold
    if grow is None: return binary
    weak = soft > grow
    while True:   # flood fill, one ring of neighbours per round
        grown = binary | (weak & (F.max_pool2d(binary[None, None].float(), 3, 1, 1)[0, 0] > 0))
        if torch.equal(grown, binary): return binary
        binary = grown


@dataclass
class DiffEditMask:
    "soft: h x w in [0, 1]; binary: h x w bool (latent grid). `upsampled(size)` for display/scoring."
    soft: torch.Tensor
    binary: torch.Tensor
    threshold: float
    grow: float | None = None

    def upsampled(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        "(soft, binary) at size x size: the soft mask bilinearly resized, then thresholded (and grown) alike."
        soft = F.interpolate(self.soft[None, None], size=(size, size), mode="bilinear", align_corners=False)[0, 0]
        return soft, hysteresis(soft, self.threshold, self.grow)


def _noised(models, images, n, strength, seeds, num_inference_steps):
    """n noised copies of each image's latents at the DDIM timestep `strength` of the way up, image by
    image ((B n) x C x h x w, each image's noise from its own seed), and that t."""
    check_unit_interval("strength", strength)
    if n < 1: raise ValueError(f"n (noise samples) must be >= 1, got {n}")
    z = encode_image(models, images)
    t = sampling_timesteps(models, num_inference_steps, strength)[0]
    noise = torch.cat([torch.randn((n, *z.shape[1:]), generator=torch.Generator().manual_seed(s)) for s in seeds])
    z = z.repeat_interleave(n, 0)
    return models.scheduler.add_noise(z, noise.to(z.device, z.dtype), t.expand(len(z))), t


def _to_mask(diff: torch.Tensor, threshold: float, clip_ratio: float, grow: float | None = None) -> DiffEditMask:
    "n x C x h x w differences -> the rescaled soft mask and the binary mask."
    d = diff.abs().float().mean(dim=(0, 1))               # mean over samples and channels: h x w
    d = d.clamp(max=clip_ratio * d.mean())                # remove extremes
    soft = ((d - d.min()) / (d.max() - d.min()).clamp(min=1e-12)).cpu()  # rescale to [0, 1]
    return DiffEditMask(soft, hysteresis(soft, threshold, grow), threshold, grow)


def _masks(models, image, prompts, n, strength, seed, num_inference_steps, chunk, difference, threshold, clip_ratio, grow):
    "The masks of one image or a list: one UNet call of 2 (B n) rows; `difference(first half, second half)` of its eps."
    images, batched = as_images(image)
    thresholds, grows = per_image(threshold, len(images), "threshold"), per_image(grow, len(images), "grow")
    for th, g in zip(thresholds, grows):
        check_unit_interval("threshold", th)
        if g is not None and not 0 <= g <= th: raise ValueError(f"grow must lie in [0, threshold = {th}], got {g}")
    x, t = _noised(models, images, n, strength, per_image_seeds(seed, len(images)), num_inference_steps)
    emb = prompts(len(images)).repeat_interleave(n, 0)    # [a_1 x n, ..., a_B x n ; b_1 x n, ..., b_B x n]
    eps_a, eps_b = unet_eps(models, torch.cat([x, x]), t, emb, rows=chunk).chunk(2)
    diffs = difference(eps_a, eps_b).unflatten(0, (len(images), n))
    masks = [_to_mask(d, th, clip_ratio, g) for d, th, g in zip(diffs, thresholds, grows)]
    return masks if batched else masks[0]


@torch.no_grad()
def diffedit_mask(models, image, reference_prompt: str, query_prompt: str, *, n: int = 10, strength: float = 0.5,
                  threshold: float = 0.5, guidance_scale: float = 7.5, seed: int = 0, num_inference_steps: int = 50,
                  clip_ratio: float = 3.0, chunk: int | None = None, grow: float | None = None) -> DiffEditMask | list[DiffEditMask]:
    """The DiffEdit mask of `image` for the change reference_prompt -> query_prompt.

    image: PIL RGB of the model's size (64x64 toy, 512x512 SD), or a list of B of them with a prompt
    (and seed, threshold, grow) for all or one per image: a list of masks back. n noise samples per image at
    `strength`, all in one batched UNet call of 2nB rows (`chunk` bounds the rows per call; by default
    `models.max_rows`, see chunks.py). `grow`: a lower threshold for hysteresis (`hysteresis`; None,
    the paper's mask: none). guidance_scale is accepted for parity with diffusers' generate_mask; it
    cancels out (see the module doc)."""
    prompts = lambda b: encode_prompt(models, per_image_prompts(reference_prompt, b, "reference_prompt") +
                                      per_image_prompts(query_prompt, b, "query_prompt"))
    return _masks(models, image, prompts, n, strength, seed, num_inference_steps, chunk, lambda r, q: q - r, threshold,
                  clip_ratio, grow)


@torch.no_grad()
def diffedit_mask_single_prompt(models, image, prompt: str, *, g: float = 0.15, n: int = 10, strength: float = 0.5,
                                threshold: float = 0.5, seed: int = 0, num_inference_steps: int = 50,
                                clip_ratio: float = 3.0, chunk: int | None = None,
                                grow: float | None = None) -> DiffEditMask | list[DiffEditMask]:
    """The seed's variant: one prompt, contrasting +g and −g of the norm-rescaled guidance rule.

    Same post-processing and batching as `diffedit_mask` (the seed decodes its differences to pixels
    and sums them; here they stay on the latent grid)."""
    prompts = lambda b: encode_cfg_prompts(models, per_image_prompts(prompt, b, "prompt"))     # [uncond ; cond]
    diff = lambda u, c: rescaled_guidance(u, c, g) - rescaled_guidance(u, c, -g)
    return _masks(models, image, prompts, n, strength, seed, num_inference_steps, chunk, diff, threshold, clip_ratio, grow)


def latent_mask(mask, like: torch.Tensor, cover: float = 0.5) -> torch.Tensor:
    """A DiffEditMask, a bool or float array or a PIL mask image (white = edit), at latent or image size ->
    1 x 1 x h x w float (1 = edit), on `like`'s grid, device and dtype. An image-size mask marks a latent
    cell when it covers more than `cover` of it (0.5: most of it; 0: any pixel of it); a latent-size float
    mask is kept as it is (soft values in [0, 1] blend: m · edited + (1 − m) · kept)."""
    m = mask.binary if isinstance(mask, DiffEditMask) else mask
    if isinstance(m, Image.Image): m = np.asarray(m.convert("L"), np.float32) / 255   # a mask image: white = edit
    if m is None: raise ValueError("mask is None: give a mask (1 = edit), or blend='none' to edit without one")
    m = torch.as_tensor(m).float()
    h, w = like.shape[-2:]
    k = m.shape[0] // h if m.ndim == 2 else 0                          # 1: the latent grid; the VAE's factor: the image
    if k < 1 or tuple(m.shape) != (k * h, k * w):
        raise ValueError(f"mask must be {h}x{w} (the latent grid) or the image's size ({h}k x {w}k), got shape {tuple(m.shape)}")
    if m.min() < 0 or m.max() > 1:
        raise ValueError(f"mask values must be in [0, 1] (bool, or floats: 1 = edit), got [{float(m.min()):g}, {float(m.max()):g}] "
                         "(an array of 0 and 255: mask > 127)")
    if tuple(m.shape) != (h, w):
        m = F.interpolate(m[None, None], size=(h, w), mode="area")[0, 0]  # share of each latent cell
        m = (m > cover).float()
    return m[None, None].to(like.device, like.dtype)


BLENDS = ("inverted", "clean", "none")


@torch.no_grad()
def diffedit(models, image, query_prompt: str, mask, *, ratio: float = 0.8, guidance_scale: float = 7.5,
             num_inference_steps: int = 50, inversion_prompt: str = "", negative_prompt=None, blend: str = "inverted",
             inversion: DDIMInversion | None = None, return_latents: bool = False, progress: bool = True):
    """Edit `image` towards `query_prompt` inside `mask` (DiffEdit §3.2-3.3).

    mask: a DiffEditMask, or a bool/float h x w (latent grid) or H x W (image) array, 1 = edit (floats in
    [0, 1]), or a PIL mask image (white = edit, as diffusers' inpainting takes it); None with blend='none'.
    blend: 'inverted' (the paper: outside the mask, the DDIM-inverted latents of the same
    timestep), 'clean' (the seed: the clean latents at every step), 'none' (no mask).
    Pass `inversion` to reuse a `ddim_invert` result of the same N and this ratio or a larger one:
    DDIM inversion is deterministic, so a longer one holds every shorter one as its first steps
    (one inversion to ratio 0.9 serves edits at 0.3, 0.5, 0.7 and 0.9).
    A batch: a list of B images, with a prompt and mask for all or a list of one per image (and an
    inversion of the same B images); returns a list of B images (and B x 4 x h x w latents)."""
    if blend not in BLENDS: raise ValueError(f"unknown blend {blend!r}; choose one of {BLENDS}")
    images, batched = as_images(image)
    queries = per_image_prompts(query_prompt, len(images), "query_prompt")
    masks = per_image(mask, len(images), "mask") if batched else [mask]
    ts = sampling_timesteps(models, num_inference_steps, ratio)
    grid = torch.empty((models.unet.config.sample_size,) * 2, device=models.unet.device)   # the latent grid
    m = torch.cat([torch.ones_like(grid)[None, None] if blend == "none" and mk is None else latent_mask(mk, grid)
                   for mk in masks])                                 # B x 1 x h x w, checked before any UNet call
    if inversion is None:
        inversion = ddim_invert(models, images, prompt=inversion_prompt, num_inference_steps=num_inference_steps,
                                ratio=ratio, progress=progress)
    elif not isinstance(inversion, DDIMInversion):
        raise TypeError(f"inversion must come from ddim_invert, got {type(inversion).__name__}")
    elif inversion.num_inference_steps != num_inference_steps or len(inversion.timesteps) < len(ts):
        raise ValueError(f"the inversion was made with other steps ({len(inversion.timesteps)} of "
                         f"{inversion.num_inference_steps}; this edit needs {len(ts)} of {num_inference_steps}): "
                         "pass the same num_inference_steps and a ratio at least this edit's")
    elif inversion.latents.shape[1] != len(images):
        raise ValueError(f"the inversion holds {inversion.latents.shape[1]} images, the edit {len(images)}")
    elif inversion_prompt and per_image_prompts(inversion_prompt, len(images), "inversion_prompt") != \
            per_image_prompts(inversion.prompt, len(images), "inversion.prompt"):
        raise ValueError(f"inversion_prompt {inversion_prompt!r} is not the prompt the given inversion was made "
                         f"with ({inversion.prompt!r}): leave it out, or invert again with it")
    inv = inversion.latents[:len(ts) + 1]                             # its first len(ts) steps: this ratio's
    m = m.to(inv.dtype)
    sched = models.scheduler
    sched.set_timesteps(num_inference_steps, device=models.unet.device)  # ddim_invert may have reset it

    def keep_outside(i, t, z):
        if blend == "none": return None
        # after the step at ts[i], z lives at the next (less noisy) timestep: inverted latents index K-1-i
        ref = inv[len(ts) - 1 - i] if blend == "inverted" else inv[0]
        return m * z + (1 - m) * ref

    emb = encode_cfg_prompts(models, queries, negative_prompt)
    z = denoise(models, inv[-1], emb, guidance_scale=guidance_scale, timesteps=ts, progress=progress,
                callback=keep_outside)
    out = latents_to_pil(models, z)
    out = out if batched else out[0]
    return (out, z) if return_latents else out


@torch.no_grad()
def img2img(models, image, prompt: str, *, strength: float = 0.8, guidance_scale: float = 7.5,
            num_inference_steps: int = 50, negative_prompt=None, seed: int = 0, return_latents: bool = False,
            progress: bool = True):
    """SDEdit: noise the image's latents to `strength` of the way, then sample with `prompt` (no mask).

    image: PIL RGB of the model's size -> the edited image (and its 1 x 4 x h x w latents with
    `return_latents`). A batch: a list of B images with a prompt and seed for all or one per image,
    in one UNet call per step (2B rows with guidance) -> a list of B images (and B x 4 x h x w
    latents); each image's noise comes from its own seed, so it comes out as it would alone."""
    check_unit_interval("strength", strength, closed_right=True)
    images, batched = as_images(image)
    prompts = per_image_prompts(prompt, len(images), "prompt")
    z0 = encode_image(models, images)
    ts = sampling_timesteps(models, num_inference_steps, strength)
    gens = [torch.Generator().manual_seed(s) for s in per_image_seeds(seed, len(images))]
    noise = torch.cat([torch.randn((1, *z0.shape[1:]), generator=g) for g in gens]).to(z0.device, z0.dtype)
    z = models.scheduler.add_noise(z0, noise, ts[:1])
    emb = encode_cfg_prompts(models, prompts, negative_prompt)
    z = denoise(models, z, emb, guidance_scale=guidance_scale, timesteps=ts, generator=gens, progress=progress)
    out = latents_to_pil(models, z)
    out = out if batched else out[0]
    return (out, z) if return_latents else out


def diffusers_diffedit(models):
    """diffusers' `StableDiffusionDiffEditPipeline` on the same modules (DDIM, and DDIM inverse for its
    `invert`), to compare with."""
    from diffusers import StableDiffusionDiffEditPipeline, DDIMInverseScheduler
    return models.pipeline(StableDiffusionDiffEditPipeline,
                           inverse_scheduler=DDIMInverseScheduler.from_config(models.scheduler.config))


def diffusers_diffedit_edit(pipe, image, source_prompt, target_prompt, *, n: int = 10, strength: float = 0.5,
                            mask_steps: int = 50, ratio: float = 0.8, num_inference_steps: int = 25,
                            guidance_scale: float = 7.5, seed: int = 0, output_type: str = "pil"):
    """An edit with diffusers' DiffEdit pipeline (`diffusers_diffedit(models)`), as this course compares it:
    `generate_mask` (n maps at `strength`, over a `mask_steps` schedule), `invert` with the empty prompt to
    `ratio`, then the masked decoding, one generator seeded `seed` for all three.
    A batch: a list of B images, with a source and target prompt for all or one per image. The masks are
    made image by image (`generate_mask` scales every map of a batch by the batch's mean, so a batch would
    change each mask); `invert` and the decoding take the whole batch, each image with a generator of its
    own in the state its single edit leaves it, so that each image comes out as its single edit (to float
    rounding).
    -> (the edited image, or latents with output_type="latent"; its mask, h x w of 0 and 1 as `generate_mask` gives it);
    for a batch, (B images or B x 4 x h x w latents, B masks)."""
    images, batched = as_images(image)
    B = len(images)
    sources, targets = per_image_prompts(source_prompt, B, "source_prompt"), per_image_prompts(target_prompt, B, "target_prompt")
    gs = generators(seed, B)
    masks = np.concatenate([pipe.generate_mask(image=im, source_prompt=s, target_prompt=t, num_maps_per_mask=n,
                                               mask_encode_strength=strength, num_inference_steps=mask_steps,
                                               guidance_scale=guidance_scale, generator=g)
                            for im, s, t, g in zip(images, sources, targets, gs)])          # B x h x w
    out = diffusers_diffedit_decode(pipe, images, targets, masks, ratio=ratio, num_inference_steps=num_inference_steps,
                                    guidance_scale=guidance_scale, generator=gs, output_type=output_type)
    if batched: return out, list(masks)
    return (out if output_type == "latent" else out[0]), masks[0]


def diffusers_diffedit_decode(pipe, images, target_prompt, masks, *, ratio: float = 0.8, num_inference_steps: int = 25,
                              guidance_scale: float = 7.5, generator=None, output_type: str = "pil"):
    """diffusers' DiffEdit after its mask: `invert` the B images with the empty prompt to `ratio`, then the
    masked decoding with the target prompt (one for all, or one per image) and the masks (one h x w for
    all, or B of them; 1 = re-generate). `generator`: one per image (`inversion.generators`: `invert`
    samples the VAE's posterior, so each image needs its own to come out as alone), or None for fresh
    ones seeded 0.
    -> B images (a list), or B x 4 x h x w latents with output_type="latent"."""
    images, _ = as_images(images)
    B = len(images)
    targets = per_image_prompts(target_prompt, B, "target_prompt")
    masks = masks if np.ndim(masks) == 2 else list(masks)               # one h x w mask: every image's
    masks = np.stack([np.asarray(mk, dtype=np.float32) for mk in per_image(masks, B, "masks")])
    gs = generators(0, B) if generator is None else generator
    lat = pipe.invert(image=images, prompt=[""] * B, inpaint_strength=ratio, num_inference_steps=num_inference_steps,
                      generator=gs).latents
    out = pipe(prompt=targets, mask_image=masks, image_latents=lat, inpaint_strength=ratio, guidance_scale=guidance_scale,
               num_inference_steps=num_inference_steps, generator=gs, output_type=output_type).images
    return out if output_type == "latent" else list(out)
