"""Tune the tiny model's LEDITS++ settings on held-out TUNING edits (never the ones lessons or
benchmarks measure on), judged strictly, every kind of edit; prints one table per variant.

    python scripts/tune_toy_ledits.py [--n 24] [--offsets 90000 100000] [--variants captions short]
    python scripts/tune_toy_ledits.py --kinds shape --sweep shape scale=5,8 threshold=0.7,0.8 skip=0.15,0.3

A variant is the keyword arguments of `toyworld.toy_ledits` (naming, concepts, skip): 'captions' is
the shipped default (whole captions), 'short' the few-word concepts with their per-kind settings; a
sweep varies the short concepts' settings of one kind. Edits of a kind that share a skip are
inverted and edited as one batch.
"""
import argparse, os, sys
from pathlib import Path
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np
from course_utils import load_models
from course_utils.metrics import held_out_edits, edit_scores, wilson_interval
from course_utils.toyworld import load_judge, settings, toy_ledits, EDITS

KINDS = tuple(EDITS)   # every kind of edit


def score(m, judge, edits, variant):
    "Strict and lenient success and PSNR outside, per edit, for one variant (batched per skip)."
    ims = toy_ledits(m, edits, **variant)
    return [edit_scores(e, im, judge) for e, im in zip(edits, ims)]


VARIANTS = {"captions": {}, "short": {"naming": "short"}}


def sweep_variants(kind, specs):
    "One variant per combination of `name=v1,v2` settings of one kind of concept (scale, threshold, reverse_scale, skip)."
    import itertools
    grid = [[(k, float(v)) for v in vs.split(",")] for k, vs in (s.split("=") for s in specs)]
    out = {}
    for combo in itertools.product(*grid):
        cfg = dict(combo)
        skip = cfg.pop("skip", None)
        table = {**settings.TOY_LEDITS, kind: {**settings.TOY_LEDITS[kind], **cfg}}
        skips = {**settings.TOY_LEDITS_SKIP, **({kind: skip} if skip is not None else {})}
        name = " ".join(f"{k}={v:g}" for k, v in combo)
        out[name] = dict(naming="short", concepts=lambda e, table=table: settings.short_concepts(e, table),
                         skip=lambda e, skips=skips: max(skips[settings.concept_kind(t)] for t, _ in e.concepts))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--offsets", type=int, nargs="+", default=[90_000])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS))
    ap.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS, help="kinds of edit to score")
    ap.add_argument("--sweep", nargs="+", help="KIND name=v1,v2 ...: a grid of one concept kind's settings "
                                               f"(KIND one of {', '.join(settings.TOY_LEDITS)}), beside the 'short' baseline")
    a = ap.parse_args(argv)
    if a.sweep:
        if a.sweep[0] not in settings.TOY_LEDITS: ap.error(f"--sweep: unknown kind of concept {a.sweep[0]!r}")
        sweep = sweep_variants(a.sweep[0], a.sweep[1:])
        VARIANTS.update(sweep); a.variants = ["short", *sweep]
    m, judge = load_models("toy"), load_judge()
    for name in a.variants:
        print(f"== {name}: strict (lenient) success, PSNR outside; {a.n} edits per kind per offset {a.offsets}", flush=True)
        total = []
        for kind in a.kinds:
            sc = [s for o in a.offsets for s in score(m, judge, held_out_edits(kind, a.n, offset=o), VARIANTS[name])]
            k = sum(s["success"] for s in sc); total += sc
            lo, hi = wilson_interval(k, len(sc))
            print(f"{kind:>20}: {k / len(sc):.2f} [{lo:.2f}, {hi:.2f}] ({np.mean([s['lenient'] for s in sc]):.2f}), "
                  f"{np.mean([s['psnr_outside'] for s in sc]):.1f} dB", flush=True)
        print(f"{'all':>20}: {np.mean([s['success'] for s in total]):.2f} ({np.mean([s['lenient'] for s in total]):.2f})", flush=True)


if __name__ == "__main__":
    main()
