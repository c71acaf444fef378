"""DDIM inversion: run the deterministic DDIM sampler backwards, from an image to its noise.

DDIM's update from x_s (less noisy, ᾱ_s) to x_t (noisier, ᾱ_t), with the noise ε predicted at x_s:

    x̂_0 = (x_s − sqrt(1 − ᾱ_s) ε) / sqrt(ᾱ_s)
    x_t  = sqrt(ᾱ_t) x̂_0 + sqrt(1 − ᾱ_t) ε

Inverting the same timesteps the sampler will use (DiffEdit §3.2, "DDIM encoding") gives, for
every one of them, a latent that the sampler maps back to (almost) the input image. The first
inverted step starts from the clean latents at the sampler's final ᾱ (`final_alpha_cumprod`).

A model that predicts v = sqrt(ᾱ) ε − sqrt(1 − ᾱ) x_0 instead of ε (SD 2.x at 768x768) has its
output turned into ε̂ and x̂_0 at ᾱ_s first, as diffusers' DDIMInverseScheduler does:
    ε̂ = sqrt(ᾱ_s) v + sqrt(1 − ᾱ_s) x_s,   x̂_0 = sqrt(ᾱ_s) x_s − sqrt(1 − ᾱ_s) v
"""
from __future__ import annotations
from dataclasses import dataclass
import torch
from PIL import Image
from tqdm.auto import tqdm

from .latents import image_to_latents, pil_to_tensor, image_size
from .text import as_prompt_list, encode_prompt, encode_cfg_prompts
from .guidance import cfg
from .chunks import unet_eps

__all__ = ["DDIMInversion", "as_images", "one_per_image", "per_image", "per_image_prompts", "per_image_seeds", "generators", "check_image", "check_unit_interval",
           "encode_image", "sampling_timesteps", "ddim_invert"]


@dataclass
class DDIMInversion:
    """`latents[k]`: the latents at `timesteps[k - 1]` (k >= 1); `latents[0]` the clean latents.

    latents: (K+1) x B x C x h x w (B images); timesteps: K ascending DDIM timesteps;
    `num_inference_steps` is the sampler's step count N (K = max(1, int(N * ratio)), as diffusers counts); prompt: the
    inversion's prompt (a list of one per image for a batch)."""
    latents: torch.Tensor
    timesteps: torch.Tensor
    num_inference_steps: int
    prompt: str | list[str]

    @property
    def noisiest(self) -> torch.Tensor: return self.latents[-1]

    def at(self, t) -> torch.Tensor:
        "The inverted latents at DDIM timestep `t` (0, unless the schedule has a timestep 0: the clean latents)."
        k = (self.timesteps == int(t)).nonzero()
        if not len(k) and int(t) == 0: return self.latents[0]
        if not len(k): raise KeyError(f"timestep {int(t)} was not inverted; inverted: {self.timesteps.tolist()}")
        return self.latents[int(k[0]) + 1]


def as_images(images) -> tuple[list, bool]:
    """Editors take one image or a batch, a list of them; -> (list of images, whether a batch was given).
    A single image gets a single answer, a list a list (one per image, in order). A B x 3 x H x W tensor
    with B > 1 is a batch of B images (a 1 x 3 x H x W tensor, one image)."""
    if isinstance(images, torch.Tensor) and images.ndim == 4 and len(images) > 1:
        return list(images.split(1)), True
    if isinstance(images, (list, tuple)):
        if not images: raise ValueError("no images: give an image, or a non-empty list of images")
        return list(images), True
    if not isinstance(images, (torch.Tensor, Image.Image)):   # a generator, a map, an array: not read as one image
        raise TypeError(f"expected a PIL RGB image, a 1x3xHxW tensor in [-1, 1], or a list of them; got "
                        f"{type(images).__name__} (a batch is a list: list(...) it first)")
    return [images], False


def one_per_image(value) -> bool:
    "Whether `value` gives one value per image: a list, a tuple or a 1-D array (anything else is one for all)."
    return isinstance(value, (list, tuple)) or getattr(value, "ndim", None) == 1


def per_image(value, n: int, name: str) -> list:
    "One value for every image, or a list (tuple, 1-D array) of exactly one per image -> a list of n."
    if not one_per_image(value): return [value] * n
    if len(value) != n: raise ValueError(f"{name}: got {len(value)} for {n} images; give one per image, or a single one for all")
    return list(value)


def per_image_seeds(seed, n: int, per: str = "image") -> list[int]:
    "A seed for every image (an int), or a list of exactly one per image (`per`: or prompt) -> a list of n ints."
    seeds = per_image(seed, n, "seed")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) and not (hasattr(s, "ndim") and s.ndim == 0 and "int" in str(s.dtype)):
            raise TypeError(f"seed: expected an int, or a list of one int per {per}, got {type(s).__name__}"
                            f"{f' of {s.dtype}' if hasattr(s, 'dtype') else ''} (each {per}'s generator is made from its seed)")
    return [int(s) for s in seeds]


def generators(seed: int, n: int) -> list[torch.Generator]:
    "One generator per image, each seeded `seed` (for diffusers' pipelines): in a batch, each image draws what a call of its own would."
    return [torch.Generator().manual_seed(seed) for _ in range(n)]


def per_image_prompts(prompts, n: int, name: str) -> list[str]:
    "A prompt for every image, or a list of one per image -> a list of n prompts."
    prompts = as_prompt_list(prompts, name)
    return prompts * n if len(prompts) == 1 else per_image(prompts, n, name)


def check_unit_interval(name, value, *, closed_right=False):
    "Raise ValueError unless 0 < value < 1 (or <= 1 with `closed_right`)."
    ok = 0 < value <= 1 if closed_right else 0 < value < 1
    if not ok: raise ValueError(f"{name} must be in (0, 1{']' if closed_right else ')'}, got {value}")


def check_image(models, image):
    "A PIL RGB image (or 1x3xHxW tensor in [-1, 1]) of the size the model was built for -> 1x3xHxW tensor."
    size = image_size(models)
    if isinstance(image, torch.Tensor):
        if image.ndim != 4 or len(image) != 1 or image.shape[1] != 3 or tuple(image.shape[2:]) != (size, size):
            raise ValueError(f"expected one image, a 1x3x{size}x{size} tensor, got {tuple(image.shape)} "
                             "(a batch: a list of images, or a Bx3xHxW tensor, given to an editor)")
        lo, hi = float(image.min()), float(image.max())
        if lo < -1.001 or hi > 1.001:
            raise ValueError(f"a tensor image's pixels are in [-1, 1], got values in [{lo:.3g}, {hi:.3g}] "
                             "(from [0, 255]: x / 127.5 - 1; from [0, 1]: 2 x - 1)")
        return image
    if not isinstance(image, Image.Image):
        raise TypeError(f"expected a PIL RGB image or a 1x3x{size}x{size} tensor, got {type(image).__name__}")
    return pil_to_tensor(image, size=size)


def encode_image(models, image) -> torch.Tensor:
    "Checked image, or list of B images -> their clean latents (posterior mean x scaling factor), B x 4 x h x w."
    images, _ = as_images(image)
    return image_to_latents(models, torch.cat([check_image(models, im) for im in images]))


def sampling_timesteps(models, num_inference_steps: int, ratio: float) -> torch.Tensor:
    """The last max(1, int(N * ratio)) of the sampler's N timesteps (descending): where a partial decode runs.
    int, as diffusers' img2img and DiffEdit pipelines count them (N = 25, ratio 0.3: 7 steps, not 8)."""
    check_unit_interval("ratio", ratio, closed_right=True)
    if num_inference_steps < 1: raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
    models.scheduler.set_timesteps(num_inference_steps, device=models.unet.device)
    k = max(1, int(num_inference_steps * ratio))
    return models.scheduler.timesteps[num_inference_steps - k:]


@torch.no_grad()
def ddim_invert(models, image, *, prompt: str = "", num_inference_steps: int = 50, ratio: float = 0.8,
                guidance_scale: float = 1.0, progress: bool = True) -> DDIMInversion:
    """DDIM-encode `image` (or a list of B images, in one UNet call per step) up to `ratio` of the
    sampler's N steps; returns every inverted latent, (K+1) x B x 4 x h x w.

    prompt: the text the inversion is conditioned on ("" in DiffEdit), one for all or one per image;
    guidance_scale 1 = no CFG (inversion with CFG drifts: exactness needs the model used while inverting)."""
    images, batched = as_images(image)
    prompts = per_image_prompts(prompt, len(images), "prompt")
    z = encode_image(models, images)
    ts = sampling_timesteps(models, num_inference_steps, ratio).flip(0)  # ascending
    guided = guidance_scale != 1
    emb = encode_cfg_prompts(models, prompts) if guided else encode_prompt(models, prompts)
    sched, abar = models.scheduler, models.scheduler.alphas_cumprod.to(z.device)
    kind = sched.config.prediction_type
    if kind not in ("epsilon", "v_prediction"):
        raise ValueError(f"DDIM inversion needs a model that predicts epsilon or v, this one predicts {kind!r}")
    out, a_s = [z], sched.final_alpha_cumprod.to(z.device)
    for t, t_int in zip(tqdm(ts, desc="DDIM inversion", disable=not progress, leave=False), ts.tolist()):
        x_in = torch.cat([z] * 2) if guided else z
        eps = unet_eps(models, x_in, t, emb)
        if guided: eps = cfg(*eps.chunk(2), guidance_scale)
        a_t = abar[t_int]
        if kind == "v_prediction": eps, x0 = a_s.sqrt() * eps + (1 - a_s).sqrt() * z, a_s.sqrt() * z - (1 - a_s).sqrt() * eps
        else: x0 = (z - (1 - a_s).sqrt() * eps) / a_s.sqrt()   # x̂_0 from x_s
        z = a_t.sqrt() * x0 + (1 - a_t).sqrt() * eps           # x_t = sqrt(ᾱ_t) x̂_0 + sqrt(1−ᾱ_t) ε
        out.append(z); a_s = a_t
    return DDIMInversion(torch.stack(out), ts.cpu(), num_inference_steps, prompts if batched else prompts[0])
