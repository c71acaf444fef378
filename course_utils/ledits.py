"""LEDITS++ (Brack et al. 2024): exact inversion, then several masked edits at once.

**Edit-friendly DDPM inversion** (Huberman-Spiegelglas et al. 2024). Noise the clean latents
*independently* at every timestep, x_t = sqrt(ᾱ_t) x_0 + sqrt(1 − ᾱ_t) ε_t, then, from the
noisiest down, solve the stochastic sampler's step for the noise that lands exactly on the next:

    x_{t−1} = μ_t(x_t, ε̂(x_t)) + σ_t z_t      =>      z_t = (x_{t−1} − μ_t) / σ_t

Sampling again with the stored z_t and the same prediction ε̂ retraces every x_t exactly: with no
edit, the output *is* the input's latents. `solver="ddpm"` is DDIM with η = 1 (DDPM);
`solver="dpmpp"` is the paper's fast 2nd-order SDE DPM-Solver++. μ_t and σ_t are read off the
scheduler's own `step` (it is affine in its noise), so both solvers share one code path.

**Editing** (§3.2). At each step ONE UNet call predicts 1 + N noises, unconditional u and one
per concept c_i; each concept gives an edit vector, masked:

    g_i = ± s_i (ε(x_t, c_i) − u)                 (− for reverse: remove the concept)
    M2_i = |g_i| summed over channels >= its λ_i-quantile
    M1_i = cross-attention map of c_i's tokens (latent/4, averaged over heads and the down and up
           blocks' layers, 3x3 Gaussian)
           >= its λ_i-quantile, upsampled to the latent grid
    ε̂ = u + Σ_i M1_i · M2_i · g_i                 (intersection only for t <= 800, as diffusers)

active from step `warmup` until step `cooldown`. (With a non-empty source prompt, u is replaced
by the source-guided prediction used when inverting, so that "no edit" stays exact.)

**Whole captions as concepts** (`caption_concepts`). Invert with the image's caption as the
source prompt (guidance s) and edit with the target caption forward and the source caption in
reverse, both at scale s and threshold 0 (no mask):

    ε̂ = u + s (ε(src) − u) + s (ε(tgt) − u) − s (ε(src) − u) = u + s (ε(tgt) − u)

"No edit" (tgt = src) is exact, and this is the edit-friendly DDPM paper's own edit (invert with
the source prompt, sample with the target's): the z_t hold everything the source caption does not
say, and the prediction moves only where the captions disagree, ε(tgt) − ε(src) being near zero
elsewhere.

**Rows the sum does not need.** Without masks (every concept at threshold 0) ε̂ is a fixed weighted
sum of the UNet's rows, ε̂ = Σ_j w_j ε(x_t, p_j), and a row whose weight is 0 is not computed, as a
sampler skips u at guidance 1. For whole captions the weights are u: 1 − s, src: s − s = 0, tgt: s:
2 rows per image (u, tgt), and at s = 1 (the tiny model's setting) ONE, ε(tgt), as the inversion
with the source caption at guidance 1 needs only ε(src). Masked concepts need u and their own rows.

**Batches.** `ddpm_invert` takes a list of images (a seed and source prompt for all or one per
image) and `ledits_edit` then takes one list of concepts per image: each step is still ONE UNet
call, of Σ_i (1 + N_i) rows laid out image by image (fewer where the weighted sum above drops some),
so images with different numbers of concepts share it. Each image's noise comes from its own seed: a
batch gives what single calls give, to float32 rounding. In float16 on a GPU the kernels change with the
batch size: on random weights a batch's edits (DPM-Solver++) were 5 % off their single runs, with
quantile masks flipping cells at the threshold.

**Precision.** The UNet, VAE and text encoder run in the model's dtype (float16 on a GPU), but the
latents, the edit vectors and masks, the scheduler steps and the z_t solve stay float32: solving
z_t = (x_{t−1} − μ_t) / σ_t in half precision divides a rounding error by a small σ_t, and with
DPM-Solver++ the inversion then misses the input by ~10 % (measured at 64x64 latents).
"""
from __future__ import annotations
import copy
import re
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .attention import capture_cross_attention, keep_processors
from .chunks import unet_eps
from .inversion import encode_image, as_images, per_image, per_image_prompts, per_image_seeds, generators
from .latents import latents_to_pil
from .text import as_prompt_list, encode_prompt

__all__ = ["EditConcept", "make_concepts", "caption_concepts", "LeditsInversion", "inversion_scheduler", "ddpm_invert", "ledits_edit", "edit_vector", "concept_mask", "concept_masks",
           "diffusers_ledits", "diffusers_ledits_edit", "diffusers_ledits_apply", "diffusers_ledits_rebuild", "reconstruction_errors", "token_span", "diffusers_token_span", "SOLVERS", "MASK_TYPES"]

SOLVERS = ("ddpm", "dpmpp")
MASK_TYPES = ("M1", "M2", "mask")


@dataclass(frozen=True)
class EditConcept:
    """One LEDITS++ edit: its prompt, scale s, direction, quantile threshold λ, and active steps.

    threshold 0 masks nothing: the concept acts on the whole image.
    mask_words: the words of the prompt whose cross-attention maps M1 sums (None: all of them, as
    diffusers does). A prompt can carry context the concept's own words need, and M1 then reads only
    those words: with a causal text encoder a word sees only the words before it."""
    prompt: str
    scale: float = 5.0
    reverse: bool = False
    threshold: float = 0.9
    warmup: int = 0
    cooldown: int | None = None
    mask_words: str | None = None

    def __post_init__(self):
        as_prompt_list(self.prompt, "concept prompt")
        if not self.prompt.strip():
            raise ValueError("an empty concept prompt edits nothing: its noise prediction is the unconditional "
                             "one, u, so its edit vector s (ε_c − u) is 0")
        if self.mask_words is not None and not self.mask_words.strip():
            raise ValueError("mask_words is empty: leave it None for M1 to read the whole prompt")
        if self.mask_words is not None and not re.search(rf"(?<!\w){re.escape(self.mask_words.strip())}(?!\w)", self.prompt):
            raise ValueError(f"mask_words {self.mask_words!r} are not words of the prompt {self.prompt!r}")
        if not 0 <= self.threshold < 1: raise ValueError(f"threshold must be in [0, 1), got {self.threshold}")
        if self.warmup < 0: raise ValueError(f"warmup must be >= 0, got {self.warmup}")
        if self.cooldown is not None and self.cooldown <= self.warmup:
            raise ValueError(f"cooldown ({self.cooldown}) must come after warmup ({self.warmup})")

    def active(self, step: int) -> bool:
        "Is the concept applied at sampling step `step` (warmup <= step < cooldown)?"
        return step >= self.warmup and (self.cooldown is None or step < self.cooldown)


def make_concepts(prompts, *, scale=5.0, reverse=False, threshold=0.9, warmup=0, cooldown=None) -> list[EditConcept]:
    "EditConcepts from a list of prompts; each setting is one value for all, or a list with one per prompt."
    prompts = as_prompt_list(prompts, "concept prompts")
    def per(name, v):
        if isinstance(v, (list, tuple)):
            if len(v) != len(prompts):
                raise ValueError(f"got {len(v)} values of {name} for {len(prompts)} concepts: give one, or one per concept")
            return list(v)
        return [v] * len(prompts)
    cols = [per(n, v) for n, v in (("scale", scale), ("reverse", reverse), ("threshold", threshold),
                                    ("warmup", warmup), ("cooldown", cooldown))]
    return [EditConcept(p, *c) for p, *c in zip(prompts, *cols)]


def caption_concepts(source_prompt: str, target_prompt: str, scale: float = 1.0) -> list[EditConcept]:
    """An edit named by whole captions: the target caption forward and the source caption in reverse,
    both at `scale`, no mask (threshold 0). Invert with `ddpm_invert(..., source_prompt=source_prompt,
    source_guidance_scale=scale)`: then ε̂ = u + scale (ε(tgt) − u), and with target = source nothing
    changes (see the module doc). With no source caption ("": invert with `ddpm_invert(image)`, no
    source prompt or scale) the reverse concept would be u − u = 0, and is left out: ε̂ = u + scale (ε(tgt) − u)."""
    for name, p in (("source_prompt", source_prompt), ("target_prompt", target_prompt)):
        if not isinstance(p, str): raise TypeError(f"{name} must be one caption (a str), got {type(p).__name__}")
    forward = EditConcept(target_prompt, scale=scale, threshold=0.0)
    return [forward] + ([EditConcept(source_prompt, scale=scale, threshold=0.0, reverse=True)] if source_prompt.strip() else [])


def token_span(tokenizer, concept: EditConcept) -> tuple[int, int]:
    """(start, stop): the positions, in the prompt's token ids (<bos> at 0), of the tokens M1 sums:
    the prompt's words, or the last occurrence of its `mask_words`. A prompt longer than the text encoder
    takes is an error: its words past that are never encoded, and M1 would read positions it does not have."""
    ids = tokenizer(concept.prompt).input_ids
    if len(ids) > tokenizer.model_max_length:
        raise ValueError(f"the concept {concept.prompt[:40]!r}... is {len(ids)} tokens, over the {tokenizer.model_max_length} "
                         "the text encoder reads: shorten it")
    ids = ids[1:-1]                                                       # without <bos>, <eos>
    if concept.mask_words is None: return 1, 1 + len(ids)
    sub = tokenizer(concept.mask_words).input_ids[1:-1]
    for s in range(len(ids) - len(sub), -1, -1):
        if ids[s:s + len(sub)] == sub: return 1 + s, 1 + s + len(sub)
    raise ValueError(f"the tokens of {concept.mask_words!r} are not among those of {concept.prompt!r}")


def diffusers_token_span(tokenizer, concept: EditConcept) -> tuple[int, int]:
    """(1, 1 + n): the positions diffusers' LEDITS++ pipeline sums for M1. It counts a prompt's tokens
    with `return_length=True` after padding to max_length, so n = max_length − 2 for every prompt: the
    words, then <eos> and padding. Put in place of `token_span` to reproduce its masks (tests, benchmarks/ledits_gap.py)."""
    n = tokenizer([concept.prompt], padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                  return_length=True).length[0]
    return 1, 1 + int(n) - 2


def _as_concepts(concepts) -> list[EditConcept]:
    if isinstance(concepts, (str, EditConcept)): concepts = [concepts]     # one concept (a str is not a list of them)
    out = []
    for c in concepts or []:
        if isinstance(c, EditConcept): out.append(c)
        elif isinstance(c, str): out.append(EditConcept(c))
        elif isinstance(c, tuple) and len(c) == 2 and isinstance(c[1], bool): out.append(EditConcept(c[0], reverse=c[1]))
        else: raise TypeError(f"concepts: a concept is an EditConcept, a prompt, or (prompt, reverse); got {c!r}"
                              + (" (a list of lists is one list per image, for an inversion of a batch of images)"
                                 if isinstance(c, list) else ""))
    return out


def inversion_scheduler(models, solver):
    "A fresh stochastic scheduler with the model's noise schedule: DDIM (used with eta = 1) or SDE-DPM-Solver++(2M)."
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler
    if solver not in SOLVERS: raise ValueError(f"unknown solver {solver!r}; choose one of {SOLVERS}")
    cfg_ = dict(models.scheduler.config)
    if solver == "ddpm": return DDIMScheduler.from_config(cfg_)
    return DPMSolverMultistepScheduler.from_config(cfg_, algorithm_type="sde-dpmsolver++", solver_order=2,
                                                   final_sigmas_type="sigma_min")  # a last step with noise: exact


SOURCE_GUIDANCE = 3.5  # diffusers' default source guidance for an inversion with a caption


def _step_kwargs(solver): return {"eta": 1.0} if solver == "ddpm" else {}


def _fingerprint(models) -> tuple:
    "What identifies the weights an inversion was made with (cheap)."
    u = models.unet
    return (u.config.sample_size, u.config.cross_attention_dim, round(float(u.conv_in.weight.double().sum()), 6),
            round(float(u.conv_out.weight.double().sum()), 6))


@dataclass
class LeditsInversion:
    """xts[k]: latents before sampling step k, B x C x h x w (xts[0] the noisiest, xts[-1] = x_0);
    zs[k]: the noise of step k; timesteps: the N sampling timesteps (descending). `batched`: made
    from a list of images (source_prompt is then a list, one per image)."""
    xts: torch.Tensor
    zs: torch.Tensor
    timesteps: torch.Tensor
    solver: str
    total_steps: int
    source_prompt: str | list[str]
    source_guidance_scale: float
    fingerprint: tuple = field(repr=False)
    batched: bool = False
    base_emb: torch.Tensor | None = field(default=None, repr=False)   # B x r x L x D: the rows ε̂ was inverted with

    @property
    def x0(self) -> torch.Tensor: return self.xts[-1]

    @property
    def source_prompts(self) -> list[str]: return self.source_prompt if self.batched else [self.source_prompt]


def _base_emb(models, source_prompts) -> torch.Tensor:
    "B x r x L x D: each image's base rows (r = 1: u; r = 2: u and its source prompt)."
    u = encode_prompt(models, [""])
    if not any(source_prompts): return u[None].expand(len(source_prompts), -1, -1, -1)
    src = encode_prompt(models, source_prompts)
    return torch.stack([u.expand_as(src), src], 1)


def _rows(models, x: torch.Tensor, image_of_row: torch.Tensor) -> torch.Tensor:
    """The UNet's input rows, in the UNet's dtype: row j is image image_of_row[j]'s latents. Inversion and
    edit build them the same way (contiguous), so the UNet rounds alike in both and "no edit" stays exact."""
    return x[image_of_row].to(next(models.unet.parameters()).dtype).contiguous()  # (unet.dtype walks every module: 1.3 ms)


def _scratch(sched):
    """A copy of the scheduler to take one step (or add noise) with, `sched` left as it was. A step only
    rebinds its state (ints, and the entries of lists such as DPM-Solver's model_outputs), never writes a
    tensor in place, so a shallow copy with fresh lists will do (a deepcopy also copies every schedule tensor)."""
    c = copy.copy(sched)
    c.__dict__.update({k: list(v) for k, v in vars(sched).items() if isinstance(v, list)})
    return c


def _base_weights(source_prompt: str, source_guidance_scale: float, r: int) -> list[float]:
    """One image's weights on its r base rows (u, and its source prompt when r = 2) in ε̂: u alone, or
    u + s (ε(src) − u) = (1 − s) u + s ε(src) when it was inverted with a source prompt at guidance s."""
    if not source_prompt: return [1.0] + [0.0] * (r - 1)
    return [1.0 - source_guidance_scale, float(source_guidance_scale)]


def _layout(cand, needed, device):
    """The rows of one UNet call: of each image i's candidate rows cand[i] (n_i x L x D), those j with
    needed(i, j), image by image. -> ({(i, j): row of the call}, R x L x D embeddings, R: each row's image)."""
    kept = [(i, j) for i in range(len(cand)) for j in range(len(cand[i])) if needed(i, j)]
    return ({ij: p for p, ij in enumerate(kept)}, torch.stack([cand[i][j] for i, j in kept]),
            torch.tensor([i for i, _ in kept], device=device))


def _weighted(eps: torch.Tensor, pos: dict, i: int, weights) -> torch.Tensor:
    "Image i's Σ_j w_j ε(row j), over its rows of nonzero weight: 1 x C x h x w (a weight of 1 alone gives its row exactly)."
    return sum(w * eps[pos[i, j]][None] for j, w in enumerate(weights) if w != 0)


@torch.no_grad()
def ddpm_invert(models, image, *, source_prompt: str = "", source_guidance_scale: float | None = None,
                num_inversion_steps: int = 30, skip: float = 0.15, seed: int = 0, solver: str = "ddpm",
                progress: bool = True) -> LeditsInversion:
    """Edit-friendly inversion of `image` (PIL RGB of the model's size), or of a list of B images (or a
    B x 3 x H x W tensor) in one UNet call per step (a source prompt and seed for all, or one per image).

    With no source prompt ("", diffusers' default) the noise is predicted unconditionally, u; with the
    photo's caption, ε̂ = u + s (ε(src) − u) at s = `source_guidance_scale` (default 3.5, diffusers'),
    which means nothing without one (an error). The scheduler gets int(N (1 + skip)) timesteps and the
    N least noisy are inverted (diffusers' convention): a larger `skip` starts the edit from a less noisy latent."""
    if num_inversion_steps < 1: raise ValueError(f"num_inversion_steps must be >= 1, got {num_inversion_steps}")
    if not 0 <= skip < 1: raise ValueError(f"skip must be in [0, 1), got {skip}")
    images, batched = as_images(image)
    B = len(images)
    sources = per_image_prompts(source_prompt, B, "source_prompt")
    if source_guidance_scale is not None and not any(sources):
        raise ValueError("source_guidance_scale needs a source_prompt (the photo's caption): without one the "
                         "inversion predicts the noise unconditionally and there is nothing to guide")
    if source_guidance_scale is None: source_guidance_scale = SOURCE_GUIDANCE
    seeds = per_image_seeds(seed, B)
    sched = inversion_scheduler(models, solver)
    kw = _step_kwargs(solver)
    total = int(num_inversion_steps * (1 + skip))
    sched.set_timesteps(total, device=models.unet.device)
    ts = sched.timesteps[-num_inversion_steps:]
    x0 = encode_image(models, images).float()  # B x C x h x w; the latents and the z_t solve stay float32 (see the module doc)
    noise = torch.stack([torch.randn((len(ts), *x0.shape[1:]), generator=torch.Generator().manual_seed(s)) for s in seeds], 1)
    noise = noise.to(x0.device, x0.dtype)                                 # N x B x C x h x w, each image its own seed
    # x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε_t, independent per t, with a copy: DDIM's add_noise moves its ᾱ table to the
    # latents' device for good, and on a GPU steps that read ᾱ there round unlike the edit's ("no edit" was 1.6 % off)
    adder = _scratch(sched)
    xts = [adder.add_noise(x0, noise[k], ts[k:k + 1]) for k in range(len(ts))] + [x0]
    base = _base_emb(models, sources)                                     # B x r x L x D
    r = base.shape[1]
    weights = [_base_weights(src, source_guidance_scale, r) for src in sources]
    pos, emb, row_image = _layout(base, lambda i, j: weights[i][j] != 0, x0.device)  # at guidance 1: ε(src) alone
    zs = []
    for k, t in enumerate(tqdm(ts, desc=f"inversion ({solver})", disable=not progress, leave=False)):
        x = xts[k]
        out = unet_eps(models, _rows(models, x, row_image), t, emb).float()
        eps = torch.cat([_weighted(out, pos, i, weights[i]) for i in range(B)])   # ε̂ = u + s (ε(src) − u), per image
        # μ and σ of this step, read off the scheduler (its step is affine in the noise)
        mu = _scratch(sched).step(eps, t, x, variance_noise=torch.zeros_like(x), **kw).prev_sample
        sigma = _scratch(sched).step(eps, t, x, variance_noise=torch.ones_like(x), **kw).prev_sample - mu
        z = torch.where(sigma.abs() > 0, (xts[k + 1] - mu) / sigma.where(sigma.abs() > 0, torch.ones_like(sigma)),
                        torch.zeros_like(x))                       # z_t = (x_{t−1} − μ_t) / σ_t
        x_next = sched.step(eps, t, x, variance_noise=z, **kw).prev_sample    # = x_{t−1}, up to rounding
        if k + 1 < len(ts): xts[k + 1] = x_next  # carry the rounding forward; keep the clean x_0 as it is
        zs.append(z)
    return LeditsInversion(torch.stack(xts), torch.stack(zs), ts.cpu(), solver, total, sources if batched else sources[0],
                           source_guidance_scale, _fingerprint(models), batched, base)


def _gaussian_3x3(x: torch.Tensor, std: float = 2 ** -0.5) -> torch.Tensor:
    """B x h x w -> the same, smoothed by a normalised 3x3 Gaussian (reflect padding), as diffusers' LEDITS++ does.
    diffusers (and the paper's code) write the kernel exp(-((d - mean) / (2σ))²) with σ = 0.5: a Gaussian of
    standard deviation √2 · 0.5 ≈ 0.71, which is `std` here. Written as the weighted sum of the 9 shifted
    maps, not a conv2d, so that a map gets the same bits alone or in a batch (a CPU convolution picks its
    kernel, and its order of summation, by batch size)."""
    d = torch.arange(3, dtype=torch.float32) - 1
    k1 = torch.exp(-d ** 2 / (2 * std ** 2)); k = torch.outer(k1, k1); k = (k / k.sum()).to(x.dtype)   # k_ij ∝ exp(-(i² + j²) / 2std²)
    h, w = x.shape[-2:]
    p = F.pad(x[:, None], (1, 1, 1, 1), mode="reflect")[:, 0]
    return sum(k[i, j] * p[:, i:i + h, j:j + w] for i in range(3) for j in range(3))   # y = Σ_ij k_ij x_pad[· + i, · + j]


def _quantile_masks(x: torch.Tensor, q) -> torch.Tensor:
    """P x h x w and P quantile levels -> bool P x h x w: x[p] >= its q[p]-quantile. One torch.quantile for
    all (in float32: it has no float16), at each distinct level: the same thresholds as one call per map."""
    flat = x.flatten(1).float()
    levels, which = torch.as_tensor(q, dtype=torch.float32).unique(return_inverse=True)
    thr = torch.quantile(flat, levels.to(flat.device), dim=1)[which.to(flat.device), torch.arange(len(flat), device=flat.device)]
    return x.float() >= thr[:, None, None]


def edit_vector(u: torch.Tensor, eps_c: torch.Tensor, concept: EditConcept) -> torch.Tensor:
    "g = s (ε_c − u), negated for a reverse concept (removal)."
    return (eps_c - u) * (-concept.scale if concept.reverse else concept.scale)


def concept_masks(g: torch.Tensor, attn: torch.Tensor | None, thresholds, *, t: int = 0,
                  use_intersect_mask: bool = True, intersect_below: int = 800):
    """(M1, M2, applied mask), bool P x h x w, for P concepts' edit vectors g (P x C x h x w) at once.

    attn: each concept's cross-attention map summed over its tokens (P x h/4 x w/4), or None for no M1;
    thresholds: P quantile levels. M2 = channel-summed |g| >= its quantile; M1 = the map, 3x3-Gaussian-
    smoothed, >= its quantile, upsampled (nearest); applied: M1 ∩ M2 (M1 alone above `intersect_below`),
    M1, or M2. Each concept's masks are those it gets alone (`concept_mask`)."""
    h, w = g.shape[-2:]
    m2 = _quantile_masks(g.abs().sum(1), thresholds)
    if attn is None: return None, m2, m2
    a = _gaussian_3x3(attn.float())
    m1 = F.interpolate(_quantile_masks(a, thresholds)[:, None].float(), size=(h, w), mode="nearest")[:, 0] > 0
    if not use_intersect_mask: return m1, m2, m1
    return m1, m2, (m1 & m2) if t <= intersect_below else m1


def concept_mask(g: torch.Tensor, attn: torch.Tensor | None, threshold: float, *, t: int = 0,
                 use_intersect_mask: bool = True, intersect_below: int = 800):
    """(M1, M2, applied mask), bool h x w, for one concept's edit vector g (1 x C x h x w).

    attn: the concept tokens' cross-attention maps (h/4 x w/4 x n_tokens), or None for no M1.
    M2 = channel-summed |g| >= its quantile; M1 = token-summed, 3x3-Gaussian-smoothed map >= its
    quantile, upsampled (nearest); applied: M1 ∩ M2 (M1 alone above `intersect_below`), M1, or M2.
    (`concept_masks` does P concepts in one go.)"""
    m1, m2, mask = concept_masks(g, None if attn is None else attn.float().sum(-1)[None], [threshold], t=t,
                                 use_intersect_mask=use_intersect_mask, intersect_below=intersect_below)
    return (None if m1 is None else m1[0]), m2[0], mask[0]


def _concept_lists(concepts, inversion) -> list[list[EditConcept]]:
    """One list of EditConcepts per image. A batched inversion takes a list of B lists (one per image,
    possibly empty) or one list of concepts (or one concept) for every image; a single image, one list."""
    B = inversion.xts.shape[1]
    if concepts is None: concepts = []
    if not inversion.batched or isinstance(concepts, (str, EditConcept)): return [_as_concepts(concepts)] * B
    concepts = list(concepts)
    if concepts and all(isinstance(c, list) for c in concepts):
        return [_as_concepts(c) for c in per_image(concepts, B, "concepts")]
    if any(isinstance(c, list) for c in concepts):
        raise TypeError(f"concepts: either one list per image (a list of {B} lists) or one list of concepts for every "
                        f"image, not a mix of the two; got {concepts!r}")
    return [_as_concepts(concepts)] * B


@torch.no_grad()
def ledits_edit(models, inversion: LeditsInversion, concepts, *, use_cross_attn_mask: bool = True,
                use_intersect_mask: bool = True, intersect_below: int = 800, record_masks: bool = False,
                progress: bool = True, return_latents: bool = False):
    """Edit an inverted image with several concepts at once (see the module doc).

    concepts: a list of EditConcepts (or prompts, or (prompt, reverse) pairs), or one EditConcept or prompt;
    [] reproduces the input.
    Masks: cross-attention M1 if `use_cross_attn_mask`; M1 ∩ M2 if also `use_intersect_mask`
    (for t <= `intersect_below`; the intersection needs M1, so it turns the maps on); M2 alone if
    neither. `record_masks` also returns
    {mask type: tensor steps x concepts x h x w} ('M1', 'M2', 'mask': the one applied). An image whose
    concepts are all at threshold 0 is unmasked: its ε̂ is a weighted sum of rows, rows of weight 0 are
    not computed, and its recorded masks are ones while a concept is active.
    Returns the edited image; with `return_latents` and/or `record_masks`, a tuple (image, its 1 x C x h x w
    latents, its mask record), in that order, of what was asked for.
    A batched inversion (of a list of B images) takes a list of B concept lists (or one list for
    all) and returns lists: B images (B x C x h x w latents, B mask records)."""
    if not isinstance(inversion, LeditsInversion): raise TypeError("inversion must come from ddpm_invert")
    if inversion.fingerprint != _fingerprint(models):
        raise ValueError("this inversion was made with other weights (or another dtype): invert the image again with these models")
    dev = models.unet.device                  # an inversion kept from before a `models.to(...)`: its tensors follow the model
    if inversion.xts.device != dev:
        inversion = replace(inversion, xts=inversion.xts.to(dev), zs=inversion.zs.to(dev),
                            base_emb=None if inversion.base_emb is None else inversion.base_emb.to(dev))
    if tuple(inversion.x0.shape[-2:]) != (models.unet.config.sample_size,) * 2:
        raise ValueError(f"the inversion's latents are {tuple(inversion.x0.shape[-2:])}, the model works at "
                         f"{models.unet.config.sample_size}x{models.unet.config.sample_size}: invert an image of the model's size")
    lists, sources = _concept_lists(concepts, inversion), inversion.source_prompts
    B = len(lists)
    s_inv = inversion.source_guidance_scale
    if any(c.reverse and c.threshold == 0 and src and c.prompt == src and c.scale != s_inv for src, cs in zip(sources, lists) for c in cs):
        warnings.warn(f"the source caption comes back in reverse at another scale than the inversion's ({s_inv:g}): the edit is "
                      "then ε̂ = u + (s_inv − s)(ε(src) − u) + s (ε(tgt) − u), the source caption still pulling, not "
                      "u + s (ε(tgt) − u). Give caption_concepts the inversion's source_guidance_scale", stacklevel=2)
    solver, kw = inversion.solver, _step_kwargs(inversion.solver)
    sched = inversion_scheduler(models, solver)
    sched.set_timesteps(inversion.total_steps, device=models.unet.device)
    tcpu = inversion.timesteps; ts = tcpu.to(models.unet.device)   # the CPU's copy to read t from: no GPU sync a step
    base = inversion.base_emb if inversion.base_emb is not None else _base_emb(models, sources)  # the inversion's rows, as they were
    r = base.shape[1]
    own, row_of = [], []   # per image: the concept prompts that need a row of their own; each concept's row (of the image's)
    for src, cs in zip(sources, lists):
        ps, rows = [], []
        for c in cs:
            if r == 2 and src and c.prompt == src: rows.append(1)         # the source prompt's row is there already
            else:
                if c.prompt not in ps: ps.append(c.prompt)
                rows.append(r + ps.index(c.prompt))
        own.append(ps); row_of.append(rows)
    flat = [p for ps in own for p in ps]
    cemb = encode_prompt(models, flat).split([len(ps) for ps in own]) if flat else [base[0, :0]] * B
    cand = [torch.cat([base[i], cemb[i]]) for i in range(B)]            # image i's candidate rows: base, own concept prompts
    masked = [any(c.threshold > 0 for c in cs) for cs in lists]        # threshold 0 masks nothing: ε̂ is a weighted sum of rows
    bw = [_base_weights(src, inversion.source_guidance_scale, r) for src in sources]

    def weights(i, k):
        "Image i's weights on its candidate rows at step k: the base's, plus ± s (ε_c − u) per active concept when unmasked."
        w = bw[i] + [0.0] * len(own[i])
        for c, j in ([] if masked[i] else zip(lists[i], row_of[i])):    # a masked image adds its M g after the call
            if c.active(k):
                s = -c.scale if c.reverse else c.scale
                w[j] += s; w[0] -= s                                     # + s ε_c − s u
        return w

    steps = [[weights(i, k) for i in range(B)] for k in range(len(ts))]
    pos, emb, row_image = _layout(cand, lambda i, j: masked[i] or any(ws[i][j] != 0 for ws in steps), ts.device)
    spans = [[token_span(models.tokenizer, c) for c in cs] for cs in lists]   # the tokens M1 reads, per concept
    h, w = inversion.x0.shape[-2:]
    wants_m1 = use_cross_attn_mask or use_intersect_mask
    use_m1 = wants_m1 and any(cs for cs, mk in zip(lists, masked) if mk)
    rec = [{k: torch.zeros(len(ts), len(cs), h, w) for k in MASK_TYPES} for cs in lists] if record_masks else None
    x = inversion.xts[0]
    with capture_cross_attention(models.unet, (h // 4, w // 4), ("down", "up")) if use_m1 else nullcontext() as store:
        for k, t in enumerate(tqdm(ts, desc="LEDITS++ edit", disable=not progress, leave=False)):
            got = unet_eps(models, _rows(models, x, row_image), t, emb, store=store)   # ONE call for the batch
            eps, maps = got if use_m1 else (got, None)                        # maps: rows x h/4 x w/4 x tokens
            eps = eps.float()
            out = [_weighted(eps, pos, i, steps[k][i]) for i in range(B)]
            on = [(i, j) for i, cs in enumerate(lists) if masked[i] for j, c in enumerate(cs) if c.active(k)]
            if on:   # the masked images' active concepts, their masks in one go: P = len(on) edit vectors g = s (ε_c − u)
                g = torch.cat([edit_vector(eps[pos[i, 0]][None], eps[pos[i, row_of[i][j]]][None], lists[i][j]) for i, j in on])
                attn = torch.stack([maps[pos[i, row_of[i][j]], :, :, slice(*spans[i][j])].float().sum(-1)
                                    for i, j in on]) if use_m1 else None
                m1, m2, mask = concept_masks(g, attn, [lists[i][j].threshold for i, j in on], t=int(tcpu[k]),
                                             use_intersect_mask=use_intersect_mask, intersect_below=intersect_below)
                for p, (i, j) in enumerate(on):
                    out[i] = out[i] + mask[p].to(g.dtype) * g[p:p + 1]        # ε̂ = u + Σ_i M_i g_i
                    if rec is not None:
                        rec[i]["M2"][k, j] = m2[p].float().cpu(); rec[i]["mask"][k, j] = mask[p].float().cpu()
                        if m1 is not None: rec[i]["M1"][k, j] = m1[p].float().cpu()
            if rec is not None:      # an unmasked concept's masks are all ones (its quantile at 0 is the minimum)
                for i, cs in enumerate(lists):
                    for j, c in enumerate(cs):
                        if not masked[i] and c.active(k):
                            for kind in MASK_TYPES if wants_m1 else ("M2", "mask"): rec[i][kind][k, j] = 1.0
            x = sched.step(torch.cat(out), t, x, variance_noise=inversion.zs[k], **kw).prev_sample
    images = latents_to_pil(models, x)
    if not inversion.batched: images, rec = images[0], (rec[0] if rec is not None else None)
    out = (images,) + ((x,) if return_latents else ()) + ((rec,) if record_masks else ())
    return out if len(out) > 1 else images


def diffusers_ledits(models, *, exact: bool = False):
    """diffusers' `LEditsPPPipelineStableDiffusion` on the same modules, with the SDE-DPM-Solver++ of
    its docs, to compare with. (With DDIMScheduler, diffusers 0.42's `invert` fails: it calls
    `add_noise` with a float timestep tensor, which cannot index `alphas_cumprod`.)

    Its inversion solves each step's noise with its own copy of the solver's second-order update,
    and its edit samples with the scheduler's `step`; the two part at the last step. As it ships
    (exact=False) the scheduler ends on σ = 0 (`final_sigmas_type="zero"`), a step with no noise to
    solve for, so the last latent is the model's guess of x_0 (~0.1 latent RMSE on the tiny model),
    and takes that step at first order (as it does with under 15 steps: `lower_order_final`). exact=True
    ends on σ_min, as our `inversion_scheduler`, at second order: then invert + no edit gives x_0 back
    to float rounding. (Ours reads μ and σ off the scheduler's own step, so its orders always match.)"""
    from diffusers import LEditsPPPipelineStableDiffusion, DPMSolverMultistepScheduler
    last = dict(final_sigmas_type="sigma_min", lower_order_final=False) if exact else {}
    sched = DPMSolverMultistepScheduler.from_config(models.scheduler.config, algorithm_type="sde-dpmsolver++", solver_order=2, **last)
    return models.pipeline(LEditsPPPipelineStableDiffusion, scheduler=sched)


def diffusers_ledits_edit(pipe, image, concepts, *, num_inversion_steps: int = 20, skip: float = 0.15, seed: int = 0,
                          output_type: str = "pil"):
    """One edit with diffusers' LEDITS++ pipeline (`diffusers_ledits(models)`), as this course compares it:
    `invert` (no source prompt) then the edit with `concepts` (EditConcepts: their prompts, scales,
    thresholds, directions, warm-up and cool-down), masks M1 ∩ M2; each call's generator seeded `seed`.
    One image at a time: the pipeline takes one concept list for its whole batch, and in diffusers 0.42
    its attention store splits a batch's attention maps into chunks of B along rows x heads, which puts
    other images' rows and heads into each image's M1 when B > 1 and the UNet has several heads (a
    batch of 2 came out 0.3-0.7 % off its single edits on the tiny model, far off on random weights).
    -> the edited image (or latents with output_type="latent")."""
    if isinstance(image, (list, tuple)):
        raise TypeError("diffusers_ledits_edit takes one image: diffusers' LEDITS++ masks are wrong in a batch (see its doc)")
    with keep_processors(pipe.unet):
        pipe.invert(image=image, num_inversion_steps=num_inversion_steps, skip=skip, generator=torch.Generator().manual_seed(seed))
        return diffusers_ledits_apply(pipe, concepts, seed=seed, output_type=output_type)


def diffusers_ledits_apply(pipe, concepts, *, seed: int = 0, output_type: str = "pil"):
    """The edit half of `diffusers_ledits_edit`: diffusers' pipeline edits the image it inverted last (the
    UNet's attention processors are put back afterwards; `pipe.invert` called directly leaves its own).
    concepts: as `ledits_edit`'s for one image; a concept's `mask_words` has no counterpart in the pipeline
    (its M1 sums every token position of the prompt) and is not passed."""
    concepts = _as_concepts(concepts)
    with keep_processors(pipe.unet):
        out = pipe(editing_prompt=[c.prompt for c in concepts], edit_guidance_scale=[c.scale for c in concepts],
                   edit_threshold=[c.threshold for c in concepts], reverse_editing_direction=[c.reverse for c in concepts],
                   edit_warmup_steps=[c.warmup for c in concepts],
                   edit_cooldown_steps=[c.cooldown if c.cooldown is not None else 10**6 for c in concepts],
                   use_cross_attn_mask=True, use_intersect_mask=True, generator=torch.Generator().manual_seed(seed),
                   output_type=output_type).images
    return out if output_type == "latent" else out[0]


def diffusers_ledits_rebuild(pipe, images, *, num_inversion_steps: int = 20, skip: float = 0.15, seed: int = 0,
                             output_type: str = "pil"):
    """diffusers' LEDITS++ asked for no change, on a list of images in one batch: `invert` with a generator
    per image (each draws the noise a call of its own would), then the pipeline without concepts (no
    attention store, so unlike an edit a batch is each image's own result).
    -> B images (or B x 4 x h x w latents with output_type="latent")."""
    images = list(images)
    with keep_processors(pipe.unet):
        pipe.invert(image=images, num_inversion_steps=num_inversion_steps, skip=skip, generator=generators(seed, len(images)))
        return pipe(editing_prompt=None, output_type=output_type, generator=generators(seed, len(images))).images


def reconstruction_errors(models, images, *, num_inversion_steps: int = 20, skip: float = 0.15, progress: bool = True) -> dict:
    """Invert the images and rebuild them with no edit, five ways: ours (DDPM and SDE-DPM-Solver++),
    diffusers' LEDITS++ pipeline as it ships and with its last step made exact (`diffusers_ledits`),
    and DDIM inversion + decoding (lesson 3). Each way takes the whole list as one
    batch: ours as every editor does, diffusers' with `diffusers_ledits_rebuild` (`progress`: one bar
    over the ways).

    -> {name: {"rmse": latent RMSE against the image's latents, per image, "seconds": the batch's time / B}}"""
    import time
    from .diffedit import diffedit
    from .latents import image_to_latents
    images = list(images)
    B, n = len(images), num_inversion_steps

    def ours(solver):
        return lambda: ledits_edit(models, ddpm_invert(models, images, num_inversion_steps=n, skip=skip, solver=solver,
                                                       progress=False), [], return_latents=True, progress=False)[1]

    def theirs(exact):
        return lambda: diffusers_ledits_rebuild(diffusers_ledits(models, exact=exact), images,
                                                num_inversion_steps=n, skip=skip, output_type="latent")

    def ddim():  # DiffEdit with masks of ones and ratio 1: DDIM-invert all the way, decode with the empty prompt
        h = models.unet.config.sample_size
        return diffedit(models, images, [""] * B, [torch.ones(h, h)] * B, ratio=1.0, guidance_scale=1.0,
                        num_inference_steps=n, return_latents=True, progress=False)[1]

    ways = {"DDPM (edit-friendly)": ours("ddpm"), "DPM-Solver++ 2M SDE": ours("dpmpp"), "diffusers LEDITS++": theirs(False),
            "diffusers, exact last step": theirs(True), "DDIM inversion": ddim}
    x0, out = image_to_latents(models, images), {}
    for name, rebuild in tqdm(ways.items(), desc=f"{B} images x {len(ways)} ways", disable=not progress, leave=False):
        t0 = time.perf_counter(); z = rebuild()
        out[name] = {"rmse": (z.to(x0) - x0).pow(2).flatten(1).mean(1).sqrt().tolist(),
                     "seconds": [(time.perf_counter() - t0) / B] * B}
    return out
