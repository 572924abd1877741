"""Extra inference passes: person fusion across passes, the zoom-in mapping (plain and mirrored), tiles,
flip test, and the settings' validation. A stand-in detector finds white blocks and puts each joint at a
fixed place in its block, with a person's left joints on the image's right as a real detector would."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from posecore.config import from_dict
from posecore.errors import ConfigError
from posecore.estimators.zoom import Cell, candidates, draw, zoom_in
from posecore.multiscale import (MultiPassDetector, PassesConfig, flip_detections, fuse_people, inside_tile,
                                 preset, tile_grid)
from posecore.skeleton import COCO17
from posecore.types import Detections

K = COCO17.num_joints
# Joint positions as fractions of the block: left joints (odd indices from 5, and 1, 3) right of the middle.
_FX, _FY = np.full(K, 0.5), np.linspace(0.05, 0.95, K)
for left, right in COCO17.flip_pairs:
    _FX[left], _FX[right] = 0.8, 0.2
    _FY[right] = _FY[left]  # a pair at one height


class BlockDetector:
    """People = white blocks (value > 200); joints at fixed fractions of each block; confidence ``conf``."""

    thread_safe = True

    def __init__(self, imgsz: int = 640, conf: float = 0.9):
        self.imgsz, self.conf, self.calls = imgsz, conf, []

    def detect(self, frame: np.ndarray) -> Detections:
        self.calls.append(frame.shape[:2])
        mask = (frame[..., 0] > 200).astype(np.uint8)
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        boxes, kpts = [], []
        for x, y, w, h, area in stats[1:]:
            if area < 20:
                continue
            boxes.append([x, y, x + w, y + h])
            kpts.append(np.stack([x + _FX * w, y + _FY * h, np.full(K, self.conf)], -1))
        if not boxes:
            return Detections.empty(K)
        return Detections(np.array(boxes), np.full(len(boxes), 0.9), np.array(kpts))


def _frame(blocks, h=720, w=1280) -> np.ndarray:
    f = np.zeros((h, w, 3), np.uint8)
    for x0, y0, x1, y1 in blocks:
        f[y0:y1, x0:x1] = 255
    return f


def _person(box, conf=0.9) -> Detections:
    x0, y0, x1, y1 = box
    kp = np.stack([x0 + _FX * (x1 - x0), y0 + _FY * (y1 - y0), np.full(K, conf)], -1)
    return Detections(np.array([box], np.float32), np.array([0.9]), kp[None])


def test_a_person_found_at_two_scales_is_reported_once_with_joints_fused_by_confidence():
    a = _person((100, 100, 150, 250), conf=0.9)
    b = _person((104, 98, 152, 256), conf=0.3)
    other = _person((600, 100, 650, 250))
    fused = fuse_people([Detections(np.r_[a.boxes, other.boxes], [0.9, 0.8], np.r_[a.keypoints, other.keypoints]), b])
    assert len(fused) == 2
    mine = fused.keypoints[np.argmin(fused.boxes[:, 0])]
    # 0.9 : 0.3 weights: three quarters of the way to the confident estimate
    expect = (0.9 * a.keypoints[0, :, :2] + 0.3 * b.keypoints[0, :, :2]) / 1.2
    np.testing.assert_allclose(mine[:, :2], expect, atol=1e-3)
    np.testing.assert_allclose(mine[:, 2], 0.6, atol=1e-6)


def test_two_overlapping_people_of_one_pass_stay_two():
    a, b = _person((100, 100, 150, 250)), _person((110, 100, 160, 250))
    both = Detections(np.r_[a.boxes, b.boxes], [0.9, 0.8], np.r_[a.keypoints, b.keypoints])
    assert len(fuse_people([both, Detections.empty(K)])) == 2
    # a second pass that sees only one of them merges with one, not both
    assert len(fuse_people([both, _person((101, 100, 151, 250))])) == 2


def test_flip_maps_mirrored_people_back_with_sides_swapped():
    frame = _frame([(200, 100, 260, 300)])
    det = BlockDetector()
    plain = det.detect(frame)
    back = flip_detections(det.detect(np.ascontiguousarray(frame[:, ::-1])), frame.shape[1])
    np.testing.assert_allclose(back.boxes, plain.boxes, atol=1e-4)
    np.testing.assert_allclose(back.keypoints, plain.keypoints, atol=1e-4)
    # without the swap the left shoulder would land on the right one
    assert abs(back.keypoints[0, 5, 0] - plain.keypoints[0, 6, 0]) > 20


@pytest.mark.parametrize("flip", [False, True])
def test_zoomed_crop_keypoints_map_back_onto_the_right_pixels(flip):
    small = (900, 400, 930, 480)  # 80 px tall in a 1280 frame: 40 px at a 640 input
    frame = _frame([small, (100, 100, 400, 700)])
    truth = _person(small).keypoints[0]
    # a first estimate off by 6 px everywhere, with the same confidence: the fusion lands halfway
    first = _person(small)
    first.keypoints[..., :2] += 6
    big = _person((100, 100, 400, 700))
    people = Detections(np.r_[big.boxes, first.boxes], [0.95, 0.9], np.r_[big.keypoints, first.keypoints])
    det = BlockDetector()
    cfg = PassesConfig(zoom=True, flip=flip, zoom_doubtful=0)
    out = zoom_in(det, frame, people, cfg, base_scale=640 / 1280)
    assert det.calls == [(640, 640)]  # one batched pass
    np.testing.assert_allclose(out.keypoints[1, :, :2], truth[:, :2] + 3, atol=1.0)
    np.testing.assert_array_equal(out.keypoints[0], big.keypoints[0])  # large enough: left alone


def test_zoom_picks_small_and_doubtful_people_only():
    big, small = _person((0, 0, 300, 600)), _person((500, 0, 530, 60))
    unsure = _person((800, 0, 1100, 600), conf=0.2)
    people = Detections(np.r_[big.boxes, small.boxes, unsure.boxes], [0.9, 0.8, 0.7],
                        np.r_[big.keypoints, small.keypoints, unsure.keypoints])
    assert candidates(people, PassesConfig(zoom_doubtful=0), 0.5).tolist() == [1]
    assert candidates(people, PassesConfig(zoom_doubtful=6), 0.5).tolist() == [1, 2]
    assert candidates(people, PassesConfig(zoom_doubtful=6, zoom_max=1), 0.5).tolist() == [1]


def test_mirrored_cell_is_drawn_mirrored_and_read_back():
    frame = _frame([(100, 100, 120, 160)])
    cell = Cell(0, 70.0, 90.0, 4.0, 320, 0, 320, True)
    mosaic = draw(frame, [cell], 320)
    found = BlockDetector().detect(mosaic)
    back = cell.to_frame(found)
    np.testing.assert_allclose(back.boxes[0], [100, 100, 120, 160], atol=0.5)
    np.testing.assert_allclose(back.keypoints[0, :, :2], _person((100, 100, 120, 160)).keypoints[0, :, :2], atol=0.5)


def test_tiles_find_small_people_once_and_drop_people_cut_by_an_inner_edge():
    tiles = tile_grid(720, 1280, 2)
    assert len(tiles) == 4
    covered = np.zeros((720, 1280), bool)
    for x0, y0, x1, y1 in tiles:
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    cut = Detections(np.array([[tiles[0][2] - 20, 10, tiles[0][2] + 10, 80]], np.float32), [0.9])
    assert not inside_tile(cut, tiles[0], 720, 1280).any()
    frame = _frame([(620, 300, 660, 400)])  # in the overlap of the left and right tiles
    det = MultiPassDetector(BlockDetector(), PassesConfig(extra="tiles"))
    assert len(det.detect(frame)) == 1


def test_multipass_flip_and_scale_report_each_person_once():
    frame = _frame([(200, 100, 260, 300), (700, 300, 720, 340)])
    det = MultiPassDetector(BlockDetector(), PassesConfig(flip=True, extra="scale"), second=BlockDetector(1280))
    out = det.detect(frame)
    assert len(out) == 2
    np.testing.assert_allclose(np.sort(out.boxes[:, 0]), [200, 700], atol=1e-3)


def test_settings_validation():
    assert from_dict(PassesConfig, {"zoom": True, "extra": "tiles"}, "passes").active
    assert not from_dict(PassesConfig, preset("fast"), "passes").active
    for bad in ({"extra": "pyramid"}, {"zoom_doubtful": 18}, {"tiles": 1}, {"fuse_iou": 0}, {"zoom": "maybe"},
                {"zoom_size": 3}):
        with pytest.raises(ConfigError, match="passes"):
            from_dict(PassesConfig, bad, "passes")
    with pytest.raises(ValueError):
        MultiPassDetector(BlockDetector(), PassesConfig(extra="scale"))
    assert preset("fast") == {"flip": False, "zoom": False, "extra": "none"}
    with pytest.raises(KeyError):
        preset("ultra")


def test_quality_preset_sets_the_passes_and_set_still_overrides_it():
    from app.cli import build_parser, pipeline_config

    def cfg(*argv):
        return pipeline_config(build_parser().parse_args(["process", "clip.mp4", *argv]))

    assert not cfg("--quality", "fast").passes.active
    assert cfg().passes == cfg("--quality", "balanced").passes  # the default: balanced
    assert cfg().passes.flips and cfg().passes.flip == "auto" and not cfg().passes.zoom
    best = cfg("--quality", "best").passes
    assert best.zoom and best.flip is True
    assert not cfg("--quality", "best", "--set", "passes.flip=false").passes.flips
    assert cfg("--set", "passes.flip=true").passes.flip is True
    with pytest.raises(ConfigError, match="passes.extra"):
        cfg("--set", "passes.extra=pyramid")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["process", "clip.mp4", "--quality", "ultra"])


def test_flip_auto_is_off_only_where_auto_raised_the_size():
    auto = PassesConfig()
    assert auto.for_auto_size(640).flips and not auto.for_auto_size(960).flips
    assert not auto.for_auto_size(960).active  # nothing else on: the plain detector runs
    on, off = PassesConfig(flip=True), PassesConfig(flip=False)
    assert on.for_auto_size(1280).flips and not off.for_auto_size(640).flips


def test_pipeline_wraps_the_detector_only_when_passes_are_on():
    from posecore.detector import Detector
    from app.run.pipeline import Pipeline, load_pipeline_config

    on = Pipeline.from_config(load_pipeline_config({"detector": {"device": "cpu"}}))
    assert isinstance(on.detector, MultiPassDetector) and on.detector.cfg.flips
    off = Pipeline.from_config(load_pipeline_config({"detector": {"device": "cpu"}, "passes": preset("fast")}))
    assert type(off.detector) is Detector
