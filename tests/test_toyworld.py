"ToyWorld: specs, captions, the renderer's masks, and edits with exact ground truth."
import dataclasses
import numpy as np
import pytest
from course_utils.toyworld import (random_scene, render, EDITS, Scene, Obj, ATTRIBUTES,
                                   object_phrase, changed_entities)
from course_utils.toyworld.render import render_array

SEEDS = range(40)


def test_random_scene_is_seeded_and_frozen():
    a, b = random_scene(7), random_scene(7)
    assert a == b and a != random_scene(8)
    with pytest.raises(dataclasses.FrozenInstanceError): a.background = "gray"
    assert isinstance(a.caption, str) and a.caption.endswith(f"{a.background} background")


def test_caption_names_every_attribute():
    s = random_scene(3)
    for slot in ("left", "right"):
        o = getattr(s, slot)
        assert object_phrase(o, slot) in s.caption
        assert all(w in s.caption for w in (o.color, o.shape, o.texture))


def test_bad_specs_say_what_is_allowed():
    with pytest.raises(ValueError, match="unknown color 'pink'"): Obj("circle", "pink")
    with pytest.raises(ValueError, match="unknown background"): Scene(Obj("circle", "red"), Obj("square", "blue"), "moon")
    with pytest.raises(TypeError, match="render needs a Scene, got str"): render("a red circle")
    bare = Scene(Obj("circle", "red"), Obj("square", "blue"), "white")
    with pytest.raises(ValueError, match="that would change nothing"):
        EDITS["add_accessory"](bare, np.random.default_rng(0), accessory="none")


def test_render_is_pure_and_masks_partition_the_image():
    for seed in SEEDS:
        s = random_scene(seed)
        r1, r2 = render(s), render(s)
        assert r1.image.mode == "RGB" and r1.image.size == (64, 64)
        assert np.array_equal(r1.array, r2.array)
        stack = np.stack(list(r1.masks.values()))
        assert stack.dtype == bool and stack.shape[1:] == (64, 64)
        assert stack.sum(0).max() <= 1, "an entity mask overlaps another"
        assert stack.sum(0).mean() > 0.99, "most pixels belong to an entity"
        for name, mask in r1.masks.items():   # each entity's mask holds the pixels it covers for the most part
            assert mask.any() and not (r1.cover[name] > 0.5)[~mask].any(), name
        assert set(r1.masks) >= {"background", "left", "right"}
        for slot in ("left", "right"):
            assert (f"{slot}.accessory" in r1.masks) == (getattr(s, slot).accessory != "none")


def test_a_kept_render_is_the_renderers_and_cannot_be_changed_by_a_caller():
    s = random_scene(5)
    arr, masks, cover = render_array(s)
    r = render(s)
    assert np.array_equal(r.array, np.round(arr).clip(0, 255).astype(np.uint8))
    assert all(np.array_equal(r.masks[k], masks[k]) and np.array_equal(r.cover[k], cover[k]) for k in masks)
    r.image.putpixel((0, 0), (1, 2, 3)); r.masks.pop("left"); r.masks["right"][:] = True; r.cover["right"] *= 0
    again = render(s)                                                   # what the caller changed was its own
    assert again.image.getpixel((0, 0)) == tuple(np.round(arr[0, 0]).astype(int)) and "left" in again.masks
    assert np.array_equal(again.masks["right"], masks["right"]) and np.array_equal(again.cover["right"], cover["right"])
    with pytest.raises(TypeError, match="needs a Scene"): render({"left": "circle"})


def test_downsampling_is_numpys_block_mean_bit_for_bit():
    "The renderer's fast block mean and coverage counts against the plain numpy they replace: the same bits."
    from course_utils.toyworld.render import _downsample, _coverage, SIZE, SS
    rng = np.random.default_rng(0)
    block_mean = lambda a: a.reshape(SIZE, SS, SIZE, SS, *a.shape[2:]).mean(axis=(1, 3))
    for a in (rng.uniform(0, 255, (SIZE * SS, SIZE * SS, 3)).astype(np.float32),
              (rng.integers(0, 256, (SIZE * SS, SIZE * SS, 3)) * np.float32(0.35)).astype(np.float32)):
        out = _downsample(a)
        assert out.dtype == np.float32 and np.array_equal(out, block_mean(a))
    owner = rng.integers(0, 5, (SIZE * SS, SIZE * SS)).astype(np.int8)
    expected = np.stack([block_mean((owner == i).astype(np.float32)) for i in range(5)])
    assert np.array_equal(_coverage(owner, 5), expected) and _coverage(owner, 5).dtype == np.float32


def test_masks_match_the_geometry():
    o = Obj("circle", "red", x=20, y=30, r=10)
    s = Scene(o, Obj("square", "blue", x=48, y=30, r=10), "white")
    m, cover = render(s).masks, render(s).cover
    assert abs(cover["left"].sum() - np.pi * 10 ** 2) < 1 and abs(cover["right"].sum() - 17 ** 2) < 1   # anti-aliased areas
    # the masks' areas match up to half a pixel along the outline
    assert abs(m["left"].sum() - np.pi * 10 ** 2) < 0.5 * 2 * np.pi * 10  # circle of radius r
    assert abs(m["right"].sum() - 17 ** 2) <= 0.5 * 4 * 17  # square of side 1.7 r
    ys, xs = np.nonzero(m["left"])
    assert abs(xs.mean() + 0.5 - 20) < 0.5 and abs(ys.mean() + 0.5 - 30) < 0.5
    img = render(s).array
    assert tuple(img[30, 20]) == (214, 39, 40) and tuple(img[2, 2]) == (245, 245, 245)


def test_stripes_and_accessories_are_drawn():
    s = Scene(Obj("square", "green", "striped", "hat", x=16, y=38, r=11), Obj("circle", "blue", accessory="sunglasses", x=48, y=38, r=11))
    r = render(s)
    body = r.array[r.masks["left"]]
    assert len(np.unique(body[:, 1])) > 2, "stripes: two shades of green"
    assert r.masks["left.accessory"].sum() > 20 and r.masks["right.accessory"].sum() > 10
    hat_rows = np.nonzero(r.masks["left.accessory"].any(1))[0]
    assert hat_rows.max() <= np.nonzero(r.masks["left"].any(1))[0].min() + 1, "the hat sits on top"


def _applicable(name, n=200):
    rng = np.random.default_rng(0)
    out = []
    for seed in range(n):
        try: out.append(EDITS[name](random_scene(seed), rng))
        except ValueError: pass
    return out


@pytest.mark.parametrize("name", list(EDITS))
def test_edit_ground_truth_is_exact(name):
    edits = _applicable(name)
    assert len(edits) > 50
    for e in edits[:25]:
        assert e.source != e.target and e.source_prompt != e.target_prompt
        src, tgt = render(e.source).array, render(e.target).array
        region = e.region
        assert region.dtype == bool and region.shape == (64, 64) and region.any()
        assert np.array_equal(src[~region], tgt[~region]), "pixels outside the region must not change"
        changed = np.abs(src - tgt).max(-1) > 0
        assert changed.any() and changed.sum() >= 0.3 * region.sum(), "the region is tight around what changes"
        assert e.concepts and all(isinstance(t, str) and isinstance(r, bool) for t, r in e.concepts)


def test_each_edit_changes_what_it_says():
    rng = np.random.default_rng(1)
    s = random_scene(5)
    diff = lambda e: {k for k, v in e.source.attributes().items() if e.target.attributes()[k] != v}
    assert {k.split(".")[1] for k in diff(EDITS["color"](s, rng))} == {"color"}
    assert {k.split(".")[1] for k in diff(EDITS["shape"](s, rng))} == {"shape"}
    assert diff(EDITS["background"](s, rng)) == {"background"}
    two = EDITS["color_and_accessory"](s, rng)
    assert len(diff(two)) == 2 and {k.split(".")[0] for k in diff(two)} == {"left", "right"}
    assert len(two.concepts) >= 2


def test_edit_that_does_not_apply_says_why():
    rng = np.random.default_rng(0)
    bare = Scene(Obj("circle", "red", "striped"), Obj("square", "blue", "striped", x=48))
    with pytest.raises(ValueError, match="nothing to remove"): EDITS["remove_accessory"](bare, rng)
    with pytest.raises(ValueError, match="already striped"): EDITS["texture"](bare, rng)
    dressed = Scene(Obj("circle", "red", accessory="hat"), Obj("square", "blue", accessory="sunglasses", x=48))
    with pytest.raises(ValueError, match="already wear"): EDITS["add_accessory"](dressed, rng)


def test_an_accessory_change_is_a_pair_of_phrases_in_opposite_directions():
    "Removing: the bare object forward, the accessory phrase in reverse; adding: the other way round."
    rng = np.random.default_rng(0)
    s = Scene(Obj("circle", "red", accessory="hat"), Obj("square", "blue", x=48))
    assert EDITS["remove_accessory"](s, rng).concepts == [("a thing on the left", False),
                                                          ("a thing with a hat on the left", True)]
    add = EDITS["add_accessory"](s, rng)
    assert [r for _, r in add.concepts] == [False, True] and add.concepts[1][0] == "a thing on the right"
    assert add.concepts[0][0] in ("a thing with a hat on the right", "a thing with sunglasses on the right")
    assert changed_entities(add.source, add.target) == ["right.accessory"]


def test_attributes_cover_the_judge_heads():
    assert set(random_scene(0).attributes()) == set(ATTRIBUTES)


def test_edit_variants_are_every_edit_the_random_choice_can_make():
    "edit_variants walks every choice an edit function makes: each edit once, and all that seeded draws reach."
    from course_utils.toyworld import edit_variants, random_scene, EDITS, COLORS, SHAPES, BACKGROUNDS
    for seed in range(6):
        scene = random_scene(10_000 + seed)
        for kind, f in EDITS.items():
            variants = edit_variants(kind, scene)
            targets = [e.target for e in variants]
            assert len(set(targets)) == len(targets) and all(e.source == scene and e.target != scene for e in variants)
            drawn = set()
            for i in range(300):
                try: drawn.add(f(scene, np.random.default_rng(i)).target)
                except ValueError: pass
            assert drawn == set(targets), (kind, seed)
            expected = {"color": 2 * (len(COLORS) - 1), "shape": 2 * (len(SHAPES) - 1), "background": len(BACKGROUNDS) - 1}
            if kind in expected: assert len(variants) == expected[kind]
