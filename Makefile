# Two commands do all the set-up (see README.md):
#   make lab    create .venv if needed, install the course, open JupyterLab on notebooks/
#   make test   create .venv if needed, install the course, run pytest + nbval over every lesson
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup lab test benchmarks
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[course]"
	$(PY) -m ipykernel install --sys-prefix --name course-utils --display-name "Python (course-utils)"
	touch $@

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

test: setup
	HF_HUB_OFFLINE=1 $(VENV)/bin/python -m pytest tests $$(ls notebooks/*.ipynb 2>/dev/null) --nbval-lax -p no:cacheprovider

benchmarks: setup
	for b in engine sampling diffedit ledits; do HF_HUB_OFFLINE=1 $(PY) benchmarks/$$b.py || exit 1; done
