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

test: lint
	@$(BIN)/python -c "import torch; b = 'CUDA ' + torch.version.cuda if torch.version.cuda else 'CPU'; print(f'genlab: testing with PyTorch {torch.__version__}, {b} build')"
	$(BIN)/pytest -q

test-all: lint
	GENLAB_FUZZ_EXAMPLES=300 $(BIN)/pytest -q -m ''

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/gmm_vs_sklearn.py

clean:
	rm -rf $(VENV) report build src/*.egg-info
