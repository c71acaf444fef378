"""Where diffusers' LEDITS++ pipeline loses to this course's loop, on the same weights and concepts.

    python benchmarks/ledits_gap.py [--n 6] [--offset 160000]

Held-out edits of every kind, named by the paper's few words (`toyworld.short_concepts`, skip
`short_skip`, SDE-DPM-Solver++, 20 steps, masks M1 ∩ M2), strict success per kind, four ways:
1. diffusers: `invert` + the edit (`ledits.diffusers_ledits_edit`);
2. our exact inversion (`ddpm_invert`) handed to diffusers' edit (its `init_latents` and `zs` replaced):
   if the inversion made the gap, this row would close it;
3. ours: `ddpm_invert` + `ledits_edit`;
4. ours with M1 summed over the token positions diffusers' pipeline sums: it counts an edit prompt's
   tokens with the tokenizer's `return_length=True` after padding to max_length, so for every prompt
   it takes max_length − 2 positions (the words, then <eos> and padding) where ours takes the words.
"""
import argparse, os, sys
from contextlib import contextmanager
from pathlib import Path
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np
import course_utils.ledits as L
from course_utils import load_models
from course_utils.metrics import edit_scores, held_out_edits, wilson_interval
from course_utils.toyworld import render, load_judge, short_concepts, short_skip, EDITS


@contextmanager
def m1_over_padded_tokens(tokenizer):
    "ledits_edit's M1 reads positions 1 .. max_length − 1, as diffusers' pipeline does, while installed."
    count = tokenizer(["a"], padding="max_length", max_length=tokenizer.model_max_length, return_length=True).length[0]
    old, L.token_span = L.token_span, lambda tok, concept: (1, 1 + count - 2)   # diffusers: num_edit_tokens = length − 2
    try: yield count - 2
    finally: L.token_span = old


ROWS = ("diffusers", "our inversion + diffusers' edit", "ours", "ours, M1 over diffusers' token count")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=6, help="held-out edits per kind")
    ap.add_argument("--offset", type=int, default=160_000)
    a = ap.parse_args(argv)
    m, judge = load_models("toy", "cpu"), load_judge()
    pipe = L.diffusers_ledits(m)
    ids = m.tokenizer("a thing on the left").input_ids
    with m1_over_padded_tokens(m.tokenizer) as n_tok:
        print(f"'a thing on the left': {len(ids) - 2} word tokens; diffusers' pipeline counts {n_tok} (max_length "
              f"{m.tokenizer.model_max_length} − 2)")
    won = {r: {} for r in ROWS}
    for kind in EDITS:
        for r in ROWS: won[r][kind] = []
        for e in held_out_edits(kind, a.n, offset=a.offset):
            im, cs, skip = render(e.source).image, short_concepts(e), short_skip(e)
            score = lambda out: edit_scores(e, out, judge)["success"]
            won["diffusers"][kind].append(score(L.diffusers_ledits_edit(pipe, im, cs, skip=skip)))
            inv = L.ddpm_invert(m, im, num_inversion_steps=20, skip=skip, solver="dpmpp", progress=False)
            pipe.init_latents = inv.xts[0].to(pipe.init_latents.dtype)            # noisiest latents, then z per step
            pipe.zs = inv.zs.to(pipe.zs.dtype)
            won["our inversion + diffusers' edit"][kind].append(score(L.diffusers_ledits_apply(pipe, cs)))
            won["ours"][kind].append(score(L.ledits_edit(m, inv, cs, progress=False)))
            with m1_over_padded_tokens(m.tokenizer):
                won["ours, M1 over diffusers' token count"][kind].append(score(L.ledits_edit(m, inv, cs, progress=False)))
        print(kind, " | ".join(f"{r}: {np.mean(won[r][kind]):.2f}" for r in ROWS), flush=True)
    print(f"\nstrict success, {a.n} held-out edits per kind (offset {a.offset}), few-word concepts")
    print(f"{'':>38} | " + " | ".join(f"{k[:10]:>10}" for k in EDITS) + " | all [95 % interval]")
    for r in ROWS:
        every = [x for k in EDITS for x in won[r][k]]
        lo, hi = wilson_interval(sum(every), len(every))
        print(f"{r:>38} | " + " | ".join(f"{np.mean(won[r][k]):10.2f}" for k in EDITS) +
              f" | {np.mean(every):.2f} [{lo:.2f}, {hi:.2f}]")


if __name__ == "__main__":
    main()
