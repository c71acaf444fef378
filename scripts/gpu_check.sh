#!/bin/bash
# Every check that needs a GPU, in one run (its parts ran on an H100 in four separate calls; as a whole it has not run yet):
#   1. benchmarks/gpu.py: our helpers vs diffusers' pipelines on SD 1.5's real architecture, float16;
#   2. every lesson's real-photo cell as a learner's Colab runs it (tests/test_real_photo_cells.py -k on_a_gpu);
#   3. every helper at 512x512 on CUDA, the batched editors' tests on CUDA (COURSE_TEST_DEVICE=cuda), and a real
#      out-of-memory error going on in halves (tests/test_chunks.py).
# Run it from anywhere:  bash scripts/gpu_check.sh [OUT_DIR]   (logs go to OUT_DIR, default runs/gpu in the repository)
# It uses the course's .venv when there is one, else python3 (PY=... picks another interpreter).
# On a machine without the course's environment but with a CUDA torch, first install the pure-Python
# pins it lacks from wheels (e.g. diffusers, transformers, tokenizers, regex from requirements/lock.txt)
# and put them on PYTHONPATH; huggingface_hub 1.x or 2.x both work. Nothing is downloaded: the models
# are random weights built on the spot (speed and memory do not depend on the weights).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "${1:-$root/runs/gpu}"; out=$(cd "${1:-$root/runs/gpu}" && pwd)   # absolute, before moving to the root
cd "$root"
if [ -z "${PY:-}" ]; then if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi; fi
echo "python: $PY"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TQDM_DISABLE=1 PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
$PY -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'no GPU here: these checks need one')" || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "(nvidia-smi failed)"
$PY -c "import torch, diffusers, transformers, huggingface_hub as h; print('torch', torch.__version__, 'diffusers', diffusers.__version__, 'transformers', transformers.__version__, 'hub', h.__version__)"
status=0
echo "== benchmarks/gpu.py"
$PY benchmarks/gpu.py --repeats 3 2>&1 | grep -v "deprecated\|kept in float32" | tee "$out/gpu_bench.txt" || status=1
echo "== every real-photo cell on SD 1.5's architecture"
$PY -m pytest -p no:cacheprovider -q -s tests/test_real_photo_cells.py -k on_a_gpu 2>&1 | tee "$out/cells.txt" | grep "ipynb:\|passed\|failed" || status=1
echo "== every helper on CUDA, the batched editors, and memory running out"
COURSE_TEST_DEVICE=cuda $PY -m pytest -p no:cacheprovider -q tests/test_sd_resolution.py tests/test_batched_diffedit.py \
  tests/test_batched_ledits.py tests/test_chunks.py -k "cuda or batched or chunks" 2>&1 | tee "$out/cuda_tests.txt" | tail -3 || status=1
exit $status
