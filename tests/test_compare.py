"toyworld.compare: every method on the same edits, scored strictly; cost counted in UNet rows."
import numpy as np
import pytest
import torch
from course_utils.metrics import held_out_edits
from course_utils.toyworld import load_judge
from course_utils.toyworld.compare import METHODS, NEEDS, UNetCounter, compare, by_kind, merged, format_table
from tolerance import close, distinct


def test_unet_counter_counts_calls_and_rows(random_models):
    m = random_models
    emb = torch.zeros(3, m.tokenizer.model_max_length, m.unet.config.cross_attention_dim)
    with UNetCounter(m.unet) as c:
        m.unet(torch.zeros(3, 4, 16, 16), 10, encoder_hidden_states=emb)
        m.unet(sample=torch.zeros(1, 4, 16, 16), timestep=10, encoder_hidden_states=emb[:1])
    m.unet(torch.zeros(2, 4, 16, 16), 10, encoder_hidden_states=emb[:2])  # after the block: not counted
    assert (c.calls, c.rows) == (2, 4)


def test_compare_scores_every_method_on_the_same_edits(toy):
    edits = held_out_edits("color", 2, offset=170_000) + held_out_edits("add_accessory", 1, offset=170_000)
    names = ["SDEdit", "DiffEdit", "LEDITS++", "LEDITS++ few words"]
    rows = compare(toy, load_judge(), edits, names)
    assert [r["method"] for r in rows] == names
    for r in rows:
        assert r["n"] == 3 and len(r["images"]) == 3 and r["edits"] == edits
        assert r["success"] == sum(s["success"] for s in r["scores"]) / 3 and r["interval"][0] <= r["success"] <= r["interval"][1]
    sd, de, le, lw = rows
    assert sd["masks"] is None and sd["iou"] is None and sd["unet_rows"] == 2 * 15  # 25 steps x 0.6, CFG: 2 rows
    assert de["masks"][0].shape == (16, 16) and 0 <= de["iou"] <= 1
    assert le["masks"] is None and le["unet_rows"] == 20 + 20  # captions at guidance 1: inversion ε(source), edit ε(target)
    assert lw["masks"][0].dtype == bool and lw["unet_rows"] > 0
    k = by_kind(de)
    assert list(k) == ["color", "add_accessory"] and (k["color"]["n"], k["add_accessory"]["n"]) == (2, 1)
    assert k["color"]["scores"] == de["scores"][:2]
    whole = merged(list(k.values()))                          # by_kind's inverse
    for key in ("n", "success", "interval", "lenient", "psnr_outside", "iou", "seconds", "unet_rows", "scores", "edits"):
        assert whole[key] == pytest.approx(de[key]) if isinstance(de[key], float) else whole[key] == de[key]
    table = format_table(rows)
    assert all(name in table for name in names) and len(table.splitlines()) == 6


def test_every_method_says_what_it_needs_and_unknown_methods_are_refused(toy):
    assert set(NEEDS) == set(METHODS)
    with pytest.raises(ValueError, match="unknown method"):
        compare(toy, None, held_out_edits("color", 1), ["Photoshop"])


def test_words_reword_an_edit(toy):
    from course_utils.toyworld.compare import parse_concepts
    assert parse_concepts(" a hat on the left ; -a thing on the left;") == [("a hat on the left", False),
                                                                            ("a thing on the left", True)]
    with pytest.raises(ValueError, match="no concepts"): parse_concepts(" ; ")
    with pytest.raises(ValueError, match="a .-. with no words after it"): parse_concepts("a hat; -")
    with pytest.raises(ValueError, match="has two"): parse_concepts("a hat; --a thing")
    two = held_out_edits("color", 2, offset=170_000)
    with pytest.raises(ValueError, match="words: got 1 for 2 edits"): compare(toy, None, two, ["SDEdit"], words=["a red thing"])
    e = held_out_edits("color", 1, offset=170_000)[0]
    judge = load_judge()
    names = ["SDEdit", "LEDITS++", "LEDITS++ few words"]
    same = compare(toy, judge, [e], names)
    again = compare(toy, judge, [e], names, words=[None])
    other = compare(toy, judge, [e], names, words=[e.source_prompt])  # 'change' to the source caption
    moved = compare(toy, judge, [e], ["LEDITS++ few words"], words=["a hat on the left; -a thing on the left"])
    arr = lambda row: np.asarray(row["images"][0], np.float64)
    for a, b in zip(same, again): assert np.array_equal(arr(a), arr(b))
    assert not np.array_equal(arr(same[0]), arr(other[0])) and not np.array_equal(arr(same[2]), arr(moved[0]))
    # LEDITS++ named by captions: 'changing' to the source caption gives the source back (through the VAE)
    from course_utils.metrics import psnr
    from course_utils.toyworld import render
    from course_utils.latents import image_to_latents, latents_to_pil
    vae_round_trip = latents_to_pil(toy, image_to_latents(toy, render(e.source).image))[0]
    assert psnr(arr(other[1]), np.asarray(vae_round_trip, np.float64)) > 45
    # one edit listed twice with two re-wordings: each copy gets its own (the methods used to key re-wordings on the object)
    (twice,) = compare(toy, judge, [e, e], ["LEDITS++ few words"], words=[None, "a hat on the left; -a thing on the left"])
    assert np.array_equal(arr(same[2]), np.asarray(twice["images"][0], np.float64))
    assert np.array_equal(arr(moved[0]), np.asarray(twice["images"][1], np.float64))


def test_words_a_method_would_misread_are_refused_before_it_runs(random_models):
    "Concept syntax typed for a caption method, or words longer than the text encoder reads (it would cut them): errors."
    e = held_out_edits("color", 1, offset=170_000)[0]
    m, calls = random_models, []
    hook = m.unet.register_forward_pre_hook(lambda *a: calls.append(1))
    try:
        for name in ("SDEdit", "DiffEdit", "DiffEdit, one prompt", "LEDITS++", "diffusers DiffEdit"):
            for typed in ("a yellow thing on the right; -a blue thing on the right", "-a blue thing", ";"):
                with pytest.raises(ValueError, match="reads your words as the whole target caption"):
                    compare(m, None, [e], [name], words=[typed], progress=False)
        long = "a " + "very " * 40 + "green plain circle on the left"
        for name in METHODS:
            with pytest.raises(ValueError, match=r"tokens, over the 32 the text encoder reads"):
                compare(m, None, [e], [name], words=[long], progress=False)
    finally: hook.remove()
    assert not calls                                     # refused before any UNet call


def test_a_reworded_few_word_edit_is_inverted_with_its_own_concepts_skip(monkeypatch):
    "A colour edit re-worded to an accessory's concepts takes the accessories' skip, not the colour's."
    from course_utils.toyworld import compare as cmp, settings
    e = held_out_edits("color", 1, offset=170_000)[0]
    typed = "a thing with a hat on the left; -a thing on the left"
    edits = [e]
    skip = cmp._few_words(edits, [typed])[1](e)
    assert skip == settings.TOY_LEDITS_SKIP["accessory"] != settings.short_skip(e) == settings.TOY_LEDITS_SKIP["color"]
    assert cmp._few_words(edits, [None])[1](e) == settings.short_skip(e)


def test_diffusers_helpers_run_the_pipelines_with_the_given_settings(random_models):
    from course_utils.diffedit import diffusers_diffedit, diffusers_diffedit_edit, diffusers_diffedit_decode
    from course_utils.ledits import diffusers_ledits, diffusers_ledits_edit, EditConcept
    from course_utils.toyworld import render
    m, e = random_models, held_out_edits("color", 1, offset=40)[0]
    im = render(e.source).image
    dp = diffusers_diffedit(m)
    run = lambda seed: diffusers_diffedit_edit(dp, im, e.source_prompt, e.target_prompt, n=2, mask_steps=6,
                                               num_inference_steps=6, seed=seed, output_type="latent")
    (a, mask), (b, _), (c, _) = run(0), run(0), run(1)
    assert a.shape == (1, 4, 16, 16) and mask.shape == (16, 16) and 0 <= mask.min() and mask.max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)                        # the seed is the pipeline's generator
    image, _ = diffusers_diffedit_edit(dp, im, e.source_prompt, e.target_prompt, n=2, mask_steps=6, num_inference_steps=6)
    assert image.size == (64, 64)
    # a batch: each image comes out as its own edit (masks image by image, one generator per image)
    es = held_out_edits("texture", 2, offset=40)
    ims, srcs, tgts = [render(x.source).image for x in es], [x.source_prompt for x in es], [x.target_prompt for x in es]
    kw = dict(n=2, mask_steps=6, num_inference_steps=6, seed=3, output_type="latent")
    both, masks = diffusers_diffedit_edit(dp, ims, srcs, tgts, **kw)
    alone = [diffusers_diffedit_edit(dp, *args, **kw) for args in zip(ims, srcs, tgts)]
    assert both.shape == (2, 4, 16, 16) and len(masks) == 2
    for i, (z, mk) in enumerate(alone):
        assert np.array_equal(masks[i], mk)
        close(both[i], z[0])
    distinct(both)
    with pytest.raises(ValueError, match="target_prompt"): diffusers_diffedit_edit(dp, ims, srcs, tgts[:1] * 3, **kw)
    # its second half alone (lesson 6's "no change"): invert + decode under given masks, a batch is each image alone
    ones = [torch.ones(16, 16, dtype=torch.bool)] * 2
    dec = lambda i, t, mk: diffusers_diffedit_decode(dp, i, t, mk, num_inference_steps=6, output_type="latent")
    z2 = dec(ims, tgts, ones)
    for i in range(2): close(dec([ims[i]], tgts[i], ones[:1])[0], z2[i])
    with pytest.raises(ValueError, match="masks"): dec(ims, tgts, ones[:1] * 3)
    assert torch.equal(dec(ims, tgts, ones[0]), z2)       # one h x w mask is every image's (not one per row of it)
    before = dict(m.unet.attn_processors)
    lp = diffusers_ledits(m)
    edit = lambda reverse: diffusers_ledits_edit(lp, im, [EditConcept("a red thing", scale=5, threshold=0.5, reverse=reverse)],
                                                 num_inversion_steps=6, output_type="latent")
    plus, minus = edit(False), edit(True)
    assert plus.shape == (1, 4, 16, 16) and not torch.allclose(plus, minus)   # the concept's direction reaches the pipeline
    assert all(before[k] is v for k, v in m.unet.attn_processors.items())     # its processors do not stay on the shared UNet
    with pytest.raises(TypeError, match="one image"): diffusers_ledits_edit(lp, ims, [EditConcept("a red thing")])
