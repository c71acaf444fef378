"""Scenes of ToyWorld as frozen specs, their captions, and a seeded sampler.

A scene is two objects side by side (``left`` and ``right``) on a plain background. Every
object has a shape, a colour, a texture and an optional accessory; its place and size are part
of the spec too, so rendering is a pure function of the spec and an edit that changes one field
leaves everything else pixel-identical.
"""
from __future__ import annotations
from dataclasses import dataclass, replace
import numpy as np

__all__ = ["COLORS", "SHAPES", "TEXTURES", "ACCESSORIES", "WORN", "BACKGROUNDS", "SLOTS", "ATTRIBUTES",
           "Obj", "Scene", "random_scene", "object_phrase", "caption_of", "attribute_values"]

SIZE = 64  # images are SIZE x SIZE RGB
COLORS = {"red": (214, 39, 40), "green": (44, 160, 44), "blue": (31, 89, 212),
          "yellow": (240, 196, 25), "purple": (148, 60, 180)}
SHAPES = ("circle", "square", "triangle")
TEXTURES = ("plain", "striped")
ACCESSORIES = ("none", "hat", "sunglasses")
WORN = ACCESSORIES[1:]  # the accessories an object can wear (the words that name one)
BACKGROUNDS = {"white": (245, 245, 245), "gray": (128, 128, 128), "sky": (150, 200, 240),
               "sand": (222, 200, 150)}
SLOTS = ("left", "right")
# 'slot.field' (e.g. 'left.shape') or 'background' -> its possible values; the judge has one head per entry.
ATTRIBUTES = {f"{s}.{f}": v for s in SLOTS for f, v in
              (("shape", SHAPES), ("color", tuple(COLORS)), ("texture", TEXTURES),
               ("accessory", ACCESSORIES))}
ATTRIBUTES["background"] = tuple(BACKGROUNDS)


@dataclass(frozen=True)
class Obj:
    "One object: what it is (shape, color, texture, accessory) and where (centre x, y, radius r, in pixels)."
    shape: str
    color: str
    texture: str = "plain"
    accessory: str = "none"
    x: float = 16.0
    y: float = 36.0
    r: float = 10.0

    def __post_init__(self):
        for name, allowed in (("shape", SHAPES), ("color", COLORS), ("texture", TEXTURES),
                              ("accessory", ACCESSORIES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; choose one of {sorted(allowed)}")


@dataclass(frozen=True)
class Scene:
    "A ToyWorld scene: a `left` and a `right` object on a `background`."
    left: Obj
    right: Obj
    background: str = "white"

    def __post_init__(self):
        if self.background not in BACKGROUNDS:
            raise ValueError(f"unknown background {self.background!r}; choose one of {sorted(BACKGROUNDS)}")

    @property
    def caption(self) -> str: return caption_of(self)

    def objects(self): return {"left": self.left, "right": self.right}

    def with_object(self, slot: str, **changes) -> "Scene":
        "A copy of this scene with fields of the object in `slot` changed."
        return replace(self, **{slot: replace(getattr(self, slot), **changes)})

    def attributes(self) -> dict:
        "attribute name (as in `ATTRIBUTES`) -> value."
        out = {f"{s}.{f}": getattr(getattr(self, s), f) for s in SLOTS
               for f in ("shape", "color", "texture", "accessory")}
        out["background"] = self.background
        return out


def attribute_values(name: str) -> tuple: return ATTRIBUTES[name]


def object_phrase(obj: Obj | None = None, slot: str | None = None, *, color=None, texture=None,
                  shape=None, accessory=None) -> str:
    """Words for an object, e.g. 'a red striped circle with a hat on the left'.

    Pass `obj` to describe all of it, or only some keywords (any omitted part is left unsaid:
    `object_phrase(slot='left', accessory='hat')` -> 'a thing with a hat on the left')."""
    if obj is not None: color, texture, shape, accessory = obj.color, obj.texture, obj.shape, obj.accessory
    words = ["a"] + [w for w in (color, texture) if w] + [shape or "thing"]
    if accessory == "hat": words += ["with", "a", "hat"]
    elif accessory == "sunglasses": words += ["with", "sunglasses"]
    if slot: words += ["on", "the", slot]
    return " ".join(words)


def caption_of(scene: Scene) -> str:
    "The full caption: every attribute of both objects and the background, left object first."
    return (f"{object_phrase(scene.left, 'left')}, {object_phrase(scene.right, 'right')}, "
            f"{scene.background} background")


def _random_obj(rng: np.random.Generator, slot: str) -> Obj:
    cx = 16.0 if slot == "left" else 48.0
    return Obj(shape=str(rng.choice(SHAPES)), color=str(rng.choice(list(COLORS))),
               texture=str(rng.choice(TEXTURES)), accessory=str(rng.choice(ACCESSORIES, p=[.5, .25, .25])),
               x=float(round(cx + rng.uniform(-1.5, 1.5), 1)), y=float(round(38 + rng.uniform(-1.5, 1.5), 1)),
               r=float(round(rng.uniform(10.0, 11.5), 1)))


def random_scene(seed: int | np.random.Generator) -> Scene:
    "A random scene, fully determined by `seed` (an int or a numpy Generator)."
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return Scene(left=_random_obj(rng, "left"), right=_random_obj(rng, "right"),
                 background=str(rng.choice(list(BACKGROUNDS))))
