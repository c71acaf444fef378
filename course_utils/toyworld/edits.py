"""Named edits of ToyWorld scenes, each with its exact ground truth.

An edit maps a source scene to a target scene that differs in one or two fields. Because the
renderer is a pure function, the target image *is* the ground truth, and the edit region is the
union of the changed entities' masks in the source and the target renders (every pixel such an
entity touches, its anti-aliased edge included: outside the region, source and target are equal). Each edit also says
how to ask a model for it: a source and a target prompt (DiffEdit) and a list of concepts with
directions (LEDITS++: `(text, reverse)`, `reverse=True` means "remove this"). A change is the new
phrase forward and the old one in reverse, so that what the two share cancels: adding a hat is
"a thing with a hat on the left" forward and "a thing on the left" in reverse (alone, the first
also pulls the object towards an average "thing").

Every function in `EDITS` has the signature `(scene, rng) -> Edit` and raises `ValueError`
(saying why) when it does not apply to the scene.
"""
from __future__ import annotations
from dataclasses import dataclass, field
from functools import cached_property
import numpy as np
from .scene import Scene, COLORS, SHAPES, BACKGROUNDS, SLOTS, WORN, object_phrase
from .render import render

__all__ = ["Edit", "EDITS", "SINGLE_EDITS", "changed_entities", "edit_region", "edit_variants"]


def changed_entities(source: Scene, target: Scene) -> list[str]:
    "Entities whose look differs between two scenes (by their specs, not their pixels)."
    out = ["background"] if source.background != target.background else []
    for s in SLOTS:
        a, b = getattr(source, s), getattr(target, s)
        geom = (a.shape, a.x, a.y, a.r) != (b.shape, b.x, b.y, b.r)
        if geom or (a.color, a.texture) != (b.color, b.texture): out.append(s)
        if a.accessory != b.accessory or (a.accessory != "none" and geom): out.append(f"{s}.accessory")
    return out


def edit_region(source: Scene, target: Scene) -> np.ndarray:
    "Bool HxW: every pixel a changed entity touches, in the source or the target render."
    cs, ct = render(source).cover, render(target).cover
    region = np.zeros(cs["background"].shape, bool)
    for e in changed_entities(source, target):
        for c in (cs, ct):
            if e in c: region |= c[e] > 0
    return region


@dataclass(frozen=True)
class Edit:
    "One edit and its ground truth. `concepts`: list of `(text, reverse)` for LEDITS++."
    kind: str
    source: Scene
    target: Scene
    concepts: list = field(default_factory=list)

    @property
    def source_prompt(self) -> str: return self.source.caption

    @property
    def target_prompt(self) -> str: return self.target.caption

    @cached_property
    def region(self) -> np.ndarray: return edit_region(self.source, self.target)

    def __repr__(self): return f"Edit({self.kind}: {self.source_prompt!r} -> {self.target_prompt!r})"


def _pick(rng, items, what):
    items = list(items)
    if not items: raise ValueError(what)
    return items[int(rng.integers(len(items)))]


def color(scene: Scene, rng: np.random.Generator, slot: str | None = None) -> Edit:
    "Recolour one object (a red circle -> a green circle)."
    slot = slot or _pick(rng, SLOTS, "no object")
    old = getattr(scene, slot).color
    new = _pick(rng, [c for c in COLORS if c != old], "no other colour")
    return Edit("color", scene, scene.with_object(slot, color=new),
                [(object_phrase(slot=slot, color=new), False), (object_phrase(slot=slot, color=old), True)])


def shape(scene: Scene, rng: np.random.Generator, slot: str | None = None) -> Edit:
    "Swap one object's shape (a circle -> a square), keeping colour, texture and place."
    slot = slot or _pick(rng, SLOTS, "no object")
    old = getattr(scene, slot).shape
    new = _pick(rng, [s for s in SHAPES if s != old], "no other shape")
    return Edit("shape", scene, scene.with_object(slot, shape=new),
                [(object_phrase(slot=slot, shape=new), False), (object_phrase(slot=slot, shape=old), True)])


def texture(scene: Scene, rng: np.random.Generator, slot: str | None = None) -> Edit:
    "Give a plain object stripes: this world's 'horse -> zebra'."
    slot = slot or _pick(rng, [s for s in SLOTS if getattr(scene, s).texture == "plain"],
                         "both objects are already striped: there is no plain object to stripe")
    if getattr(scene, slot).texture != "plain": raise ValueError(f"the {slot} object is already striped")
    return Edit("texture", scene, scene.with_object(slot, texture="striped"),
                [(object_phrase(slot=slot, texture="striped"), False), (object_phrase(slot=slot, texture="plain"), True)])


def add_accessory(scene: Scene, rng: np.random.Generator, slot: str | None = None, accessory: str | None = None) -> Edit:
    "Put a hat or sunglasses on an object that wears nothing: this world's 'add sunglasses'."
    slot = slot or _pick(rng, [s for s in SLOTS if getattr(scene, s).accessory == "none"],
                         "both objects already wear an accessory: nothing to add it to")
    if getattr(scene, slot).accessory != "none": raise ValueError(f"the {slot} object already wears an accessory")
    acc = accessory or _pick(rng, WORN, "no accessory")
    if acc not in WORN: raise ValueError(f"add one of {', '.join(WORN)}, got {acc!r} (that would change nothing)")
    return Edit("add_accessory", scene, scene.with_object(slot, accessory=acc),
                [(object_phrase(slot=slot, accessory=acc), False), (object_phrase(slot=slot), True)])


def remove_accessory(scene: Scene, rng: np.random.Generator, slot: str | None = None) -> Edit:
    "Take off an object's hat or sunglasses (a LEDITS++ concept in the reverse direction)."
    slot = slot or _pick(rng, [s for s in SLOTS if getattr(scene, s).accessory != "none"],
                         "neither object wears an accessory: nothing to remove")
    acc = getattr(scene, slot).accessory
    if acc == "none": raise ValueError(f"the {slot} object wears no accessory")
    return Edit("remove_accessory", scene, scene.with_object(slot, accessory="none"),
                [(object_phrase(slot=slot), False), (object_phrase(slot=slot, accessory=acc), True)])


def background(scene: Scene, rng: np.random.Generator) -> Edit:
    "Change the background (gray -> sand)."
    new = _pick(rng, [b for b in BACKGROUNDS if b != scene.background], "no other background")
    return Edit("background", scene, Scene(scene.left, scene.right, new),
                [(f"{new} background", False), (f"{scene.background} background", True)])


def color_and_accessory(scene: Scene, rng: np.random.Generator) -> Edit:
    "Two edits at once: recolour one object, and add (or remove) an accessory on the other."
    slot = _pick(rng, SLOTS, "no object")
    other = "right" if slot == "left" else "left"
    first = color(scene, rng, slot)
    acc_edit = (add_accessory if getattr(scene, other).accessory == "none" else remove_accessory)
    second = acc_edit(first.target, rng, other)
    return Edit("color+accessory", scene, second.target, first.concepts + second.concepts)


SINGLE_EDITS = {f.__name__: f for f in (color, shape, texture, add_accessory, remove_accessory, background)}
EDITS = {**SINGLE_EDITS, "color_and_accessory": color_and_accessory}


class _Choices:
    "Stands in for a numpy Generator: `integers(n)` answers from a fixed list of choices (then 0), and records each n."
    def __init__(self, choices): self.choices, self.sizes = list(choices), []
    def integers(self, n):
        k = len(self.sizes); self.sizes.append(int(n))
        return self.choices[k] if k < len(self.choices) else 0


def edit_variants(kind: str, scene: Scene) -> list[Edit]:
    """Every edit of `kind` (a key of EDITS) that applies to `scene`, each once, in a fixed order: the
    function's random choices walked through one by one. [] when none applies (nothing to remove, say)."""
    f, out, choices = EDITS[kind], {}, []
    while True:
        rng = _Choices(choices)
        try:
            e = f(scene, rng)
            out.setdefault(e.target, e)
        except ValueError: pass
        taken = choices + [0] * (len(rng.sizes) - len(choices))      # the path this call took
        k = max((i for i, (c, n) in enumerate(zip(taken, rng.sizes)) if c + 1 < n), default=None)
        if k is None: return list(out.values())                      # every path walked
        choices = taken[:k] + [taken[k] + 1]                          # the next path, as an odometer counts

