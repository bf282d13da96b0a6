# memoria: `make run` to train (if needed) and serve, `make test` to test. `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
GPU ?=
# GPU=1: onnxruntime-gpu in place of onnxruntime (serving on CUDA); its own stamp, so switching re-installs
STAMP := $(VENV)/.installed$(if $(GPU),-gpu)
REQS := pyproject.toml serving/requirements.txt training/requirements.txt requirements-dev.txt

TASK ?= sentiment
PRESET ?= default
HOST ?= 127.0.0.1
PORT ?= 3000
ARGS ?=
# make sweep: config keys and their values, e.g. AXES="model.cell=rnn,lstm,gru model.init=xavier,orthogonal"
AXES ?=
# make retrain FEEDBACK=1: corrections sent to POST /feedback join the training split (README "In production")
FEEDBACK ?=

# The whole local MLflow store (SQLite + artifacts) lives in mlruns/.
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/mlruns/mlflow.db
export BENTOML_HOME ?= $(CURDIR)/.bentoml
export BENTOML_DO_NOT_TRACK := true
export PYTHONWARNINGS ?= ignore::DeprecationWarning,ignore::FutureWarning

.PHONY: study sweep help install apertium browser postgres cluster-tools drift data train export retrain rollback history serve ui test test-slow run baseline peer lint format bench clean bento

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'
	@echo "  variables: TASK=sentiment|translation  PRESET=smoke|default|full  HOST=$(HOST) PORT=$(PORT)  ARGS='--set model.cell=gru'  AXES='model.cell=rnn,lstm'"

install: $(STAMP) ## Create .venv with the pinned dependencies (GPU=1: onnxruntime-gpu for serving on CUDA)

$(STAMP): $(REQS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip $$(grep -E '^uv==' requirements-dev.txt | cut -d' ' -f1)
	$(BIN)/python scripts/install_with_uv.py -e '.[train,dev]'  # uv, with pip's settings: 16 s against pip's 162 s
	$(if $(GPU),$(BIN)/python -m pip uninstall -y -q onnxruntime && $(BIN)/python -m pip install -q -r serving/requirements-gpu.txt)
	touch $(STAMP)

apertium: ## Install Apertium (Debian apertium-eng-spa) if missing: translation peer and back-translation (needs root)
	@if command -v apertium >/dev/null && apertium -l | grep -qE '^\s*eng-spa$$'; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q apertium-eng-spa >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q apertium-eng-spa >/dev/null; } \
		|| echo "could not install apertium-eng-spa: its tests skip, back-translation is left out of training"; \
	else echo "Apertium is not installed and this user cannot install it: sudo apt-get install apertium-eng-spa"; fi

browser: ## Install Debian's chromium + chromium-driver if missing: the demo page's browser test (needs root)
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null; } \
		|| echo "could not install chromium and chromium-driver: tests/test_demo_page.py fails until they are installed"; \
	else echo "Chromium is not installed and this user cannot install it: sudo apt-get install chromium chromium-driver"; fi

postgres: ## Install Debian's PostgreSQL server binaries if missing: the shared-tracking-server tests (needs root)
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		export DEBIAN_FRONTEND=noninteractive; \
		mkdir -p /etc/postgresql-common/createcluster.d; \
		printf '# memoria: its tests make their own clusters; no server of its own on port 5432\ncreate_main_cluster = off\n' \
			> /etc/postgresql-common/createcluster.d/memoria-no-main-cluster.conf; \
		apt-get install -y -q postgresql >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q postgresql >/dev/null; } \
		|| echo "could not install postgresql: tests/training/tracking/test_tracking_server.py fails until it is installed"; \
	else echo "PostgreSQL is not installed and this user cannot install it: sudo apt-get install postgresql"; fi

cluster-tools: ## Install Debian's haproxy and prometheus (promtool) if missing: deploy/, alert rules, replica tests (needs root)
	@if command -v haproxy >/dev/null && command -v promtool >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q haproxy prometheus >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q haproxy prometheus >/dev/null; } \
		|| echo "could not install haproxy and prometheus: tests/deploy, tests/monitoring and the replica test fail until they are installed"; \
	else echo "haproxy/promtool are not installed and this user cannot install them: sudo apt-get install haproxy prometheus"; fi

data: install apertium ## Fetch the pinned data of TASK (or TASK=all: data sets, lexicons) and prepare its splits
	$(BIN)/python -m training data --task $(TASK) $(ARGS)

train: install apertium ## Train TASK with PRESET, export + register the bundle, promote it if it beats the champion
	$(BIN)/python -m training train --task $(TASK) --preset $(PRESET) $(ARGS)

export: install ## Export the best run of TASK's experiment (validation metric), register, promote if better
	$(BIN)/python -m training export --task $(TASK) $(ARGS)

retrain: install apertium ## Train TASK again with its champion's own config (on the data as it is now), then the same gate (FEEDBACK=1: + production's corrections)
	$(BIN)/python -m training retrain --task $(TASK) $(if $(FEEDBACK),--feedback) $(ARGS)

rollback: install ## Move TASK's champion back to the version it replaced (a running service follows within 10 s)
	$(BIN)/python -m training rollback --task $(TASK)

drift: install ## Drift report of TASK: the inference log against the champion's training profile, logged to MLflow
	$(BIN)/python -m training drift --task $(TASK) $(ARGS)

history: install ## Every move of TASK's champion alias (also in the MLflow UI: experiment memoria-alias-history)
	$(BIN)/python -m training history --task $(TASK)

serve: install ## Serve the champion models on http://HOST:PORT (BentoML + onnxruntime)
	$(BIN)/bentoml serve serving.service:Memoria --host $(HOST) --port $(PORT)

ui: install ## MLflow UI over the local store on http://127.0.0.1:5000 (a tracking server is its own UI)
	@case "$(MLFLOW_TRACKING_URI)" in http://*|https://*) echo "MLFLOW_TRACKING_URI is a tracking server: open $(MLFLOW_TRACKING_URI)"; exit 0;; esac; \
	$(BIN)/python -c "from serving.contract.store_location import relocate_if_moved as r; r('$(MLFLOW_TRACKING_URI)')" && \
	$(BIN)/python -m training ui-links && \
	$(BIN)/mlflow ui --backend-store-uri $(MLFLOW_TRACKING_URI) --host 127.0.0.1 --port 5000 --workers 1

test: install apertium browser postgres cluster-tools ## Run the default test suite (fast tier; no `slow` tests)
	$(BIN)/python -m pytest $(ARGS)

test-slow: install postgres cluster-tools ## Run the slow tier (real data, longer training)
	$(BIN)/python -m pytest -m slow $(ARGS)

run: install apertium ## Install, prepare data, train a model per task if none is promoted yet, then serve
	$(BIN)/python -m training ensure-champion --task all --preset default
	$(MAKE) serve

study: install ## Sentiment study: peer, cells, techniques, default, full on one split -> reports/sentiment-study.md (hours)
	$(BIN)/python -m training study --task sentiment $(ARGS)

sweep: install ## Grid over AXES, each point a run nested under one parent: comparison table, gradient flow by point
	$(BIN)/python -m training sweep --task $(TASK) --preset $(PRESET) --axes "$(AXES)" $(ARGS)

baseline: install ## Peer model on the same split, logged as its own MLflow run (TASK=sentiment: TF-IDF + LR)
	$(BIN)/python -m training baseline --task $(TASK) $(ARGS)

lint: install ## ruff lint + format check + the import contracts (layers, no loops: pyproject.toml [tool.importlinter])
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install ## ruff format + autofix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean: ## Remove the venv, prepared data and the local MLflow store
	rm -rf $(VENV) data .bentoml bundles
	find mlruns -mindepth 1 ! -name .gitkeep -exec rm -rf {} +

bento: install ## Build a self-contained Bento: champion bundles packed in (bundles/, removed afterwards)
	rm -rf bundles
	$(BIN)/python -m training pull --task all --to bundles
	$(BIN)/bentoml build; status=$$?; rm -rf bundles; exit $$status

bench: install ## Benchmarks on the champions: onnxruntime vs PyTorch latency, then memoria vs peer servers under HTTP load (reports/)
	$(BIN)/python -m tests.benchmarks.bench_models
	$(BIN)/python -m tests.benchmarks.bench_serving $(ARGS)
	$(BIN)/python -m tests.benchmarks.bench_bucketing
	$(BIN)/python -m tests.benchmarks.bench_quantization
	$(BIN)/python -m tests.benchmarks.bench_swap
	$(BIN)/python -m tests.benchmarks.bench_overload --unbounded
	$(BIN)/python -m tests.benchmarks.bench_inference_log
