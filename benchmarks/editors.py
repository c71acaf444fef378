"""Every editor of the course, and diffusers' pipelines, on every kind of ToyWorld edit, judged strictly,
on held-out edits that no setting was tuned on (offset 150 000; the tiny model's settings were tuned at
90 000-110 000). Lesson 6 prints the same table on fewer edits (offset 160 000).

    python benchmarks/editors.py [--n 48] [--kinds color shape ...] [--methods SDEdit DiffEdit ...] [--model DIR]

Per method and kind: strict success (the judge reads EVERY attribute of the target scene, and inside
the edit region the result is closer to the target render than to the source) with its 95 % Wilson
interval, the lenient rate beside it (only the changed attributes), PSNR outside the region, the
mask's IoU with the region, seconds per edit (ours batched: all edits of a kind in one call;
diffusers' DiffEdit too but for its masks, its LEDITS++ one image at a time) and UNet evaluations per edit. Settings: `course_utils/toyworld/compare.py`.
Run it alone: two torch processes on two cores slow each other several times over.
"""
import argparse, os, sys
from pathlib import Path
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from course_utils import load_models
from course_utils.metrics import held_out_edits
from course_utils.toyworld import load_judge, EDITS
from course_utils.toyworld.compare import METHODS, compare, merged, format_table

OFFSET = 150_000


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=48, help="held-out edits per kind")
    ap.add_argument("--kinds", nargs="+", default=list(EDITS))
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--offset", type=int, default=OFFSET)
    ap.add_argument("--model", default="toy", help="a diffusers folder of a model for ToyWorld (default: the shipped one)")
    a = ap.parse_args(argv)
    m, judge = load_models(a.model, "cpu"), load_judge()
    print(f"{a.n} held-out edits per kind (offset {a.offset})", flush=True)
    per_kind = {}
    for kind in a.kinds:
        rows = compare(m, judge, held_out_edits(kind, a.n, offset=a.offset), a.methods, progress=False)
        per_kind[kind] = rows
        print(f"\n{kind}\n{format_table(rows)}", flush=True)
    print("\nall kinds")
    total = [merged([per_kind[k][i] for k in a.kinds]) for i in range(len(a.methods))]
    print(format_table(total))
    print("\nstrict success, method x kind")
    print(f"{'':>22} | " + " | ".join(f"{k[:10]:>10}" for k in a.kinds))
    for i, name in enumerate(a.methods):
        print(f"{name:>22} | " + " | ".join(f"{per_kind[k][i]['success']:10.2f}" for k in a.kinds))


if __name__ == "__main__":
    main()
