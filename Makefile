# Two commands on a fresh machine (Python 3.11 and git): `make run`, then `make test`.
# Every target creates .venv first when it is missing or older than pyproject.toml.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The benchmarks' peers (PyOD, torch) and data packages (the `bench` extra) live in their own venv,
# so the test venv stays as CI has it.
BENCH_VENV  := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

# Keep every tool's state inside the repo and no telemetry leaving the machine.
export PREFECT_HOME := $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export MLFLOW_DISABLE_TELEMETRY := true
export DVC_NO_ANALYTICS := 1
export DVC_SITE_CACHE_DIR := $(CURDIR)/.dvc/site-cache
export TF_CPP_MIN_LOG_LEVEL := 3
export MPLBACKEND := Agg

# The Prefect server of `make prefect-server` / `make serve` (its database is in $(PREFECT_HOME)).
PREFECT_PORT ?= 4200
PREFECT_SERVER_URL := http://127.0.0.1:$(PREFECT_PORT)/api
# The MLflow tracking server of `make mlflow-server` (docs/SERVICES.md): its port, its backend
# database (empty: SQLite in .mlflow-server/) and MLFLOW_AUTH=1 for MLflow's basic-auth app.
MLFLOW_PORT ?= 5000
MLFLOW_BACKEND ?=
MLFLOW_AUTH ?=

.PHONY: help run test test-random test-fast repro ui prefect-server mlflow-server serve deploy worker score report bench bench-suite bench-sequence lint clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

$(BENCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet -e ".[dev,bench]"
	touch $(BENCH_STAMP)

run: $(STAMP)  ## train on the built-in default data (Prefect flow) and register the model
	$(BIN)/anomaly train

test: $(STAMP)  ## the whole test suite (real Keras, Prefect, MLflow, GX, DVC), in file order
	$(BIN)/pytest -p no:randomly

test-random: $(STAMP)  ## the same in a random order (pytest-randomly; it prints the seed to rerun)
	$(BIN)/pytest -p randomly

test-fast: $(STAMP)  ## the tests not marked slow or e2e
	$(BIN)/pytest -p no:randomly -m "not slow and not e2e"

repro: $(STAMP)  ## the same pipeline through DVC: dvc repro
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

ui: $(STAMP)  ## the MLflow UI on http://127.0.0.1:5000 (promote models by moving aliases)
	$(BIN)/mlflow ui --backend-store-uri "sqlite:///$(CURDIR)/mlflow.db" --host 127.0.0.1 --port 5000

prefect-server: $(STAMP)  ## a Prefect server on 127.0.0.1:4200 (state in .prefect/); schedules need it
	$(BIN)/prefect server start --host 127.0.0.1 --port $(PREFECT_PORT)

mlflow-server: $(STAMP)  ## the team's MLflow server on 127.0.0.1:$(MLFLOW_PORT), state in .mlflow-server/ (MLFLOW_AUTH=1: basic-auth)
	$(BIN)/anomaly mlflow-server --port $(MLFLOW_PORT) $(if $(MLFLOW_BACKEND),--backend-store-uri "$(MLFLOW_BACKEND)") $(if $(MLFLOW_AUTH),--auth)

serve: $(STAMP)  ## serve the scheduled deployments (scoring, nightly report) on that server
	PREFECT_API_URL=$(PREFECT_SERVER_URL) $(BIN)/anomaly serve

deploy: $(STAMP)  ## put the deployments on the work pool schedules.work_pool of that server (PREFECT_API_URL wins)
	PREFECT_API_URL=$${PREFECT_API_URL:-$(PREFECT_SERVER_URL)} $(BIN)/anomaly deploy

worker: $(STAMP)  ## a Prefect worker of that pool: runs the deployments' flow runs here (PREFECT_API_URL wins)
	PREFECT_API_URL=$${PREFECT_API_URL:-$(PREFECT_SERVER_URL)} $(BIN)/anomaly worker

score: $(STAMP)  ## score every new batch in data/incoming with the champion model
	$(BIN)/anomaly score

report: $(STAMP)  ## yesterday's data-quality report in data/reports/<date>/
	$(BIN)/anomaly report

bench: $(STAMP)  ## quality and speed benchmarks (writes BENCHMARKS.md); pip install -e '.[bench]' for PyOD peers
	$(BIN)/python benchmarks/shuttle_tabular.py --write

# SUITE_ARGS narrows a run, e.g. make bench-suite SUITE_ARGS="--sets wine glass --seeds 0"
bench-suite: $(BENCH_STAMP)  ## tabular suite: 31 sets x 7 detectors x 5 seeds in .venv-bench (~1 h on 2 cores, resumable; cache in .cache/bench_suite) -> BENCHMARKS.md
	$(BENCH_VENV)/bin/python benchmarks/suite.py --write $(SUITE_ARGS)

# SEQUENCE_ARGS narrows a run, e.g. make bench-sequence SEQUENCE_ARGS="--series ucr135 --seeds 0"
bench-sequence: $(BENCH_STAMP)  ## sequence suite: 11 series x 4 detectors (ours: 3 seeds) in .venv-bench (resumable; cache in .cache/sequence_suite) -> BENCHMARKS.md
	$(BENCH_VENV)/bin/python benchmarks/sequence_suite.py --write $(SEQUENCE_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check anomaly_models flows tests benchmarks

clean:  ## remove generated state (models, data outputs, registry, caches); keeps .venv
	rm -rf mlflow.db mlartifacts mlruns .mlflow-server .prefect gx data/interim data/processed data/scored \
	       data/quarantine data/reports models plots metrics.json .dvc/cache .dvc/tmp .dvc/site-cache .cache
