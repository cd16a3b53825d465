# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Both create (or reuse) the virtual environment in .venv and install what they need.
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.funduskit-installed
# torch/torchvision are pinned to the builds available offline on the reference machine.
# The install also writes the quality gate's content classifier as ONNX (src/funduskit/assets/, not
# in git: 9 MB that would take the tracked model files over 40 MB), checked against torch.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
export HF_HUB_OFFLINE ?= 1

.PHONY: install demo test bench bench-targets starter-models clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PINS)
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m funduskit.tools.content_model
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/funduskit demo --out demo-output

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile --max-worker-restart=0 tests

bench: $(STAMP)
	$(PY) benchmarks/inference.py

# Issue 16's targets, met or not, in about 12 minutes on 2 cores: the report's full ensemble, short
# repeats, no optimised-torch mode (docs/performance.md)
bench-targets: $(STAMP)
	$(PY) benchmarks/inference.py --quick --modes baseline,onnx,openvino --ensemble 8,4,2,10

# Rebuild the starter models shipped in the package from the shared real data (hours on 2 cores;
# finished runs in runs/real-data, the real-data benchmark's, are reused). docs/starter-models.md
SHARED_DATA ?= ../shared/data
starter-models: $(STAMP)
	$(VENV)/bin/funduskit starter-models --data $(SHARED_DATA) --work runs/real-data --out src/funduskit/starter_models

clean:
	rm -rf $(VENV) demo-output .pytest_cache
