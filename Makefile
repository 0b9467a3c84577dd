# Two commands for a new user: `make run` and `make test`. Both set up .venv first.
PYTHON ?= python3.10
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.9

.PHONY: setup run test serve clean

# The lock (requirements.txt) is fully pinned, so uv installs it in well under a minute.
setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.10 (pyenv install 3.10.13)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(VENV)/bin/uv pip install -q --python $(PY) -r requirements.txt
	$(VENV)/bin/uv pip install -q --python $(PY) --no-deps -e .
	touch $@

# The local TFX pipeline (LocalDagRunner, Beam DirectRunner, SQLite MLMD) on the embedded
# synthetic data: ends with a blessed model in serving_root/intentrec/<version>/ and one
# recommendation from it. Re-running reuses cached components (tfx_root/metadata.sqlite).
run: setup
	$(PY) -m pipeline.local_runner

# The model is backend-agnostic: its tests run on TensorFlow and again on JAX; the
# benchmarks' own tests (backend-agnostic code that trains models) run on JAX only,
# the faster CPU backend. Test files run on two workers (pytest-xdist; a file's tests
# stay on one worker, so module fixtures such as the end-to-end pipeline run once).
test: setup
	$(PY) -m pytest -q -n 2 --dist loadfile tests --ignore=tests/bench
	KERAS_BACKEND=jax $(PY) -m pytest -q -n 2 --dist loadfile tests/model tests/bench

# Serves what `make run` pushed, on TF Serving's ports (gRPC 8500, REST 8501), like
# `tensorflow_model_server --model_name=intentrec --model_base_path=serving_root/intentrec`.
SERVING_ROOT ?= serving_root
MODEL_NAME ?= intentrec
serve: setup
	$(PY) -m serving.server --model_name=$(MODEL_NAME) --model_base_path=$(abspath $(SERVING_ROOT))/$(MODEL_NAME)

clean:
	rm -rf $(VENV) runs outputs
