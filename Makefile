# Two entry points: `make demo` and `make test`. Every install uses constraints.txt so that the
# CPU build of torch is taken (an unpinned torch pulls several GB of CUDA packages).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.occlupose-installed

.PHONY: install demo test bench clean

$(STAMP): pyproject.toml constraints.txt tools/ensure_torchvision.py compat/torchvision-cpu-shim/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c constraints.txt -e '.[train,test]'
	$(PY) tools/ensure_torchvision.py --constraints constraints.txt
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/occlupose demo -o outputs/demo

test: install
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

bench: install
	$(VENV)/bin/occlupose bench $(or $(VIDEO),../shared/data/videos/opencv_vtest.avi)

clean:
	rm -rf $(VENV) outputs
