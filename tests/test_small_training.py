"Lesson 7's small problem: the small world, its batches, a short fastai run with EMA and checkpoints that resumes."
import copy
from functools import partial
import numpy as np
import torch
from torch import nn
from course_utils.toyworld import load_judge, training
from course_utils.toyworld.callbacks import EMA, Checkpoint
from course_utils.toyworld.small import (SMALL_ATTRIBUTES, small_scenes, small_caption, encode_scenes, caption_ids,
                                         new_small_model, NoisyLatents, index_dataloaders, small_models, small_adherence)


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


def test_a_short_run_learns_checkpoints_and_resumes(toy, tmp_path):
    from fastai.learner import Learner
    from fastai.optimizer import OptimWrapper
    import fastai.callback.schedule  # noqa: F401
    scenes = small_scenes(64, seed=0)
    pool = (encode_scenes(toy.vae, scenes), caption_ids(toy.tokenizer, map(small_caption, scenes)))
    assert pool[0].shape == (64, 4, 16, 16) and 0.5 < pool[0].std() < 2
    model = new_small_model(toy.tokenizer)
    empty = caption_ids(toy.tokenizer, [""])
    learn = Learner(index_dataloaders(12, 16, 32), model, loss_func=nn.MSELoss(), path=tmp_path,
                    opt_func=partial(OptimWrapper, opt=torch.optim.AdamW), cbs=[NoisyLatents(pool, pool, empty)])
    ema = copy.deepcopy(model).requires_grad_(False)
    file = tmp_path / "small.safetensors"
    learn.add_cbs([EMA(ema, 0.99), Checkpoint(file, ema, "small")])
    learn.fit_one_cycle(2, 6e-3)
    losses = [float(x) for x in learn.recorder.losses]
    assert np.mean(losses[-4:]) < 0.8 * np.mean(losses[:4])           # it learns (from about 1.1)
    assert not all(torch.equal(a, b) for a, b in zip(ema.parameters(), model.parameters()))   # EMA lags the weights
    fresh, fresh_ema = new_small_model(toy.tokenizer, seed=1), new_small_model(toy.tokenizer, seed=1)
    meta = training.load_checkpoint(file, {"model": fresh, "ema": fresh_ema})
    assert meta["epoch"] == 2 and meta["tag"] == "small"
    for a, b in zip(fresh_ema.state_dict().values(), ema.state_dict().values()): assert torch.equal(a, b)
    for a, b in zip(fresh.state_dict().values(), model.state_dict().values()): assert torch.equal(a, b)
    res = small_adherence(small_models(toy, ema), load_judge(), small_scenes(4, seed=9), steps=4)
    assert set(SMALL_ATTRIBUTES) <= set(res) and res["n"] == 4 and len(res["images"]) == 4 and 0 <= res["all"] <= 1
