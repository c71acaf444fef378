"""Sampling speed: `course_utils.generate` vs diffusers' `StableDiffusionPipeline`, same weights and settings.

    python benchmarks/sampling.py [--batch 8] [--steps 50] [--repeats 3]

Runs both, alternately, on the same prompts, seed, scale and scheduler, and prints the wall time
of each, their ratio (ours / diffusers), and for each the share of wall time spent inside UNet
calls (forward hooks). The rest, printed per step, is the loop's own overhead plus the text encoding,
the VAE decoding and the conversion to images, done once per call (on both sides alike).
"""
import argparse, os, sys, time
from pathlib import Path
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np
import torch
from course_utils import load_models, generate
from course_utils.metrics import held_out_scenes
from common import ModuleClock


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model", default="toy")
    a = ap.parse_args(argv)
    from diffusers import StableDiffusionPipeline
    m = load_models(a.model, device="cpu")
    pipe = m.pipeline(StableDiffusionPipeline)
    prompts = [s.caption for s in held_out_scenes(a.batch)]
    runs = {
        "course_utils.generate": lambda: generate(m, prompts, guidance_scale=7.5, num_inference_steps=a.steps, seed=0, progress=False),
        "StableDiffusionPipeline": lambda: pipe(prompts, guidance_scale=7.5, num_inference_steps=a.steps,
                                                generator=torch.Generator().manual_seed(0)).images,
    }
    for f in runs.values(): f()  # warm-up
    wall = {k: [] for k in runs}; unet = {k: [] for k in runs}
    clock = ModuleClock(m.unet)
    for _ in range(a.repeats):
        for k, f in runs.items():  # alternate, so both see the same machine state
            clock.total = 0.0
            t0 = time.perf_counter(); f(); wall[k].append(time.perf_counter() - t0); unet[k].append(clock.total)
    clock.remove()
    print(f"{a.batch} prompts, {a.steps} DDIM steps, guidance 7.5, {torch.get_num_threads()} CPU threads, median of {a.repeats}")
    for k in runs:
        w, u = np.median(wall[k]), np.median(unet[k])
        print(f"{k:>24}: {w:6.2f}s  | in UNet calls {u / w:5.1%} | outside it {(w - u) / a.steps * 1e3:5.1f} ms a step")
    print(f"time ratio ours / diffusers: {np.median(wall['course_utils.generate']) / np.median(wall['StableDiffusionPipeline']):.2f}")


if __name__ == "__main__":
    main()
