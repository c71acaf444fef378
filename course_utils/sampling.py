"""Text-to-image sampling, written out: the denoising loop with classifier-free guidance.

    z_T ~ N(0, I) * sigma_init
    for t in the scheduler's timesteps:
        u, c = eps_theta([z_t, z_t], t, [e_neg, e_prompt])     # ONE batched UNet call
        eps  = u + s (c - u)                                     # guidance rule (guidance.py)
        z_{t-1} = scheduler.step(eps, t, z_t)
    x = D(z_0 / scaling_factor)

With the same weights, scheduler, steps, seed and scale this reproduces diffusers'
`StableDiffusionPipeline` (tests/test_sampling.py checks the final latents). One difference:
the pipeline skips guidance for every scale <= 1; here any scale other than 1 is applied.
"""
from __future__ import annotations
import torch
from tqdm.auto import tqdm

from .text import as_prompt_list, encode_prompt, encode_cfg_prompts
from .guidance import guide, GUIDANCE
from .latents import latents_to_pil
from .inversion import one_per_image, per_image, per_image_seeds
from .chunks import unet_eps

__all__ = ["initial_latents", "denoise", "generate"]


def initial_latents(models, n: int, generator) -> torch.Tensor:
    """n x C x h x w Gaussian latents (drawn with `generator`, or a list of n generators, one per
    row), scaled by the scheduler's init sigma."""
    from diffusers.utils.torch_utils import randn_tensor
    u = models.unet
    shape = (n, u.config.in_channels, u.config.sample_size, u.config.sample_size)
    return randn_tensor(shape, generator=generator, device=u.device, dtype=u.dtype) * models.scheduler.init_noise_sigma


@torch.no_grad()
def denoise(models, latents, emb, *, guidance_scale=7.5, guidance="cfg", timesteps=None, generator=None,
            progress=True, callback=None) -> torch.Tensor:
    """Run the sampling loop from `latents` over `timesteps` (default: all the scheduler's).

    emb: 2B x L x D ([uncond ; cond]) for guidance, or B x L x D to use the conditional model alone.
    callback(i, t, latents), if given, is called after every step; if it returns a tensor, that
    tensor replaces the latents (DiffEdit uses this to restore the outside of its mask)."""
    sched = models.scheduler
    timesteps = sched.timesteps if timesteps is None else timesteps
    if len(emb) not in (len(latents), 2 * len(latents)):
        raise ValueError(f"emb has {len(emb)} rows for {len(latents)} latents: give B (no guidance) or 2B ([uncond ; cond])")
    guided = len(emb) == 2 * len(latents)
    for i, t in enumerate(tqdm(timesteps, desc="sampling", disable=not progress, leave=False)):
        x_in = torch.cat([latents] * 2) if guided else latents
        x_in = sched.scale_model_input(x_in, t)
        eps = unet_eps(models, x_in, t, emb)                # the UNet (chunks.py: in pieces if memory is short)
        if guided:
            u, c = eps.chunk(2)
            eps = guide(u, c, guidance_scale, guidance)
        latents = sched.step(eps, t, latents, eta=0.0, generator=generator).prev_sample
        if callback is not None:
            out = callback(i, t, latents)
            if out is not None: latents = out
    return latents


def generate(models, prompts, *, guidance_scale: float | list[float] = 7.5, num_inference_steps: int = 50, negative_prompt=None,
             seed: int | list[int] = 0, guidance: str = "cfg", generator: torch.Generator | None = None,
             return_latents: bool = False, progress: bool = True):
    """Text -> images with the parts in `models` (a `Models` bundle).

    prompts: str or list of str. negative_prompt: None, a str, or one per prompt (replaces "" in
    the unconditional branch). guidance: 'cfg' or 'rescaled' (see guidance.py). The noise comes
    from `generator` (one for all, or a list of one per prompt), or from a CPU generator seeded with `seed`
    (as diffusers' examples do); with a list of seeds, one per prompt, each image draws its own noise and
    comes out as it would alone.
    guidance_scale: one for all, or one per prompt, a list or 1-D array (e.g. one prompt at several scales, in one batch).
    Returns a list of PIL images, or (images, final latents B x 4 x h x w) with `return_latents`."""
    prompts = as_prompt_list(prompts)
    if guidance not in GUIDANCE: raise ValueError(f"unknown guidance {guidance!r}; choose one of {sorted(GUIDANCE)}")
    if num_inference_steps < 1: raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
    if one_per_image(seed):
        if generator is not None: raise ValueError("give a generator or a list of seeds, not both")
        if len(seed) != len(prompts): raise ValueError(f"seed: got {len(seed)} for {len(prompts)} prompts; give one per prompt")
        g = [torch.Generator().manual_seed(s) for s in per_image_seeds(seed, len(prompts), "prompt")]
    elif isinstance(generator, (list, tuple)):
        if len(generator) != len(prompts):
            raise ValueError(f"generator: got {len(generator)} for {len(prompts)} prompts; give one per prompt, or a single one for all")
        g = list(generator)
    else:
        g = generator if generator is not None else torch.Generator().manual_seed(per_image_seeds(seed, 1, "prompt")[0])
    scales = per_image(guidance_scale, len(prompts), "guidance_scale")
    plain = guidance == "cfg" and all(s == 1 for s in scales) and negative_prompt is None  # u + 1 (c - u) = c
    emb = encode_prompt(models, prompts) if plain else encode_cfg_prompts(models, prompts, negative_prompt)
    models.scheduler.set_timesteps(num_inference_steps, device=models.unet.device)
    latents = initial_latents(models, len(prompts), g)
    if one_per_image(guidance_scale):               # B x 1 x 1 x 1: each image's own scale
        guidance_scale = torch.tensor([float(s) for s in scales], dtype=latents.dtype, device=latents.device).view(-1, 1, 1, 1)
    latents = denoise(models, latents, emb, guidance_scale=guidance_scale, guidance=guidance, generator=g,
                      progress=progress)
    images = latents_to_pil(models, latents)
    return (images, latents) if return_latents else images
