"""Running a cached OpenVINO IR of the YOLO network: compiled per input shape, one request per thread.

The IR's input is ``[1, 3, ?, ?]``. A model compiled for one fixed shape runs faster than the dynamic one
(measured: about 1.3x on YOLO11n-pose at 640x480), and a video has one letterboxed shape, so each new shape
is compiled once (OpenVINO's own compiled-model cache makes that cheap on later runs); past ``max_shapes``
shapes (a folder of photos of many sizes) new shapes run on the dynamic model instead of compiling more.

Threads: ``streams`` requests can run at once (the pipeline's detection workers), each on
``threads_per_stream`` cores. ``__call__`` is thread-safe: each call takes an idle request of the compiled
model its shape runs on (or makes one) and gives it back afterwards, so requests outlive the threads that
used them (the benchmark and the GUI start new worker threads per run) and a new thread costs no new request.
"""

from __future__ import annotations

import contextlib
import threading
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

INFERENCE_PRECISION = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}  # int8 IR: its float parts in f32

# OpenVINO's Python binding sets up static state on a request's first inference; two threads doing that at
# once deadlocked (both waiting in __cxa_guard_acquire, seen with two detection workers). The state is the
# process's, so the lock that makes every request's first inference (a real one) run alone is too.
_FIRST_INFERENCE = threading.Lock()


def supports_bf16() -> bool:
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


class OpenVinoNet:
    """``net(im)`` -> tuple of torch tensors (the IR's outputs) for ``im`` float[1, 3, H, W]."""

    def __init__(self, xml: Path, precision: str = "fp32", streams: int = 1, threads_per_stream: int = 1,
                 compiled_cache: Path | None = None, max_shapes: int = 8):
        import openvino as ov

        self.core = ov.Core()
        if compiled_cache is not None:
            self.core.set_property({"CACHE_DIR": str(compiled_cache)})
        self.model = self.core.read_model(str(xml))
        self.precision = precision
        self.max_shapes = max_shapes
        self._lock = threading.Lock()
        self.configure(streams, threads_per_stream)

    def configure(self, streams: int, threads_per_stream: int) -> None:
        """Requests that may run at once and cores for each; compiled models made before are dropped."""
        with self._lock:
            self.streams, self.threads_per_stream = max(1, int(streams)), max(1, int(threads_per_stream))
            self._compiled: dict[tuple[int, ...], object] = {}
            self._idle: defaultdict[int, list] = defaultdict(list)  # requests not in use, per compiled model

    def properties(self) -> dict:
        return {"NUM_STREAMS": self.streams, "INFERENCE_NUM_THREADS": self.streams * self.threads_per_stream,
                "INFERENCE_PRECISION_HINT": INFERENCE_PRECISION[self.precision],
                "PERFORMANCE_HINT": "LATENCY" if self.streams == 1 else "THROUGHPUT"}

    def _compiled_for(self, shape: tuple[int, ...]):
        compiled = self._compiled.get(shape)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(shape)
                if compiled is None:
                    dynamic = len([k for k in self._compiled if k != ()]) >= self.max_shapes
                    key = () if dynamic else shape
                    compiled = self._compiled.get(key)
                    if compiled is None:
                        model = self.model
                        if not dynamic:
                            model = model.clone()
                            model.reshape({model.inputs[0]: list(shape)})
                        compiled = self._compiled[key] = self.core.compile_model(model, "CPU", self.properties())
                    self._compiled[shape] = compiled
        return compiled

    def __call__(self, im: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = np.ascontiguousarray(im.detach().float().cpu().numpy())
        compiled = self._compiled_for(tuple(x.shape))
        with self._lock:
            # keyed by the compiled model: the dynamic one's requests serve every shape it runs
            idle = self._idle[id(compiled)]
            request = idle.pop() if idle else None
        first = request is None
        if first:
            request = compiled.create_infer_request()
        with _FIRST_INFERENCE if first else contextlib.nullcontext():
            request.infer({0: x})
            # copies: the request's buffers are reused by its next call
            outputs = tuple(torch.from_numpy(np.array(request.get_output_tensor(i).data))
                            for i in range(len(request.model_outputs)))
        with self._lock:
            idle.append(request)  # dropped with the list if configure() replaced it meanwhile
        return outputs
