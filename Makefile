# Two commands on a fresh machine: `make run` and `make test`. Both create or reuse .venv.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export MLC_HOME ?= $(CURDIR)/.mlc
EXAMPLES := examples/credit-risk examples/house-prices

.PHONY: setup sandbox run test check examples clean bench

setup: $(STAMP) sandbox

# Package code (a model's metrics function) runs only inside bubblewrap (mlc_tasks/sandbox.py).
sandbox:
	@command -v bwrap >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing bubblewrap, the sandbox package code runs in"; \
	    apt-get install -y -qq bubblewrap >/dev/null 2>&1 || \
	      { apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null; }; \
	  else \
	    echo "warning: bubblewrap (bwrap) is missing, so package code will be refused:" \
	         "install it (apt-get install bubblewrap)" >&2; \
	  fi; }

# -qq keeps pip's own warnings out (errors still show); PYTHONWARNINGS keeps the build
# backend's editable-install notice out. What is being installed is said before it starts.
$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11" >&2; exit 1; }
	@echo "setting up $(VENV) (the first time takes a minute or two)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@PYTHONWARNINGS=ignore $(BIN)/python -m pip install -qq --upgrade pip
	@$(BIN)/python -c 'import tomllib; d = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]; n = sum(1 for l in open("constraints.txt") if "==" in l); print("installing", ", ".join(x.split(";")[0].strip() for x in d[:6]), "and the rest of", n, "pinned packages (constraints.txt)")'
	@PYTHONWARNINGS=ignore $(BIN)/python -m pip install -qq -c constraints.txt -e '.[dev]'
	@touch $(STAMP)
	@echo "$(VENV) is ready"

examples: $(STAMP) sandbox
	@echo "generating the example packages and their data (examples/)"
	@$(BIN)/python examples/generate.py $(EXAMPLES) examples/house-prices-v2

# Starts the Prefect server, the qa and prod runtimes, serves every deployment and submits
# the bundled examples. Ctrl-C stops all of it.
run: export MLC_POLICY_FILE ?= $(CURDIR)/examples/policy.yaml
run: export MLC_DATA_ROOTS ?= ["$(CURDIR)/examples"]
run: examples
	$(BIN)/mlc up $(addprefix --submit ,$(EXAMPLES))

test: $(STAMP) sandbox
	$(BIN)/python -m pytest -n 2 --dist loadgroup

check: $(STAMP)
	$(BIN)/ruff check mlc_tasks flows deployments processes tests benchmarks examples

bench: examples
	$(BIN)/python benchmarks/registry_bench.py
	$(BIN)/python benchmarks/runtime_bench.py --rounds 3
	$(BIN)/python benchmarks/runtime_bench.py --many 100
	$(BIN)/python benchmarks/fast_predict_bench.py
	$(BIN)/python benchmarks/scoring_bench.py
	$(BIN)/python benchmarks/alerts_bench.py
	$(BIN)/python benchmarks/pipeline_bench.py
	$(BIN)/python benchmarks/drift_bench.py
	$(BIN)/python benchmarks/backtest_bench.py
	$(BIN)/python benchmarks/cli_bench.py
	$(BIN)/python benchmarks/comparison_bench.py

clean:
	rm -rf $(VENV) .mlc
