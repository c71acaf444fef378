"""Which editor, when: every editor of the course (and diffusers' pipelines) on the same ToyWorld edits.

    rows = compare(models, judge, held_out_edits("color", 8, offset=160_000))   # one row per method
    print(format_table(rows))

A method is `run(models, edits, strength=None) -> (images, masks)`: the edited images and, for a
method that has one, each edit's mask on the latent grid (h x w, bool; None otherwise). `strength`
is how much of the diffusion path is re-run, one knob for all (SDEdit's strength, DiffEdit's
encoding ratio, 1 − LEDITS++'s skip); None: each method's own setting below. `words` (one per edit,
or None) re-words an edit: the target caption for SDEdit, DiffEdit and LEDITS++ (captions), the
concepts for LEDITS++ with a few words ('a hat on the left; -a thing on the left': ';' between
concepts, '-' in front of one to remove). Our methods take the whole
list as one batch; so does diffusers' DiffEdit but for its masks (`generate_mask` scales every map of
a batch by the batch's mean, so a batch would change each mask: they are made image by image), and
diffusers' LEDITS++ takes one image at a time (it edits every image of a batch with the same
concepts, and its cross-attention masks mix a batch's images: `ledits.diffusers_ledits_edit`).
Settings, all fixed beforehand:
- SDEdit: img2img with the target caption, strength 0.6, 25 DDIM steps, guidance 7.5.
- DiffEdit: the paper's mask (source vs target caption, n = 10, strength 0.5, threshold 0.5), with the
  tiny model's options read from the captions (`diffedit_mask_options`: grown by hysteresis to 0.15 when
  an object's colour, texture or shape changes; threshold 0.05 when the background does), DDIM encoding
  to 0.8, masked decoding, 25 steps; "DiffEdit, one prompt": the seed's single-prompt mask (+/- g), alike.
- LEDITS++: SDE-DPM-Solver++ inversion and edit, 20 steps, skip 0.15, the edit named by whole
  captions (`toy_concepts`: the source inverted with its caption, the target caption forward and the
  source's in reverse, guidance 1, no mask); "LEDITS++ few words": the paper's way, a few words per
  concept with the tiny model's per-kind settings (`short_concepts`, `short_skip`), masks M1 ∩ M2;
  "LEDITS++ few words, M2": the same without M1.
- diffusers DiffEdit / LEDITS++: the pipelines on the same weights. DiffEdit with the paper's settings
  as above (`diffedit.diffusers_diffedit_edit`) and the mask as `generate_mask` makes it: no growth and
  no per-edit threshold, which the pipeline has no option for. LEDITS++ with the few-word concepts and
  their settings (the way the pipeline is made to be used).
Each row: strict success (every attribute of the target read right, and closer to the target
inside the edit region) with its Wilson 95 % interval, the lenient rate, PSNR outside the region,
the IoU of the mask with the region, seconds per edit, and UNet evaluations per edit (rows of the
UNet's batch, summed over calls: the cost that does not depend on the machine).
"""
from __future__ import annotations
import time
import numpy as np

__all__ = ["METHODS", "FEW_WORDS", "compare", "by_kind", "merged", "format_table", "parse_concepts", "check_words", "UNetCounter", "NEEDS"]


class UNetCounter:
    "Counts the UNet's forward calls and the rows (batch entries) they evaluate, while installed."
    def __init__(self, unet): self.unet, self.calls, self.rows = unet, 0, 0
    def __enter__(self):
        self._h = self.unet.register_forward_pre_hook(self._count, with_kwargs=True); return self
    def __exit__(self, *exc): self._h.remove()
    def _count(self, module, args, kwargs):
        self.calls += 1; self.rows += len(args[0] if args else kwargs["sample"])


def _sources(edits):
    from .render import render
    return [render(e.source).image for e in edits]


def parse_concepts(text: str) -> list[tuple[str, bool]]:
    "'a hat on the left; -a thing on the left' -> [('a hat on the left', False), ('a thing on the left', True)]."
    parts = [p.strip() for p in text.split(";") if p.strip()]
    if not parts: raise ValueError(f"no concepts in {text!r}: write e.g. 'a hat on the left; -a thing on the left'")
    out = [(p[1:].strip(), True) if p.startswith("-") else (p, False) for p in parts]
    if not all(words for words, _ in out):
        raise ValueError(f"a '-' with no words after it in {text!r}: write e.g. '-a thing on the left'")
    if any(words.startswith("-") for words, _ in out):
        raise ValueError(f"one '-' in front of a concept removes it; {text!r} has two: write e.g. '-a thing on the left'")
    return out


# The methods that read `words` as concepts (';' between them, '-' to remove); the others read them as the target caption.
FEW_WORDS = ("LEDITS++ few words", "LEDITS++ few words, M2", "diffusers LEDITS++")


def check_words(models, method: str, words: str):
    """Refuse a re-wording `method` would misread: concept syntax (';', a leading '-') given as a caption, or a
    caption or concept longer than the text encoder reads (it would be cut without a word). -> ValueError."""
    tok = models.tokenizer
    if method in FEW_WORDS: texts = [c for c, _ in parse_concepts(words)]
    elif ";" in words or words.lstrip().startswith("-"):
        raise ValueError(f"{method} reads your words as the whole target caption; ';' and '-' list concepts for "
                         f"{' and '.join(FEW_WORDS)}: write a caption, e.g. 'a green plain circle on the left, ...'")
    else: texts = [words]
    for t in texts:
        n = len(tok(t, verbose=False).input_ids)
        if n > tok.model_max_length:
            raise ValueError(f"{t!r} is {n} tokens, over the {tok.model_max_length} the text encoder reads (it would be cut): shorten it")


def _targets(edits, words):
    "Each edit's target caption, or its re-wording."
    return [w or e.target_prompt for e, w in zip(edits, words or [None] * len(edits))]


def _few_words(edits, words):
    """(e -> its few-word LEDITS++ concepts, e -> the skip they are inverted with), with the tiny model's settings:
    `short_concepts` and `short_skip` of the edit, or of its re-wording's concepts (parsed, kept as typed) where
    it has one (`compare` makes every e its own object)."""
    from dataclasses import replace
    from .settings import short_concepts, short_skip
    typed = {id(e): replace(e, concepts=parse_concepts(w)) for e, w in zip(edits, words or []) if w}
    concepts = lambda e: short_concepts(typed[id(e)], whole_object=()) if id(e) in typed else short_concepts(e)
    return concepts, lambda e: short_skip(typed.get(id(e), e))


def sdedit(m, edits, strength=None, words=None):
    from ..diffedit import img2img
    return img2img(m, _sources(edits), _targets(edits, words), strength=strength or 0.6,
                   num_inference_steps=25, progress=False), None


def _diffedit(m, edits, strength=None, words=None, single_prompt: bool = False):
    from ..diffedit import diffedit, diffedit_mask, diffedit_mask_single_prompt
    from .settings import diffedit_mask_options
    ims, targets = _sources(edits), _targets(edits, words)
    options = [diffedit_mask_options(e.source_prompt, t) for e, t in zip(edits, targets)]
    kw = {k: [o[k] for o in options] for k in ("threshold", "grow")}
    masks = (diffedit_mask_single_prompt(m, ims, targets, **kw) if single_prompt else
             diffedit_mask(m, ims, [e.source_prompt for e in edits], targets, **kw))
    out = diffedit(m, ims, targets, masks, ratio=strength or 0.8, num_inference_steps=25, progress=False)
    return out, [mk.binary.numpy() for mk in masks]


def _skip(strength, default=None):
    from .settings import short_skip
    return (default or short_skip) if strength is None else (lambda e: round(1 - strength, 4))


def _ledits(m, edits, strength=None, words=None):
    "LEDITS++ with whole captions (no mask: None)."
    from ..ledits import caption_concepts
    from .settings import toy_ledits, CAPTION_SCALE, CAPTION_SKIP
    target = dict(zip(map(id, edits), _targets(edits, words)))
    return toy_ledits(m, edits, concepts=lambda e: caption_concepts(e.source_prompt, target[id(e)], CAPTION_SCALE),
                      skip=_skip(strength, lambda e: CAPTION_SKIP)), None


def _ledits_short(m, edits, strength=None, words=None, **kw):
    from .settings import toy_ledits
    concepts, skip = _few_words(edits, words)
    ims, recs = toy_ledits(m, edits, naming="short", concepts=concepts, skip=_skip(strength, skip), record_masks=True, **kw)
    return ims, [r["mask"][-1].amax(0).numpy() > 0 for r in recs]   # the last step's masks, all concepts


def diffusers_diffedit_edits(m, edits, strength=None, words=None):
    from ..diffedit import diffusers_diffedit, diffusers_diffedit_edit
    ims, masks = diffusers_diffedit_edit(diffusers_diffedit(m), _sources(edits), [e.source_prompt for e in edits],
                                         _targets(edits, words), ratio=strength or 0.8)
    return ims, [np.asarray(mk) > 0.5 for mk in masks]


def diffusers_ledits_edits(m, edits, strength=None, words=None):
    from ..ledits import diffusers_ledits, diffusers_ledits_edit
    concepts, skip = _few_words(edits, words)
    pipe, skip = diffusers_ledits(m), _skip(strength, skip)
    return [diffusers_ledits_edit(pipe, im, concepts(e), skip=skip(e)) for e, im in zip(edits, _sources(edits))], None


METHODS = {
    "SDEdit": sdedit,
    "DiffEdit": _diffedit,
    "DiffEdit, one prompt": lambda m, e, strength=None, words=None: _diffedit(m, e, strength, words, single_prompt=True),
    "LEDITS++": _ledits,
    "LEDITS++ few words": _ledits_short,
    "LEDITS++ few words, M2": lambda m, e, strength=None, words=None: _ledits_short(m, e, strength, words, use_cross_attn_mask=False,
                                                                                   use_intersect_mask=False),
    "diffusers DiffEdit": diffusers_diffedit_edits,
    "diffusers LEDITS++": diffusers_ledits_edits,
}

# What each method asks of the user, read off its signature; the rest of the lesson measures what it gives.
NEEDS = {
    "SDEdit": "a caption of the whole target image",
    "DiffEdit": "captions of the source and of the target",
    "DiffEdit, one prompt": "a caption of the whole target image",
    "LEDITS++": "captions of the source and of the target",
    "LEDITS++ few words": "only the change: a few words per concept",
    "LEDITS++ few words, M2": "only the change: a few words per concept",
    "diffusers DiffEdit": "captions of the source and of the target",
    "diffusers LEDITS++": "only the change: a few words per concept",
}


def _row(name, edits, scores, ious, seconds, unet_rows, **extra) -> dict:
    "Success, interval, lenient, PSNR outside, mean IoU over a set of scored edits."
    from ..metrics import wilson_interval
    k, n = sum(s["success"] for s in scores), len(scores)
    return dict(method=name, n=n, success=k / n, interval=wilson_interval(k, n),
                lenient=float(np.mean([s["lenient"] for s in scores])),
                psnr_outside=float(np.mean([s["psnr_outside"] for s in scores])),
                iou=None if ious is None else float(np.mean(ious)), seconds=seconds, unet_rows=unet_rows,
                scores=scores, ious=ious, edits=edits, **extra)


def compare(models, judge, edits, methods=None, *, strength=None, words=None, progress: bool = True) -> list[dict]:
    """Run every method in `methods` (names of METHODS; default all) on the same `edits` and score them.
    Returns one dict per method: method, n, success, interval, lenient, psnr_outside, iou (or None),
    seconds and unet_rows (per edit), and per edit its `scores`, `ious`, `images` and `masks`.
    `words`: None, or one re-wording per edit (None in it: that edit's own; see the module doc).
    `progress`: one bar over the methods."""
    from tqdm.auto import tqdm
    from ..metrics import edit_scores, mask_iou
    methods = list(methods or METHODS)
    for name in methods:
        if name not in METHODS: raise ValueError(f"unknown method {name!r}; choose from {list(METHODS)}")
    if words is not None and len(words) != len(edits):
        raise ValueError(f"words: got {len(words)} for {len(edits)} edits; give one per edit (None: the edit's own)")
    from dataclasses import replace
    for name in methods:
        for w in words or []:
            if w: check_words(models, name, w)
    edits = [replace(e) for e in edits]   # an object each: one edit listed twice may carry two re-wordings (methods key on it)
    rows = []
    for name in tqdm(methods, desc=f"{len(edits)} edits x {len(methods)} methods", disable=not progress, leave=False):
        with UNetCounter(models.unet) as count:
            t0 = time.perf_counter()
            ims, masks = METHODS[name](models, edits, strength=strength, words=words)
            seconds = time.perf_counter() - t0
        scores = [edit_scores(e, im, judge) for e, im in zip(edits, ims)]
        ious = None if masks is None else [mask_iou(mk, e.region) for mk, e in zip(masks, edits)]
        rows.append(_row(name, edits, scores, ious, seconds / len(edits), count.rows / len(edits), images=ims, masks=masks))
    return rows


def by_kind(row: dict) -> dict[str, dict]:
    "One method's row split by the kind of edit: {kind: row over that kind's edits} (cost per edit as a whole)."
    kinds = dict.fromkeys(e.kind for e in row["edits"])
    out = {}
    for kind in kinds:
        idx = [i for i, e in enumerate(row["edits"]) if e.kind == kind]
        out[kind] = _row(row["method"], [row["edits"][i] for i in idx], [row["scores"][i] for i in idx],
                         None if row["ious"] is None else [row["ious"][i] for i in idx], row["seconds"], row["unet_rows"])
    return out


def merged(rows: list[dict]) -> dict:
    "One method's rows over several sets of edits (e.g. `by_kind`'s, or one per kind) as one row; cost weighted by edits."
    edits = [e for r in rows for e in r["edits"]]
    scores = [s for r in rows for s in r["scores"]]
    ious = None if any(r["ious"] is None for r in rows) else [x for r in rows for x in r["ious"]]
    per_edit = lambda key: sum(r[key] * r["n"] for r in rows) / len(edits)
    return _row(rows[0]["method"], edits, scores, ious, per_edit("seconds"), per_edit("unet_rows"))


def format_table(rows, label: str = "method") -> str:
    "The rows as a text table: strict success [95 % interval], lenient, PSNR outside, mask IoU, s/edit, UNet rows/edit."
    head = f"{label:>22} |   n | strict success     | lenient | PSNR out | mask IoU | s/edit | UNet rows/edit"
    lines = [head, "-" * len(head)]
    for r in rows:
        lo, hi = r["interval"]
        iou = f"{r['iou']:8.2f}" if r["iou"] is not None else "       -"
        lines.append(f"{r.get('label', r['method']):>22} | {r['n']:3d} | {r['success']:.2f} [{lo:.2f}, {hi:.2f}] | "
                     f"{r['lenient']:7.2f} | {r['psnr_outside']:5.1f} dB | {iou} | {r['seconds']:6.2f} | {r['unet_rows']:9.0f}")
    return "\n".join(lines)
