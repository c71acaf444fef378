"""Every editor of the course on every kind of ToyWorld edit, judged strictly, on held-out edits that
no setting was tuned on (offset 150 000; the tiny model's settings were tuned at 90 000-110 000).

    python benchmarks/editors.py [--n 48] [--kinds color shape ...] [--methods sdedit diffedit ledits]

Per method and kind: strict success (the judge reads EVERY attribute of the target scene, and inside
the edit region the result is closer to the target render than to the source) with its 95 % Wilson
interval, the lenient rate beside it (only the changed attributes), PSNR outside the region, and
seconds per edit (batched: each method runs all edits of a kind as one batch).
- SDEdit: img2img with the target caption, strength 0.6, 25 steps, guidance 7.5.
- DiffEdit: the paper's mask (n = 10, strength 0.5, threshold 0.5), DDIM encoding to 0.8, 25 steps.
- LEDITS++: SDE-DPM-Solver++ inversion and edit, 20 steps, the tiny model's settings
  (`toyworld.toy_concepts`, `toyworld.toy_skip`; M1 ∩ M2).
"""
import argparse, os, sys
from pathlib import Path
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np
from course_utils import load_models
from course_utils.diffedit import diffedit_mask, diffedit, img2img
from course_utils.metrics import edit_scores, held_out_edits, wilson_interval
from course_utils.toyworld import render, load_judge, toy_ledits
from common import timed

KINDS = ("color", "texture", "shape", "add_accessory", "remove_accessory", "background", "color_and_accessory")
OFFSET = 150_000


def sdedit(m, edits):
    return img2img(m, [render(e.source).image for e in edits], [e.target_prompt for e in edits], strength=0.6,
                   num_inference_steps=25, progress=False)


def diffedit_paper(m, edits):
    ims, queries = [render(e.source).image for e in edits], [e.target_prompt for e in edits]
    masks = diffedit_mask(m, ims, [e.source_prompt for e in edits], queries)
    return diffedit(m, ims, queries, masks, ratio=0.8, num_inference_steps=25, progress=False)


def ledits(m, edits):
    return toy_ledits(m, edits)                                            # one batch per skip


METHODS = {"sdedit": ("SDEdit", sdedit), "diffedit": ("DiffEdit", diffedit_paper), "ledits": ("LEDITS++", ledits)}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=48, help="held-out edits per kind")
    ap.add_argument("--kinds", nargs="+", default=list(KINDS))
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    a = ap.parse_args(argv)
    m, judge = load_models("toy"), load_judge()
    print(f"{a.n} held-out edits per kind (offset {OFFSET}); strict success [95 % interval] (lenient), PSNR outside, s/edit")
    for key in a.methods:
        name, run = METHODS[key]
        allsc = []
        for kind in a.kinds:
            edits = held_out_edits(kind, a.n, offset=OFFSET)
            ims, t = timed(lambda: run(m, edits))
            sc = [edit_scores(e, im, judge) for e, im in zip(edits, ims)]
            allsc += sc
            k = sum(s["success"] for s in sc); lo, hi = wilson_interval(k, len(sc))
            print(f"{name:>9} {kind:>20}: {k / len(sc):.2f} [{lo:.2f}, {hi:.2f}] ({np.mean([s['lenient'] for s in sc]):.2f}) "
                  f"{np.mean([s['psnr_outside'] for s in sc]):5.1f} dB  {t / len(sc):.2f} s", flush=True)
        k = sum(s["success"] for s in allsc); lo, hi = wilson_interval(k, len(allsc))
        print(f"{name:>9} {'all':>20}: {k / len(allsc):.2f} [{lo:.2f}, {hi:.2f}] ({np.mean([s['lenient'] for s in allsc]):.2f}) "
              f"{np.mean([s['psnr_outside'] for s in allsc]):5.1f} dB", flush=True)


if __name__ == "__main__":
    main()
