"""The training pieces: tokenizer, captions, safetensors checkpoints that resume, EMA, a real (tiny) fit."""
import copy
from pathlib import Path
import numpy as np
import pytest
import torch
from torch import nn
from transformers import CLIPTokenizer
from course_utils.toyworld import model as toymodel, training
from course_utils.toyworld.tokenizer import learn_merges, write_clip_tokenizer
from course_utils.toyworld import random_scene, ATTRIBUTES

ROOT = Path(__file__).resolve().parents[1]


def test_tokenizer_makes_every_toyworld_word_one_token(tmp_path):
    tok = toymodel.write_tokenizer(tmp_path / "tok")
    assert isinstance(tok, CLIPTokenizer)
    for w in toymodel.WORDS:
        assert len(tok(w).input_ids) == 3, w  # <bos> word <eos>
    ids = tok(random_scene(0).caption).input_ids
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id and tok.unk_token_id not in ids[1:-1]
    assert len(tok("a zebra").input_ids) > 3  # unknown words still tokenize, into pieces
    longest = max((random_scene(s).caption for s in range(300)), key=lambda c: len(tok(c).input_ids))
    assert len(tok(longest).input_ids) <= tok.model_max_length


def test_learn_merges_is_bpe():
    merges = learn_merges(["low", "lower", "lowest"])
    assert merges[0] == ("l", "o")  # the most frequent pair first
    tok = CLIPTokenizer.from_pretrained(str(write_clip_tokenizer(["low", "lower", "lowest"], "/tmp/_bpe_test")))
    assert tok.tokenize("lowest lower") == ["lowest</w>", "lower</w>"]


def test_training_captions_mix_full_partial_and_empty():
    rng = np.random.default_rng(0)
    s = random_scene(1)
    caps = [training.training_caption(s, rng) for _ in range(2000)]
    full, empty = caps.count(s.caption) / 2000, caps.count("") / 2000
    assert 0.65 < full < 0.75 and 0.07 < empty < 0.13
    partial = [c for c in caps if c not in (s.caption, "")]
    clauses = [k for c in partial for k in c.split(", ")]
    assert all(c.count(",") <= 1 for c in partial)  # one or two clauses: never mistaken for a full caption
    assert all(k == f"{s.background} background" or k.endswith(("on the left", "on the right")) for k in clauses)


def test_checkpoint_round_trip_restores_model_and_optimizer(tmp_path):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
    for _ in range(3):
        m(torch.randn(5, 4)).pow(2).mean().backward(); opt.step(); opt.zero_grad()
    training.save_checkpoint(tmp_path / "c.safetensors", {"model": m}, opt, {"epoch": 3})
    m2 = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
    opt2 = torch.optim.AdamW(m2.parameters(), lr=1e-2)
    assert training.load_checkpoint(tmp_path / "c.safetensors", {"model": m2}, opt2) == {"epoch": 3}
    for a, b in zip(m.state_dict().values(), m2.state_dict().values()): assert torch.equal(a, b)
    x = torch.randn(5, 4)
    for mm, oo in ((m, opt), (m2, opt2)):  # the same next step from both
        mm(x).pow(2).mean().backward(); oo.step(); oo.zero_grad()
    for a, b in zip(m.parameters(), m2.parameters()): assert torch.equal(a, b)


def test_ema_update_is_a_lerp():
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    w0 = a.weight.detach().clone()
    training.ema_update(a, b, 0.9)
    assert torch.allclose(a.weight, 0.9 * w0 + 0.1 * b.weight)


def test_judge_training_checkpoints_and_a_finished_run_does_nothing_more(tmp_path, capsys):
    "Two short epochs of the judge's fastai loop run and checkpoint; a second call resumes at the end (no more steps)."
    judge = training.train_judge(tmp_path, epochs=2, iters=4, bs=16, pool=64)
    ckpt = (tmp_path / "judge.safetensors").read_bytes()
    acc1 = training.judge_accuracy(judge, range(10_000_000, 10_000_064))
    assert set(acc1) == set(ATTRIBUTES)
    capsys.readouterr()
    again = training.train_judge(tmp_path, epochs=2, iters=4, bs=16, pool=64)  # resumes at epoch 2: nothing to do
    assert "resuming judge.safetensors at epoch 2/2" in capsys.readouterr().out
    assert (tmp_path / "judge.safetensors").read_bytes() == ckpt                  # no epoch ran, none was written
    for p, q in zip(judge.net.parameters(), again.net.parameters()): assert torch.equal(p, q)


def test_an_interrupted_run_resumes_at_its_epoch(tmp_path, capsys, monkeypatch):
    """A run killed after epoch 1 of 3 (its checkpoint written) resumes at epoch 1 (skipped epochs write
    nothing) and ends at 3; a run with another plan (epochs, steps per epoch) refuses that checkpoint."""
    from safetensors import safe_open
    import json
    from course_utils.toyworld import callbacks
    meta = lambda: json.loads(safe_open(str(tmp_path / "judge.safetensors"), "pt").metadata()["meta"])
    save = callbacks.save_checkpoint
    def killed_after_epoch_1(file, mods, opt, m):
        save(file, mods, opt, m)
        if m["epoch"] == 1: raise KeyboardInterrupt("the session ended")
    monkeypatch.setattr(callbacks, "save_checkpoint", killed_after_epoch_1)
    with pytest.raises(KeyboardInterrupt): training.train_judge(tmp_path, epochs=3, iters=2, bs=8, pool=32)
    assert meta()["epoch"] == 1 and meta()["n_epoch"] == 3 and meta()["n_iter"] == 2
    for plan in (dict(epochs=4, iters=2), dict(epochs=3, iters=3)):
        with pytest.raises(ValueError, match="resume with the same settings"): training.train_judge(tmp_path, bs=8, pool=32, **plan)
    written = []
    monkeypatch.setattr(callbacks, "save_checkpoint", lambda file, mods, opt, m: (written.append(m["epoch"]), save(file, mods, opt, m)))
    capsys.readouterr()
    training.train_judge(tmp_path, epochs=3, iters=2, bs=8, pool=32)
    assert "resuming judge.safetensors at epoch 1/3" in capsys.readouterr().out
    assert written == [2, 3], "epoch 1 is skipped and writes nothing; epochs 2 and 3 train and save"
    assert meta()["epoch"] == 3 and meta()["n_epoch"] == 3


def test_the_recipe_trains_on_the_cpu_where_fastai_would_pick_a_gpu(tmp_path, monkeypatch):
    """fastai puts the model on its loaders' device, else on a GPU (or MPS) where there is one; the recipe's
    batches are built on the CPU, so its loaders name the CPU (a default device of 'meta' stands in for a GPU)."""
    import fastai.callback.core
    monkeypatch.setattr(fastai.callback.core, "default_device", lambda *a: torch.device("meta"))
    judge = training.train_judge(tmp_path, epochs=1, iters=2, bs=8, pool=32)
    assert {p.device.type for p in judge.net.parameters()} == {"cpu"}
    dls = training.index_loaders(torch.arange(10), torch.arange(100, 103), 4)
    assert dls.device == torch.device("cpu") and [b[0].tolist() for b in dls.train] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


# ------------------------------------------------------------------ stage 2b: attention localisation
def _toy_tokenizer():
    return CLIPTokenizer.from_pretrained(str(toymodel.TOY_PATH / "tokenizer"))


def test_token_entities_name_body_accessory_and_background():
    tok = _toy_tokenizer()
    ids = tok("a red circle with a hat on the left, a blue square on the right, gray background").input_ids
    ents = training.token_entities(tok.convert_ids_to_tokens(ids))
    assert ents == [None] + ["left"] * 5 + ["left.accessory"] + ["left"] * 3 + [None] + ["right"] * 6 + [None] \
        + ["background"] * 2 + [None]


def test_attention_targets_put_the_hat_above_its_object():
    from course_utils.toyworld import Scene, Obj
    tok = _toy_tokenizer()
    scene = Scene(Obj("circle", "red", accessory="hat", x=16, y=38, r=10), Obj("square", "blue", x=48, y=38, r=10))
    caps = [scene.caption, "a thing with sunglasses on the right"]  # the right object wears none: not a target
    ids = tok(caps, padding="max_length", max_length=32, return_tensors="pt").input_ids
    tgt, w = training.attention_targets([scene, scene], ids, tok)
    toks = [t.replace("</w>", "") for t in tok.convert_ids_to_tokens(ids[0].tolist())]
    hat, red, blue = (tgt[0, toks.index(k)].view(4, 4) for k in ("hat", "red", "blue"))
    assert hat.max() == red.max() == 1 and hat.argmax() // 4 < red.argmax() // 4  # a row higher
    assert red[:, 2:].sum() == 0 and blue[:, :2].sum() == 0                       # each on its own side
    assert w[0, toks.index(",")] == 0 and w[0].sum() == 19                        # commas and padding: none
    assert w[1].sum() == 6 and w[1, 4] == 0                                       # 'sunglasses': nothing to look at


def test_attention_localisation_loss_is_the_share_outside():
    loss = training.AttentionLocalisationLoss(weight=1.0)
    tgt = torch.zeros(1, 2, 16); tgt[0, 0, :4] = 1; tgt[0, 1, 4:8] = 1
    w = torch.tensor([[1.0, 0.0]])  # the second token is not supervised
    inside = torch.zeros(1, 16, 2); inside[0, :4, 0] = 0.5; inside[0, :, 1] = 0.3
    uniform = torch.full((1, 16, 2), 0.5)
    assert loss.outside(inside, tgt, w) == 0
    assert torch.isclose(loss.outside(uniform, tgt, w), torch.tensor(12 / 16))
    pred, eps = torch.zeros(1, 4), torch.ones(1, 4)
    assert torch.isclose(loss((pred, uniform), eps, tgt, w), torch.tensor(1 + 12 / 16))


def test_attention_finetuning_moves_words_onto_their_objects(tmp_path):
    "A few steps on the attention term alone lower the share outside; the fastai stage runs, saves and restores."
    from course_utils.attention import capture_cross_attention
    from course_utils.toyworld import random_scene
    torch.manual_seed(0)
    tok = _toy_tokenizer()
    unet, te = toymodel.new_unet(), toymodel.new_text_encoder(len(tok))
    scenes = [random_scene(i) for i in range(4)]
    ids = tok([s.caption for s in scenes], padding="max_length", max_length=32, return_tensors="pt").input_ids
    tgt, w = training.attention_targets(scenes, ids, tok)
    x, t = torch.randn(4, 4, 16, 16), torch.full((4,), 500)
    opt = torch.optim.Adam(list(unet.parameters()) + list(te.parameters()), 3e-3)
    loss = training.AttentionLocalisationLoss()
    with capture_cross_attention(unet, (4, 4), detach=False) as store:
        model = training.TextToEpsAttn(unet, te, store)
        outside = []
        for _ in range(15):
            share = loss.outside(model(x, t, ids)[1], tgt, w)
            opt.zero_grad(); share.backward(); opt.step()
            outside.append(share.item())
    assert outside[-1] < outside[0] - 0.1, outside
    procs = set(type(p).__name__ for p in unet.attn_processors.values())
    unet2, te2 = training.finetune_attention(tmp_path, toymodel.new_vae(), unet, te, tok, epochs=1, iters=2, bs=4, pool=8)
    assert (tmp_path / "attention.safetensors").exists()
    assert set(type(p).__name__ for p in unet.attn_processors.values()) == procs  # processors restored
    assert unet2.config.sample_size == 16 and te2 is not te


def test_accessory_masks_and_the_weighted_decoder_stage(tmp_path):
    "Stage 1c: accessory pixels found from the renders' covers; the decoder trains, the encoder (the latents) does not move."
    import copy
    from course_utils.toyworld import random_scene
    wears = lambda s: any(o.accessory != "none" for o in random_scene(s).objects().values())
    seeds = [s for s in range(60) if wears(s)][:2] + [s for s in range(60) if not wears(s)][:1]
    from course_utils.toyworld import render
    masks = training.accessory_masks([render(random_scene(s)) for s in seeds])
    assert masks.shape == (3, 1, 64, 64) and masks[0].sum() > 0 and masks[1].sum() > 0 and masks[2].sum() == 0
    vae = toymodel.new_vae()
    encoder, decoder = copy.deepcopy(vae.encoder.state_dict()), copy.deepcopy(vae.decoder.state_dict())
    training.finetune_decoder(tmp_path, vae, epochs=1, iters=2, bs=4, accessory_weight=4.0, tag="decoder-accessories")
    assert (tmp_path / "decoder-accessories.safetensors").exists()
    assert all(torch.equal(v, vae.encoder.state_dict()[k]) for k, v in encoder.items())
    assert not all(torch.equal(v, vae.decoder.state_dict()[k]) for k, v in decoder.items())


def test_distil_captions_ask_about_the_image_and_about_other_scenes():
    rng = np.random.default_rng(0)
    s = random_scene(1)
    caps = [training.distil_caption(s, rng) for _ in range(2000)]
    own, empty = caps.count(s.caption) / 2000, caps.count("") / 2000
    assert 0.3 < own < 0.4 and 0.07 < empty < 0.13           # half of training_caption's 70 % full, and its 10 % empty
    others = [c for c in caps if c.count(",") == 2 and c != s.caption]   # whole captions of other scenes
    assert 0.3 < len(others) / 2000 < 0.4 and len(set(others)) > 0.9 * len(others)


def test_distil_loss_is_the_noise_error_plus_the_maps_l1():
    g = torch.Generator().manual_seed(0)
    eps, maps = torch.randn(2, 4, 4, 4, generator=g), torch.rand(2, 16, 7, generator=g)
    other = torch.rand(2, 16, 7, generator=g)
    loss = training.DistilLoss(weight=0.5)
    assert loss((eps, maps), eps, maps) == 0
    assert torch.isclose(loss((eps, 3 * maps), eps + 1, maps), torch.tensor(1.0))   # the maps' scale is not their shape
    sp = lambda a: a / a.sum(1, keepdim=True)
    expect = 0.5 * (sp(maps) - sp(other)).abs().sum(1).mean()
    torch.testing.assert_close(loss((eps, maps), eps, other), expect)
    paired, e, m4 = training.DistilLoss(weight=0.0, pair_weight=2.0), torch.randn(4, 4, 4, 4, generator=g), torch.rand(4, 16, 7)
    odd = torch.zeros_like(e); odd[1::2] = 1                   # odd rows off by one: half the rows, every pair
    assert torch.isclose(paired((e + odd, m4), e, m4), torch.tensor(0.5 + 2 * 1.0))
    assert torch.isclose(paired((e + 1, m4), e, m4), torch.tensor(1.0))   # all off alike: the differences are right


def test_paired_rows_ask_two_questions_about_one_noisy_latent():
    from types import SimpleNamespace
    tok = _toy_tokenizer()
    z = torch.randn(10, 8, 16, 16)
    cb = training._noise_callback(z, z[:4], 1.0, tok, seed=0, offset_noise=0.1, offset_from=0,
                                  caption=lambda sc, rng: sc.caption, pair_caption=lambda sc, rng: "")
    learn = SimpleNamespace(xb=(torch.arange(5),), yb=None, training=True, epoch=0, iter=0)
    cb.learn = learn
    cb.before_batch()
    (xt, t, ids), (eps,) = learn.xb, learn.yb
    for a in (xt, t, eps): assert torch.equal(a[1:4:2], a[0:4:2])      # rows 1, 3 repeat rows 0, 2
    assert not torch.equal(xt[2], xt[0]) and not torch.equal(xt[4], xt[3])   # row 4 has no pair: its own
    empty = tok("", padding="max_length", max_length=tok.model_max_length, return_tensors="pt").input_ids[0]
    assert [torch.equal(r, empty) for r in ids] == [False, True, False, True, False]


def test_distilling_a_copy_of_the_teacher_costs_nothing(tmp_path):
    "A student equal to its teacher sees the same inputs and answers alike: zero loss; the processors come back."
    torch.manual_seed(0)
    tok = _toy_tokenizer()
    teacher, te = toymodel.new_unet(), toymodel.new_text_encoder(len(tok))
    procs = lambda u: {type(p).__name__ for p in u.attn_processors.values()}
    before = procs(teacher)
    out = training.distil_unet(tmp_path / "copy", toymodel.new_vae(), teacher, copy.deepcopy(teacher), te, tok,
                               epochs=1, iters=2, bs=4, pool=8, lr=1e-12)
    meta = training.load_checkpoint(tmp_path / "copy" / "distil.safetensors", {})
    assert meta["epoch"] == 1 and meta["loss"] < 1e-10
    assert procs(teacher) == procs(out) == before
    other = toymodel.new_unet()                              # a different student: the loss sees it
    training.distil_unet(tmp_path / "other", toymodel.new_vae(), teacher, other, te, tok, epochs=1, iters=2, bs=4, pool=8)
    assert training.load_checkpoint(tmp_path / "other" / "distil.safetensors", {})["loss"] > 1e-3


def test_train_judge_script_saves_only_a_judge_that_reads_well(tmp_path, monkeypatch, capsys):
    "scripts/train_judge.py: under 98 % on clean renders nothing is saved (unless --force); by default into CKPT/judge, not the shipped one."
    import importlib.util
    spec = importlib.util.spec_from_file_location("train_judge_script", ROOT / "scripts" / "train_judge.py")
    script = importlib.util.module_from_spec(spec); spec.loader.exec_module(script)
    saved = []
    judge = type("J", (), {"save": lambda self, path: saved.append(Path(path))})()
    monkeypatch.setattr(training, "train_judge", lambda ckpt, epochs: judge)
    for acc, args, expect in ((0.97, [], []), (0.97, ["--force"], [tmp_path / "judge"]), (0.99, [], [tmp_path / "judge"]),
                              (0.99, ["--out", str(tmp_path / "elsewhere")], [tmp_path / "elsewhere"])):
        saved.clear()
        monkeypatch.setattr(training, "judge_accuracy", lambda j, seeds, augmented: {"left.color": acc, "background": 1.0})
        if expect: script.main(["--ckpt", str(tmp_path), *args])
        else:
            with pytest.raises(SystemExit, match="not saved"): script.main(["--ckpt", str(tmp_path), *args])
        assert saved == expect, (acc, args)


def test_a_cached_pool_serves_only_its_own_vae_and_size(tmp_path):
    "pool.safetensors is reused for fewer scenes by the VAE that made it; more scenes, or another VAE's encoder, are refused."
    torch.manual_seed(0); vae = toymodel.new_vae(2.0).eval()
    torch.manual_seed(1); other = toymodel.new_vae(2.0).eval()
    with torch.no_grad():
        z, held = training._pool_latents(tmp_path, vae, 8, 2)
        assert z.shape[0] == 8 and held.shape[0] == 4
        assert torch.equal(training._pool_latents(tmp_path, vae, 4, 2)[0], z[:4])
        with pytest.raises(ValueError, match="fewer than pool=16"): training._pool_latents(tmp_path, vae, 16, 2)
        with pytest.raises(ValueError, match="another VAE"): training._pool_latents(tmp_path, other, 8, 2)
