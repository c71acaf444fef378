"""Training the course's offline model on ToyWorld: the VAE, then the UNet with its text encoder.

Everything is generated from seeds (no data set on disk) and trained with fastai's `Learner`:
a callback turns a batch of scene seeds into the model's inputs, another keeps an EMA copy of
the weights, a third writes a safetensors checkpoint after every epoch so that a killed run
resumes where it stopped (`fit_one_cycle(..., start_epoch=k)` keeps the LR schedule in step).

- VAE (`AutoencoderKL`): reconstruction loss |x - D(E(x))| + MSE, plus a tiny KL term.
- Text-to-image (`UNet2DConditionModel` + `CLIPTextModel`, trained together from scratch):
  the DDPM objective  L = || eps - eps_theta(sqrt(abar_t) z_0 + sqrt(1 - abar_t) eps, t, c) ||^2
  with c the text embedding of a caption; 10 % of captions are empty (for classifier-free
  guidance) and 20 % describe only part of the scene (one object or the background: the short
  concept prompts LEDITS++ uses).
- Then both fine-tuned with an attention localisation term (cf. FastComposer's): the share of each
  caption word's latent/4 cross-attention that falls outside the object, accessory or background
  it names. Trained on captions alone, the tiny UNet's maps do not say where a word is (SD's do,
  after billions of images); LEDITS++'s mask M1 needs them to.
- Distillation (stage 2c, the shipped UNet; issue 14): a cheaper UNet (no transformer blocks at
  16x16) trained to answer as the fine-tuned one does, noise and attention maps, for the prompts edits ask.
"""
from __future__ import annotations
import copy, json, time
from pathlib import Path
import numpy as np
import torch
from torch import nn
import torch.nn.functional as F
from safetensors.torch import save_file, load_file

from .scene import random_scene, object_phrase, SLOTS, WORN
from .render import render
from . import model as toymodel

__all__ = ["image_tensor", "images_of", "accessory_masks", "training_caption", "VAELoss", "TextToEps", "train_vae", "finetune_decoder", "train_unet",
           "token_entities", "attention_targets", "AttentionLocalisationLoss", "finetune_attention", "ema_update",
           "distil_caption", "distil_pair_caption", "DistilLoss", "distil_unet",
           "save_checkpoint", "load_checkpoint", "train_judge", "judge_accuracy", "augment"]

from ..metrics import HELD_OUT  # seeds >= HELD_OUT are never trained on: held-out scenes for evaluation


def image_tensor(renders) -> torch.Tensor:
    "Renders (`render(scene)`) as a Bx3x64x64 float tensor in [-1, 1]."
    return torch.from_numpy(np.stack([r.array for r in renders])).permute(0, 3, 1, 2).float() / 127.5 - 1


def images_of(seeds) -> torch.Tensor:
    "Render the scenes of `seeds` as a Bx3x64x64 float tensor in [-1, 1]."
    return image_tensor([render(random_scene(int(s))) for s in seeds])


def training_caption(scene, rng: np.random.Generator) -> str:
    "The caption trained with: 70 % the full caption, 20 % part of it, 10 % empty."
    u = rng.random()
    if u < 0.1: return ""
    if u >= 0.3: return scene.caption
    clauses = [f"{scene.background} background"]
    for slot in SLOTS:
        o = getattr(scene, slot)
        keep = {k: getattr(o, k) for k in ("color", "texture", "shape", "accessory") if rng.random() < 0.5}
        if keep: clauses.append(object_phrase(slot=slot, **keep))
    rng.shuffle(clauses)
    return ", ".join(clauses[:int(rng.integers(1, 3))])  # one or two clauses: never a full caption


# ------------------------------------------------------------------ checkpoints (safetensors)
def save_checkpoint(path, modules: dict, opt: torch.optim.Optimizer | None, meta: dict):
    "Write module and optimizer states to one safetensors file; `meta` (JSON) rides in its header."
    t = {f"{n}.{k}": v.detach().contiguous() for n, m in modules.items() for k, v in m.state_dict().items()}
    groups = None
    if opt is not None:
        sd = opt.state_dict()
        for i, st in sd["state"].items():
            for k, v in st.items(): t[f"opt.{i}.{k}"] = torch.as_tensor(v).contiguous()
        groups = sd["param_groups"]
    tmp = Path(str(path) + ".tmp")
    save_file(t, str(tmp), metadata={"meta": json.dumps(meta), "param_groups": json.dumps(groups)})
    tmp.replace(path)


def load_checkpoint(path, modules: dict, opt: torch.optim.Optimizer | None = None) -> dict:
    "Load what `save_checkpoint` wrote into `modules` (and `opt`); returns the meta dict."
    from safetensors import safe_open
    with safe_open(str(path), "pt") as f: header = f.metadata()
    t = load_file(str(path))
    for n, m in modules.items():
        m.load_state_dict({k[len(n) + 1:]: v for k, v in t.items() if k.startswith(n + ".")})
    if opt is not None and header.get("param_groups") not in (None, "null"):
        state = {}
        for k, v in t.items():
            if k.startswith("opt."):
                _, i, name = k.split(".", 2)
                state.setdefault(int(i), {})[name] = v
        opt.load_state_dict({"state": state, "param_groups": json.loads(header["param_groups"])})
    return json.loads(header["meta"])


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float):
    "ema <- decay * ema + (1 - decay) * model, parameter by parameter."
    for e, p in zip(ema.parameters(), model.parameters()): e.lerp_(p.detach(), 1 - decay)
    for e, b in zip(ema.buffers(), model.buffers()): e.copy_(b)  # e.g. BatchNorm statistics


# ------------------------------------------------------------------ fastai plumbing
def _fastai():
    from fastai.learner import Learner
    from fastai.callback.core import Callback
    from fastai.data.core import DataLoaders
    from fastai.optimizer import OptimWrapper
    import fastai.callback.schedule  # noqa: F401  (adds Learner.fit_one_cycle)
    return Learner, Callback, DataLoaders, OptimWrapper


def index_loaders(train: torch.Tensor, valid: torch.Tensor, bs: int):
    """fastai DataLoaders whose batches are vectors of indices (`train`'s and `valid`'s, in order, in batches of
    `bs`, the last one kept); a callback turns them into model inputs. On the CPU on every machine: fastai puts
    the model on its loaders' device, which would otherwise be a GPU (or Apple's MPS) where there is one, away
    from the batches the callbacks build on the CPU."""
    _, _, DataLoaders, _ = _fastai()
    from fastai.data.load import DataLoader
    from torch.utils.data import TensorDataset
    index = lambda items: DataLoader(TensorDataset(items), bs=bs, num_workers=0)
    return DataLoaders(index(train), index(valid), device=torch.device("cpu"))


def _learner(model, loss_func, batch_cb, n_iter, bs, lr, wd, ckpt_dir, ema_decay, tag):
    "A fastai Learner over seed batches, with EMA and per-epoch safetensors checkpoints."
    Learner, _, _, OptimWrapper = _fastai()
    from functools import partial

    from .callbacks import EMA, Checkpoint
    ema = copy.deepcopy(model).requires_grad_(False)
    Path(ckpt_dir).mkdir(parents=True, exist_ok=True)
    ckpt = Path(ckpt_dir) / f"{tag}.safetensors"

    # a "batch" is a vector of scene indices; `batch_cb` turns it into model inputs.
    dls = index_loaders(torch.arange(n_iter * bs), torch.arange(HELD_OUT, HELD_OUT + 2 * bs), bs)
    learn = Learner(dls, model, loss_func=loss_func, lr=lr, wd=wd,
                    opt_func=partial(OptimWrapper, opt=torch.optim.AdamW),
                    cbs=[batch_cb, EMA(ema, ema_decay), Checkpoint(ckpt, ema, tag)])
    return learn, ema, ckpt


def _fit(learn, ema, ckpt, epochs, lr):
    "fit_one_cycle, resuming from `ckpt` if it exists."
    start = 0
    learn.create_opt()
    if ckpt.exists():
        meta = load_checkpoint(ckpt, {"model": learn.model, "ema": ema}, learn.opt.opt)
        planned = {"n_epoch": epochs, "n_iter": len(learn.dls.train)}
        for k, v in planned.items():   # the one-cycle schedule resumes in step only on the same plan
            if k in meta and meta[k] != v:
                raise ValueError(f"{ckpt} was written by a run with {k} = {meta[k]}, this one has {v}: resume with the "
                                 "same settings, or start in a new checkpoint folder")
        start = meta["epoch"]
        print(f"resuming {ckpt.name} at epoch {start}/{epochs}")
    if start < epochs:
        learn.fit_one_cycle(epochs, lr, start_epoch=start, pct_start=0.1)
    return ema


# ------------------------------------------------------------------ stage 1: the VAE
class VAELoss(nn.Module):
    "L1 + MSE reconstruction, plus `kl` x the KL divergence of the posterior from N(0, I)."
    def __init__(self, kl=1e-6): super().__init__(); self.kl = kl
    def forward(self, out, target):
        rec, post = out
        return F.l1_loss(rec, target) + F.mse_loss(rec, target) + self.kl * post.kl().mean()


class _VAEForward(nn.Module):
    def __init__(self, vae): super().__init__(); self.vae = vae
    def forward(self, x):
        post = self.vae.encode(x).latent_dist
        return self.vae.decode(post.sample()).sample, post


def train_vae(ckpt_dir, *, epochs=10, iters=250, bs=16, lr=2e-3, seed=0):
    "Train the VAE on rendered scenes; returns the EMA VAE. Resumes from `ckpt_dir/vae.safetensors`."
    _, Callback, _, _ = _fastai()
    torch.manual_seed(seed)
    vae = toymodel.new_vae()

    class Render(Callback):
        order = -10
        def before_batch(self):
            idx = self.xb[0]
            seeds = idx + (0 if not self.training else 1_000_000 * (seed + 1) + self.epoch * len(idx) * self.n_iter)
            x = images_of(seeds.tolist())
            self.learn.xb, self.learn.yb = (x,), (x,)

    learn, ema, ckpt = _learner(_VAEForward(vae), VAELoss(), Render(), iters, bs, lr, 0.0, ckpt_dir, 0.999, "vae")
    return _fit(learn, ema, ckpt, epochs, lr).vae


class _Decoder(nn.Module):
    "The VAE's decoding half alone (post_quant_conv + decoder): latents -> image."
    def __init__(self, vae): super().__init__(); self.post_quant_conv, self.decoder = vae.post_quant_conv, vae.decoder
    def forward(self, z): return self.decoder(self.post_quant_conv(z))


def accessory_masks(renders) -> torch.Tensor:
    "Bx1x64x64 float: 1 where the renders (`render(scene)`) draw an accessory (hat or sunglasses), else 0."
    return torch.from_numpy(np.stack([sum((r.cover[k] > 0 for k in r.cover if k.endswith(".accessory")),
                                          np.zeros((64, 64), bool)) for r in renders])).float()[:, None]


def finetune_decoder(ckpt_dir, vae, *, epochs=16, iters=250, bs=16, lr=1e-3, seed=0, accessory_weight: float = 0.0,
                     tag: str = "decoder"):
    """Sharpen the decoder on the encoder's posterior means, the encoder frozen (as SD's ft-MSE VAE).

    The latents do not change, so a UNet trained on them stays valid. With `accessory_weight` w the
    loss weighs accessory pixels 1 + w (a hat or sunglasses covers a few dozen of 4,096 pixels, and
    an unweighted decoder blurs them away). Returns the VAE with the EMA decoder. Resumes from
    `ckpt_dir/{tag}.safetensors`."""
    _, Callback, _, _ = _fastai()
    torch.manual_seed(seed)
    vae.requires_grad_(False)

    class Encode(Callback):
        order = -10
        def before_batch(self):
            idx = self.xb[0]
            seeds = idx + (0 if not self.training else 3_000_000 + 1_000_000 * seed + self.epoch * len(idx) * self.n_iter)
            renders = [render(random_scene(int(s))) for s in seeds.tolist()]
            x = image_tensor(renders)
            w = 1 + accessory_weight * accessory_masks(renders) if accessory_weight else torch.ones(len(x), 1, 1, 1)
            with torch.no_grad(): z = vae.encode(x).latent_dist.mean
            self.learn.xb, self.learn.yb = (z,), (x, w)

    def loss(rec, x, w):   # weighted L1 + MSE (w = 1: the plain mean of both)
        err = rec - x
        return (err.abs() * w).mean() + (err ** 2 * w).mean()
    dec = _Decoder(copy.deepcopy(vae)).requires_grad_(True)
    learn, ema, ckpt = _learner(dec, loss, Encode(), iters, bs, lr, 0.0, ckpt_dir, 0.999, tag)
    ema = _fit(learn, ema, ckpt, epochs, lr)
    vae.post_quant_conv.load_state_dict(ema.post_quant_conv.state_dict())
    vae.decoder.load_state_dict(ema.decoder.state_dict())
    return vae


# ------------------------------------------------------------------ stage 2: UNet + text encoder
class TextToEps(nn.Module):
    "eps_theta(x_t, t, c): the UNet conditioned on the text encoder's last hidden state."
    def __init__(self, unet, text_encoder): super().__init__(); self.unet, self.text_encoder = unet, text_encoder
    def forward(self, x, t, ids): return self.unet(x, t, self.text_encoder(ids)[0]).sample


@torch.no_grad()
def encode_pool(vae, seeds, bs=64) -> torch.Tensor:
    "Posterior mean and std (Bx8x16x16) of the VAE for the scenes of `seeds`, computed once."
    out = []
    for i in range(0, len(seeds), bs):
        p = vae.encode(images_of(seeds[i:i + bs])).latent_dist
        out.append(torch.cat([p.mean, p.std], 1))
    return torch.cat(out)


def _pool_latents(ckpt_dir, vae, pool, bs):
    "Latent statistics of the training pool (cached in `ckpt_dir/pool.safetensors`) and of held-out scenes."
    pool_file = Path(ckpt_dir) / "pool.safetensors"
    pool_file.parent.mkdir(parents=True, exist_ok=True)  # train_unet may be the first stage run in this folder
    if pool_file.exists():
        z = load_file(str(pool_file))["z"]
        if len(z) < pool: raise ValueError(f"{pool_file} holds {len(z)} scenes' latents, fewer than pool={pool}: delete it to encode them anew")
        z = z[:pool]
        check = encode_pool(vae, [0])                    # the first scene again: were these latents made by this encoder?
        if not torch.allclose(check, z[:1], rtol=1e-3, atol=1e-4):
            raise ValueError(f"{pool_file} was encoded by another VAE (scene 0's latents differ): delete it, or use a new checkpoint folder")
    else:
        t0 = time.time(); z = encode_pool(vae, list(range(pool))); save_file({"z": z.contiguous()}, str(pool_file))
        print(f"encoded {pool} scenes in {time.time() - t0:.0f}s")
    return z, encode_pool(vae, list(range(HELD_OUT, HELD_OUT + 2 * bs)))


def _noise_callback(z, held, sf, tokenizer, *, seed, offset_noise, offset_from, targets=None, caption=training_caption,
                    pair_caption=None):
    """The fastai callback that turns a batch of indices into (x_t, t, caption ids) and the noise eps.

    x_t = sqrt(ᾱ_t) z_0 + sqrt(1 - ᾱ_t) eps for a random t, z_0 sampled from a pool scene's posterior,
    with a fresh `caption(scene, rng)` of that scene (`training_caption`). With `pair_caption`, row
    2i + 1 repeats row 2i's x_t, t and scene, asked with `pair_caption(scene, rng)` instead. The
    targets are (eps,), or `targets(x_t, t, ids, scenes, eps)` -> a tuple of them."""
    _, Callback, _, _ = _fastai()
    from diffusers import DDIMScheduler
    sched = DDIMScheduler(**toymodel.SCHEDULER)  # only its add_noise (the training noise schedule) is used
    tok = lambda caps: tokenizer(caps, padding="max_length", max_length=tokenizer.model_max_length,
                                 truncation=True, return_tensors="pt").input_ids

    class Noise(Callback):
        order = -10
        def before_batch(self):
            idx = self.xb[0]
            g = torch.Generator().manual_seed(int(1e6 * seed + 1e3 * self.epoch + self.iter) if self.training else 0)
            rng = np.random.default_rng(g.initial_seed())
            if self.training:
                j = torch.randint(0, len(z), (len(idx),), generator=g)
                stats, seeds = z[j], j.tolist()
            else:
                stats, seeds = held[idx - HELD_OUT], idx.tolist()
            mean, std = stats.chunk(2, 1)
            z0 = (mean + std * torch.randn(mean.shape, generator=g)) * sf
            eps = torch.randn(z0.shape, generator=g)
            if self.epoch >= offset_from or not self.training:  # offset noise: a constant per image and channel
                eps = eps + offset_noise * torch.randn((*z0.shape[:2], 1, 1), generator=g)
            t = torch.randint(0, sched.config.num_train_timesteps, (len(idx),), generator=g)
            scenes = [random_scene(int(s)) for s in seeds]
            xt = sched.add_noise(z0, eps, t)  # x_t = sqrt(abar) z0 + sqrt(1-abar) eps
            ask = [caption] * len(idx)
            if pair_caption is not None:      # odd rows: the even row before, another question
                n = len(idx) // 2 * 2
                xt[1:n:2], t[1:n:2], eps[1:n:2] = xt[0:n:2], t[0:n:2], eps[0:n:2]
                scenes[1:n:2], ask[1:n:2] = scenes[0:n:2], [pair_caption] * (n // 2)
            ids = tok([q(sc, rng) for q, sc in zip(ask, scenes)])
            self.learn.xb = (xt, t, ids)
            self.learn.yb = (eps,) if targets is None else targets(xt, t, ids, scenes, eps)

    return Noise()


def train_unet(ckpt_dir, vae, tokenizer, *, epochs=30, iters=250, bs=32, lr=1e-3, pool=20_000, seed=0,
               offset_noise=0.1, offset_from=12):
    """Train UNet + text encoder on latents of `pool` scenes with fresh captions every time.

    From epoch `offset_from` on, the training noise gets a random constant per image and channel
    (offset noise, std `offset_noise`; the validation batches always have it): with SD's schedule x_T still holds sqrt(ᾱ_T) = 7 % of
    the latents, and on a 16x16 grid the mean of pure noise (std 1/16) looks like that signal,
    so without it the model takes its background colour from the noise, not from the prompt.
    Returns (unet, text_encoder) with EMA weights. Resumes from `ckpt_dir/unet.safetensors`."""
    torch.manual_seed(seed)
    unet, te = toymodel.new_unet(), toymodel.new_text_encoder(len(tokenizer))
    z, held = _pool_latents(ckpt_dir, vae, pool, bs)
    cb = _noise_callback(z, held, vae.config.scaling_factor, tokenizer, seed=seed, offset_noise=offset_noise,
                         offset_from=offset_from)
    learn, ema, ckpt = _learner(TextToEps(unet, te), nn.MSELoss(), cb, iters, bs, lr, 0.01, ckpt_dir, 0.999, "unet")
    ema = _fit(learn, ema, ckpt, epochs, lr)
    return ema.unet, ema.text_encoder


# ------------------------------------------------------------------ stage 2b: words that look at their object
def token_entities(tokens: list[str]) -> list[str | None]:
    """The ToyWorld entity each token of a caption names: 'left', 'right', 'left.accessory', ...,
    'background', or None (start, end, padding, commas).

    Clauses are split at commas; a clause ending in 'background' names the background, any other
    ends in its object's slot. 'hat' and 'sunglasses' name the slot's accessory, every other word
    of the clause ('a', 'red', 'thing', 'on', 'the', 'left', ...) the object's body."""
    words = [t.replace("</w>", "") for t in tokens]
    out, clause = [None] * len(words), []
    for i, w in enumerate(words + [","]):  # a final comma closes the last clause
        if w not in (",", "<|endoftext|>", "<|startoftext|>"): clause.append(i); continue
        if clause:
            last = words[clause[-1]]
            for k in clause:
                out[k] = ("background" if last == "background" else
                          f"{last}.accessory" if words[k] in WORN else last)
        clause = []
    return out


def attention_targets(scenes, ids, tokenizer, hw=(4, 4)):
    """Where each caption token should look, at the `hw` attention grid: (B x T x h*w targets, B x T weights).

    A target is the share of each cell its entity covers, divided by its maximum (1 on the cells
    the entity fills best); weight 1 where the token names an entity."""
    b, n = ids.shape
    tgt, w = torch.zeros(b, n, hw[0] * hw[1]), torch.zeros(b, n)
    for i, (sc, row) in enumerate(zip(scenes, ids)):
        ents = token_entities(tokenizer.convert_ids_to_tokens(row.tolist()))
        if not any(ents): continue
        cover = {k: F.adaptive_avg_pool2d(torch.from_numpy(v)[None], hw).flatten() for k, v in render(sc).cover.items()}
        for k, e in enumerate(ents):
            if e is None or e not in cover or cover[e].max() <= 0: continue
            tgt[i, k], w[i, k] = cover[e] / cover[e].max(), 1.0
    return tgt, w


class TextToEpsAttn(TextToEps):
    "eps_theta(x_t, t, c), and the cross-attention maps at `hw` (down and up blocks) it used: B x h*w x T."
    def __init__(self, unet, text_encoder, store):
        super().__init__(unet, text_encoder); self.store = store
    def forward(self, x, t, ids):
        self.store.clear()
        eps = super().forward(x, t, ids)
        return eps, self.store.mean().flatten(1, 2)


class AttentionLocalisationLoss(nn.Module):
    """|| eps - eps_theta ||^2 + weight * (share of each named token's attention outside its entity).

    For token k with spatial attention A_k (normalised to sum 1 over the grid) and target m_k in [0, 1]:
        L_k = sum_p A_k(p) (1 - m_k(p))
    averaged over the tokens that name an entity."""
    def __init__(self, weight=0.1): super().__init__(); self.weight = weight
    def outside(self, maps, tgt, w):
        a = maps.transpose(1, 2)                                     # B x T x h*w
        a = a / a.sum(-1, keepdim=True).clamp_min(1e-12)
        per_token = (a * (1 - tgt)).sum(-1)
        return (per_token * w).sum() / w.sum().clamp_min(1)
    def forward(self, out, eps, tgt, w):
        pred, maps = out
        return F.mse_loss(pred, eps) + self.weight * self.outside(maps, tgt, w)


def finetune_attention(ckpt_dir, vae, unet, text_encoder, tokenizer, *, epochs=6, iters=250, bs=32, lr=2e-4,
                       pool=12_000, weight=0.1, seed=1, offset_noise=0.1, ema_decay=0.999, tag="attention"):
    """Fine-tune UNet + text encoder so that each caption word's cross-attention at latent/4 (the
    maps LEDITS++ reads) falls on the object, accessory or background it names, keeping the
    denoising loss (the maps of a small model trained on captions alone do not localise words).
    Returns (unet, text_encoder) with EMA weights. Resumes from `ckpt_dir/{tag}.safetensors`."""
    from ..attention import capture_cross_attention
    torch.manual_seed(seed)
    hw = (unet.config.sample_size // 4,) * 2
    unet.requires_grad_(True), text_encoder.requires_grad_(True)  # EMA copies come back frozen
    z, held = _pool_latents(ckpt_dir, vae, pool, bs)
    cb = _noise_callback(z, held, vae.config.scaling_factor, tokenizer, seed=seed, offset_noise=offset_noise,
                         offset_from=0, targets=lambda xt, t, ids, sc, eps: (eps, *attention_targets(sc, ids, tokenizer, hw)))
    model = TextToEpsAttn(unet, text_encoder, None)
    learn, ema, ckpt = _learner(model, AttentionLocalisationLoss(weight), cb, iters, bs, lr, 0.01, ckpt_dir, ema_decay,
                                tag)
    with capture_cross_attention(unet, hw, ("down", "up"), detach=False) as store:
        model.store = store
        ema = _fit(learn, ema, ckpt, epochs, lr)
    return ema.unet, ema.text_encoder


# ------------------------------------------------------------------ distillation: a cheaper UNet that answers as a trained one (stage 2c)
def distil_caption(scene, rng: np.random.Generator) -> str:
    """A prompt to distil with: `training_caption` of the image's own scene half the time, of another
    (training) scene the other half, as an edit asks for what the image does not hold yet."""
    if rng.random() < 0.5: scene = random_scene(int(rng.integers(HELD_OUT)))
    return training_caption(scene, rng)


def distil_pair_caption(scene, rng: np.random.Generator) -> str:
    "The second question about a noisy latent: the empty prompt half the time (guidance's ε_u), else `distil_caption`."
    return "" if rng.random() < 0.5 else distil_caption(scene, rng)


class DistilLoss(nn.Module):
    """|| ε - ε' ||^2 + pair_weight * || (ε_2i - ε_2i+1) - (ε'_2i - ε'_2i+1) ||^2 + weight * mean_k sum_p | A_k(p) - A'_k(p) |

    student ε, teacher ε'. Rows 2i and 2i + 1 ask about the same x_t with two prompts (`pair_caption`):
    their difference is what the editors amplify (guidance 7.5 multiplies ε_c - ε_u; DiffEdit's mask
    is |ε_src - ε_tgt|). A_k, A'_k: token k's latent/4 cross-attention, normalised to sum 1 over the
    grid (the shape LEDITS++'s mask M1 reads), for every token position."""
    def __init__(self, weight=0.1, pair_weight=0.0):
        super().__init__(); self.weight, self.pair_weight = weight, pair_weight
    def forward(self, out, eps_teacher, maps_teacher):
        eps, maps = out
        spatial = lambda a: a / a.sum(1, keepdim=True).clamp_min(1e-12)  # B x h*w x T, over the grid
        loss = F.mse_loss(eps, eps_teacher) + self.weight * (spatial(maps) - spatial(maps_teacher)).abs().sum(1).mean()
        if self.pair_weight:
            n = len(eps) // 2 * 2
            diff = lambda e: e[0:n:2] - e[1:n:2]
            loss = loss + self.pair_weight * F.mse_loss(diff(eps), diff(eps_teacher))
        return loss


def distil_unet(ckpt_dir, vae, teacher, student, text_encoder, tokenizer, *, epochs=8, iters=250, bs=32, lr=5e-4,
                pool=12_000, weight=0.1, pair_weight=4.0, seed=3, offset_noise=0.1, ema_decay=0.995, tag="distil"):
    """Train `student` (a UNet) to predict what `teacher` predicts, noise and latent/4 cross-attention maps,
    on noisy training latents with `distil_caption` prompts (whole, partial, empty, of the image or of
    another scene), both reading the same frozen `text_encoder`; rows in pairs, two prompts for one x_t,
    their difference matched too (`DistilLoss`; pair_weight=0: rows independent). Unlike fine-tuning on
    the data, the target is the teacher's answer for the prompt asked, matching or not: what an edit
    evaluates.
    Returns the student with EMA weights. Resumes from `ckpt_dir/{tag}.safetensors`."""
    from ..attention import capture_cross_attention
    torch.manual_seed(seed)
    hw = (student.config.sample_size // 4,) * 2
    teacher.requires_grad_(False), text_encoder.requires_grad_(False), student.requires_grad_(True)
    z, held = _pool_latents(ckpt_dir, vae, pool, bs)
    seen = {}

    @torch.no_grad()
    def answer(xt, t, ids, scenes, eps):
        seen["maps"].clear()
        return teacher(xt, t, text_encoder(ids)[0]).sample, seen["maps"].mean().flatten(1, 2)

    cb = _noise_callback(z, held, vae.config.scaling_factor, tokenizer, seed=seed, offset_noise=offset_noise,
                         offset_from=0, targets=answer, caption=distil_caption,
                         pair_caption=distil_pair_caption if pair_weight else None)
    model = TextToEpsAttn(student, text_encoder, None)
    learn, ema, ckpt = _learner(model, DistilLoss(weight, pair_weight), cb, iters, bs, lr, 0.01, ckpt_dir, ema_decay, tag)
    # captured only now: the EMA copy (made above) keeps the UNet's own attention processors
    with capture_cross_attention(teacher, hw) as seen["maps"], capture_cross_attention(student, hw, detach=False) as model.store:
        ema = _fit(learn, ema, ckpt, epochs, lr)
    return ema.unet


# ------------------------------------------------------------------ the judge
def labels_of(seeds) -> torch.Tensor:
    "B x n_attributes tensor of value indices (order of `ATTRIBUTES`)."
    from .scene import ATTRIBUTES
    return torch.tensor([[ATTRIBUTES[k].index(v) for k, v in random_scene(int(s)).attributes().items()]
                         for s in seeds])


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    "Blur, colour jitter and noise, per image, so the judge also reads imperfect generated images."
    b = len(x)
    u = lambda *shape: torch.rand(*shape, generator=g)
    blur = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, 1)
    a = u(b, 1, 1, 1) * (u(b, 1, 1, 1) < 0.5)
    x = x * (1 - a) + blur * a
    x = x * (1 + 0.16 * (u(b, 1, 1, 1) - 0.5)) + 0.16 * (u(b, 3, 1, 1) - 0.5)
    return (x + 0.1 * u(b, 1, 1, 1) * torch.randn(x.shape, generator=g)).clamp(-1.2, 1.2)


class _JudgeLoss(nn.Module):
    "Sum over attributes of the cross-entropy of that attribute's head."
    def forward(self, logits, y): return sum(F.cross_entropy(l, y[:, i]) for i, l in enumerate(logits.values()))


def train_judge(ckpt_dir, *, epochs=6, iters=150, bs=64, lr=3e-3, pool=8_000, seed=0):
    """Train the judge on a pool of renders with augmentation; returns the `Judge`. Unlike the model's stages
    it is the trained weights, not their EMA (kept in the checkpoint like every stage's): the shipped judge
    was made so and reads held-out renders right 100 % of the time, so nothing asked for the average."""
    _, Callback, _, _ = _fastai()
    from .judge import JudgeNet, Judge
    torch.manual_seed(seed)
    t0 = time.time()
    seeds = list(range(2_000_000, 2_000_000 + pool))
    imgs, labels = images_of(seeds), labels_of(seeds)
    held_x, held_y = images_of(range(HELD_OUT, HELD_OUT + 2 * bs)), labels_of(range(HELD_OUT, HELD_OUT + 2 * bs))
    print(f"rendered {pool} scenes in {time.time() - t0:.0f}s")

    class Batch(Callback):
        order = -10
        def before_batch(self):
            idx = self.xb[0]
            if self.training:
                g = torch.Generator().manual_seed(int(1e6 * seed + 1e3 * self.epoch + self.iter))
                j = torch.randint(0, pool, (len(idx),), generator=g)
                self.learn.xb, self.learn.yb = (augment(imgs[j], g),), (labels[j],)
            else:
                self.learn.xb, self.learn.yb = (held_x[idx - HELD_OUT],), (held_y[idx - HELD_OUT],)

    learn, ema, ckpt = _learner(JudgeNet(), _JudgeLoss(), Batch(), iters, bs, lr, 0.01, ckpt_dir, 0.99, "judge")
    _fit(learn, ema, ckpt, epochs, lr)
    return Judge(learn.model)


@torch.no_grad()
def judge_accuracy(judge, seeds, *, augmented=False) -> dict:
    "Per-attribute accuracy of `judge` on the renders of `seeds` (optionally augmented)."
    x, y = images_of(seeds), labels_of(seeds)
    if augmented: x = augment(x, torch.Generator().manual_seed(1))
    logits = judge.net.eval()(x)
    return {k: (l.argmax(-1) == y[:, i]).float().mean().item() for i, (k, l) in enumerate(logits.items())}
