"Lesson 7's small problem: the small world, its batches, a short fastai run with EMA and checkpoints, a killed run resumed."
import copy
from functools import partial
import numpy as np
import pytest
import torch
from torch import nn
from course_utils.toyworld import load_judge, training
from course_utils.toyworld.callbacks import EMA, Checkpoint
from course_utils.toyworld.small import (SMALL_ATTRIBUTES, SMALL_TOKENS, small_scenes, small_caption, encode_scenes,
                                         caption_ids, small_tokenizer, new_small_model, NoisyLatents, index_dataloaders,
                                         small_models, small_adherence)


def test_small_world_varies_only_what_its_captions_say(toy):
    scenes = small_scenes(40, seed=3)
    assert scenes == small_scenes(40, seed=3) and scenes != small_scenes(40, seed=4)
    assert {s.right for s in scenes} == {scenes[0].right}
    assert len({(s.left.color, s.left.shape, s.background) for s in scenes}) > 20
    cap = small_caption(scenes[0])
    assert cap == f"a {scenes[0].left.color} {scenes[0].left.shape} on the left, {scenes[0].background} background"
    assert caption_ids(toy.tokenizer, [cap]).shape == (1, toy.tokenizer.model_max_length)
    words = toy.tokenizer(cap).input_ids[1:-1]                    # each word one token of the toy vocabulary
    assert len(words) == len(cap.replace(",", " ,").split()) and toy.tokenizer.unk_token_id not in words


def test_small_captions_fit_the_small_tokenizer_whole(toy):
    "Every caption of the small world, start and end tokens included, fits in SMALL_TOKENS: nothing is cut off."
    from course_utils.toyworld.scene import COLORS, SHAPES, BACKGROUNDS
    tok = small_tokenizer(toy.tokenizer)
    assert tok.model_max_length == SMALL_TOKENS and toy.tokenizer.model_max_length == 32    # a copy: the shipped one is unchanged
    caps = [f"a {c} {s} on the left, {b} background" for c in COLORS for s in SHAPES for b in BACKGROUNDS]
    ids = caption_ids(tok, caps)
    assert ids.shape == (60, SMALL_TOKENS)
    full = caption_ids(toy.tokenizer, caps)                       # the shipped tokenizer's 32
    assert (full[:, SMALL_TOKENS:] == toy.tokenizer.pad_token_id).all() and torch.equal(ids, full[:, :SMALL_TOKENS])
    model = new_small_model(tok)
    assert model.text_encoder.config.num_hidden_layers == 0
    with torch.no_grad():
        assert model(torch.randn(2, 4, 16, 16), torch.tensor([5, 500]), ids[:2]).shape == (2, 4, 16, 16)
        with pytest.raises(ValueError, match="max_position_embeddings"): model(torch.randn(1, 4, 16, 16), torch.tensor([5]), caption_ids(toy.tokenizer, caps[:1]))
    assert small_models(toy, model).tokenizer.model_max_length == SMALL_TOKENS


def test_a_short_run_learns_and_its_checkpoint_restores_it(toy, tmp_path):
    from fastai.learner import Learner
    from fastai.optimizer import OptimWrapper
    import fastai.callback.schedule  # noqa: F401
    scenes, tok = small_scenes(64, seed=0), small_tokenizer(toy.tokenizer)
    pool = (encode_scenes(toy.vae, scenes), caption_ids(tok, map(small_caption, scenes)))
    assert pool[0].shape == (64, 4, 16, 16) and 0.5 < pool[0].std() < 2
    model = new_small_model(tok)
    empty = caption_ids(tok, [""])
    learn = Learner(index_dataloaders(12, 16, 32), model, loss_func=nn.MSELoss(), path=tmp_path,
                    opt_func=partial(OptimWrapper, opt=torch.optim.AdamW), cbs=[NoisyLatents(pool, pool, empty)])
    ema = copy.deepcopy(model).requires_grad_(False)
    file = tmp_path / "small.safetensors"
    learn.add_cbs([EMA(ema, 0.99), Checkpoint(file, ema, "small")])
    learn.fit_one_cycle(2, 6e-3)
    losses = [float(x) for x in learn.recorder.losses]
    assert np.mean(losses[-4:]) < 0.8 * np.mean(losses[:4])           # it learns (from about 1.1)
    assert not all(torch.equal(a, b) for a, b in zip(ema.parameters(), model.parameters()))   # EMA lags the weights
    fresh, fresh_ema = new_small_model(tok, seed=1), new_small_model(tok, seed=1)
    meta = training.load_checkpoint(file, {"model": fresh, "ema": fresh_ema})
    assert meta["epoch"] == 2 and meta["tag"] == "small"
    for a, b in zip(fresh_ema.state_dict().values(), ema.state_dict().values()): assert torch.equal(a, b)
    for a, b in zip(fresh.state_dict().values(), model.state_dict().values()): assert torch.equal(a, b)
    res = small_adherence(small_models(toy, ema), load_judge(), small_scenes(4, seed=9), steps=4)
    assert set(SMALL_ATTRIBUTES) <= set(res) and res["n"] == 4 and len(res["images"]) == 4 and 0 <= res["all"] <= 1


def test_a_killed_run_resumes_from_its_checkpoint_to_the_same_weights(toy, tmp_path):
    """Lesson 7's claim: load the checkpoint (weights, EMA, optimizer) into fresh modules, then
    fit_one_cycle(epochs, lr, start_epoch=k) trains only what is left, in step with the schedule,
    and ends where the run that was never stopped ends."""
    from fastai.learner import Learner
    from fastai.optimizer import OptimWrapper
    from fastai.callback.core import Callback, CancelFitException
    import fastai.callback.schedule  # noqa: F401
    scenes, tok = small_scenes(32, seed=0), small_tokenizer(toy.tokenizer)
    pool = (encode_scenes(toy.vae, scenes), caption_ids(tok, map(small_caption, scenes)))

    class Kill(Callback):                                  # the session ends after the first epoch (its checkpoint written)
        order = 90
        def after_epoch(self): raise CancelFitException()

    def run(name, model, ema, extra=(), start=0, resume=False):
        learn = Learner(index_dataloaders(6, 8, 8), model, loss_func=nn.MSELoss(), path=tmp_path,
                        opt_func=partial(OptimWrapper, opt=torch.optim.AdamW),
                        cbs=[NoisyLatents(pool, pool, caption_ids(tok, [""])), EMA(ema, 0.99),
                             Checkpoint(tmp_path / name, ema, "small"), *extra])
        if resume:
            learn.create_opt()
            start = training.load_checkpoint(tmp_path / name, {"model": model, "ema": ema}, learn.opt.opt)["epoch"]
        learn.fit_one_cycle(2, 6e-3, start_epoch=start)
        return learn

    straight = new_small_model(tok)
    run("straight.safetensors", straight, copy.deepcopy(straight).requires_grad_(False))
    killed = new_small_model(tok)
    run("killed.safetensors", killed, copy.deepcopy(killed).requires_grad_(False), extra=[Kill()])
    assert training.load_checkpoint(tmp_path / "killed.safetensors", {})["epoch"] == 1
    fresh, fresh_ema = new_small_model(tok, seed=1), new_small_model(tok, seed=1)
    learn = run("killed.safetensors", fresh, fresh_ema, resume=True)
    assert len(learn.recorder.losses) == 6                 # one epoch of 6 steps, not two
    assert training.load_checkpoint(tmp_path / "killed.safetensors", {})["epoch"] == 2
    for a, b in zip(fresh.state_dict().values(), straight.state_dict().values()): assert torch.allclose(a, b, atol=1e-6)
    assert not torch.allclose(fresh.unet.conv_in.weight, new_small_model(tok).unet.conv_in.weight)   # and it trained


def test_min_snr_weights_and_the_weighted_loss():
    "w_t = min(SNR_t, γ) / SNR_t against the formula; weight 1 gives the plain MSE; NoisyLatents hands the weights over."
    from course_utils.toyworld.small import min_snr_weights, weighted_mse
    abar = torch.linspace(0.999, 0.001, 1000)
    t = torch.tensor([0, 100, 500, 999])
    w = min_snr_weights(abar, t, 5.0)
    snr = [a / (1 - a) for a in abar[t].tolist()]
    assert torch.allclose(w, torch.tensor([min(s, 5.0) / s for s in snr]))
    assert w[0] < 0.01 and w[-1] == 1 and (w <= 1).all()              # nearly clean: tiny weight; mostly noise: 1
    pred, eps = torch.randn(3, 4, 2, 2), torch.randn(3, 4, 2, 2)
    assert torch.allclose(weighted_mse(pred, eps, torch.ones(3)), nn.functional.mse_loss(pred, eps))
    assert torch.allclose(weighted_mse(pred, eps, torch.tensor([1.0, 0.0, 0.0])), (pred[0] - eps[0]).pow(2).mean() / 3)
    z, ids = torch.randn(8, 4, 16, 16), torch.zeros(8, 32, dtype=torch.long)
    cb = NoisyLatents((z, ids), (z, ids), ids[:1], min_snr=5.0)
    cb.learn = type("L", (), {"xb": (torch.arange(8),), "training": True, "epoch": 0, "iter": 0})()
    cb.before_batch()
    (x, t, _), (target, weights) = cb.learn.xb, cb.learn.yb
    assert torch.equal(weights, min_snr_weights(cb.noise_schedule.alphas_cumprod, t, 5.0)) and target.shape == x.shape
    with pytest.raises(ValueError, match="min_snr"): NoisyLatents((z, ids), (z, ids), ids[:1], min_snr=0)


def test_new_small_model_takes_unet_and_text_changes(toy):
    """The benchmark's `--unet` / `--text`: SMALL_UNET / SMALL_TEXT with some keys replaced; the text encoder and
    the seed's weights as before where unchanged."""
    from course_utils.toyworld.small import SMALL_UNET
    tok = small_tokenizer(toy.tokenizer)
    base, plain = new_small_model(tok), new_small_model(tok, unet={"mid_block_type": None})
    assert plain.unet.mid_block is None and base.unet.mid_block is not None
    assert base.unet.config.block_out_channels == tuple(SMALL_UNET["block_out_channels"])
    for a, b in zip(base.text_encoder.state_dict().values(), plain.text_encoder.state_dict().values()): assert torch.equal(a, b)
    x, ids = torch.randn(2, 4, 16, 16), caption_ids(tok, ["", "a red circle on the left, sky background"])
    with torch.no_grad(): assert plain(x, torch.tensor([10, 900]), ids).shape == x.shape
    old = new_small_model(toy.tokenizer, text={"num_hidden_layers": 1, "max_position_embeddings": 32})   # the recipe before 2026-12-06
    assert len(old.text_encoder.encoder.layers) == 1 and len(base.text_encoder.encoder.layers) == 0
    with torch.no_grad(): assert old(x, torch.tensor([10, 900]), caption_ids(toy.tokenizer, ["", "a red circle"])).shape == x.shape


def test_lesson_7_trains_on_the_cpu_where_fastai_would_pick_a_gpu(toy, tmp_path, monkeypatch):
    """On Colab's GPU or a Mac (MPS), fastai puts the model on its default device; the lesson's batches, EMA
    and samples live on the CPU, as every toy lesson's do. Its data loaders name the CPU, so the model stays
    there. (Stood in for by a default device of 'meta': a model moved there could not run on the batches.)"""
    import fastai.callback.core
    from fastai.learner import Learner
    from fastai.optimizer import OptimWrapper
    import fastai.callback.schedule  # noqa: F401
    monkeypatch.setattr(fastai.callback.core, "default_device", lambda *a: torch.device("meta"))
    scenes, tok = small_scenes(16, seed=0), small_tokenizer(toy.tokenizer)
    pool = (encode_scenes(toy.vae, scenes), caption_ids(tok, map(small_caption, scenes)))
    model = new_small_model(tok)
    dls = index_dataloaders(2, 8, 8)
    assert dls.device == torch.device("cpu") and [len(dl) for dl in dls.loaders] == [2, 1]
    learn = Learner(dls, model, loss_func=nn.MSELoss(), path=tmp_path, opt_func=partial(OptimWrapper, opt=torch.optim.AdamW),
                    cbs=[NoisyLatents(pool, pool, caption_ids(tok, [""]))])
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3)
    assert {p.device.type for p in model.parameters()} == {"cpu"} and np.isfinite(float(learn.recorder.losses[-1]))
    batches = index_dataloaders(3, 4, 5)                      # in order, the last batch kept
    assert [b[0].tolist() for b in batches.train] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    assert [b[0].tolist() for b in batches.valid] == [[0, 1, 2, 3], [4]]
