"""What a latent-space mask can do at best on this stage: DiffEdit's ceiling, per kind of edit.

    python benchmarks/latent_masks.py [--n 24] [--kinds color background ...]

DiffEdit keeps the outside of its mask in *latent* space and lets the VAE decode the whole grid. That
keeps the rest of the image only if the latents are local: if the latents of what did not change are
the same in the source and in the target. Five rows per kind, on held-out edits (offset 170 000, not
used by any tuning, benchmark or lesson):
- "target through the VAE": the exact target render, encoded and decoded (the stage's own ceiling);
- "oracle latent paste": the exact target's latents inside the true edit region on the latent grid
  (`diffedit.latent_mask`: the cells the region covers for the most part), the source's outside,
  decoded: what a latent mask can do at best, the inside being exactly right and the outside exactly
  the source's; "..., every cell touched": the same with every cell the region touches;
- "DiffEdit, true region": DiffEdit's masked decoding with the true region as its mask;
- "DiffEdit": with its own mask (the paper's recipe: n = 10, strength 0.5); 25 steps, ratio 0.8.
Strict success (every target attribute read right and closer inside the region) with its Wilson
interval, the lenient rate, PSNR outside the region against the source. Run it alone (two torch
processes on two cores slow each other several times over).
"""
import argparse, os, sys
from pathlib import Path
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np
import torch
from course_utils import load_models
from course_utils.diffedit import diffedit_mask, diffedit, latent_mask
from course_utils.inversion import encode_image, ddim_invert
from course_utils.latents import latents_to_pil
from course_utils.metrics import held_out_edits, edit_scores, wilson_interval
from course_utils.toyworld import load_judge, render, EDITS

OFFSET, STEPS, RATIO = 170_000, 25, 0.8


def rows_for(m, edits) -> dict:
    "name -> the edited images, for the five rows above."
    src, tgt = [render(e.source).image for e in edits], [render(e.target).image for e in edits]
    prompts = [e.target_prompt for e in edits]
    zs, zt = encode_image(m, src), encode_image(m, tgt)
    paste = lambda cover: torch.cat([latent_mask(e.region, zs[:1], cover) for e in edits])     # B x 1 x h x w, 1 = the true region
    mostly, touched = paste(0.5), paste(0)
    inv = ddim_invert(m, src, num_inference_steps=STEPS, ratio=RATIO, progress=False)
    own = diffedit_mask(m, src, [e.source_prompt for e in edits], prompts)
    edit = lambda masks: diffedit(m, src, prompts, masks, ratio=RATIO, num_inference_steps=STEPS, inversion=inv, progress=False)
    return {"target through the VAE": latents_to_pil(m, zt),
            "oracle latent paste": latents_to_pil(m, mostly * zt + (1 - mostly) * zs),
            "..., every cell touched": latents_to_pil(m, touched * zt + (1 - touched) * zs),
            "DiffEdit, true region": edit([e.region for e in edits]),
            "DiffEdit": edit(own)}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=24, help="held-out edits per kind")
    ap.add_argument("--kinds", nargs="+", default=list(EDITS))
    a = ap.parse_args(argv)
    torch.manual_seed(0)
    m, judge = load_models("toy", "cpu"), load_judge()
    print(f"{a.n} held-out edits per kind (offset {OFFSET}); strict success [95 % interval] (lenient), PSNR outside the region")
    names = None
    for kind in a.kinds:
        edits = held_out_edits(kind, a.n, offset=OFFSET)
        out = rows_for(m, edits)
        names = names or list(out)
        if kind == a.kinds[0]: print(f"{'kind':>20} | " + " | ".join(f"{n:^30}" for n in names))
        cells = []
        for ims in out.values():
            sc = [edit_scores(e, im, judge) for e, im in zip(edits, ims)]
            k = sum(s["success"] for s in sc); lo, hi = wilson_interval(k, len(sc))
            cells.append(f"{k / len(sc):.2f} [{lo:.2f}, {hi:.2f}] ({np.mean([s['lenient'] for s in sc]):.2f}) "
                         f"{np.mean([s['psnr_outside'] for s in sc]):4.1f} dB")
        print(f"{kind:>20} | " + " | ".join(f"{c:^30}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
