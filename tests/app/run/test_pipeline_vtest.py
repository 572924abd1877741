"""On real footage, a person walking alone keeps one ID from entry to exit.

The stretch was picked by looking at opencv_vtest.avi: from frame ~41 a pedestrian enters at the right
edge and walks up-left, unoccluded, until leaving at the top around frame 120. The path points below
are that person's box centres read off the annotated frames (image pixels, 480x360).
"""

import numpy as np
import pytest

from app.run.pipeline import Pipeline, PipelineConfig
from posecore.io.sources import open_source
from tests.conftest import shared_path

PATH = {45: (456, 206), 60: (395, 180), 75: (370, 155), 90: (364, 135), 105: (386, 116), 115: (404, 108)}
FIRST, LAST = 30, 116


def _label(frame: int) -> np.ndarray:
    keys = sorted(PATH)
    xs = np.interp(frame, keys, [PATH[k][0] for k in keys])
    ys = np.interp(frame, keys, [PATH[k][1] for k in keys])
    return np.array([xs, ys])


def _containing(tracks, point):
    out = []
    for t in tracks:
        x1, y1, x2, y2 = t.box
        h = y2 - y1
        centre = np.array([(x1 + x2) / 2, (y1 + y2) / 2])
        if np.linalg.norm(centre - point) < 0.5 * h:
            out.append(t.track_id)
    return out


@pytest.mark.slow
def test_walking_person_keeps_one_id():
    video = shared_path("videos", "opencv_vtest.avi")
    cfg = PipelineConfig()
    cfg.detector.imgsz = 960  # people here are ~50 px tall; see README on small people
    cfg.detector.device = "cpu"
    cfg.passes.flip = False  # tracking is under test here, at the single pass's cost (--quality fast)
    pipeline = Pipeline.from_config(cfg)
    frames = (f for f in open_source(str(video)) if FIRST <= f.index <= LAST)
    ids_on_path = {}
    for result in pipeline.stream(frames):
        if result.index >= 45:
            ids_on_path[result.index] = _containing(result.tracks, _label(result.index))
    assert len(ids_on_path) == LAST - 45 + 1
    missing = [f for f, ids in ids_on_path.items() if len(ids) != 1]
    # tracked on (nearly) every frame, and only ever by one track there
    assert len(missing) <= 2, missing
    ids = {i for v in ids_on_path.values() for i in v}
    assert len(ids) == 1, ids_on_path
