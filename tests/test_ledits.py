"""LEDITS++ helpers: exact inversion (both solvers), the edit maths and masks, processors restored, bad input."""
import dataclasses
import pytest
import torch
import torch.nn.functional as F
from course_utils.ledits import (EditConcept, make_concepts, caption_concepts, ddpm_invert, ledits_edit, edit_vector, concept_mask,
                                 reconstruction_errors, token_span, inversion_scheduler, _gaussian_3x3, _quantile_masks,
                                 concept_masks, diffusers_ledits, diffusers_ledits_apply)
from course_utils.attention import capture_cross_attention, keep_processors
from course_utils.metrics import HELD_OUT, held_out_edits
from course_utils.text import encode_prompt
from course_utils.toyworld import TOY_LEDITS, TOY_LEDITS_SKIP, concept_kind, short_concepts, short_skip, toy_concepts
from course_utils.toyworld import random_scene, render, object_phrase
from tolerance import close, rel_err

rmse = lambda a, b: (a - b).pow(2).mean().sqrt().item()


@pytest.fixture(scope="module")
def image():
    return render(random_scene(HELD_OUT + 21)).image


@pytest.mark.parametrize("solver", ["ddpm", "dpmpp"])
@pytest.mark.parametrize("steps,skip,source", [(10, 0.15, ""), (25, 0.0, ""), (16, 0.3, "a red thing on the left")])
def test_no_concepts_reproduces_the_inverted_latents_exactly(random_models, image, solver, steps, skip, source):
    inv = ddpm_invert(random_models, image, num_inversion_steps=steps, skip=skip, solver=solver, source_prompt=source, progress=False)
    assert inv.xts.shape == (steps + 1, 1, 4, 16, 16) and inv.zs.shape == (steps, 1, 4, 16, 16)
    _, z = ledits_edit(random_models, inv, [], return_latents=True, progress=False)
    assert rmse(z, inv.x0) <= 1e-5


@pytest.mark.parametrize("solver", ["ddpm", "dpmpp"])
def test_exact_on_the_trained_model_for_several_images(toy, solver):
    for seed in (HELD_OUT + 1, HELD_OUT + 2, HELD_OUT + 3):
        inv = ddpm_invert(toy, render(random_scene(seed)).image, num_inversion_steps=20, solver=solver, progress=False)
        _, z = ledits_edit(toy, inv, [], return_latents=True, progress=False)
        assert rmse(z, inv.x0) <= 1e-5


def test_inversion_noise_is_independent_per_timestep_and_seeded(random_models, image):
    a = ddpm_invert(random_models, image, num_inversion_steps=8, seed=1, progress=False)
    b = ddpm_invert(random_models, image, num_inversion_steps=8, seed=1, progress=False)
    c = ddpm_invert(random_models, image, num_inversion_steps=8, seed=2, progress=False)
    assert torch.equal(a.zs, b.zs) and not torch.equal(a.zs, c.zs)
    assert torch.equal(a.x0, c.x0)  # the clean latents do not depend on the noise
    # each x_t is drawn on its own: x_t = sqrt(ᾱ_t) x_0 + sqrt(1 − ᾱ_t) ε_t with independent ε_t
    ac = random_models.scheduler.alphas_cumprod[a.timesteps.long()]
    eps = (a.xts[:-1] - ac.sqrt().view(-1, 1, 1, 1, 1) * a.x0) / (1 - ac).sqrt().view(-1, 1, 1, 1, 1)
    corr = torch.corrcoef(eps.flatten(1))
    assert (corr - torch.eye(len(corr))).abs().max() < 0.15 and (eps.std(dim=(1, 2, 3, 4)) - 1).abs().max() < 0.1


def test_edit_vector_direction_and_scale():
    u, c = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8)
    assert torch.allclose(edit_vector(u, c, EditConcept("x", scale=3)), 3 * (c - u))
    assert torch.allclose(edit_vector(u, c, EditConcept("x", scale=3, reverse=True)), -3 * (c - u))


def test_short_concepts_follow_the_kind_of_each_concept():
    assert [concept_kind(t) for t in ("a thing with a hat on the left", "a thing with sunglasses on the right",
                                      "a striped thing on the right", "a green thing on the left",
                                      "a thing on the left", "a triangle on the right", "sky background", "a plain thing on the left")] == \
        ["accessory", "accessory", "texture", "color", "accessory", "shape", "background", "texture"]
    e = held_out_edits("color_and_accessory", 1)[0]  # new colour, old colour (reverse), the accessory change as a pair
    assert [(c.prompt, c.reverse) for c in short_concepts(e, whole_object=())] == e.concepts
    cs = short_concepts(e)      # colour concepts name the whole object: the target's forward, the source's in reverse
    slot = "left" if e.concepts[0][0].endswith("left") else "right"
    assert [c.prompt for c in cs[:2]] == [object_phrase(e.target.objects()[slot], slot), object_phrase(e.source.objects()[slot], slot)]
    assert [(c.prompt, c.reverse) for c in cs[2:]] == e.concepts[2:] and [c.reverse for c in cs[:2]] == [False, True]
    col, acc = TOY_LEDITS["color"], TOY_LEDITS["accessory"]
    assert [c.scale for c in cs] == [col["scale"], col["reverse_scale"]] + [acc["scale"]] * 2  # the old colour weaker
    assert [c.threshold for c in cs] == [col["threshold"]] * 2 + [acc["threshold"]] * 2
    plain = {k: {"scale": 3.0, "threshold": 0.5} for k in TOY_LEDITS}
    assert [(c.scale, c.threshold) for c in short_concepts(e, plain)] == [(3.0, 0.5)] * 4
    skips = {k: short_skip(held_out_edits(k, 1)[0]) for k in ("color", "add_accessory", "remove_accessory", "color_and_accessory")}
    assert skips == {"color": TOY_LEDITS_SKIP["color"], "add_accessory": TOY_LEDITS_SKIP["accessory"],
                     "remove_accessory": TOY_LEDITS_SKIP["accessory"], "color_and_accessory": 0.3}  # the larger of the two


def test_masks_on_a_known_attention_map():
    "M1 and M2 overlap only in part, so the intersection (t <= 800) and M1 alone (above) can be told apart."
    g = torch.zeros(1, 4, 16, 16)
    g[..., 0:8, 0:8] = 1.0           # the edit vector is large in the top-left quarter: M2
    attn = torch.zeros(4, 4, 2)
    attn[0:2, 1:3] = 0.5             # the concept's tokens attend to a 2 x 2 block of latent/4 cells: M1
    m1, m2, mask = concept_mask(g, attn, 0.75, t=500)
    want_m2, want_m1 = torch.zeros(16, 16, dtype=torch.bool), torch.zeros(16, 16, dtype=torch.bool)
    want_m2[:8, :8] = True
    want_m1[:8, 4:12] = True         # smoothing spreads the map; the 0.75-quantile keeps the 4 cells of the block
    assert torch.equal(m2, want_m2) and torch.equal(m1, want_m1)
    assert torch.equal(mask, m1 & m2) and mask.sum() == 32             # rows 0-7, columns 4-7
    _, _, only_m1 = concept_mask(g, attn, 0.75, t=900)           # above 800: M1 alone
    assert torch.equal(only_m1, m1) and only_m1.sum() == 64
    _, _, no_intersect = concept_mask(g, attn, 0.75, t=500, use_intersect_mask=False)
    assert torch.equal(no_intersect, m1)
    _, _, m2_only = concept_mask(g, None, 0.75)
    assert torch.equal(m2_only, m2)


def test_gaussian_is_normalised_and_quantile_handles_float16():
    x = torch.ones(1, 4, 4)
    assert torch.allclose(_gaussian_3x3(x), x)
    assert _gaussian_3x3(torch.ones(1, 4, 4, dtype=torch.float16)).dtype == torch.float16
    y = torch.arange(16, dtype=torch.float16).reshape(1, 4, 4)
    assert _quantile_masks(y, [0.9]).sum() == 2


def test_gaussian_is_diffusers_ledits_smoothing():
    "Our 3x3 smoothing of attention maps against diffusers' LEDITS++ (its kernel is a Gaussian of std 0.71, named σ = 0.5)."
    from diffusers.pipelines.ledits_pp.pipeline_leditspp_stable_diffusion import LeditsGaussianSmoothing
    x = torch.rand(3, 4, 4, generator=torch.Generator().manual_seed(0))
    ref = LeditsGaussianSmoothing("cpu")(F.pad(x[:, None], (1, 1, 1, 1), mode="reflect"))[:, 0]   # as its __call__ does
    close(_gaussian_3x3(x), ref, rel=1e-6)
    assert rel_err(_gaussian_3x3(x, std=0.5), ref) > 0.1             # a true σ = 0.5 is narrower: the test can tell


def test_ledits_edit_is_diffusers_pipeline_once_its_two_differences_are_lined_up(toy, monkeypatch):
    """Our LEDITS++ edit against diffusers' pipeline handed our inversion. They differ in two places: diffusers'
    last step lands on σ = 0 at first order (no noise left to absorb the error: its inversion is not exact;
    ours keeps σ_min) and its M1 sums max_length − 2 token positions (it counts tokens after padding; ours,
    the concept's words). With both lined up they agree to float rounding, so nothing else differs."""
    import course_utils.ledits as L
    exact, shipped = diffusers_ledits(toy, exact=True), diffusers_ledits(toy)
    edits = held_out_edits("color", 1, offset=160_000) + held_out_edits("color_and_accessory", 1, offset=160_000)
    with keep_processors(toy.unet):                       # its invert swaps the UNet's processors, shared with the fixture
        for e in edits:
            im, cs, skip = render(e.source).image, short_concepts(e), short_skip(e)
            inv = ddpm_invert(toy, im, num_inversion_steps=20, skip=skip, solver="dpmpp", progress=False)

            def theirs(pipe, concepts):
                pipe.invert(image=im, num_inversion_steps=20, skip=skip, generator=torch.Generator().manual_seed(0))
                pipe.init_latents, pipe.zs = inv.xts[0].clone(), inv.zs.clone()     # our inversion in place of its own
                if not concepts: return pipe(editing_prompt=None, output_type="latent").images
                return diffusers_ledits_apply(pipe, concepts, output_type="latent")

            close(theirs(exact, []), inv.x0, rel=1e-5)                 # no edit: its exact last step retraces our inversion
            assert rel_err(theirs(shipped, []), inv.x0) > 0.03          # as it ships: its last latent is the model's guess
            want = theirs(exact, cs)
            ours = lambda: ledits_edit(toy, inv, cs, progress=False, return_latents=True)[1]
            assert rel_err(ours(), want) > 0.03                         # M1 over the concept's words, not 30 positions
            with monkeypatch.context() as mp:
                mp.setattr(L, "token_span", L.diffusers_token_span)
                close(ours(), want)


def test_concept_masks_of_many_concepts_are_each_concepts_own():
    "One call for P concepts (what a batched edit step makes) gives each the masks it gets alone, bit for bit."
    g = torch.Generator().manual_seed(0)
    G, A = torch.randn(5, 4, 16, 16, generator=g), torch.rand(5, 4, 4, 3, generator=g)
    thresholds = [0.9, 0.75, 0.9, 0.5, 0.8]                         # repeated and distinct levels
    for t, kw in [(500, {}), (900, {}), (500, dict(use_intersect_mask=False))]:
        many = concept_masks(G, A.sum(-1), thresholds, t=t, **kw)
        for p in range(5):
            one = concept_mask(G[p:p + 1], A[p], thresholds[p], t=t, **kw)
            for a, b in zip(many, one): assert torch.equal(a[p], b)
    _, m2, mask = concept_masks(G, None, thresholds)
    assert torch.equal(m2, mask) and [int(m.sum()) for m in m2] == [26, 64, 26, 128, 52]   # 256 cells above each level


def test_cross_attention_store_and_processors_restored(random_models):
    unet = random_models.unet
    before = dict(unet.attn_processors)
    emb = torch.randn(2, random_models.tokenizer.model_max_length, unet.config.cross_attention_dim)
    with capture_cross_attention(unet, (4, 4)) as store:
        unet(torch.randn(2, 4, 16, 16), 500, encoder_hidden_states=emb)
        maps = store.mean()
    assert maps.shape == (2, 4, 4, random_models.tokenizer.model_max_length)
    assert torch.allclose(maps.sum(-1), torch.ones(2, 4, 4), atol=1e-5)  # softmax over tokens
    assert all(before[k] is v for k, v in unet.attn_processors.items())
    n_layers = {}
    for places in (("down", "up"), ("mid",), ("down", "mid", "up")):
        with capture_cross_attention(unet, (4, 4), places) as store:
            unet(torch.randn(1, 4, 16, 16), 500, encoder_hidden_states=emb[:1]); n_layers[places] = len(store.maps)
    assert n_layers[("mid",)] == 1 and n_layers[("down", "mid", "up")] == n_layers[("down", "up")] + 1  # mid left out by default
    with pytest.raises(ValueError, match="places"):
        with capture_cross_attention(unet, (4, 4), ("middle",)): pass
    with pytest.raises(RuntimeError, match="latent/4"):
        with capture_cross_attention(unet, (3, 3)) as store:
            unet(torch.randn(1, 4, 16, 16), 500, encoder_hidden_states=emb[:1]); store.mean()
    assert all(before[k] is v for k, v in unet.attn_processors.items())


def test_processors_restored_even_when_the_edit_fails(random_models, image):
    inv = ddpm_invert(random_models, image, num_inversion_steps=4, progress=False)
    before = dict(random_models.unet.attn_processors)
    boom = random_models.unet.register_forward_hook(lambda *a: (_ for _ in ()).throw(RuntimeError("boom")))
    try:
        with pytest.raises(RuntimeError, match="boom"): ledits_edit(random_models, inv, ["a hat"], progress=False)
    finally: boom.remove()
    assert all(before[k] is v for k, v in random_models.unet.attn_processors.items())


def test_one_unet_call_per_step_with_one_plus_n_rows(random_models, image):
    inv = ddpm_invert(random_models, image, num_inversion_steps=5, progress=False)
    rows = []
    h = random_models.unet.register_forward_hook(lambda mod, args, out: rows.append(args[0].shape[0]))
    try: _, masks = ledits_edit(random_models, inv, make_concepts(["a hat", "blue"], reverse=[False, True]),
                                record_masks=True, progress=False)
    finally: h.remove()
    assert rows == [3] * 5
    assert set(masks) == {"M1", "M2", "mask"} and masks["mask"].shape == (5, 2, 16, 16)
    above = inv.timesteps > 800                                   # M1 alone there, M1 ∩ M2 below (the defaults)
    assert above.any() and not above.all()
    for k in range(5):
        want = masks["M1"][k] if above[k] else masks["M1"][k] * masks["M2"][k]
        assert torch.equal(masks["mask"][k], want)
    assert not torch.equal(masks["mask"][~above], masks["M1"][~above])   # the intersection did cut something


def test_warmup_and_cooldown(random_models, image):
    inv = ddpm_invert(random_models, image, num_inversion_steps=6, progress=False)
    _, plain = ledits_edit(random_models, inv, [], return_latents=True, progress=False)
    _, never = ledits_edit(random_models, inv, [EditConcept("a hat", warmup=6)], return_latents=True, progress=False)
    close(never, plain)   # equal up to the rounding of a 2-row vs a 1-row batch (tolerance.py)
    _, masks = ledits_edit(random_models, inv, [EditConcept("a hat", warmup=2, cooldown=4)], record_masks=True, progress=False)
    active = masks["M2"].flatten(1).any(1).tolist()
    assert active == [False, False, True, True, False, False]
    assert not EditConcept("x", warmup=1, cooldown=3).active(3) and EditConcept("x", warmup=1).active(10)


def test_bad_input_says_what_is_wrong(random_models, toy, image):
    with pytest.raises(ValueError, match="got 2 values of scale for 3 concepts"):
        make_concepts(["a", "b", "c"], scale=[1, 2])
    with pytest.raises(ValueError, match="unknown solver 'euler'"): ddpm_invert(random_models, image, solver="euler")
    with pytest.raises(ValueError, match=r"threshold must be in \[0, 1\), got 1.0"): EditConcept("hat", threshold=1.0)
    with pytest.raises(ValueError, match=r"threshold must be in \[0, 1\), got -0.1"): EditConcept("hat", threshold=-0.1)
    with pytest.raises(TypeError, match="target_prompt must be one caption"): caption_concepts("a red thing", ["a", "b"])
    with pytest.raises(ValueError, match="cooldown"): EditConcept("hat", warmup=3, cooldown=2)
    for empty in ("", "  "):                                                # ε("") = u: an edit vector of 0
        with pytest.raises(ValueError, match="empty concept prompt edits nothing"): EditConcept(empty)
    assert caption_concepts("", "a red thing", 2) == [EditConcept("a red thing", scale=2, threshold=0.0)]
    with pytest.raises(ValueError, match="skip"): ddpm_invert(random_models, image, skip=1.0)
    with pytest.raises(ValueError, match="64x64"): ddpm_invert(random_models, image.resize((48, 48)))
    with pytest.raises(ValueError, match="needs a source_prompt"):          # it would be ignored: u alone has no guidance
        ddpm_invert(random_models, image, source_guidance_scale=5, num_inversion_steps=2, progress=False)
    assert ddpm_invert(random_models, image, source_prompt="a red thing", num_inversion_steps=2,
                       progress=False).source_guidance_scale == 3.5          # diffusers' default, with a caption
    inv = ddpm_invert(random_models, image, num_inversion_steps=3, progress=False)
    with pytest.raises(ValueError, match="other weights"): ledits_edit(toy, inv, [], progress=False)
    small = dataclasses.replace(inv, xts=inv.xts[..., :8, :8], zs=inv.zs[..., :8, :8])
    with pytest.raises(ValueError, match="model's size"): ledits_edit(random_models, small, [], progress=False)
    with pytest.raises(TypeError, match="a concept is an EditConcept, a prompt, or"): ledits_edit(random_models, inv, [3.0], progress=False)


def test_one_prompt_is_one_concept_not_its_letters(random_models, image):
    "`ledits_edit(m, inv, 'a hat')`, as diffusers' editing_prompt='a hat', is the list of that one concept."
    inv = ddpm_invert(random_models, image, num_inversion_steps=3, progress=False)
    one = ledits_edit(random_models, inv, ["a hat"], return_latents=True, progress=False)[1]
    assert torch.equal(ledits_edit(random_models, inv, "a hat", return_latents=True, progress=False)[1], one)
    assert torch.equal(ledits_edit(random_models, inv, EditConcept("a hat"), return_latents=True, progress=False)[1], one)
    both = ddpm_invert(random_models, [image, image], num_inversion_steps=3, progress=False)
    _, z = ledits_edit(random_models, both, "a hat", return_latents=True, progress=False)
    assert torch.equal(z, ledits_edit(random_models, both, [["a hat"], ["a hat"]], return_latents=True, progress=False)[1])


def test_reconstruction_table_ours_exact_beside_the_others(random_models, image):
    res = reconstruction_errors(random_models, [image, image.transpose(0)], num_inversion_steps=4)
    assert list(res) == ["DDPM (edit-friendly)", "DPM-Solver++ 2M SDE", "diffusers LEDITS++", "diffusers, exact last step",
                         "DDIM inversion"]
    assert all(len(r["rmse"]) == len(r["seconds"]) == 2 for r in res.values())
    assert max(res["DDPM (edit-friendly)"]["rmse"] + res["DPM-Solver++ 2M SDE"]["rmse"]) <= 1e-5
    assert max(res["diffusers, exact last step"]["rmse"]) <= 1e-5 < min(res["diffusers LEDITS++"]["rmse"])   # its last step
    assert min(res["DDIM inversion"]["rmse"]) > 1e-4   # DDIM inversion is only approximate


def test_reconstruction_table_in_one_batch_is_each_image_alone(random_models, image):
    ims = [image, image.transpose(0)]
    both = reconstruction_errors(random_models, ims, num_inversion_steps=4)
    alone = [reconstruction_errors(random_models, [im], num_inversion_steps=4) for im in ims]
    for name in ("diffusers LEDITS++", "DDIM inversion"):   # ours and the exact last step: exact (above): rounding level either way
        # an error is a difference of latents, so rounding moves it relatively more: 7e-5 measured on 2 threads
        assert both[name]["rmse"] == pytest.approx([a[name]["rmse"][0] for a in alone], rel=1e-3), name


def test_token_span_finds_the_words_m1_reads(random_models):
    tok = random_models.tokenizer
    whole = EditConcept("a red thing on the left")
    ids = tok(whole.prompt).input_ids
    start, stop = token_span(tok, whole)
    assert ids[start - 1] == tok.bos_token_id and ids[stop] == tok.eos_token_id      # every word, nothing around them
    assert tok.convert_ids_to_tokens(ids[start:stop]) == [w + "</w>" for w in whole.prompt.split()]
    c = EditConcept("a thing on the left, a red thing on the right", mask_words="a red thing on the right")
    ids = tok(c.prompt).input_ids
    start, stop = token_span(tok, c)
    assert tok.convert_ids_to_tokens(ids[start:stop]) == tok.convert_ids_to_tokens(tok(c.mask_words).input_ids[1:-1])
    assert stop == len(ids) - 1                     # the last occurrence: the concept's own clause, before <eos>
    with pytest.raises(ValueError, match="are not words of the prompt"): EditConcept("a red thing", mask_words="a blue")
    with pytest.raises(ValueError, match="mask_words is empty"): EditConcept("a red hat.", mask_words=" ")
    long = EditConcept(" ".join(["a red thing"] * tok.model_max_length))   # past what the text encoder reads
    with pytest.raises(ValueError, match=f"over the {tok.model_max_length} the text encoder reads"): token_span(tok, long)
    with pytest.raises(ValueError, match="are not words of the prompt"): EditConcept("that thing", mask_words="hat")  # a word, not letters


@pytest.mark.parametrize("s,n_rows", [(2.0, 2), (1.0, 1)])
def test_caption_concepts_sample_the_target_caption_from_the_source_inversion(random_models, image, s, n_rows):
    """Inverted with the source caption at guidance s, the caption pair gives ε̂ = u + s (ε(tgt) − u):
    checked against a hand-written sampler with the stored noise maps. Target = source changes nothing;
    threshold 0 masks nothing, so ε̂ is a weighted sum of rows and the source caption's, of weight
    s − s = 0, is not computed: 2 rows per step (u, target), and at s = 1 only the target's."""
    src, tgt = "a red circle on the left", "a blue circle on the left"
    inv = ddpm_invert(random_models, image, num_inversion_steps=6, source_prompt=src, source_guidance_scale=s,
                      solver="dpmpp", progress=False)
    _, same = ledits_edit(random_models, inv, caption_concepts(src, src, s), return_latents=True, progress=False)
    assert rmse(same, inv.x0) <= 1e-5
    rows = []
    h = random_models.unet.register_forward_hook(lambda mod, args, out: rows.append(args[0].shape[0]))
    try: _, z, masks = ledits_edit(random_models, inv, caption_concepts(src, tgt, s), return_latents=True,
                                   record_masks=True, progress=False)
    finally: h.remove()
    assert rows == [n_rows] * 6 and bool(masks["mask"].all()) and bool(masks["M1"].all())
    sched = inversion_scheduler(random_models, "dpmpp"); sched.set_timesteps(inv.total_steps)
    emb, x = encode_prompt(random_models, ["", tgt]), inv.xts[0]
    with torch.no_grad():
        for k, t in enumerate(inv.timesteps):
            u, c = random_models.unet(x.expand(2, -1, -1, -1), t, encoder_hidden_states=emb).sample.chunk(2)
            x = sched.step(u + s * (c - u), t, x, variance_noise=inv.zs[k]).prev_sample
    assert rmse(z, x) <= 1e-4 * x.std().item() and rmse(z, inv.x0) > 0.01
    if s == 2.0:   # the pair at another scale than the inversion's: another edit (the source still pulls), and it says so
        with pytest.warns(UserWarning, match="another scale than the inversion's"):
            _, off = ledits_edit(random_models, inv, caption_concepts(src, tgt, 1.0), return_latents=True, progress=False)
        assert rmse(off, z) > 1e-3


def test_inversion_at_guidance_1_needs_only_the_source_row(random_models, image):
    """At source guidance 1, u + 1 (ε(src) − u) = ε(src): one UNet row per image and step, and the same
    inversion (to float tolerance) as the two-row sum at a guidance a hair away from 1."""
    src = "a red circle on the left"
    rows = []
    h = random_models.unet.register_forward_hook(lambda mod, args, out: rows.append(args[0].shape[0]))
    try: one = ddpm_invert(random_models, image, num_inversion_steps=5, source_prompt=src, source_guidance_scale=1.0, progress=False)
    finally: h.remove()
    assert rows == [1] * 5
    two = ddpm_invert(random_models, image, num_inversion_steps=5, source_prompt=src, source_guidance_scale=1 + 1e-7, progress=False)
    assert rmse(one.zs, two.zs) <= 1e-4 * two.zs.std().item() and rmse(one.xts, two.xts) <= 1e-4 * two.xts.std().item()


def test_toy_concepts_are_the_edit_captions():
    e = held_out_edits("color_and_accessory", 1)[0]
    cs = toy_concepts(e)
    assert [(c.prompt, c.reverse, c.scale, c.threshold) for c in cs] == [(e.target_prompt, False, 1.0, 0.0),
                                                                         (e.source_prompt, True, 1.0, 0.0)]
