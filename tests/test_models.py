"load_models: the toy model, clear errors when a model is missing, and SD 1.5's real architecture from a fake hub cache."
import os
os.environ["HF_HUB_OFFLINE"] = "1"  # never touch the network, whatever the test machine has
import gc
import json
import pytest
import torch
from course_utils.toyworld import model as toymodel
from course_utils.models import (Models, load_models, ModelNotAvailableError, SD15_CONFIGS, random_sd15, choose_weights,
                                 hub_files, default_device)
from sd_shaped import SD15_ID, COMMIT as COMMIT_SD

MODEL_INDEX = {"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.42.1",
               "feature_extractor": [None, None], "requires_safety_checker": False, "safety_checker": [None, None],
               "scheduler": ["diffusers", "DDIMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
               "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
               "vae": ["diffusers", "AutoencoderKL"]}

needs_toy = pytest.mark.skipif(not (toymodel.TOY_PATH / "model_index.json").is_file(),
                               reason=f"toy weights not built yet ({toymodel.TOY_PATH}; "
                                      "python scripts/train_toy_sd.py)")


def encode(m: Models, prompt: str, length: int) -> torch.Tensor:
    "The text encoder's last hidden state for `prompt` padded to `length` tokens."
    ids = m.tokenizer([prompt], padding="max_length", max_length=length, truncation=True,
                      return_tensors="pt").input_ids
    return m.text_encoder(ids.to(m.device)).last_hidden_state


@needs_toy
@torch.no_grad()
def test_toy_model_loads_and_runs():
    m = load_models("toy", device="cpu")
    assert m.name == "toy" and m.device == torch.device("cpu") and m.dtype == torch.float32
    assert all(x is not None for x in (m.tokenizer, m.text_encoder, m.vae, m.unet, m.scheduler))
    assert {p.dtype for p in m.unet.parameters()} == {torch.float32}
    assert not any(p.requires_grad for p in m.unet.parameters()) and not m.unet.training
    assert m.unet.config.cross_attention_dim == m.text_encoder.config.hidden_size
    assert m.vae.config.scaling_factor != 1
    emb = encode(m, "a red circle", m.tokenizer.model_max_length)
    out = m.unet(torch.randn(1, 4, 16, 16), 500, encoder_hidden_states=emb).sample
    assert out.shape == (1, 4, 16, 16) and torch.isfinite(out).all()


@needs_toy
def test_loading_prints_no_bar_and_leaves_transformers_bars_as_they_were(capfd):
    "The first cell of every lesson loads the model: transformers' 'Loading weights' bar is noise there."
    from transformers.utils import logging as tlogging
    load_models("toy", device="cpu")
    assert "Loading weights" not in capfd.readouterr().err and tlogging.is_progress_bar_enabled()
    tlogging.disable_progress_bar()
    try:
        load_models("toy", device="cpu"); assert not tlogging.is_progress_bar_enabled()
    finally: tlogging.enable_progress_bar()


@needs_toy
def test_the_toy_model_stays_on_the_cpu_where_there_is_a_gpu(monkeypatch):
    "On a Colab GPU the lessons' cells run as on a laptop: their own tensors are the CPU's (a real model goes to the GPU)."
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    m = load_models("toy")
    assert m.device == torch.device("cpu") and m.unet.device == torch.device("cpu") and m.dtype == torch.float32
    assert default_device() == torch.device("cuda")


def test_missing_toy_weights_say_how_to_rebuild(monkeypatch, tmp_path):
    monkeypatch.setattr(toymodel, "TOY_PATH", tmp_path / "toy-sd")
    with pytest.raises(FileNotFoundError, match="train_toy_sd.py"):
        load_models("toy")


def test_uncached_hub_id_offline_is_a_clear_error(tmp_path):
    with pytest.raises(ModelNotAvailableError) as e:
        load_models("sd-test/not-cached", cache_dir=tmp_path)
    msg = str(e.value)
    assert isinstance(e.value, OSError)
    assert "sd-test/not-cached" in msg and "toy" in msg and "cache" in msg


@pytest.mark.parametrize("name", ["not a model!!", "/no/such/folder", "a/b/c"])
def test_nonsense_name_is_a_value_error(name):
    with pytest.raises(ValueError, match="neither an existing folder nor a hub id"):
        load_models(name)


def test_a_single_file_checkpoint_says_how_to_convert_it(tmp_path):
    (tmp_path / "my-model.safetensors").write_bytes(b"not loaded")
    with pytest.raises(ValueError, match="one file.*from_single_file.*save_pretrained"):
        load_models(str(tmp_path / "my-model.safetensors"))


def test_folder_without_unet_is_a_clear_error(tmp_path):
    (tmp_path / "model_index.json").write_text(json.dumps(MODEL_INDEX))
    with pytest.raises(FileNotFoundError, match="unet") as e:
        load_models(str(tmp_path))
    assert "model_index.json" in str(e.value)  # says what such a folder must contain


@torch.no_grad()
def test_local_folder_loads(tmp_path):
    "A diffusers folder written by `toymodel.save_pipeline` (random toy parts) loads from its path."
    tok = toymodel.write_tokenizer(tmp_path / "tok")
    toymodel.save_pipeline(tmp_path / "sd", vae=toymodel.new_vae(0.5), unet=toymodel.new_unet(),
                           text_encoder=toymodel.new_text_encoder(len(tok)), tokenizer=tok)
    m = load_models(str(tmp_path / "sd"), "cpu")
    assert m.name == str(tmp_path / "sd") and type(m.scheduler).__name__ == "DDIMScheduler"
    m.max_rows["unet"] = 3                     # a bound on this device and dtype: kept while they stay,
    assert m.to("cpu").max_rows == {"unet": 3}
    assert m.to(dtype=torch.float64) is m and {m.unet.dtype, m.vae.dtype, m.text_encoder.dtype} == {torch.float64}
    assert m.max_rows == {}                    # and forgotten on a move (it was the old dtype's memory)
    m.scheduler.alphas_cumprod = m.scheduler.alphas_cumprod.to("meta")   # as DDIM's add_noise leaves it after a GPU call
    assert m.to("cpu").scheduler.alphas_cumprod.device.type == "cpu"     # a later step on the CPU must not meet it there
    out = m.unet(torch.randn(1, 4, 16, 16, dtype=torch.float64), 10,
                 encoder_hidden_states=encode(m, "a red circle", m.tokenizer.model_max_length)).sample
    assert out.shape == (1, 4, 16, 16)


@torch.no_grad()
def test_random_sd15_is_sd15s_architecture():
    "SD 1.5's published parameter counts (UNet 859.5M, VAE 83.7M, CLIP ViT-L/14 text 123.1M), built in float16."
    unet, vae, text_encoder = random_sd15(torch.float16, "meta")   # shapes only (benchmarks/gpu.py builds them on the GPU)
    assert {p.device.type for m in (unet, vae, text_encoder) for p in m.parameters()} == {"meta"}
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert (count(unet), count(vae), count(text_encoder)) == (859_520_964, 83_653_863, 123_060_480)
    assert {unet.dtype, vae.dtype, text_encoder.dtype} == {torch.float16} and torch.get_default_dtype() == torch.float32
    del unet, vae, text_encoder
    gc.collect()


def test_the_test_model_has_sd15s_structure():
    "The tiny model the SD-resolution tests use (tests/sd_shaped.py) differs from SD 1.5 only in widths and heads."
    import sd_shaped
    same = ("sample_size", "in_channels", "out_channels", "down_block_types", "up_block_types", "flip_sin_to_cos", "freq_shift")
    assert {k: sd_shaped.UNET[k] for k in same} == {k: SD15_CONFIGS["unet"][k] for k in same}
    same = ("down_block_types", "up_block_types", "latent_channels", "sample_size", "scaling_factor")
    assert {k: sd_shaped.VAE[k] for k in same} == {k: SD15_CONFIGS["vae"][k] for k in same}
    assert sd_shaped.TEXT["max_position_embeddings"] == SD15_CONFIGS["text_encoder"]["max_position_embeddings"] == 77


# --- what a hub id downloads and loads ---------------------------------------------------------------
# SD 1.5's repository on the hub: diffusers folders with fp16 and non-EMA variants, pickles beside the
# safetensors, a safety checker and feature extractor, and single-file checkpoints at the top.
SD15_FILES = """.gitattributes README.md model_index.json v1-5-pruned-emaonly.ckpt v1-5-pruned-emaonly.safetensors
v1-5-pruned.ckpt v1-5-pruned.safetensors v1-inference.yaml feature_extractor/preprocessor_config.json
safety_checker/config.json safety_checker/model.fp16.safetensors safety_checker/model.safetensors
safety_checker/pytorch_model.bin safety_checker/pytorch_model.fp16.bin scheduler/scheduler_config.json
text_encoder/config.json text_encoder/model.fp16.safetensors text_encoder/model.safetensors
text_encoder/pytorch_model.bin text_encoder/pytorch_model.fp16.bin tokenizer/merges.txt
tokenizer/special_tokens_map.json tokenizer/tokenizer_config.json tokenizer/vocab.json unet/config.json
unet/diffusion_pytorch_model.bin unet/diffusion_pytorch_model.fp16.bin unet/diffusion_pytorch_model.fp16.safetensors
unet/diffusion_pytorch_model.non_ema.bin unet/diffusion_pytorch_model.non_ema.safetensors
unet/diffusion_pytorch_model.safetensors vae/config.json vae/diffusion_pytorch_model.bin
vae/diffusion_pytorch_model.fp16.bin vae/diffusion_pytorch_model.fp16.safetensors
vae/diffusion_pytorch_model.safetensors""".split()
COMMON = ["model_index.json", "scheduler/scheduler_config.json", "text_encoder/config.json", "tokenizer/merges.txt",
          "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json", "tokenizer/vocab.json",
          "unet/config.json", "vae/config.json"]


@pytest.mark.parametrize("dtype,weights", [
    (torch.float32, ["text_encoder/model.safetensors", "unet/diffusion_pytorch_model.safetensors",
                     "vae/diffusion_pytorch_model.safetensors"]),
    (torch.float16, ["text_encoder/model.fp16.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors",
                     "vae/diffusion_pytorch_model.fp16.safetensors"])])
def test_hub_files_of_sd15_are_only_what_is_used(dtype, weights):
    from huggingface_hub.utils import filter_repo_objects  # what snapshot_download does with allow_patterns
    fetched = sorted(filter_repo_objects(SD15_FILES, allow_patterns=hub_files(SD15_FILES, dtype)))
    assert fetched == sorted(COMMON + weights)


def test_fp16_falls_back_to_the_plain_weights_part_by_part():
    files = [f for f in SD15_FILES if not f.startswith("vae/diffusion_pytorch_model.fp16")]
    assert choose_weights(files, torch.float16) == {"text_encoder": "fp16", "vae": None, "unet": "fp16"}
    assert choose_weights(files, torch.float32) == {"text_encoder": None, "vae": None, "unet": None}
    sharded = ["unet/diffusion_pytorch_model.fp16-00001-of-00002.safetensors",
               "unet/diffusion_pytorch_model.fp16-00002-of-00002.safetensors",
               "unet/diffusion_pytorch_model.safetensors.index.fp16.json", "unet/diffusion_pytorch_model.safetensors"]
    files = [f for f in SD15_FILES if not f.startswith("unet/")] + sharded + ["unet/config.json"]
    assert [f for f in hub_files(files, torch.float16) if f.startswith("unet/")] == sorted(sharded[:3] + ["unet/config.json"])


@pytest.mark.parametrize("extra,what", [("text_encoder_2/model.safetensors", "XL"), ("transformer/config.json", "transformer"),
                                        ("prior/config.json", "prior")])
def test_models_the_helpers_cannot_run_are_refused_before_any_download(extra, what, tmp_path):
    with pytest.raises(ValueError, match=f"{what}.*Stable Diffusion 1.x and 2.x"):
        hub_files(SD15_FILES + [extra], torch.float16)                  # the hub's listing, before snapshot_download
    (tmp_path / "model_index.json").write_text("{}")                   # no unet/, as in SD 3 or FLUX
    (tmp_path / extra).parent.mkdir(parents=True, exist_ok=True); (tmp_path / extra).write_text("{}")
    with pytest.raises(ValueError, match=what): load_models(str(tmp_path))   # a local folder, before loading


def test_pickle_only_weights_are_refused_with_a_clear_error():
    files = [f for f in SD15_FILES if not (f.startswith("unet/") and f.endswith(".safetensors"))]
    with pytest.raises(FileNotFoundError, match=r"unet/ holds only pickled weights.*safetensors"):
        hub_files(files, torch.float16)


def test_online_load_lists_the_repo_and_downloads_only_what_it_uses(monkeypatch, sd_cache):
    "With the hub reachable (faked), snapshot_download is asked for exactly hub_files(listing, dtype)."
    import huggingface_hub
    from course_utils import models as M
    asked = []
    def fake_snapshot(repo_id, cache_dir=None, allow_patterns=None, local_files_only=False, **kw):
        asked.append((repo_id, local_files_only, allow_patterns))
        return str(sd_cache / f"models--{SD15_ID.replace('/', '--')}" / "snapshots" / COMMIT_SD)
    monkeypatch.setattr(M, "hub_offline", lambda: False)
    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", lambda self, repo_id, **kw: SD15_FILES)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    m = load_models(SD15_ID, "cpu", torch.float16)
    assert asked == [(SD15_ID, False, hub_files(SD15_FILES, torch.float16))]
    assert not any("safety_checker" in p or p.endswith(".bin") for p in asked[0][2])
    assert m.unet.dtype == torch.float16


def _first_weight(module) -> torch.Tensor:
    return next(module.parameters()).detach().float()


def test_offline_cache_loads_the_fp16_variant_for_float16_and_the_plain_weights_otherwise(sd_cache):
    """The cache holds both variants (with different weights: seeds 1 and 0), a safety checker and pickles
    (garbage bytes: opening one would fail); float16 loads the fp16 files, float32 the plain ones."""
    import sd_shaped
    plain, fp16 = sd_shaped.build(0), sd_shaped.build(1, torch.float16)
    m16 = load_models(SD15_ID, "cpu", torch.float16, cache_dir=sd_cache)
    m32 = load_models(SD15_ID, "cpu", torch.float32, cache_dir=sd_cache)
    for part in ("text_encoder", "vae", "unet"):
        assert torch.equal(_first_weight(getattr(m16, part)), _first_weight(fp16[part]))
        assert torch.equal(_first_weight(getattr(m32, part)), _first_weight(plain[part]))
    assert m16.unet.dtype == torch.float16 and m32.unet.dtype == torch.float32


def test_a_folder_with_only_pickles_is_refused(tmp_path):
    import sd_shaped
    path = sd_shaped.write_folder(tmp_path / "sd", fp16_variant=False, extras=False)
    (path / "unet" / "diffusion_pytorch_model.safetensors").rename(path / "unet" / "diffusion_pytorch_model.bin")
    with pytest.raises(FileNotFoundError, match="only pickled weights"):
        load_models(str(path), "cpu")
