"""Our helpers vs diffusers' pipelines on SD 1.5's real architecture, side by side in one run (a GPU).

    python benchmarks/gpu.py                       # SD 1.5's architecture, random float16 weights, CUDA
    python benchmarks/gpu.py --model PATH --device cpu --dtype float32 --repeats 1   # a smoke run anywhere

Speed does not depend on the weights, so nothing is downloaded: `random_sd15` builds the UNet, VAE and
CLIP text encoder with random weights (a tokenizer over a few words stands in for CLIP's; prompts are
padded to 77 tokens either way). Both sides run on the very same modules, 512x512, one image:

- generate: 50 DDIM steps, guidance 7.5 (diffusers: StableDiffusionPipeline);
- DiffEdit: the mask (n = 10 noise samples, strength 0.5, 25 steps) + DDIM encoding to ratio 0.8 +
  masked decoding, 25 steps (diffusers: StableDiffusionDiffEditPipeline's generate_mask + invert + call);
- LEDITS++: SDE-DPM-Solver++ inversion (20 steps, skip 0.15) + an edit with two concepts, M1 ∩ M2
  (diffusers: LEditsPPPipelineStableDiffusion's invert + call).

For each: median seconds per image over `--repeats` runs after a warm-up, ours and diffusers' taken in
turn (until 2026-12-06 each side's runs came in a block), peak GPU memory of one untimed run, and
whether any latent or decoded pixel is NaN/inf (float16 overflow shows up there). Both sides decode
the result once: ours return images and latents, and diffusers' latents go through the same decode
(until 2026-12-06 they did not: ~1 VAE decode in diffusers' favour, seconds on a CPU at 512x512).
Diffusers' LEDITS++ `invert` decodes its input once more of its own (`image_rec`): one decode against it.

Then where LEDITS++'s time goes: the UNet alone, one call at 1, 2 and 3 rows (the inversion's and the
edit's sizes; a flat line means the GPU waits on kernel launches, not on arithmetic), each side's
inversion and edit timed apart, and ours on a batch of four images (one UNet call of 4 and 12 rows a step).
"""
import argparse, os, statistics, sys, tempfile, time
from pathlib import Path
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch
from course_utils import load_models, generate
from course_utils.models import Models, random_sd15, SD15_CONFIGS
from course_utils.diffedit import diffedit_mask, diffedit, diffusers_diffedit, diffusers_diffedit_edit
from course_utils.ledits import (ddpm_invert, ledits_edit, diffusers_ledits, diffusers_ledits_edit, diffusers_ledits_apply,
                                 EditConcept)
from course_utils.latents import latents_to_images, image_size
from course_utils.attention import keep_processors
from course_utils.toyworld.tokenizer import write_clip_tokenizer

PROMPT, SOURCE, TARGET = "a photo of a cat", "a photo of a cat", "a photo of a dog"
CONCEPTS = [EditConcept("sunglasses", scale=4, threshold=0.9), EditConcept("a hat", scale=3, threshold=0.9)]
T4_GB = 15.0  # a free Colab T4: 16 GB, about 15 usable


def sd15(device, dtype) -> Models:
    "SD 1.5's architecture with random weights, on `device` in `dtype`."
    from diffusers import DDIMScheduler
    from transformers import CLIPTokenizer
    path = write_clip_tokenizer("a photo of cat dog sunglasses hat".split(), Path(tempfile.mkdtemp()) / "tok", 77)
    unet, vae, text_encoder = random_sd15(dtype, device)   # built where it runs
    return Models(CLIPTokenizer.from_pretrained(str(path)), text_encoder, vae, unet,
                  DDIMScheduler(**SD15_CONFIGS["scheduler"]), torch.device(device), dtype, "random SD 1.5").to()


def decoded(m: Models, f):
    "f, then one VAE decode of the latents it returns (as ours do): -> the latents."
    def run():
        z = f(); latents_to_images(m, z); return z
    return run


def cases(m: Models):
    "name -> (ours() -> final latents, theirs() -> final latents)."
    from PIL import Image
    import numpy as np
    size = image_size(m)
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8))
    sd = m.pipeline()
    de = diffusers_diffedit(m)
    lp = diffusers_ledits(m)
    g = lambda: torch.Generator().manual_seed(0)

    def gen_ours(): return generate(m, PROMPT, num_inference_steps=50, return_latents=True, progress=False)[1]
    def gen_theirs(): return sd(PROMPT, num_inference_steps=50, guidance_scale=7.5, generator=g(), output_type="latent").images

    def de_ours():
        mask = diffedit_mask(m, photo, SOURCE, TARGET, n=10, strength=0.5, num_inference_steps=25)
        return diffedit(m, photo, TARGET, mask, ratio=0.8, num_inference_steps=25, return_latents=True, progress=False)[1]
    def de_theirs():
        return diffusers_diffedit_edit(de, photo, SOURCE, TARGET, mask_steps=25, ratio=0.8, num_inference_steps=25,
                                       output_type="latent")[0]

    def le_ours():
        inv = ddpm_invert(m, photo, num_inversion_steps=20, skip=0.15, solver="dpmpp", progress=False)
        return ledits_edit(m, inv, CONCEPTS, return_latents=True, progress=False)[1]
    def le_theirs():
        return diffusers_ledits_edit(lp, photo, CONCEPTS, num_inversion_steps=20, skip=0.15, output_type="latent")

    return {"generate (50 steps)": (gen_ours, decoded(m, gen_theirs)),
            "DiffEdit (mask n=10 + edit, 25 steps)": (de_ours, decoded(m, de_theirs)),
            "LEDITS++ (20 + 20 steps, 2 concepts)": (le_ours, decoded(m, le_theirs))}


def sync(m: Models):
    "Wait for the GPU's queued work (nothing on a CPU)."
    if m.device.type == "cuda": torch.cuda.synchronize()


def in_turn(m: Models, fs, repeats: int, warm: bool = True) -> list[float]:
    """Median seconds of each f in `fs`, run in turn `repeats` times (ours, theirs, ours, ...), after one
    warm-up each (`warm=False`: the caller ran each once already): a machine that drifts or a noisy
    neighbour then weighs on every side alike."""
    if warm:
        for f in fs: f(); sync(m)
    times = [[] for _ in fs]
    for _ in range(repeats):
        for f, ts in zip(fs, times):
            t0 = time.perf_counter(); f(); sync(m); ts.append(time.perf_counter() - t0)
    return [statistics.median(ts) for ts in times]


@torch.no_grad()
def check(m: Models, f):
    "(peak GB or None, finite?) of one untimed run of f() -> latents; the decoded image is checked too."
    if m.device.type == "cuda": torch.cuda.reset_peak_memory_stats()
    z = f(); sync(m)
    peak = torch.cuda.max_memory_allocated() / 2**30 if m.device.type == "cuda" else None
    return peak, bool(torch.isfinite(z).all()) and bool(torch.isfinite(latents_to_images(m, z)).all())


def split(m: Models, repeats: int):
    "Print the UNet's time per call at 1-3 rows, and LEDITS++'s inversion and edit apart, ours and diffusers'."
    from PIL import Image
    import numpy as np
    size, c = image_size(m), m.unet.config.sample_size
    emb = m.text_encoder.config.hidden_size
    t = torch.tensor(500, device=m.device)
    ms = []
    for rows in (1, 2, 3):
        x = torch.randn(rows, 4, c, c, device=m.device, dtype=m.dtype)
        e = torch.randn(rows, 77, emb, device=m.device, dtype=m.dtype)
        ms.append(1e3 * in_turn(m, [lambda: m.unet(x, t, encoder_hidden_states=e)], 3 * repeats)[0])
    print("UNet alone, one call: " + ", ".join(f"{v:.1f} ms at {r} row{'s' * (r > 1)}" for r, v in zip((1, 2, 3), ms)))
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8))
    inv, lp = [None], diffusers_ledits(m)
    def our_inv(): inv[0] = ddpm_invert(m, photo, num_inversion_steps=20, skip=0.15, solver="dpmpp", progress=False)
    def our_edit(): return ledits_edit(m, inv[0], CONCEPTS, return_latents=True, progress=False)[1]
    def their_inv():   # its invert leaves classic attention on the shared UNet: put ours back (as diffusers_ledits_edit does)
        with keep_processors(m.unet):
            lp.invert(image=photo, num_inversion_steps=20, skip=0.15, generator=torch.Generator().manual_seed(0))
    def their_edit(): return diffusers_ledits_apply(lp, CONCEPTS, output_type="latent")
    photos = [photo.rotate(90 * k) for k in range(4)]                 # four images in one batch (ours only:
    def batch():                                                       # diffusers' masks are wrong in a batch)
        inv4 = ddpm_invert(m, photos, num_inversion_steps=20, skip=0.15, solver="dpmpp", seed=[0, 1, 2, 3], progress=False)
        return ledits_edit(m, inv4, [CONCEPTS] * 4, return_latents=True, progress=False)[1]
    # in turn: each edit right after its own inversion (it edits what that left), the batch of four after them
    oi, oe, ti, te, tb = in_turn(m, [our_inv, our_edit, their_inv, decoded(m, their_edit), batch], repeats)
    print(f"LEDITS++ apart: ours inversion {oi:.3f} s + edit {oe:.3f} s; diffusers inversion {ti:.3f} s + "
          f"edit {te:.3f} s (each edit with one decode; diffusers' inversion decodes once more, its image_rec)")
    print(f"LEDITS++ in a batch of 4: {tb / 4:.3f} s an image, against {oi + oe:.3f} s alone ({(oi + oe) * 4 / tb:.1f}x)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="a diffusers folder (default: SD 1.5's architecture, random weights)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default="float16", choices=["float16", "float32", "bfloat16"])
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    dtype = getattr(torch, a.dtype)
    torch.manual_seed(0)
    m = load_models(a.model, a.device, dtype) if a.model else sd15(a.device, dtype)
    name = torch.cuda.get_device_name() if m.device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"{m.name}, {image_size(m)}x{image_size(m)}, {a.dtype}, {name}; "
          f"median of {a.repeats}, ours and theirs in turn, after a warm-up; peak memory of one untimed run")
    print(f"{'':>38} | {'ours s':>7} | {'diffusers s':>11} | ours/theirs | {'ours GB':>7} | {'theirs GB':>9} | fits T4 | finite")
    for case, (ours, theirs) in cases(m).items():
        (po, fo), (pt, ft) = check(m, ours), check(m, theirs)      # each side's first run: the warm-up too
        to, tt = in_turn(m, [ours, theirs], a.repeats, warm=False)
        gb = lambda p: f"{p:7.2f}" if p is not None else "      -"
        fits = "-" if po is None else ("yes" if max(po, pt) <= T4_GB else "no")
        print(f"{case:>38} | {to:7.3f} | {tt:11.3f} | {to / tt:11.2f} | {gb(po)} | {gb(pt):>9} | {fits:>7} | "
              f"{'yes' if fo and ft else 'NO: ours' * (not fo) + ' theirs' * (not ft)}", flush=True)
    split(m, a.repeats)


if __name__ == "__main__":
    main()
