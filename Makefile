# Two commands do all set-up on a fresh machine:
#   make demo  - create .venv, train LeNet-5 on the embedded digits, save it in Hub format, export + validate ONNX,
#                serve the digit-recognizer Space on 127.0.0.1
#   make test  - create .venv (+ .venv-optimum for the official Optimum exporter lane), lint, run every test
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
OPTIMUM_VENV := .venv-optimum
# Tests never reach the network: the Hub is not reachable from these machines, and tests must not try.
TEST_ENV := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False TOKENIZERS_PARALLELISM=false \
	MPLBACKEND=Agg HFDL_OPTIMUM_PYTHON=$(CURDIR)/$(OPTIMUM_VENV)/bin/python HFDL_REQUIRE_OPTIMUM_LANE=1
PYTEST_ARGS ?=
# Two pytest-xdist workers, one torch thread each (tests/conftest.py): much of the suite waits on subprocesses
# (DDP launches, Space servers, notebook kernels, the Optimum lane), which one process alone leaves the cores idle for.
PYTEST_WORKERS ?= 2

.PHONY: demo test test-fast lint format venv optimum-venv bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[all,dev]"
	touch $@

venv: $(BIN)/.installed

# The official Optimum ONNX exporter (optimum-onnx) cannot be installed beside transformers 5, so its lane gets a
# venv of its own with transformers 4.57: models saved as Hub remote code must work there too.
$(OPTIMUM_VENV)/bin/.installed:
	$(PYTHON) -m venv $(OPTIMUM_VENV)
	$(OPTIMUM_VENV)/bin/pip install --quiet --upgrade pip
	$(OPTIMUM_VENV)/bin/pip install --quiet "torch==2.14.1" "transformers==4.57.6" "optimum==2.1.0" \
		"optimum-onnx==0.1.0" "huggingface_hub==0.36.2" onnx onnxruntime
	touch $@

optimum-venv: $(OPTIMUM_VENV)/bin/.installed

lint: venv
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/python -m hfdl.tools.check_copies

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	$(BIN)/python hfdl/tools/check_copies.py --fix  # by path: works even when a broken copy stops `import hfdl`

test: venv optimum-venv lint
	$(TEST_ENV) $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --durations=20 $(PYTEST_ARGS)

# The edit-test loop: everything but the tests marked slow (DDP, the optimum lane, notebooks, the Space's fresh
# venv). CI runs `make test`, all of them.
test-fast: venv lint
	$(TEST_ENV) $(BIN)/python -m pytest -n $(PYTEST_WORKERS) -m "not slow" $(PYTEST_ARGS)

demo: venv
	$(BIN)/hfdl demo

bench: venv
	$(TEST_ENV) $(BIN)/python benchmarks/bench_mnist.py
	$(TEST_ENV) $(BIN)/python benchmarks/bench_onnx_latency.py
	$(TEST_ENV) $(BIN)/python benchmarks/bench_space_load.py

clean:
	rm -rf $(VENV) $(OPTIMUM_VENV) outputs .pytest_cache .ruff_cache
