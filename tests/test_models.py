"load_models: the toy model, clear errors when a model is missing, and SD 1.5's real architecture from a fake hub cache."
import os
os.environ["HF_HUB_OFFLINE"] = "1"  # never touch the network, whatever the test machine has
import gc
import json
import shutil
import pytest
import torch
from course_utils.toyworld import model as toymodel
from course_utils.models import Models, load_models, ModelNotAvailableError, SD15_CONFIGS, random_sd15

SD_ID = "sd-test/sd15-random"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
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
    with pytest.raises(ValueError, match="toy"):
        load_models(name)


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
    assert m.to(dtype=torch.float64) is m and {m.unet.dtype, m.vae.dtype, m.text_encoder.dtype} == {torch.float64}
    out = m.unet(torch.randn(1, 4, 16, 16, dtype=torch.float64), 10,
                 encoder_hidden_states=encode(m, "a red circle", m.tokenizer.model_max_length)).sample
    assert out.shape == (1, 4, 16, 16)


@pytest.fixture(scope="module")
def sd15_cache(tmp_path_factory):
    "A hub cache holding SD 1.5's architecture with random fp16 weights, as `snapshot_download` leaves it."
    cache = tmp_path_factory.mktemp("hub")
    repo = cache / ("models--" + SD_ID.replace("/", "--"))
    snap = repo / "snapshots" / COMMIT
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    unet, vae, text_encoder = random_sd15(torch.float16)
    unet.save_pretrained(snap / "unet", safe_serialization=True)
    vae.save_pretrained(snap / "vae", safe_serialization=True)
    text_encoder.save_pretrained(snap / "text_encoder")  # transformers 5 always writes safetensors
    del unet, vae, text_encoder
    gc.collect()
    if (toymodel.TOY_PATH / "tokenizer").is_dir(): shutil.copytree(toymodel.TOY_PATH / "tokenizer", snap / "tokenizer")
    else: toymodel.write_tokenizer(snap / "tokenizer")
    from diffusers import DDIMScheduler
    DDIMScheduler(**SD15_CONFIGS["scheduler"]).save_pretrained(snap / "scheduler")
    (snap / "model_index.json").write_text(json.dumps(MODEL_INDEX, indent=2))
    return cache


@torch.no_grad()
def test_sd15_architecture_loads_from_cache_offline(sd15_cache):
    m = load_models(SD_ID, cache_dir=sd15_cache)
    gpu = torch.cuda.is_available()
    assert m.name == SD_ID
    assert (m.device.type, m.dtype) == (("cuda", torch.float16) if gpu else ("cpu", torch.float32))
    m.to("cpu", torch.float32)
    assert {m.unet.dtype, m.vae.dtype, m.text_encoder.dtype} == {torch.float32}
    assert len(m.unet.down_blocks) == 4 and tuple(m.unet.config.block_out_channels) == (320, 640, 1280, 1280)
    assert m.unet.config.cross_attention_dim == 768 and m.text_encoder.config.hidden_size == 768
    assert m.vae.config.scaling_factor == pytest.approx(0.18215)
    assert type(m.scheduler).__name__ == "DDIMScheduler" and m.scheduler.config.steps_offset == 1
    emb = encode(m, "a red circle", 77)  # the toy tokenizer's model_max_length is 32: pad to 77 explicitly
    assert emb.shape == (1, 77, 768)
    out = m.unet(torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)), 500,
                 encoder_hidden_states=emb).sample
    assert out.shape == (1, 4, 8, 8) and torch.isfinite(out).all()
    del m, emb, out
    gc.collect()


def test_sd15_loads_in_float16_when_asked(sd15_cache):
    m = load_models(SD_ID, "cpu", torch.float16, cache_dir=sd15_cache)
    assert m.dtype == torch.float16 and m.device == torch.device("cpu")
    assert {m.unet.dtype, m.vae.dtype, m.text_encoder.dtype} == {torch.float16}
    assert not any(p.requires_grad for p in m.unet.parameters())
    del m
    gc.collect()
