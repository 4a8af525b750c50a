# Two commands for a newcomer: `make demo` and `make test`. Each creates .venv if missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install -q -c constraints.txt
export HF_HUB_OFFLINE := 1

.PHONY: demo test test-all lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Oracles for tests only, kept off the import path: torch-fidelity's FID Inception (its
# package imports torchvision, which cannot live beside the pinned torch; the tests load
# just the network's module from here).
ORACLES := $(VENV)/oracles

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) -e '.[test]'
	$(BIN)/pip install -q --no-deps --target $(ORACLES) torch-fidelity==0.4.0
	# the course's notebooks run (tests/test_notebooks.py) in this venv's own python3 kernel
	$(BIN)/python -m ipykernel install --sys-prefix >/dev/null
	touch $@
	@$(BIN)/python -c "import torch; b = 'CUDA ' + torch.version.cuda if torch.version.cuda else 'CPU'; print(f'genlab: PyTorch {torch.__version__}, {b} build')"

demo: $(VENV)/.installed
	$(BIN)/genlab demo --out report

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The tests run in TEST_WORKERS processes (pytest-xdist), one torch thread each, so the
# waits of the browser, subprocess and server tests overlap with other work; a file's tests
# stay in one process (--dist loadfile), so its module fixtures are built once.
TEST_WORKERS ?= 2
PYTEST := OMP_NUM_THREADS=1 $(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile

test: lint
	@$(BIN)/python -c "import torch; b = 'CUDA ' + torch.version.cuda if torch.version.cuda else 'CPU'; print(f'genlab: testing with PyTorch {torch.__version__}, {b} build')"
	$(PYTEST)

test-all: lint
	GENLAB_FUZZ_EXAMPLES=300 $(PYTEST) -m ''

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/gmm_vs_sklearn.py

clean:
	rm -rf $(VENV) report build src/*.egg-info
