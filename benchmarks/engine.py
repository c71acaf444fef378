"""The offline engine, measured: VAE reconstruction, prompt adherence vs guidance, a sample grid.

    python benchmarks/engine.py [--n 200] [--steps 25] [--grid images/toy_samples.png]

All scenes are held out (seeds >= `metrics.HELD_OUT`, never trained on). Prompt adherence is the
judge's reading of images generated (`course_utils.generate`, DDIM) from the scenes' captions:
per-attribute accuracy (9 attributes per scene) and the share of images with all 9 right. The
judge's accuracy on the real renders of the same scenes is printed as the ceiling.
"""
import argparse, os, sys, time
from pathlib import Path
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np
import torch
from PIL import Image, ImageDraw
from course_utils import load_models
from course_utils.latents import image_to_latents, latents_to_pil
from course_utils.metrics import psnr, held_out_scenes, prompt_adherence
from course_utils.toyworld import render, load_judge


def grid(rows: dict, path, cell=96, title=""):
    "A labelled grid of images: one row per entry of `rows`."
    n = max(len(r) for r in rows.values())
    g = Image.new("RGB", (90 + n * cell, 22 + len(rows) * cell), "white")
    d = ImageDraw.Draw(g)
    d.text((90, 5), title, fill="black")
    for r, (name, ims) in enumerate(rows.items()):
        d.text((4, 22 + r * cell + cell // 2 - 6), name, fill="black")
        for c, im in enumerate(ims):
            g.paste(im.resize((cell - 4, cell - 4), Image.NEAREST), (90 + c * cell, 22 + r * cell))
    g.save(path)
    return path


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200, help="held-out scenes per guidance scale")
    ap.add_argument("--steps", type=int, default=25, help="DDIM steps")
    ap.add_argument("--grid", default="images/toy_samples.png")
    ap.add_argument("--model", default="toy")
    a = ap.parse_args(argv)
    models, judge = load_models(a.model, device="cpu"), load_judge()
    scenes = held_out_scenes(a.n)
    renders = [render(s).image for s in scenes]

    t0 = time.time()
    with torch.no_grad():
        recs = [im for i in range(0, len(renders), 50)
                for im in latents_to_pil(models, image_to_latents(models, renders[i:i + 50]))]
    p = np.array([psnr(r, x) for r, x in zip(recs, renders)])
    print(f"VAE reconstruction, {len(p)} held-out renders: PSNR mean {p.mean():.2f} dB, median {np.median(p):.2f}, "
          f"5th percentile {np.percentile(p, 5):.2f}, min {p.min():.2f}  ({time.time() - t0:.1f}s)")
    ceiling = np.mean([np.mean(list(judge.score(r, s).values())) for r, s in zip(renders, scenes)])
    print(f"judge on the real renders of these scenes (the ceiling): attribute accuracy {ceiling:.3f}")

    print(f"\nprompt adherence: {a.n} held-out captions, DDIM {a.steps} steps, read by the judge")
    print(f"{'guidance':>8} | {'attribute acc':>13} | {'all 9 right':>11} | weakest attribute      | time")
    rows = {"render": renders[:8], "VAE rec.": recs[:8]}
    for scale in (1.0, 3.0, 5.0, 7.5):
        t0 = time.time()
        r = prompt_adherence(models, judge, scenes, guidance_scale=scale, num_inference_steps=a.steps)
        worst = min(r["per_attribute"], key=r["per_attribute"].get)
        print(f"{scale:>8} | {r['attribute_accuracy']:>13.3f} | {r['all_right']:>11.3f} | "
              f"{worst:<16} {r['per_attribute'][worst]:.3f} | {time.time() - t0:.0f}s")
        rows[f"cfg {scale}"] = r["images"][:8]
    if a.grid:
        print("\nsample grid:", grid(rows, a.grid, title="tiny SD, held-out ToyWorld captions (columns)"))
        for i, s in enumerate(scenes[:8]): print(f"  column {i + 1}: {s.caption}")


if __name__ == "__main__":
    main()
