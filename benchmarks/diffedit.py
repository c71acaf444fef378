"""DiffEdit on held-out ToyWorld edits: this course's helpers vs diffusers' pipeline, same tiny weights.

    python benchmarks/diffedit.py [--n 20] [--steps 50] [--ratio 0.8]

Per edit kind (colour, texture, shape swap), printed side by side in one run:
- masks: IoU against the exact edit region and time, for this project's `diffedit_mask`, diffusers'
  `generate_mask`, and the seed's single-prompt variant (n = 10, strength 0.5 for all). Each side's
  binary latent mask, the one its edit uses, is scored the same way (`metrics.mask_iou`: each
  latent cell upsampled to the 4x4 pixels it covers);
- edits: strict success (the judge reads every attribute of the target scene, the changed one
  included, AND the result is closer to the target than to the source inside the region), preservation (PSNR outside the region vs the source),
  time; for `diffedit` (DDIM encoding, same-timestep blend) vs diffusers' pipeline
  (generate_mask + invert + __call__) at the same ratio / inpaint_strength, steps and guidance.
"""
import argparse, os, sys
from pathlib import Path
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np
import torch
from course_utils import load_models
from course_utils.diffedit import diffedit_mask, diffedit_mask_single_prompt, diffedit, diffusers_diffedit, diffusers_diffedit_edit
from course_utils.metrics import mask_iou, edit_scores, held_out_edits
from course_utils.toyworld import render, load_judge
from common import timed

KINDS = ("color", "texture", "shape")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20, help="held-out edits per kind")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--ratio", type=float, default=0.8)
    ap.add_argument("--scale", type=float, default=7.5)
    ap.add_argument("--model", default="toy", help="'toy' or a diffusers folder")
    a = ap.parse_args(argv)
    torch.manual_seed(0)
    m, judge = load_models(a.model, device="cpu"), load_judge()
    ref = diffusers_diffedit(m)
    e = held_out_edits(KINDS[0], 1)[0]; im = render(e.source).image       # a warm-up for both sides, untimed
    diffedit(m, im, e.target_prompt, diffedit_mask(m, im, e.source_prompt, e.target_prompt, num_inference_steps=a.steps),
             num_inference_steps=a.steps, progress=False)
    diffusers_diffedit_edit(ref, im, e.source_prompt, e.target_prompt, mask_steps=a.steps, num_inference_steps=a.steps)
    rows = {}
    for kind in KINDS:
        r = {k: [] for k in ("iou_ours", "iou_diffusers", "iou_seed", "t_ours", "t_diffusers", "t_seed",
                             "ours", "diffusers", "te_ours", "te_diffusers")}
        for e in held_out_edits(kind, a.n):
            im = render(e.source).image
            mk, t = timed(lambda: diffedit_mask(m, im, e.source_prompt, e.target_prompt, n=10, strength=0.5,
                                                num_inference_steps=a.steps))
            r["iou_ours"].append(mask_iou(mk.binary, e.region)); r["t_ours"].append(t)
            g = torch.Generator().manual_seed(0)
            dm, t = timed(lambda: ref.generate_mask(image=im, source_prompt=e.source_prompt, target_prompt=e.target_prompt,
                                                    num_maps_per_mask=10, mask_encode_strength=0.5,
                                                    num_inference_steps=a.steps, guidance_scale=a.scale, generator=g))
            r["iou_diffusers"].append(mask_iou(np.asarray(dm[0]) > 0.5, e.region)); r["t_diffusers"].append(t)
            sm, t = timed(lambda: diffedit_mask_single_prompt(m, im, e.target_prompt, n=10, strength=0.5,
                                                              num_inference_steps=a.steps))
            r["iou_seed"].append(mask_iou(sm.binary, e.region)); r["t_seed"].append(t)

            out, t = timed(lambda: diffedit(m, im, e.target_prompt, mk, ratio=a.ratio, guidance_scale=a.scale,
                                            num_inference_steps=a.steps, progress=False))
            r["ours"].append(edit_scores(e, out, judge)); r["te_ours"].append(t + r["t_ours"][-1])

            (out, _), t = timed(lambda: diffusers_diffedit_edit(ref, im, e.source_prompt, e.target_prompt, mask_steps=a.steps,
                                                                ratio=a.ratio, num_inference_steps=a.steps, guidance_scale=a.scale))
            r["diffusers"].append(edit_scores(e, out, judge)); r["te_diffusers"].append(t)
        rows[kind] = r

    mean = lambda xs: float(np.mean(xs))
    print(f"DiffEdit on held-out ToyWorld edits: {a.n} per kind, {a.steps} DDIM steps, ratio {a.ratio}, guidance {a.scale}\n")
    print("masks (n = 10, strength 0.5): IoU with the exact edit region | mean time per mask")
    print(f"{'kind':>8} | {'ours':>12} | {'diffusers':>12} | {'seed variant':>12} | time ours/diffusers")
    for k, r in rows.items():
        print(f"{k:>8} | {mean(r['iou_ours']):.3f} {mean(r['t_ours']):5.2f}s | {mean(r['iou_diffusers']):.3f} {mean(r['t_diffusers']):5.2f}s"
              f" | {mean(r['iou_seed']):.3f} {mean(r['t_seed']):5.2f}s | {mean(r['t_ours']) / mean(r['t_diffusers']):.2f}")
    print("\nedits (mask + inversion + decoding): success (strict) = every attribute read right AND closer to target; judge = the changed one read right; PSNR outside the region")
    print(f"{'kind':>8} | {'ours: success judge closer  PSNR':>34} | {'diffusers: success judge closer  PSNR':>38} | time ratio")
    for k, r in rows.items():
        s = {w: {f: mean([x[f] for x in r[w]]) for f in ("success", "judge", "closer", "psnr_outside")} for w in ("ours", "diffusers")}
        print(f"{k:>8} | {s['ours']['success']:>13.2f} {s['ours']['judge']:>5.2f} {s['ours']['closer']:>6.2f} {s['ours']['psnr_outside']:>5.1f}"
              f" | {s['diffusers']['success']:>17.2f} {s['diffusers']['judge']:>5.2f} {s['diffusers']['closer']:>6.2f} {s['diffusers']['psnr_outside']:>5.1f}"
              f" | {mean(r['te_ours']) / mean(r['te_diffusers']):.2f}")
    allr = lambda w, f: mean([x[f] for r in rows.values() for x in r[w]])
    print(f"\nall kinds: mask IoU ours {mean([v for r in rows.values() for v in r['iou_ours']]):.3f}; "
          f"success ours {allr('ours', 'success'):.2f} vs diffusers {allr('diffusers', 'success'):.2f}; "
          f"PSNR outside ours {allr('ours', 'psnr_outside'):.1f} dB vs diffusers {allr('diffusers', 'psnr_outside'):.1f} dB")


if __name__ == "__main__":
    main()
