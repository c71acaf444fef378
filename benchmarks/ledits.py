"""LEDITS++ on the tiny model: exactness of the inversions, and edits vs diffusers' pipeline.

    python benchmarks/ledits.py [--n 24] [--steps 20] [--skip S] [--scale S] [--threshold L]

1. Reconstruction (no edit), latent RMSE against the image's latents, over lesson 4's 8 held-out
   images: this course's `ddpm_invert` + `ledits_edit` for both solvers; diffusers'
   `LEditsPPPipelineStableDiffusion` (invert + call without concepts, SDE-DPM-Solver++ as its docs
   use — with DDIMScheduler diffusers 0.42's `invert` crashes), as it ships and with its last step
   made exact (`diffusers_ledits(m, exact=True)`); and DDIM inversion (lesson 3).
2. Edits on held-out single (colour, texture, add/remove accessory) and double edits (colour +
   accessory), the same concepts, scales, thresholds and steps for both implementations: the
   paper's few-word concepts, the way diffusers' pipeline is made to be used (`toyworld.short_concepts`
   with the tiny model's settings per kind of concept, `toyworld.TOY_LEDITS`, unless --scale/--threshold;
   the course's own whole-caption naming is measured against every other editor by benchmarks/editors.py):
   strict success (the judge reads every attribute of the target scene AND the result is closer to
   the target in the region; `metrics.edit_scores`), PSNR outside the region, IoU of the
   last step's mask with the region (ours), and the time ratio ours / diffusers. Ours is timed with
   `record_masks` on (the IoU needs the masks); on the CPU recording costs nothing measurable
   (0.99x of the time without it, 6 double edits alternated, 2026-12-06).
"""
import argparse, os, sys
from pathlib import Path
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np
from course_utils import load_models
from course_utils.ledits import ddpm_invert, ledits_edit, diffusers_ledits, diffusers_ledits_edit, reconstruction_errors
from course_utils.metrics import edit_scores, held_out_edits, held_out_scenes, mask_iou, wilson_interval
from course_utils.toyworld import render, load_judge, short_concepts, TOY_LEDITS, TOY_LEDITS_SKIP, short_skip
from common import timed

SINGLE = ("color", "texture", "add_accessory", "remove_accessory")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=24, help="held-out edits per kind")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--skip", type=float, help="one skip for every edit (default: per kind of concept, TOY_LEDITS_SKIP;"
                                               " 0.15 for the reconstructions)")
    ap.add_argument("--scale", type=float, help="one edit scale for every concept, reverse ones too (default: per kind, TOY_LEDITS)")
    ap.add_argument("--threshold", type=float, help="one threshold for every concept (default: per kind)")
    ap.add_argument("--model", default="toy", help="'toy' or a diffusers folder")
    a = ap.parse_args(argv)
    m, judge = load_models(a.model, device="cpu"), load_judge()
    ref = diffusers_ledits(m)

    rec_skip = 0.15 if a.skip is None else a.skip
    print(f"1. reconstruction without edits: latent RMSE vs the image's latents ({a.steps} steps, skip {rec_skip}, 8 held-out images)")
    rec = reconstruction_errors(m, [render(s).image for s in held_out_scenes(8, offset=91_000)],
                                num_inversion_steps=a.steps, skip=rec_skip)
    for k, v in rec.items(): print(f"  {k:>26}: mean {np.mean(v['rmse']):.2e}, max {np.max(v['rmse']):.2e}")

    settings = {k: {**v, **({"scale": a.scale, "reverse_scale": a.scale} if a.scale is not None else {}),
                    **({"threshold": a.threshold} if a.threshold is not None else {})}
                for k, v in TOY_LEDITS.items()}
    skip_of = (lambda e: a.skip) if a.skip is not None else short_skip
    print(f"\n2. edits: {a.n} held-out edits per kind, {a.steps} steps, skip {TOY_LEDITS_SKIP if a.skip is None else a.skip}, {settings},"
          f" cross-attention + intersection masks")
    print(f"{'kind':>22} | {'ours: success  PSNR  IoU':>25} | {'diffusers: success  PSNR':>25} | time ours/diffusers")
    totals = {"single": [], "double": []}
    for kind in SINGLE + ("color_and_accessory",):
        ours, theirs, t_ours, t_theirs, ious = [], [], 0.0, 0.0, []
        for e in held_out_edits(kind, a.n, offset=80_000):
            im, skip = render(e.source).image, skip_of(e)
            concepts = short_concepts(e, settings)
            def run_ours():
                inv = ddpm_invert(m, im, num_inversion_steps=a.steps, skip=skip, solver="dpmpp", progress=False)
                return ledits_edit(m, inv, concepts, record_masks=True, progress=False)
            (out, masks), t = timed(run_ours); t_ours += t
            ours.append(edit_scores(e, out, judge))
            ious.append(mask_iou(masks["mask"][-1].amax(0), e.region))  # union over concepts at the last step
            out, t = timed(lambda: diffusers_ledits_edit(ref, im, concepts, num_inversion_steps=a.steps, skip=skip)); t_theirs += t
            theirs.append(edit_scores(e, out, judge))
        mean = lambda rows, k: float(np.mean([r[k] for r in rows]))
        print(f"{kind:>22} | {mean(ours, 'success'):>12.2f} {mean(ours, 'psnr_outside'):>6.1f} {np.mean(ious):>4.2f} | "
              f"{mean(theirs, 'success'):>18.2f} {mean(theirs, 'psnr_outside'):>6.1f} | {t_ours / t_theirs:.2f}")
        totals["double" if kind == "color_and_accessory" else "single"].append((ours, theirs))
    ci = lambda rs: "[{:.2f}, {:.2f}]".format(*wilson_interval(sum(r["success"] for r in rs), len(rs)))
    for k, rows in totals.items():
        o = [r for ours, _ in rows for r in ours]; d = [r for _, theirs in rows for r in theirs]
        print(f"  {k} ({len(o)} edits): success ours {np.mean([r['success'] for r in o]):.2f} {ci(o)} vs diffusers"
              f" {np.mean([r['success'] for r in d]):.2f} {ci(d)};"
              f" PSNR outside ours {np.mean([r['psnr_outside'] for r in o]):.1f} dB vs diffusers {np.mean([r['psnr_outside'] for r in d]):.1f} dB")


if __name__ == "__main__":
    main()
