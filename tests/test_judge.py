"""The shipped judge reads every attribute of held-out renders, and says so per attribute."""
import numpy as np
import pytest
import torch
from PIL import Image
from course_utils.toyworld import training
from course_utils.toyworld import load_judge, random_scene, render, ATTRIBUTES, EDITS

HELD = range(training.HELD_OUT + 20_000, training.HELD_OUT + 20_400)


@pytest.fixture(scope="module")
def judge(): return load_judge()


def test_per_attribute_accuracy_on_held_out_renders(judge):
    for augmented in (False, True):
        acc = training.judge_accuracy(judge, HELD, augmented=augmented)
        assert set(acc) == set(ATTRIBUTES)
        assert min(acc.values()) >= 0.98, acc


def test_score_is_per_attribute_and_sees_an_edit(judge):
    s = random_scene(training.HELD_OUT + 7)
    assert judge.score(render(s).image, s) == {k: True for k in ATTRIBUTES}
    e = EDITS["color"](s, np.random.default_rng(0))
    wrong = judge.score(render(e.target).image, s)  # the target render judged against the source scene
    assert [k for k, ok in wrong.items() if not ok] == [k for k in ATTRIBUTES if s.attributes()[k] != e.target.attributes()[k]]
    with pytest.raises(ValueError, match="score reads one image, got 2"): judge.score([render(s).image] * 2, s)


def test_judge_reads_pil_or_tensor_and_any_size(judge):
    s = random_scene(training.HELD_OUT + 8)
    im = render(s).image
    x = torch.from_numpy(np.array(im)).permute(2, 0, 1)[None].float() / 127.5 - 1
    assert judge.predict(im) == judge.predict(x) == judge.predict(im.resize((128, 128), Image.NEAREST))
    with pytest.raises(TypeError, match="the judge reads PIL images or tensors"): judge.predict(["not an image"])
    with pytest.raises(ValueError, match="got a tensor of shape \\(1, 3, 32, 32\\)"): judge.predict(x[..., :32, :32])


def test_missing_weights_say_how_to_train(tmp_path):
    with pytest.raises(FileNotFoundError, match="train_judge"): load_judge(tmp_path)
