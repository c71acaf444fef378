"""Images <-> latents through the VAE.

    z = E(x) * s        x = D(z / s)        s = vae.config.scaling_factor

`s` (0.18215 for SD 1.x, measured for the toy model) scales latents to about unit variance, which
the noise schedule assumes. Pixels are in [-1, 1] inside, PIL RGB outside.
"""
from __future__ import annotations
import numpy as np
import torch
from PIL import Image

from .chunks import in_chunks

__all__ = ["pil_to_tensor", "tensor_to_pil", "image_to_latents", "latents_to_images", "latents_to_pil"]


def pil_to_tensor(images, size: int | None = None) -> torch.Tensor:
    """PIL image(s) -> B x 3 x H x W float tensor in [-1, 1].

    `size`: the side the model expects; an image of another size is an error (resize it first)."""
    if isinstance(images, Image.Image): images = [images]
    arrs = []
    for im in images:
        if not isinstance(im, Image.Image): raise TypeError(f"expected PIL images, got {type(im).__name__}")
        if im.mode != "RGB":
            raise ValueError(f"expected an RGB image, got mode {im.mode!r}: use course_utils.load_photo(image, models)")
        if size is not None and im.size != (size, size):
            raise ValueError(f"expected a {size}x{size} image, got {im.size[0]}x{im.size[1]}: "
                             f"use course_utils.load_photo(image, models) (centre crop + resize to {size}x{size})")
        arrs.append(np.asarray(im, np.float32))
    if len({a.shape for a in arrs}) > 1: raise ValueError("all images must have the same size")
    return torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2) / 127.5 - 1


def tensor_to_pil(x: torch.Tensor) -> list[Image.Image]:
    "B x 3 x H x W tensor in [-1, 1] -> list of PIL RGB images."
    x = ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(a, "RGB") for a in x]


def image_size(models) -> int:
    """The image side the model was built for: the UNet's latent side times the VAE's downsampling, as
    diffusers' pipelines compute it (a VAE config's own sample_size is not reliable on the hub)."""
    return int(models.unet.config.sample_size) * 2 ** (len(models.vae.config.block_out_channels) - 1)


@torch.no_grad()
def image_to_latents(models, images, *, sample: bool = False, generator=None) -> torch.Tensor:
    """PIL image(s) or B x 3 x H x W tensor in [-1, 1] -> B x 4 x H/f x W/f latents, scaled by s: the
    posterior's mean, or with `sample` a draw from it (one draw for the batch, as diffusers' VAE makes)."""
    from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
    vae = models.vae
    x = images if isinstance(images, torch.Tensor) else pil_to_tensor(images)
    params = in_chunks(models, "vae", lambda i, j: vae.encode(x[i:j].to(vae.device, vae.dtype)).latent_dist.parameters, len(x))
    post = DiagonalGaussianDistribution(params)                  # mean and log-variance, B x 2C x h x w
    z = post.sample(generator) if sample else post.mean
    return z * vae.config.scaling_factor


@torch.no_grad()
def latents_to_images(models, latents: torch.Tensor) -> torch.Tensor:
    "B x 4 x h x w latents (scaled by s) -> B x 3 x H x W images in [-1, 1]."
    vae = models.vae
    z = latents.to(vae.device, vae.dtype) / vae.config.scaling_factor
    return in_chunks(models, "vae", lambda i, j: vae.decode(z[i:j]).sample.clamp(-1, 1), len(z))


def latents_to_pil(models, latents: torch.Tensor) -> list[Image.Image]:
    return tensor_to_pil(latents_to_images(models, latents))
