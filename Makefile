# Two entry points: `make demo` and `make test`. Every install uses constraints.txt so that the
# CPU build of torch is taken (an unpinned torch pulls several GB of CUDA packages).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.occlupose-installed

.PHONY: install demo test bench gui gui-screenshot gui-latency train-refiner eval-refiner clean

$(STAMP): pyproject.toml constraints.txt tools/ensure_torchvision.py compat/torchvision-cpu-shim/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c constraints.txt -e '.[train,test]'
	$(PY) tools/ensure_torchvision.py --constraints constraints.txt
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/occlupose demo -o outputs/demo

# Two workers (pytest-xdist): while one test waits on a subprocess, a file or a model load, the other
# computes, so the suite ends well inside CI's limit on the 2-core machines.
test: install
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -n 2

bench: install
	$(VENV)/bin/occlupose bench $(or $(VIDEO),../shared/data/videos/opencv_vtest.avi)

gui: install
	$(VENV)/bin/occlupose-gui $(SOURCE)

# Needs Xvfb: apt-get install xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxkbcommon-x11-0 libxcb-cursor0 libxcb-image0 libxcb-render-util0 libxcb-shape0
gui-screenshot: install
	xvfb-run -a -s "-screen 0 1440x900x24" $(PY) tools/gui_screenshot.py -o docs/screenshot_gui.png

gui-latency: install
	QT_QPA_PLATFORM=offscreen $(PY) tools/gui_latency.py --seconds 10 --imgsz 320

train-refiner: install
	$(PY) -m train fit --config configs/train/refiner_yolo11n.yaml

eval-refiner: install
	$(PY) -m train eval-pipeline --config configs/train/refiner_yolo11n.yaml

clean:
	rm -rf $(VENV) outputs
