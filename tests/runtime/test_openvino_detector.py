"""The detector on OpenVINO: same detections as PyTorch on real frames, converted once and cached, a damaged
entry rebuilt, a failed conversion falling back to PyTorch with one line on stderr.

Tolerance (stated in README's Runtime section): boxes and keypoint coordinates within 0.5 px, scores and
keypoint confidences within 1e-3 of PyTorch (measured: below 1e-3 px and 1e-5).
"""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest

from posecore.detector import Detector
from posecore.io.sources import open_source
from posecore.runtime import cache, export, resolve_runtime
from tests.conftest import shared_path

IMGSZ = 320


@pytest.fixture(scope="module")
def frames(demo_clip) -> list[np.ndarray]:
    """Real frames of two sizes (so two input shapes): the 1080p demo clip and the 768x576 vtest video."""
    out = [f.image for f in open_source(str(demo_clip)) if f.index in (0, 40)]
    for f in open_source(str(shared_path("videos", "opencv_vtest.avi"))):
        if f.index in (60, 200):
            out.append(f.image)
        if f.index >= 200:
            break
    return out


@pytest.fixture(scope="module")
def torch_detections(frames):
    det = Detector(imgsz=IMGSZ, device="cpu", runtime="torch")
    return [det.detect(f) for f in frames]


@pytest.fixture(scope="module")
def converted():
    """The test session's cache folder (tests/conftest.py), holding the bundled weights' fp32 IR: converted
    here unless an earlier test of the session did."""
    det = Detector(imgsz=IMGSZ, device="cpu", runtime="openvino")
    det.detect(np.zeros((240, 320, 3), np.uint8))
    assert det.runtime == "openvino"
    return cache.cache_root()


def _assert_close(a, b):
    assert len(a) == len(b)
    np.testing.assert_allclose(a.boxes, b.boxes, atol=0.5)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-3)
    np.testing.assert_allclose(a.keypoints[..., :2], b.keypoints[..., :2], atol=0.5)
    np.testing.assert_allclose(a.keypoints[..., 2], b.keypoints[..., 2], atol=1e-3)


def test_auto_picks_openvino_on_cpu_only():
    assert resolve_runtime("auto", "cpu") == "openvino"
    assert resolve_runtime("openvino", "cuda") == "torch"
    assert resolve_runtime("auto", "mps") == "torch"
    assert resolve_runtime("torch", "cpu") == "torch"


def test_openvino_matches_pytorch_on_real_frames(converted, frames, torch_detections, monkeypatch, capfd):
    monkeypatch.setenv(cache.CACHE_ENV, str(converted))
    det = Detector(imgsz=IMGSZ, device="cpu", runtime="openvino")
    found = 0
    for image, reference in zip(frames, torch_detections):
        ours = det.detect(image)
        _assert_close(ours, reference)
        found += len(ours)
    assert found >= 4  # real people were compared
    assert det.runtime == "openvino"
    assert "converted" not in capfd.readouterr().err  # the cached IR was reused, not converted again


def test_cache_entry_is_reused_and_keyed_by_weights_and_precision(converted, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, str(converted))
    weights = Detector(imgsz=IMGSZ, device="cpu").weights
    key = export.cache_key(weights, "fp32", neck=False)
    entry, damage = cache.lookup(key)
    assert entry is not None and damage is None and entry.meta["convert_s"] > 0
    assert entry.path.name.startswith(cache.file_sha256(weights)[:12])
    assert cache.lookup(export.cache_key(weights, "int8", neck=False)) == (None, None)
    # The IR with the refiner's neck outputs is another entry (other tests of the session may have made it).
    neck, _ = cache.lookup(export.cache_key(weights, "fp32", neck=True))
    assert neck is None or neck.path != entry.path


def test_damaged_entry_is_rebuilt(converted, frames, torch_detections, tmp_path, monkeypatch, capfd, caplog):
    caplog.set_level(logging.INFO, logger="occlupose.runtime")
    root = tmp_path / "cache"
    shutil.copytree(converted, root)
    monkeypatch.setenv(cache.CACHE_ENV, str(root))
    weights = Detector(imgsz=IMGSZ, device="cpu").weights
    key = export.cache_key(weights, "fp32", neck=False)
    entry, _ = cache.lookup(key)
    data = (entry.path / "model.bin").read_bytes()
    (entry.path / "model.bin").write_bytes(data[: len(data) // 2])  # a download cut short, a full disk
    assert cache.lookup(key)[0] is None
    det = Detector(imgsz=IMGSZ, device="cpu", runtime="openvino")
    _assert_close(det.detect(frames[0]), torch_detections[0])
    err = capfd.readouterr().err
    assert "damaged" in err and det.runtime == "openvino"
    assert any("converted" in r.getMessage() for r in caplog.records)  # how long it took, a note
    assert cache.lookup(key)[0] is not None


def test_failed_conversion_falls_back_to_pytorch_with_one_line(frames, torch_detections, tmp_path, monkeypatch,
                                                               capfd):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "empty"))

    def broken(*args, **kwargs):
        raise RuntimeError("unsupported operation aten::frobnicate\nlong trace follows")

    monkeypatch.setattr(export, "convert", broken)
    det = Detector(imgsz=IMGSZ, device="cpu", runtime="openvino")
    ours = det.detect(frames[0])
    err = capfd.readouterr().err.strip().splitlines()
    assert det.runtime == "torch"
    assert len(err) == 1 and "aten::frobnicate" in err[0] and "PyTorch" in err[0]
    _assert_close(ours, torch_detections[0])
    assert not (tmp_path / "empty").exists() or not any(p.name.endswith("model.xml")
                                                       for p in (tmp_path / "empty").rglob("*"))


def test_missing_int8_model_runs_fp32_and_says_how_to_make_it(converted, frames, torch_detections, monkeypatch,
                                                              capfd):
    monkeypatch.setenv(cache.CACHE_ENV, str(converted))
    det = Detector(imgsz=IMGSZ, device="cpu", runtime="openvino", precision="int8")
    _assert_close(det.detect(frames[0]), torch_detections[0])
    err = capfd.readouterr().err
    assert "occlupose export --precision int8" in err and det.runtime == "openvino"


def test_neck_maps_for_the_refiner_match_pytorch(frames, torch_detections):
    """With feature capture on (``pose.refine: on``) the IR also outputs P3-P5, as the torch graph does."""
    import torch

    maps = {}
    for runtime in ("torch", "openvino"):
        det = Detector(imgsz=IMGSZ, device="cpu", runtime=runtime)
        det.capture_features()
        found = det.detect(frames[0])
        _assert_close(found, torch_detections[0])
        maps[runtime] = found.features
        assert det.runtime == runtime
    ref, ours = maps["torch"], maps["openvino"]
    assert ours.input_hw == ref.input_hw and ours.channels == ref.channels == (64, 128, 256)
    for a, b in zip(ours.maps, ref.maps):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-3)


def test_int8_keeps_the_keypoint_branch_and_the_decoding_in_float(converted, frames, monkeypatch):
    """int8 quantizes the backbone but not the pose head's keypoint branch (cv4) nor its decoding: joints
    are regressed as pixel offsets, and int8 there made two thirds of int8's AP loss (README, "Runtime")."""
    import openvino as ov

    from posecore.runtime.calibration import calibration_inputs

    monkeypatch.setenv(cache.CACHE_ENV, str(converted))
    det = Detector(imgsz=IMGSZ, device="cpu")
    entry, _ = cache.lookup(export.cache_key(det.weights, "fp32", neck=False))
    fp32 = ov.Core().read_model(str(entry.xml))
    quantized = export.quantize(fp32, calibration_inputs(frames[:2], det.letterbox), 2)

    def fed_by_fake_quantize(op) -> bool:
        return op.input_value(0).get_node().get_type_name() == "FakeQuantize"

    convs = [op for op in quantized.get_ordered_ops() if op.get_type_name() == "Convolution"]
    keypoint_branch = [op for op in convs if ".cv4." in op.get_friendly_name()]
    box_branch = [op for op in convs if ".cv2." in op.get_friendly_name()]
    assert len(keypoint_branch) == 9  # three 3-layer branches, one per scale
    assert not any(fed_by_fake_quantize(op) for op in keypoint_branch)
    assert any(fed_by_fake_quantize(op) for op in box_branch)  # the rest of the head is int8
    assert sum(fed_by_fake_quantize(op) for op in convs) > len(convs) // 2
    assert not any(op.get_type_name() == "FakeQuantize" and any(
        t.get_node().get_type_name() == "Sigmoid" for t in op.input_values()) for op in quantized.get_ordered_ops())


def test_new_worker_threads_reuse_the_idle_requests(converted, frames, torch_detections, monkeypatch):
    """The benchmark and the GUI start new detection threads for each run: their inferences take the requests
    earlier threads left idle (no new request, nor its first inference, per thread), and stay correct."""
    from concurrent.futures import ThreadPoolExecutor

    from posecore.runtime.openvino_backend import OpenVinoNet

    monkeypatch.setenv(cache.CACHE_ENV, str(converted))
    made, proxies = [], {}
    real = OpenVinoNet._compiled_for

    class Counting:
        def __init__(self, compiled):
            self.compiled = compiled

        def create_infer_request(self):
            made.append(1)
            return self.compiled.create_infer_request()

    def counted(self, shape):
        compiled = real(self, shape)
        return proxies.setdefault(id(compiled), Counting(compiled))

    monkeypatch.setattr(OpenVinoNet, "_compiled_for", counted)
    det = Detector(imgsz=IMGSZ, device="cpu", runtime="openvino")
    det.set_concurrency(2, 1)
    vtest = [2, 3, 2, 3]  # indices of the two 768x576 frames: one input shape
    for _ in range(3):  # three runs, each with its own two worker threads
        with ThreadPoolExecutor(2) as pool:
            found = list(pool.map(det.detect, [frames[i] for i in vtest]))
        for i, ours in zip(vtest, found):
            _assert_close(ours, torch_detections[i])
    assert det.runtime == "openvino"
    assert 1 <= len(made) <= 2  # at most one request per worker running at once, for all three runs
