# `make test` and `make demo` work on a fresh clone: they create .venv when missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is pinned to the CPU build that the project's machines carry; an unpinned torch
# pulls a multi-GB CUDA build.
TORCH_PIN ?= torch==2.13.0
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= 2

DEMO_DIR ?= workdirs/demo

.PHONY: test demo install clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): setup.cfg pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet "$(TORCH_PIN)"
	$(PY) -m pip install --quiet -e ".[dev,torch]"
	touch $@

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup tests

# The main job end to end: build the synthetic dataset (real mp4 files through the RAVDESS
# code path), fine-tune the tiny ViT with FSLF, evaluate on unseen actors, print the table.
demo: $(STAMP)
	$(PY) -m mmae_jax.cli prepare synthetic --data-dir $(DEMO_DIR)/tfds
	rm -rf $(DEMO_DIR)/run
	$(PY) -m mmae_jax.cli train --config configs/demo.py --workdir $(DEMO_DIR)/run \
		--config.data.data_dir=$(DEMO_DIR)/tfds

clean:
	rm -rf $(VENV) build *.egg-info

# `make bench`: the CPU benchmarks (training step JAX vs PyTorch, preprocessing, input pipeline)
# -> docs/benchmarks.md. Extra report options through BENCH_ARGS (e.g. BENCH_ARGS='--note "..."').
BENCH_ARGS ?=
.PHONY: bench
bench: $(STAMP)
	$(PY) benchmarks/report.py --output docs/benchmarks.md $(BENCH_ARGS)
