"""Shared fixtures: the shipped toy model, and a randomly initialised model of the same architecture
(for tests of the maths that must not depend on trained weights)."""
import os
os.environ["HF_HUB_OFFLINE"] = "1"
import pytest
import torch
from course_utils import load_models
from course_utils.toyworld import model as toymodel


# COURSE_TEST_DEVICE=cuda runs the tests built on `random_models` on a GPU (the batched editors' tests,
# for one: a batch must reproduce its images one by one there too); the default is the CPU.
# On a GPU, float32 convolutions default to TF32 (10-bit mantissas): a batch and its single runs would then
# differ by ~1e-3 from rounding alone, and these tests check what batching does, so they run in float32.
TEST_DEVICE = os.environ.get("COURSE_TEST_DEVICE", "cpu")
if TEST_DEVICE == "cuda":
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False


@pytest.fixture(scope="session")
def random_models(tmp_path_factory):
    "The toy architecture with random weights, saved and loaded like any diffusers folder (on TEST_DEVICE)."
    path = tmp_path_factory.mktemp("random-toy-sd")
    torch.manual_seed(0)
    tok = toymodel.write_tokenizer(path / "tok")
    toymodel.save_pipeline(path / "model", vae=toymodel.new_vae(2.0), unet=toymodel.new_unet(toymodel.SHIPPED_UNET),
                           text_encoder=toymodel.new_text_encoder(len(tok), tok.bos_token_id, tok.eos_token_id),
                           tokenizer=tok)
    return load_models(str(path / "model"), device=TEST_DEVICE, dtype=torch.float32)


@pytest.fixture(scope="session")
def toy():
    "The shipped tiny SD (skips when its weights are missing)."
    if not (toymodel.TOY_PATH / "model_index.json").exists(): pytest.skip("the toy model's weights are missing")
    return load_models("toy", device="cpu")


@pytest.fixture(scope="session")
def sd_cache(tmp_path_factory):
    """A Hugging Face cache holding a tiny random model with SD 1.5's structure at 512x512 under SD 1.5's
    own hub id, with an fp16 variant, a safety checker and pickles beside it (see sd_shaped.py)."""
    from sd_shaped import write_hub_cache
    return write_hub_cache(tmp_path_factory.mktemp("hub"))
