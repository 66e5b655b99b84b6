# `make demo` and `make test` set everything up on a fresh machine (virtual environment in .venv, reused).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
HAS_GPU := $(shell nvidia-smi -L >/dev/null 2>&1 && echo 1 || echo 0)
PYTEST_ARGS ?=

.PHONY: install demo test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
ifeq ($(HAS_GPU),1)
	$(PY) -m pip install -q -e '.[gpu,test]'
else
	# CPU machine: the CPU build of torch first, so nothing pulls the CUDA wheels.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -c "import torch, sys; sys.exit('CUDA torch installed on a CPU machine' if torch.version.cuda else 0)"
endif
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

demo: install
	bash recipes/demo_cpu.sh

test: install
	$(PY) -m pytest -q -ra $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(VENV)/bin/verl-distill bench pot

clean:
	rm -rf runs .pytest_cache
