"""Batched vs looped editing on held-out ToyWorld edits, measured side by side in one run.

    python benchmarks/batched.py [--sizes 1 8 32] [--model toy]

For each editor, at each batch size B: the seconds for B single-image calls in a loop, for one call
with a list of B images, their ratio (the speed-up), the same ratio for the time inside the editor's
UNet calls alone (its own ceiling: the editors call the UNet on different numbers of rows, e.g.
DiffEdit's mask is one call of 2n rows even for one image, so batching helps its calls less than
SDEdit's 2-row ones), and the share of the batched call's wall time
spent outside UNet calls and outside any model call (UNet, VAE encoder and decoder, text encoder: what
is left is the editor's own work, its loops, image conversions and masks; timed with forward hooks). Where diffusers has a
pipeline, its seconds per edit on the same weights and our batched seconds per edit over it: its
DiffEdit takes the B images as one batch but for the masks (`generate_mask` image by image: a
batch's masks share one scale), its LEDITS++ one image at a time, looped over min(B, 8) images (in
a batch its cross-attention masks mix the images: `ledits.diffusers_ledits_edit`).

- DiffEdit: the paper's mask (n = 10, strength 0.5) + DDIM encoding to ratio 0.8 + masked decoding,
  25 steps, guidance 7.5 (diffusers: generate_mask + invert + __call__, inpaint_strength 0.8).
- SDEdit (img2img): strength 0.6, 25 steps.
- LEDITS++: SDE-DPM-Solver++ inversion (20 steps, skip 0.15) + an edit with two concepts
  (diffusers: invert + __call__ with the same concepts, scales and thresholds).
First, the ceiling: the UNet alone, milliseconds per row (batch entry) at the batch sizes a CFG
sampler feeds it (2 rows: one image with CFG; 2B: B images). A batch saves the per-call cost and no more: the
ratio of per-row times, 2 rows vs 2B, is the speed-up batching can give the UNet calls at batch B, and
they are most of every editor's time (the rest, per-call work outside the UNet, can shrink further).
Then the UNet's arithmetic per row (FlopCounterMode) over its time: the rate it computes at, beside a large
matrix product's (about the most the machine's arithmetic gives). At large batches the UNet gets within
a small factor of it: past that point only fewer rows make a table faster.
Run it alone: two torch processes on two cores slow each other several times over. Each time is the
best of `--repeat` runs, looped and batched taken in turn (timeit's rule: the minimum is the run least
disturbed by the rest of the machine; single runs of this benchmark moved by up to 1.5x).
"""
import argparse, os, sys, time
from pathlib import Path
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch
from course_utils import load_models
from course_utils.diffedit import diffedit_mask, diffedit, img2img, diffusers_diffedit, diffusers_diffedit_edit
from course_utils.ledits import ddpm_invert, ledits_edit, diffusers_ledits, diffusers_ledits_edit, EditConcept
from course_utils.metrics import held_out_edits
from course_utils.toyworld import render
from common import timed, ModuleClock

STEPS, RATIO, SCALE = 25, 0.8, 7.5
CONCEPTS = [EditConcept("a thing with a hat on the left", scale=4, threshold=0.7),
            EditConcept("a green thing on the right", scale=5, threshold=0.8)]


def unet_ms_per_row(m, rows: int, reps: int = 3) -> float:
    "Milliseconds per row of one UNet call on `rows` rows (random latents, the model's text shape): the best of `reps` calls."
    c = m.unet.config
    x = torch.randn(rows, c.in_channels, c.sample_size, c.sample_size, device=m.unet.device, dtype=m.unet.dtype)
    emb = torch.randn(rows, m.tokenizer.model_max_length, c.cross_attention_dim, device=x.device, dtype=x.dtype)
    with torch.no_grad():
        m.unet(x, 500, encoder_hidden_states=emb)                               # warm-up
        t = min(timed(lambda: m.unet(x, 500, encoder_hidden_states=emb))[1] for _ in range(reps))
    return 1e3 * t / rows


def unet_gflop_per_row(m) -> float:
    "The UNet's floating-point operations for one row (torch's FlopCounterMode: convolutions, matmuls, attention)."
    from torch.utils.flop_counter import FlopCounterMode
    c = m.unet.config
    x = torch.randn(1, c.in_channels, c.sample_size, c.sample_size, device=m.unet.device, dtype=m.unet.dtype)
    emb = torch.randn(1, m.tokenizer.model_max_length, c.cross_attention_dim, device=x.device, dtype=x.dtype)
    with torch.no_grad(), FlopCounterMode(display=False) as count:
        m.unet(x, 500, encoder_hidden_states=emb)
    return count.get_total_flops() / 1e9


def matmul_gflops(device, dtype, n: int, reps: int = 5) -> float:
    "The rate of one large n x n matrix product on this device: about the most its arithmetic gives (best of reps)."
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    a @ b
    return 2 * n ** 3 / min(timed(lambda: a @ b)[1] for _ in range(reps)) / 1e9


def editors(m):
    "name -> (ours(images, edits) for a batch, diffusers(images, edits) -> the images it edited, or None)."
    de = diffusers_diffedit(m)
    lp = diffusers_ledits(m)

    def diffedit_ours(ims, es):
        masks = diffedit_mask(m, ims, [e.source_prompt for e in es], [e.target_prompt for e in es], n=10, strength=0.5)
        return diffedit(m, ims, [e.target_prompt for e in es], masks, ratio=RATIO, guidance_scale=SCALE,
                        num_inference_steps=STEPS, progress=False)

    def diffedit_theirs(ims, es):
        return diffusers_diffedit_edit(de, ims, [e.source_prompt for e in es], [e.target_prompt for e in es],
                                       mask_steps=STEPS * 2, ratio=RATIO, num_inference_steps=STEPS, guidance_scale=SCALE)[0]

    def ledits_ours(ims, es):
        inv = ddpm_invert(m, ims, num_inversion_steps=20, skip=0.15, solver="dpmpp", progress=False)
        return ledits_edit(m, inv, CONCEPTS, progress=False)

    def ledits_theirs(ims, es):   # one image at a time (see the module doc)
        return [diffusers_ledits_edit(lp, im, CONCEPTS, num_inversion_steps=20, skip=0.15) for im in ims[:8]]

    sdedit = lambda ims, es: img2img(m, ims, [e.target_prompt for e in es], strength=0.6, num_inference_steps=STEPS, progress=False)
    return {"DiffEdit (mask + edit)": (diffedit_ours, diffedit_theirs),
            "SDEdit (img2img)": (sdedit, None),
            "LEDITS++ (invert + edit, 2 concepts)": (ledits_ours, ledits_theirs)}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--model", default="toy", help="'toy' or a diffusers folder")
    ap.add_argument("--repeat", type=int, default=2, help="best of this many runs for every editor's time (the UNet alone: best of 3)")
    a = ap.parse_args(argv)
    torch.manual_seed(0)
    m = load_models(a.model, device="cpu")   # the CPU's numbers (benchmarks/gpu.py times a GPU, synchronising)
    pool = [e for k in ("color", "texture", "shape", "add_accessory") for e in held_out_edits(k, max(a.sizes) // 4 + 1, offset=130_000)]
    print(f"threads {torch.get_num_threads()}, model {a.model}")
    per_row = {r: unet_ms_per_row(m, r) for r in sorted({2} | {2 * B for B in a.sizes})}
    print("the UNet alone, ms per row: " + ", ".join(f"{r} rows {t:.1f}" for r, t in per_row.items()) +
          " -> the UNet calls' speed-up at B = " + ", ".join(f"{B}: {per_row[2] / per_row[2 * B]:.1f}x" for B in a.sizes))
    gflop = unet_gflop_per_row(m)
    print(f"a row is {gflop:.3f} GFLOP: the UNet computes at " + ", ".join(f"{gflop / t * 1e3:.0f}" for t in per_row.values()) +
          f" GFLOP/s at those batch sizes; a 2048x2048 matrix product at {matmul_gflops(m.unet.device, m.unet.dtype, n=2048):.0f}")
    print("seconds (looped = B single-image calls, batched = one call)")
    print(f"{'editor':>38} | {'B':>3} | {'looped':>7} | {'batched':>7} | speed-up | its UNet calls | outside UNet | outside any model call | diffusers s/edit | ours / diffusers")
    for name, (ours, theirs) in editors(m).items():
        ours([render(pool[0].source).image], pool[:1])                       # warm-up (diffusers' too: its first call is slow)
        if theirs is not None: theirs([render(pool[0].source).image], pool[:1])
        for B in a.sizes:
            es = pool[:B]; ims = [render(e.source).image for e in es]
            looped, batched, unet_looped, unet, others, per_edit = float("inf"), float("inf"), 0.0, 0.0, 0.0, float("inf")
            for _ in range(a.repeat):                                       # looped, batched, diffusers in turn; the best of each
                clock = ModuleClock(m.unet)
                try: t = timed(lambda: [ours([im], [e]) for im, e in zip(ims, es)])[1]
                finally: clock.remove()
                if t < looped: looped, unet_looped = t, clock.total
                clocks = ModuleClock(m.unet), ModuleClock(m.vae.encoder, m.vae.decoder, m.text_encoder)
                try: t = timed(lambda: ours(ims, es))[1]
                finally: [c.remove() for c in clocks]
                if t < batched: batched, unet, others = t, clocks[0].total, clocks[1].total
                if theirs is not None:
                    out, t = timed(lambda: theirs(ims, es))
                    per_edit = min(per_edit, t / len(out))                    # seconds per edit
            ref = "" if theirs is None else f"{per_edit:16.3f} | {batched / B / per_edit:16.2f}"
            print(f"{name:>38} | {B:>3} | {looped:7.2f} | {batched:7.2f} | {looped / batched:7.1f}x | {unet_looped / unet:12.1f}x | "
                  f"{1 - unet / batched:11.0%} | {1 - (unet + others) / batched:22.0%} | {ref:>16}", flush=True)


if __name__ == "__main__":
    main()
