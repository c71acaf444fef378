"""Every lesson's real-photograph cell (tag `real-photo`), executed as it would run on a GPU, against a
tiny random model with SD 1.5's structure at 512x512 under SD 1.5's own hub id (a fake offline cache):
the cells' code cannot rot unseen. They run on the CPU here with every sampler's and inversion's step
count cut to STEPS (`few_steps`): the code path, shapes and dtypes are what is tested, and a UNet call
at 64x64 latents costs seconds on a CPU. All run in float32; in float16 (the CPU's half kernels are
~5x slower) the three with the fewest UNet calls: every helper the others call runs in half at
512x512 in test_sd_resolution.py.

The saved notebooks are not touched. nbval skips these cells (tag `nbval-skip`): on a machine with a
GPU their branch would load SD 1.5, which `make test` (offline) cannot download. This test executes
the cell's GPU branch, the body of its `if torch.cuda.is_available():`, on any machine.

On a machine with a GPU, `test_real_photo_cell_on_a_gpu` also runs each cell exactly as a learner's
Colab runs it (every step, float16 on CUDA) against SD 1.5's *real* architecture with random weights
(sd_shaped.real_widths), and prints its seconds and peak GPU memory:

    pytest tests/test_real_photo_cells.py -k on_a_gpu -s"""
import ast
import json
import time
from pathlib import Path
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest
import torch
from PIL import Image
from sd_shaped import SD15_ID

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
LESSONS = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))


def real_photo_cell(lesson: str) -> str:
    cells = json.loads((NOTEBOOKS / lesson).read_text(encoding="utf-8"))["cells"]
    cells = [c for c in cells if "real-photo" in c["metadata"].get("tags", [])]
    assert len(cells) == 1, f"{lesson}: expected one cell tagged real-photo, found {len(cells)}"
    assert "nbval-skip" in cells[0]["metadata"]["tags"], f"{lesson}: nbval on a GPU machine would try to load SD 1.5 offline"
    return "".join(cells[0]["source"])


def gpu_branch(source: str) -> str:
    "The cell with its top-level `if torch.cuda.is_available(): ... else: ...` replaced by the if's body."
    tree = ast.parse(source)
    is_gpu_test = lambda n: isinstance(n, ast.If) and ast.unparse(n.test) == "torch.cuda.is_available()"
    assert sum(map(is_gpu_test, tree.body)) == 1, "the cell needs one top-level `if torch.cuda.is_available():`"
    tree.body = [s for n in tree.body for s in (n.body if is_gpu_test(n) else [n])]
    return ast.unparse(tree)


STEPS = 3
HELPERS = {"generate": "num_inference_steps", "img2img": "num_inference_steps", "diffedit": "num_inference_steps",
           "diffedit_mask": "num_inference_steps", "ddpm_invert": "num_inversion_steps"}


def few_steps(source: str, steps: int = STEPS) -> str:
    "The code with each helper call of HELPERS given `steps` steps (replacing its own, or its default)."
    tree = ast.parse(source)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in HELPERS]
    for call in calls:
        name = HELPERS[call.func.id]
        call.keywords = [k for k in call.keywords if k.arg != name] + [ast.keyword(name, ast.Constant(steps))]
    return ast.unparse(tree)


def test_few_steps_sets_every_helpers_steps():
    src = "a = generate(m, p, num_inference_steps=30)\nb = ddpm_invert(m, x, num_inversion_steps=50, solver='dpmpp')\nc = diffedit(m, x, q, mk)"
    out = few_steps(src, 2)
    assert "num_inference_steps=30" not in out and "num_inversion_steps=50" not in out
    assert out.count("num_inference_steps=2") == 2 and out.count("num_inversion_steps=2") == 1


def test_every_lesson_has_a_real_photo_cell_that_does_nothing_without_a_gpu(capsys):
    for lesson in LESSONS:
        src = real_photo_cell(lesson)
        gpu_branch(src)
        if not torch.cuda.is_available():
            exec(compile(src, lesson, "exec"), {})
            assert "No GPU here" in capsys.readouterr().out


HALF = {"00_parts_of_stable_diffusion.ipynb", "02_diffedit_masks.ipynb", "04_ledits_inversion.ipynb"}
RUNS = [(lesson, torch.float32) for lesson in LESSONS] + [(lesson, torch.float16) for lesson in sorted(HALF)]


@pytest.mark.parametrize("lesson,dtype", RUNS, ids=[f"{l[:2]}-{str(d)[6:]}" for l, d in RUNS])
def test_real_photo_cell_runs_at_512(lesson, dtype, sd_cache, monkeypatch):
    import huggingface_hub.constants, course_utils
    from course_utils.models import load_models
    loaded = []
    def on_this_machine(name, *a, **kw):  # the cell's own call, on the CPU in `dtype`, from the fake cache
        loaded.append(name)
        return load_models(name, "cpu", dtype)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(sd_cache))
    monkeypatch.setattr(course_utils, "load_models", on_this_machine)
    monkeypatch.chdir(NOTEBOOKS)  # the cells read ../images/
    plt.close("all")
    ns = {}
    exec(compile(few_steps(gpu_branch(real_photo_cell(lesson))), lesson, "exec"), ns)
    assert loaded == [SD15_ID]
    check_what_the_cell_made(ns, lesson)


def check_what_the_cell_made(ns: dict, lesson: str):
    "Titled figures, 512x512 RGB images, finite tensors, and lesson 4's exact reconstruction."
    figs = [plt.figure(n) for n in plt.get_fignums()]
    assert figs and all(f._suptitle is not None and "SD 1.5" in f._suptitle.get_text() for f in figs)
    images = [v for v in ns.values() if isinstance(v, Image.Image)]
    images += [v for l in ns.values() if isinstance(l, list) for v in l if isinstance(v, Image.Image)]
    assert images and all(im.size == (512, 512) and im.mode == "RGB" for im in images)
    for t in (v for v in ns.values() if isinstance(v, torch.Tensor)):
        assert torch.isfinite(t.float()).all()
    if lesson.startswith("04_"): assert ns["rel"] <= 5e-5   # lesson 4: "no edit" reproduces the photo's latents
    plt.close("all")


@pytest.fixture(scope="module")
def sd15_cache(tmp_path_factory):
    "SD 1.5's real architecture, random float16 weights, under its hub id in a fake offline cache."
    from sd_shaped import write_hub_cache
    return write_hub_cache(tmp_path_factory.mktemp("hub-sd15"), real=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
@pytest.mark.parametrize("lesson", LESSONS, ids=[l[:2] for l in LESSONS])
def test_real_photo_cell_on_a_gpu(lesson, sd15_cache, monkeypatch):
    import huggingface_hub.constants
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(sd15_cache))
    monkeypatch.chdir(NOTEBOOKS)
    plt.close("all")
    torch.cuda.reset_peak_memory_stats()
    t0, ns = time.perf_counter(), {}
    exec(compile(real_photo_cell(lesson), lesson, "exec"), ns)  # the cell itself: its own steps, its own defaults
    torch.cuda.synchronize()
    seconds, peak = time.perf_counter() - t0, torch.cuda.max_memory_allocated() / 2**30
    sd = ns["sd"]
    assert sd.device.type == "cuda" and sd.dtype == torch.float16 and sd.unet.config.block_out_channels[0] == 320
    check_what_the_cell_made(ns, lesson)
    print(f"\n{lesson}: {seconds:.1f} s (loading the model included), peak GPU memory {peak:.2f} GB, "
          f"{torch.cuda.get_device_name()}", flush=True)
