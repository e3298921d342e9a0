# `make test` and `make demo` work on a fresh clone: they create .venv when missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is pinned to the CPU build that the project's machines carry; an unpinned torch
# pulls a multi-GB CUDA build.
TORCH_PIN ?= torch==2.13.0
# The versions the suite was tested with (see its header).
CONSTRAINTS ?= constraints.txt
PIP := $(PY) -m pip install --quiet -c $(CONSTRAINTS)
# Two environments in one: what the demo needs (the package and its dependencies: no torch,
# no transformers), and on top of it the test tools and the [torch] extra.
DEMO_STAMP := $(VENV)/.demo-installed
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= 2
# Apache Beam pins protobuf, pyarrow and pillow below the tested versions, so it lives in a
# venv of its own layered over the test environment (its own packages first); only the Beam
# build test runs there.
BEAM_VENV ?= .venv-beam
BEAM_PIN ?= apache-beam==2.77.0
BEAM_STAMP := $(BEAM_VENV)/.installed
# `mmae-jax plan` compiles for TPU pods and NVIDIA GPUs on a CPU machine: libtpu and the CUDA
# plugin wheels (no CUDA libraries) at the tested jax version, in a venv of their own layered over
# the test environment, so that the CPU tests and `train` never load them.
AOT_VENV ?= .venv-aot
JAX_VERSION := $(shell sed -n 's/^jax==//p' $(CONSTRAINTS))
AOT_STAMP := $(AOT_VENV)/.installed

DEMO_DIR ?= workdirs/demo

.PHONY: test test-fast demo install install-demo aot clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(DEMO_STAMP): setup.cfg setup.py pyproject.toml $(CONSTRAINTS) | $(PY)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PIP) -e .
	touch $@

$(STAMP): $(DEMO_STAMP)
	$(PIP) "$(TORCH_PIN)"
	$(PIP) -e ".[dev,torch]"
	touch $@

# $(call layered_venv,DIR): a venv in DIR that sees the test environment's packages after its own.
define layered_venv
	$(PYTHON) -m venv $(1)
	$(PY) -c "import sysconfig; print('import site; site.addsitedir(%r)' % sysconfig.get_paths()['purelib'])" \
		> "$$($(1)/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/zz_test_environment.pth"
endef

$(BEAM_STAMP): $(STAMP)
	$(call layered_venv,$(BEAM_VENV))
	$(BEAM_VENV)/bin/python -m pip install --quiet "$(BEAM_PIN)"
	touch $@

$(AOT_STAMP): $(STAMP)
	$(call layered_venv,$(AOT_VENV))
	$(AOT_VENV)/bin/python -m pip install --quiet -c $(CONSTRAINTS) "jax[tpu,cuda12-local]==$(JAX_VERSION)"
	touch $@

install-demo: $(DEMO_STAMP)
install: $(STAMP) $(BEAM_STAMP) $(AOT_STAMP)
aot: $(AOT_STAMP)

test: $(STAMP) $(BEAM_STAMP) $(AOT_STAMP)
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup tests

# The edit loop: everything but the tests marked slow (subprocess training, notebooks, wheels, Beam).
test-fast: $(STAMP)
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup -m "not slow" tests

# The main job end to end: build the synthetic dataset (real mp4 files through the RAVDESS
# code path), fine-tune the tiny ViT with FSLF, evaluate on unseen actors, print the table.
demo: $(DEMO_STAMP)
	$(PY) -m mmae_jax.cli prepare synthetic --data-dir $(DEMO_DIR)/tfds
	rm -rf $(DEMO_DIR)/run
	$(PY) -m mmae_jax.cli train --config demo --workdir $(DEMO_DIR)/run \
		--config.data.data_dir=$(DEMO_DIR)/tfds

clean:
	rm -rf $(VENV) $(BEAM_VENV) $(AOT_VENV) build *.egg-info

# `make bench`: the CPU benchmarks (training step JAX vs PyTorch, preprocessing, input pipeline)
# -> docs/benchmarks.md. Extra report options through BENCH_ARGS (e.g. BENCH_ARGS='--note "..."').
BENCH_ARGS ?=
.PHONY: bench
bench: $(STAMP)
	$(PY) benchmarks/report.py --output docs/benchmarks.md $(BENCH_ARGS)
