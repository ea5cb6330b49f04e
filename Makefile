# The newcomer's contract: `make run` (the whole flow, offline) and `make test` (everything CI runs).
# Both create .venv and install what they need on a fresh machine: the system packages first
# (scripts/system-deps.sh: as root with apt-get when missing; otherwise it names the command
# to run and exits 2), then the Python ones into .venv.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.run-stamp
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint typecheck pytest agent clean venv lint-infra system-deps system-deps-run

# `make run` needs the package and moto only; the checks add the dev tools on top (a fresh
# `make run` does not wait for playwright, mypy and the linters).
$(RUN_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[sandbox]'
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# System packages: `run` needs a C compiler with OpenMP, curl and Python's venv; `test`
# also OpenBLAS/LAPACK, Chromium, the aarch64 cross compiler, qemu-user, iperf3 and fio.
system-deps-run:
	@PYTHON=$(PYTHON) scripts/system-deps.sh run

system-deps:
	@PYTHON=$(PYTHON) scripts/system-deps.sh test

# The sandbox demo: one Intel, one AMD and one Graviton type, quick STREAM + latency, all
# offline (moto plays AWS, this machine plays the instances), then the dataset.
DEMO_TYPES ?= m7i.large,m7a.large,c7g.large
run: system-deps-run $(RUN_STAMP)
	$(BIN)/instbench run --sandbox --instance-types $(DEMO_TYPES) --benchmarks stream,latency --quick --output-dir data
	$(BIN)/instbench publish --input data --output data/processed --include-sandbox
	$(BIN)/instbench report --input data --output site --include-sandbox

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

# Infrastructure as code, offline: the CloudFormation template, the GitHub workflows
# (schema vendored in check-jsonschema; zizmor without network) and the agent Dockerfile.
lint-infra: $(STAMP)
	$(BIN)/cfn-lint src/instbench/aws/templates/infra.yaml
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(BIN)/zizmor --offline --no-progress .github/workflows
	$(BIN)/hadolint Dockerfile

typecheck: $(STAMP)
	$(BIN)/mypy

# -rs lists every skip with its reason: none may be for a missing system package.
pytest: system-deps $(STAMP)
	$(BIN)/pytest -n 2 --dist loadgroup -q -rs

test: system-deps lint lint-infra typecheck pytest

agent: $(STAMP)
	$(BIN)/python -m instbench.agentpkg build/agent.pyz

clean:
	rm -rf build dist .mypy_cache .ruff_cache .pytest_cache
