"""``detector.imgsz: auto``: the rule that picks the input size per source, on synthetic detections."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from app.arguments import imgsz_arg
from posecore.autosize import LARGE_MAX, SMALL_PX, UPSCALE, SizeChoice, choose_imgsz, fixed_choice, larger_size, probe
from posecore.config import from_dict
from posecore.detector import DetectorConfig
from posecore.errors import ConfigError
from posecore.types import Detections

HD = (1080, 1920)


def people(heights: list[float], score: float = 0.9) -> Detections:
    """People of the given heights (px of the frame), side by side."""
    n = len(heights)
    boxes = np.array([[50.0 * i, 100.0, 50.0 * i + 30, 100.0 + h] for i, h in enumerate(heights)], np.float32)
    return Detections(boxes.reshape(n, 4), np.full(n, score, np.float32), np.zeros((n, 17, 3), np.float32))


def test_small_people_on_a_large_source_get_a_larger_size():
    choice = choose_imgsz(np.array([60.0, 80.0, 90.0]), *HD)
    assert choice.imgsz == LARGE_MAX and choice.median_height == 80.0 and "small" in choice.reason
    # capped by the source's long side, a multiple of 32
    assert choose_imgsz(np.array([60.0]), 800, 1000).imgsz == 992


def test_the_choice_reads_back_from_its_record():
    choice = choose_imgsz(np.array([60.0, 80.0, 90.0]), *HD)
    assert SizeChoice.from_record(choice.as_record()) == choice
    for damaged in (None, [], {"imgsz": "big"}, {"imgsz": True}, {"imgsz": 8}):
        assert SizeChoice.from_record(damaged) is None


def test_large_people_keep_the_base():
    assert choose_imgsz(np.array([200.0, 240.0]), *HD).imgsz == 640
    assert choose_imgsz(np.array([SMALL_PX + 1.0]), *HD).imgsz == 640
    assert choose_imgsz(np.array([SMALL_PX + 1.0]), 360, 480).imgsz == 640


def test_small_sources_with_small_people_are_upsampled():
    # a larger input finds people a 640 pass misses even where it only upsamples (vtest, 480x360)
    for h, w in ((360, 480), (576, 768), (480, 960)):
        assert larger_size(h, w) == UPSCALE and choose_imgsz(np.array([40.0]), h, w).imgsz == UPSCALE
    assert larger_size(800, 1000) == 992 and larger_size(*HD) == LARGE_MAX


def test_nobody_found_asks_the_larger_size_once():
    asked = []

    def larger_finds(n):
        return lambda: asked.append(n) or n

    assert choose_imgsz(np.zeros(0), *HD, larger_finds=larger_finds(5)).imgsz == 1280
    assert choose_imgsz(np.zeros(0), *HD, larger_finds=larger_finds(0)).imgsz == 640
    assert choose_imgsz(np.array([50.0]), *HD, larger_finds=larger_finds(7)).imgsz == 1280
    assert asked == [5, 0]  # not asked when the base found people


class SizedDetector:
    """Stands in for a detector at one input size: the same people in every frame, and counts its calls."""

    def __init__(self, found: Detections):
        self.found = found
        self.calls = 0

    def detect(self, frame: np.ndarray) -> Detections:
        self.calls += 1
        return self.found


def test_probe_measures_people_in_the_base_input():
    frame = np.zeros((*HD, 3), np.uint8)
    # 240 px in a 1920-wide frame is 80 px at 640: small; 600 px is 200 px: large
    for frame_px, expected in ((240.0, 1280), (600.0, 640)):
        base, large = SizedDetector(people([frame_px, frame_px, 10.0], 0.9)), SizedDetector(people([]))
        choice = probe(lambda s: {640: base, 1280: large}[s].detect, [frame] * 3)
        assert choice.imgsz == expected and base.calls == 3 and large.calls == 0
        assert choice.people == 9 and choice.median_height == pytest.approx(frame_px / 3)
    # people scored under 0.25 are not counted: nobody at the base, so the larger size decides on one frame
    base, large = SizedDetector(people([240.0], 0.2)), SizedDetector(people([100.0, 100.0]))
    choice = probe(lambda s: {640: base, 1280: large}[s].detect, [frame] * 3)
    assert choice.imgsz == 1280 and large.calls == 1


def test_probe_upsamples_a_small_source_whose_people_the_base_misses():
    frame = np.zeros((360, 480, 3), np.uint8)
    base, large = SizedDetector(people([])), SizedDetector(people([70.0, 60.0]))
    choice = probe(lambda s: {640: base, UPSCALE: large}[s].detect, [frame] * 4)
    assert choice.imgsz == UPSCALE and base.calls == 4 and large.calls == 1 and "2 at 960" in choice.reason
    # found at the base and tall enough there: no larger pass
    base, large = SizedDetector(people([150.0])), SizedDetector(people([]))
    assert probe(lambda s: {640: base, UPSCALE: large}[s].detect, [frame] * 4).imgsz == 640 and large.calls == 0


def test_stills_and_extra_passes_keep_the_base():
    assert fixed_choice(True, "none").imgsz == 640
    assert fixed_choice(False, "tiles").imgsz == 640
    assert fixed_choice(False, "none") is None


@pytest.mark.parametrize("value, expected", [("auto", "auto"), (960, 960), (640, 640)])
def test_imgsz_setting_accepts_auto_and_sizes(value, expected):
    assert from_dict(DetectorConfig, {"imgsz": value}, "detector").imgsz == expected
    assert DetectorConfig().imgsz == "auto"


@pytest.mark.parametrize("value, message", [("big", "detector.imgsz: expected int or 'auto', got 'big'"),
                                            (8, "detector.imgsz: must be >= 32"),
                                            (True, "detector.imgsz: expected int or 'auto'")])
def test_imgsz_setting_rejects_bad_values_in_one_line(value, message):
    with pytest.raises(ConfigError, match=message) as e:
        from_dict(DetectorConfig, {"imgsz": value}, "detector")
    assert "\n" not in str(e.value)


def test_imgsz_flag():
    assert imgsz_arg("auto") == "auto" and imgsz_arg("AUTO") == "auto" and imgsz_arg("960") == 960
    for bad in ("huge", "16", "5000", "9.5"):
        with pytest.raises(argparse.ArgumentTypeError):
            imgsz_arg(bad)
