"""The README's Python examples run as written: the ToyWorld one on its own, the real-checkpoint one
against the tiny random model with SD 1.5's layout under SD 1.5's hub id (a fake offline cache, as
test_real_photo_cells.py does), every sampler and inversion cut to a few steps. Only the Colab set-up
cell (IPython's `!` and `%` lines) is not run here: tests/test_colab.py covers what it calls."""
import re
from pathlib import Path
import numpy as np
import pytest
import torch
from PIL import Image
from sd_shaped import SD15_ID
from test_real_photo_cells import few_steps

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def block(marker: str) -> str:
    (found,) = [b for b in python_blocks() if marker in b]
    return found


def test_every_python_block_is_run_here_or_is_the_colab_cell():
    runnable = [b for b in python_blocks() if not re.search(r"^[!%]", b, re.M)]
    assert len(python_blocks()) - len(runnable) == 1                     # the Colab cell
    assert {block("random_scene"), block(SD15_ID)} == set(runnable)


def test_the_toyworld_example():
    ns = {}
    exec(compile(block("random_scene"), "README: ToyWorld", "exec"), ns)
    e = ns["edit"]
    assert e.source_prompt != e.target_prompt and e.region.shape == (64, 64) and e.region.any()
    assert any(not reverse for _, reverse in e.concepts)


def test_the_real_checkpoint_example(sd_cache, tmp_path, monkeypatch):
    import huggingface_hub.constants, course_utils
    from course_utils.models import load_models
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(sd_cache))
    monkeypatch.setattr(course_utils, "load_models", lambda name, *a, **kw: load_models(name, "cpu", torch.float32))
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (300, 451, 3), dtype=np.uint8)).save(tmp_path / "my_photo.jpg")
    monkeypatch.chdir(tmp_path)
    ns = {}
    exec(compile(few_steps(block(SD15_ID)), "README: real checkpoints", "exec"), ns)
    assert ns["photo"].size == (512, 512) and ns["inv"].source_prompt == ns["src"]
