"""int8 by NNCF's accuracy control, with a metric that needs no labels (a trial; not what ``occlupose export``
does). README, "Runtime", gives what it measured.

    python tools/int8_accuracy_control.py ../shared/data/videos --frames 200 --max-drop 0.0008
    python tools/runtime_ap.py ... --runtimes openvino:int8

The metric: the mean OKS of the int8 model's poses against the fp32 model's, over the calibration frames
in which the fp32 model finds someone (every output row scoring at least 0.25, joints the fp32 model
sees at 0.5 or more). ``nncf.quantize_with_accuracy_control`` reverts operations to float, most harmful
first, until the metric is within ``--max-drop`` of the fp32 model's 1.0. The result is stored as the int8
model of the cache (replacing the one ``occlupose export --precision int8`` made), so the command above
scores it; the fp32 model must be there already (``occlupose export``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from posecore.detector import Detector
from posecore.oks import keypoint_similarity
from posecore.runtime import cache, export
from posecore.runtime.calibration import calibration_frames, calibration_inputs
from posecore.skeleton import COCO17

PERSON_SCORE = 0.25
JOINT_SEEN = 0.5


def agreement(out: np.ndarray, ref: np.ndarray) -> float:
    """Mean OKS of ``out`` against ``ref``, both the head's float[56, N] rows (box xywh, score, 17 x (x, y,
    confidence)), over the rows ``ref`` scores at least PERSON_SCORE."""
    rows = ref[4] >= PERSON_SCORE
    ref, out = ref[:, rows], out[:, rows]
    kr, ko = ref[5:].reshape(17, 3, -1), out[5:].reshape(17, 3, -1)
    d2 = (kr[:, 0] - ko[:, 0]) ** 2 + (kr[:, 1] - ko[:, 1]) ** 2
    per_row, seen = keypoint_similarity(d2.T, ref[2] * ref[3], COCO17.sigmas, kr[:, 2].T >= JOINT_SEEN)
    return float(per_row[seen > 0].mean()) if seen.any() else 1.0


def main() -> None:
    import nncf
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("calibration", nargs="+", help="videos, images or folders (training data, never evaluation images)")
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--max-drop", type=float, default=0.0008, help="largest drop of the agreement from 1.0")
    ap.add_argument("--ranking-frames", type=int, default=40, help="frames NNCF ranks the operations on")
    args = ap.parse_args()

    det = Detector(imgsz=640, device="cpu", runtime="torch")
    entry, _ = cache.lookup(export.cache_key(det.weights, "fp32", neck=False))
    if entry is None:
        raise SystemExit("no fp32 model in the cache: run `occlupose export` first")
    inputs = calibration_inputs(calibration_frames(args.calibration, args.frames), det.letterbox)
    fp32 = ov.Core().read_model(str(entry.xml))
    reference = ov.Core().compile_model(fp32, "CPU")
    refs = [reference(x)[0][0] for x in inputs]
    validation = [(x, r) for x, r in zip(inputs, refs) if (r[4] >= PERSON_SCORE).any()]
    print(f"{len(inputs)} calibration frames, {len(validation)} with people", flush=True)

    def validate(compiled, data):
        scores = [agreement(compiled(x)[0][0], r) for x, r in data]
        return float(np.mean(scores)), scores

    t0 = time.perf_counter()
    model = nncf.quantize_with_accuracy_control(
        fp32, nncf.Dataset(inputs), nncf.Dataset(validation), validate, max_drop=args.max_drop,
        preset=nncf.QuantizationPreset.MIXED, subset_size=len(inputs), ignored_scope=export.head_float_scope(fp32),
        advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(ranking_subset_size=args.ranking_frames))
    seconds = time.perf_counter() - t0
    stored = cache.store(export.cache_key(det.weights, "int8", neck=False),
                         lambda folder: ov.save_model(model, folder / "model.xml", compress_to_fp16=False),
                         {"convert_s": round(seconds, 2), "accuracy_control_max_drop": args.max_drop,
                          "calibration_frames": len(inputs), "calibration_sources": args.calibration})
    print(f"int8 with accuracy control in {seconds:.0f} s: {stored.path}")


if __name__ == "__main__":
    main()
