"""Where diffusers' LEDITS++ pipeline loses to this course's loop, on the same weights and concepts.

    python benchmarks/ledits_gap.py [--n 6] [--offset 160000]

Held-out edits of every kind, named by the paper's few words (`toyworld.short_concepts`, skip
`short_skip`, SDE-DPM-Solver++, 20 steps, masks M1 ∩ M2), strict success per kind, four ways:
1. diffusers, as it ships: `invert` + the edit (`ledits.diffusers_ledits_edit`);
2. diffusers with its last step made exact (`ledits.diffusers_ledits(m, exact=True)`): as it ships
   its scheduler ends on σ = 0, a step with no noise to absorb the error, at first order where its
   inversion assumed second, so its inversion is not exact (~0.1 latent RMSE); this way it is;
3. ours with M1 summed over the token positions diffusers' pipeline sums (`ledits.diffusers_token_span`:
   it counts an edit prompt's tokens after padding, so it takes max_length − 2 positions, the words
   then <eos> and padding): handed the same inversion, row 2's edit and this one agree to float
   rounding (tests/test_ledits.py), so rows 2 and 3 differ only in the inversion's random draws;
4. ours: `ddpm_invert` + `ledits_edit`, M1 over the concept's words.
"""
import argparse, os, sys
from unittest.mock import patch
from pathlib import Path
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np
import course_utils.ledits as L
from course_utils import load_models
from course_utils.metrics import edit_scores, held_out_edits, wilson_interval
from course_utils.toyworld import render, load_judge, short_concepts, short_skip, EDITS


ROWS = ("diffusers", "diffusers, exact last step", "ours, M1 over diffusers' tokens", "ours")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=6, help="held-out edits per kind")
    ap.add_argument("--offset", type=int, default=160_000)
    a = ap.parse_args(argv)
    m, judge = load_models("toy", "cpu"), load_judge()
    shipped, exact = L.diffusers_ledits(m), L.diffusers_ledits(m, exact=True)
    c = L.EditConcept("a thing on the left")
    (a0, a1), (b0, b1) = L.token_span(m.tokenizer, c), L.diffusers_token_span(m.tokenizer, c)
    print(f"'{c.prompt}': {a1 - a0} word tokens; diffusers' pipeline sums {b1 - b0} positions "
          f"(max_length {m.tokenizer.model_max_length} − 2)")
    won = {r: {} for r in ROWS}
    for kind in EDITS:
        for r in ROWS: won[r][kind] = []
        for e in held_out_edits(kind, a.n, offset=a.offset):
            im, cs, skip = render(e.source).image, short_concepts(e), short_skip(e)
            score = lambda out: edit_scores(e, out, judge)["success"]
            won["diffusers"][kind].append(score(L.diffusers_ledits_edit(shipped, im, cs, skip=skip)))
            won["diffusers, exact last step"][kind].append(score(L.diffusers_ledits_edit(exact, im, cs, skip=skip)))
            inv = L.ddpm_invert(m, im, num_inversion_steps=20, skip=skip, solver="dpmpp", progress=False)
            with patch.object(L, "token_span", L.diffusers_token_span):
                won["ours, M1 over diffusers' tokens"][kind].append(score(L.ledits_edit(m, inv, cs, progress=False)))
            won["ours"][kind].append(score(L.ledits_edit(m, inv, cs, progress=False)))
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
