"""A small version of the problem, for lesson 7: a text-to-image model trained from scratch in a few
minutes on two CPU cores (300 steps: about a minute, depending on the machine).

The full recipe (training.py; scripts/train_toy_sd.py) learns every attribute of both objects and
takes hours on a CPU. The lesson keeps its objective and shrinks everything else:
- **the world**: only the left object varies (5 colours x 3 shapes, plain, bare) on one of 4
  backgrounds; the right object is always the same blue circle. 60 captions, such as
  'a red square on the left, sky background', judged on 3 attributes (SMALL_ATTRIBUTES);
- **the VAE**: the shipped one, frozen (the recipe's first stage, reused): the latents of a pool of
  scenes are computed once (`encode_scenes`);
- **the model**: a 2-level UNet with cross-attention at 8x8 only, and a text encoder with no
  transformer layers (CLIP's token and position embeddings and its final layer norm: one learned
  vector per word and place), both from scratch (`new_small_model`). Captions are padded to 12 tokens
  (`small_tokenizer`), the longest caption's 11, not to the shipped tokenizer's 32. Trained on the DDPM
  objective with 10 % empty captions (for guidance) and offset noise, as the full recipe
  (`NoisyLatents`; offset 0.2 here, 0.1 there), each image's loss weighted by min(SNR_t, γ) / SNR_t
  (min-SNR weighting, Hang et al. 2023: `min_snr_weights`, `weighted_mse`), which the full recipe
  does not use.

Each of those choices was measured against the one before it (benchmarks/small_training.py, 60 held-out
captions, chosen on seeds 0-2 and checked on seeds 3-5): with a 1-layer CLIP encoder (causal attention
mixes each word with the ones before it) shapes stayed at chance in a third of the runs even at 400
steps; without it, cross-attention shared among 32 mostly padding tokens learned the background late;
with 12 tokens and offset 0.1, backgrounds came out grayer than asked (white read as sky, sand as
gray). This recipe learns all three attributes in 300 steps (docs/measurements.md, "Train your own").
"""
from __future__ import annotations
import numpy as np
import torch
from fastai.callback.core import Callback

from .scene import Scene, Obj, COLORS, SHAPES, BACKGROUNDS
from .render import render
from . import model as toymodel

__all__ = ["SMALL_ATTRIBUTES", "SMALL_UNET", "SMALL_TEXT", "SMALL_TOKENS", "small_scene", "small_scenes", "small_caption",
           "encode_scenes", "small_tokenizer", "caption_ids", "new_small_model", "min_snr_weights", "weighted_mse",
           "NoisyLatents", "index_dataloaders", "small_models", "SampleEachEpoch", "small_adherence"]

SMALL_ATTRIBUTES = ("left.color", "left.shape", "background")
SMALL_UNET = dict(sample_size=16, in_channels=4, out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                  up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), block_out_channels=(32, 64), layers_per_block=1,
                  cross_attention_dim=64, attention_head_dim=4, norm_num_groups=16)
SMALL_TOKENS = 12   # <|startoftext|> + the longest caption's 9 tokens (8 words, a comma) + <|endoftext|> = 11, one to spare
SMALL_TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=0, num_attention_heads=2,
                  max_position_embeddings=SMALL_TOKENS, projection_dim=64)   # no transformer layers: embeddings + layer norm
RIGHT = Obj("circle", "blue", x=48.0, y=38.0, r=10.5)   # the object that never changes


def small_scene(rng: np.random.Generator) -> Scene:
    "A scene of the small world: a random left object (colour, shape, a little jitter) and background."
    left = Obj(str(rng.choice(SHAPES)), str(rng.choice(list(COLORS))), x=float(16 + rng.uniform(-1.5, 1.5)),
               y=float(38 + rng.uniform(-1.5, 1.5)), r=float(rng.uniform(10.0, 11.5)))
    return Scene(left, RIGHT, str(rng.choice(list(BACKGROUNDS))))


def small_scenes(n: int, seed: int) -> list[Scene]: return [small_scene(np.random.default_rng([seed, i])) for i in range(n)]


def small_caption(scene: Scene) -> str:
    "What the small world's captions say: the left object's colour and shape, and the background."
    return f"a {scene.left.color} {scene.left.shape} on the left, {scene.background} background"


@torch.no_grad()
def encode_scenes(vae, scenes, bs: int = 200) -> torch.Tensor:
    "The scaled latents (posterior means) of the scenes' renders: N x 4 x 16 x 16, z = E(x) · scaling_factor."
    from .training import image_tensor
    out = []
    for i in range(0, len(scenes), bs):
        x = image_tensor([render(s) for s in scenes[i:i + bs]])
        out.append(vae.encode(x.to(vae.device, vae.dtype)).latent_dist.mean.float().cpu())
    return torch.cat(out) * vae.config.scaling_factor


def small_tokenizer(tokenizer, length: int = SMALL_TOKENS):
    "A copy of the shipped tokenizer that pads every caption to `length` tokens instead of its 32."
    import copy
    tok = copy.deepcopy(tokenizer)
    tok.model_max_length = length
    return tok


def caption_ids(tokenizer, captions) -> torch.Tensor:
    "B x L token ids, padded to the tokenizer's model_max_length (with `small_tokenizer`: 12)."
    return tokenizer(list(captions), padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                     return_tensors="pt").input_ids


def new_small_model(tokenizer, seed: int = 0, unet: dict | None = None, text: dict | None = None):
    """A fresh UNet (SMALL_UNET, with the keys of `unet` replaced) and text encoder (SMALL_TEXT, with the
    keys of `text` replaced) as one module: model(x_t, t, ids) -> eps. Its ids are `tokenizer`'s, padded
    to at most SMALL_TEXT's max_position_embeddings tokens (`small_tokenizer`)."""
    from .training import TextToEps
    torch.manual_seed(seed)
    te = toymodel.new_text_encoder(len(tokenizer), config={**SMALL_TEXT, **(text or {})})
    return TextToEps(toymodel.new_unet({**SMALL_UNET, **(unet or {})}), te)


def min_snr_weights(alphas_cumprod: torch.Tensor, t: torch.Tensor, gamma: float) -> torch.Tensor:
    """Min-SNR-γ loss weights for ε-prediction, one per timestep in `t`:

        w_t = min(SNR_t, γ) / SNR_t,   SNR_t = ᾱ_t / (1 − ᾱ_t)

    1 where the latents are mostly noise (SNR_t <= γ: where colours, shapes and layout are decided),
    less and less as they get cleaner, where predicting ε is easy and its gradients would dominate."""
    snr = alphas_cumprod[t] / (1 - alphas_cumprod[t])
    return snr.clamp(max=gamma) / snr


def weighted_mse(pred: torch.Tensor, eps: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    "(1/B) Σ_i w_i · mean over C, h, w of (ε_i − ε_θ,i)²: with every w_i = 1, the plain MSE."
    return ((pred - eps).pow(2).flatten(1).mean(1) * w).mean()


class NoisyLatents(Callback):
    """Turns a batch of indices into the DDPM objective's inputs: x_t = sqrt(ᾱ_t) z_0 + sqrt(1 − ᾱ_t) ε
    for a random t, with ε plus a constant per image and channel (offset noise, std `offset`), the
    caption's token ids (empty for a share `p_empty`); target ε, and with `min_snr` = γ each image's
    loss weight `min_snr_weights` (then the loss is `weighted_mse`). Training batches draw scenes from
    `train` = (latents, ids) at random; validation batches take `valid`'s in order, with fixed noise."""
    order = -10

    def __init__(self, train, valid, empty_ids, *, p_empty: float = 0.1, offset: float = 0.2, min_snr: float | None = None,
                 seed: int = 0):
        from diffusers import DDIMScheduler
        self.pool, self.held, self.empty, self.p_empty, self.offset, self.seed = train, valid, empty_ids, p_empty, offset, seed
        if min_snr is not None and min_snr <= 0: raise ValueError(f"min_snr (γ) must be > 0, got {min_snr}")
        self.min_snr = min_snr
        self.noise_schedule = DDIMScheduler(**toymodel.SCHEDULER)   # only add_noise and ᾱ (the training schedule) are used

    def before_batch(self):
        idx = self.xb[0]
        g = torch.Generator().manual_seed(int(1e6 * self.seed + 1e3 * self.epoch + self.iter) if self.training else int(idx[0]))
        z, ids = self.pool if self.training else self.held
        j = torch.randint(0, len(z), (len(idx),), generator=g) if self.training else idx % len(z)
        z0, ids = z[j], ids[j].clone()
        ids[torch.rand(len(j), generator=g) < self.p_empty] = self.empty
        eps = torch.randn(z0.shape, generator=g) + self.offset * torch.randn((*z0.shape[:2], 1, 1), generator=g)
        t = torch.randint(0, self.noise_schedule.config.num_train_timesteps, (len(j),), generator=g)
        self.learn.xb = (self.noise_schedule.add_noise(z0, eps, t), t, ids)
        self.learn.yb = (eps,) if self.min_snr is None else (eps, min_snr_weights(self.noise_schedule.alphas_cumprod, t, self.min_snr))


def index_dataloaders(n_iter: int, bs: int, n_valid: int):
    """fastai DataLoaders whose 'items' are indices (n_iter batches of bs to train, n_valid to validate); NoisyLatents
    makes the batches. On the CPU on every machine, as every toy lesson runs (`training.index_loaders`)."""
    from .training import index_loaders
    return index_loaders(torch.arange(n_iter * bs), torch.arange(n_valid), bs)


def small_models(toy, model):
    """A `Models` with `model`'s UNet and text encoder, the shipped model's VAE and scheduler, and its tokenizer
    padding to as many tokens as the text encoder takes (SMALL_TOKENS): every helper takes it."""
    from ..models import Models
    tok = small_tokenizer(toy.tokenizer, model.text_encoder.config.max_position_embeddings)
    return Models(tok, model.text_encoder.eval(), toy.vae, model.unet.eval(), toy.scheduler, toy.device, toy.dtype,
                  "small (lesson 7)")


class SampleEachEpoch(Callback):
    "After every epoch, sample `captions` with the EMA model (guidance `scale`, fixed seed) into `self.images` (one list per epoch)."
    order = 80

    def __init__(self, toy, ema, captions, *, scale: float = 3.0, steps: int = 20):
        self.toy, self.ema, self.captions, self.scale, self.steps, self.images = toy, ema, list(captions), scale, steps, []

    def after_epoch(self):
        from ..sampling import generate
        self.images.append(generate(small_models(self.toy, self.ema), self.captions, guidance_scale=self.scale,
                                    num_inference_steps=self.steps, seed=0, progress=False))


def small_adherence(models, judge, scenes, *, guidance_scale: float = 3.0, steps: int = 20, seed: int = 0) -> dict:
    """Generate each scene's small caption and let the judge read SMALL_ATTRIBUTES: {attribute: share
    right, 'all': share with all three right, 'k': how many had all three, 'n', 'images'}."""
    from ..sampling import generate
    ims = generate(models, [small_caption(s) for s in scenes], guidance_scale=guidance_scale, num_inference_steps=steps,
                   seed=seed, progress=False)
    reads = judge.predict(ims)
    right = [{a: r[a] == s.attributes()[a] for a in SMALL_ATTRIBUTES} for r, s in zip(reads, scenes)]
    k = sum(all(r.values()) for r in right)
    return {**{a: float(np.mean([r[a] for r in right])) for a in SMALL_ATTRIBUTES}, "all": k / len(scenes), "k": k,
            "n": len(scenes), "images": ims}
