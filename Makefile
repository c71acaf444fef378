# Two commands do all the set-up (see README.md):
#   make lab    create .venv if needed, install the locked environment, open JupyterLab on notebooks/
#   make test   create .venv if needed, install the locked environment, run pytest + nbval over every lesson
#               (on 2 workers: WORKERS=0 for one process, WORKERS=8 on a machine with cores to spare)
# The environment is requirements/lock.txt: exact versions with hashes, generated from pyproject.toml's
# ranges by `make lock` (uv). `make test-newest` runs the suite on the newest releases those ranges allow.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
LOCK := requirements/lock.txt
UV_VERSION := 0.13.9
# Two pytest-xdist workers (conftest.py gives each its share of the cores), a notebook or test module each
# at a time, the longest lessons first (conftest.py orders them): WORKERS=0 runs everything in this process.
# (benchmarks/course.py --nbval reads TEST_ARGS from here, to time the lessons as make test runs them.)
WORKERS ?= 2
TEST_ARGS := notebooks/*.ipynb tests --nbval-lax --nbval-current-env -p no:cacheprovider -n $(WORKERS) --dist loadscope --no-loadscope-reorder

.PHONY: setup lab test lock lock-upgrade test-newest notebooks benchmarks
setup: $(VENV)/.installed

$(VENV)/.installed: $(LOCK) pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "The course needs Python 3.11 or newer (diffusers 0.42 does): make ... PYTHON=python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --require-hashes --no-deps -r $(LOCK)
	$(PY) -m pip install --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	$(PY) -m ipykernel install --sys-prefix --name course-utils --display-name "Python (course-utils)"
	touch $@

# LAB_ARGS go to JupyterLab, e.g. make lab LAB_ARGS="--ip=0.0.0.0 --no-browser" in a container.
LAB_ARGS ?=
lab: setup
	$(PY) scripts/lab.py $(LAB_ARGS)

test: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest $(TEST_ARGS)

# Re-resolve the lock from pyproject.toml (every platform, with hashes), with uv installed into .venv.
#   make lock           after changing a dependency in pyproject.toml: keeps every pin that still fits
#   make lock-upgrade   moves everything to the newest releases the ranges allow
# Then `make test` (it installs the new lock) and commit requirements/lock.txt with the re-run lessons.
UV := $(PY) -m uv pip compile pyproject.toml requirements/build.in --extra course --universal --generate-hashes \
	--python-version 3.11 --custom-compile-command "make lock" -o $(LOCK)
lock lock-upgrade:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "uv==$(UV_VERSION)"
	$(UV) $(if $(filter lock-upgrade,$@),--upgrade)

# The same suite on the newest releases pyproject.toml allows, in a scratch venv (not the lock):
# tells whether `make lock` would move the course onto something that breaks it.
test-newest:
	rm -rf .venv-newest && $(PYTHON) -m venv .venv-newest
	.venv-newest/bin/python -m pip install --upgrade -e ".[course]"
	HF_HUB_OFFLINE=1 .venv-newest/bin/python -m pytest $(TEST_ARGS)

# Re-execute the lessons top to bottom in the locked environment and save them with their outputs.
notebooks: setup
	HF_HUB_OFFLINE=1 $(PY) scripts/nbtools.py run notebooks/*.ipynb

benchmarks: setup
	for b in engine sampling diffedit ledits course; do HF_HUB_OFFLINE=1 $(PY) benchmarks/$$b.py || exit 1; done
