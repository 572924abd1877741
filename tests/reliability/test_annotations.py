"""Annotation and result files for training and evaluation: whatever a file holds, the readers either
keep a checked person or skip and count the entry, and only an unusable file as a whole is an error
(DatasetError, one line). Property-based over JSON-like values, plus the named cases end to end through
``python -m train``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from train.datasets import DatasetError, load_detections, open_annotations

# -- values a hand-edited or machine-broken JSON file may hold --------------------------------------------

numbers = st.one_of(
    st.integers(-10**6, 10**6),
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0, 0.0, -0.0, 1e-300, 1e300, 2, 1, 640, 480]),
)
scalars = st.one_of(numbers, st.none(), st.booleans(), st.text(max_size=4))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(st.text(max_size=3), inner, max_size=3)),
                           max_leaves=8)


@st.composite
def keypoint_lists(draw, k: int):
    """Mostly the right length with plausible values; sometimes another length or junk."""
    kind = draw(st.sampled_from(["good", "good", "length", "junk", "flags"]))
    n = {"good": 3 * k, "flags": 3 * k, "length": draw(st.sampled_from([0, 3, 3 * k - 1, 3 * k + 3, 3 * 17, 3 * 14])),
         "junk": draw(st.integers(0, 6))}[kind]
    if kind == "junk":
        return draw(st.lists(scalars, max_size=n))
    xs = draw(st.lists(st.floats(-50, 700, allow_nan=False), min_size=n, max_size=n))
    flags = st.sampled_from([0, 1, 2]) if kind != "flags" else st.one_of(st.sampled_from([0, 1, 2, 3, -1, 0.5]), scalars)
    vs = draw(st.lists(flags, min_size=n, max_size=n))
    return [vs[i] if i % 3 == 2 else xs[i] for i in range(n)]


@st.composite
def coco_files(draw, k: int = 17):
    """(images, annotations): image ids 1-4, some with odd sizes; annotations with drawn fields. The
    optional fields (id, iscrowd, area, width, height ...) hold finite numbers of any value."""
    # Ids, flags and sizes of any sign or size, and of the wrong type or infinite.
    finite = st.one_of(st.integers(-10**6, 10**6), st.floats(-1e9, 1e9, allow_nan=False), st.none(), st.booleans())
    field_values = st.one_of(finite, st.text(max_size=4), st.sampled_from([math.inf, -math.inf]),
                             st.lists(st.integers(), max_size=2))
    images = []
    for i in range(1, draw(st.integers(1, 4)) + 1):
        img = {"id": i, "file_name": f"{i:03d}.jpg"}
        size = draw(st.sampled_from(["ok", "ok", "missing", "zero", "odd"]))
        if size == "ok":
            img.update(width=640, height=480)
        elif size == "zero":
            img.update(width=0, height=0)
        elif size == "odd":
            img.update(width=draw(field_values), height=draw(field_values))
        images.append(img)
    if draw(st.booleans()):
        images.append(draw(json_values))  # a malformed image entry
    anns = []
    for a in range(draw(st.integers(0, 8))):
        ann = {"id": a + 1, "image_id": draw(st.one_of(st.integers(0, 5), field_values)),
               "category_id": 1, "keypoints": draw(keypoint_lists(k))}
        box = draw(st.sampled_from(["ok", "zero", "negative", "outside", "short", "junk", "absent"]))
        ann["bbox"] = {"ok": [10.0, 20.0, 100.0, 200.0], "zero": [10.0, 20.0, 0.0, 50.0],
                       "negative": [10.0, 20.0, -5.0, 50.0], "outside": [5000.0, 5000.0, 10.0, 10.0],
                       "short": [1.0, 2.0, 3.0], "junk": draw(json_values), "absent": None}[box]
        if box == "absent":
            del ann["bbox"]
        for field in ("iscrowd", "area", "num_keypoints", "id"):
            if draw(st.integers(0, 5)) == 0:
                ann[field] = draw(field_values)
        if draw(st.integers(0, 5)) == 0:
            ann["segmentation"] = draw(json_values)
        anns.append(ann)
    if draw(st.booleans()):
        anns.append(draw(json_values))  # an annotation that is not even an object
    return images, anns


def _write(tmp: Path, images, anns, on_disk: set[int]) -> Path:
    for img in images:
        if isinstance(img, dict) and img.get("id") in on_disk:
            (tmp / img["file_name"]).write_bytes(b"")  # only existence is checked when reading annotations
    path = tmp / "ann.json"
    path.write_text(json.dumps({"images": images, "annotations": anns,
                                "categories": [{"id": 1, "name": "person"}]}))
    return path


# Derandomized: the same examples every run, so a bug found here is a stable, reported failure in others'
# code rather than a flaky one.
HYP = settings(max_examples=80, deadline=None, derandomize=True,
               suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@HYP
@given(data=coco_files(), on_disk=st.sets(st.integers(1, 4)), fmt=st.sampled_from(["coco", "ochuman"]))
def test_any_coco_file_gives_checked_people_or_one_clear_error(tmp_path_factory, data, on_disk, fmt):
    tmp = tmp_path_factory.mktemp("ann")
    images, anns = data
    path = _write(tmp, images, anns, on_disk)
    try:
        ann = open_annotations(fmt, path, tmp)
    except DatasetError as e:
        assert "\n" not in str(e)
        return
    info = {}  # the image entries as a reader sees them: the last one of each id wins
    for img in images:
        try:
            info[int(img["id"])] = img
        except (KeyError, TypeError, ValueError, OverflowError):
            pass
    for p in ann.people:
        assert p.image_id in on_disk
        assert p.box.shape == (4,) and np.isfinite(p.box).all() and p.box[2] > 0 and p.box[3] > 0
        w, h = info[p.image_id].get("width"), info[p.image_id].get("height")
        if isinstance(w, (int, float)) and isinstance(h, (int, float)) and w > 0 and h > 0:
            assert p.box[0] >= 0 and p.box[1] >= 0 and p.box[0] + p.box[2] <= w and p.box[1] + p.box[3] <= h
        assert p.keypoints.shape == (17, 3) and p.keypoints.dtype == np.float32
        assert np.isfinite(p.keypoints).all() and set(np.unique(p.keypoints[:, 2])) <= {0, 1, 2}
        assert (p.keypoints[:, 2] > 0).any() and math.isfinite(p.area) and p.area > 0
    assert ann.report.kept_people == len(ann.people)
    ann.report.summary()



def test_wrongly_typed_fields_are_skipped_not_fatal(tmp_path):
    images = [{"id": 1, "file_name": "001.jpg", "width": 640, "height": 480},
              {"id": 2, "file_name": "002.jpg", "width": "wide", "height": 480}]
    good = {"id": 1, "image_id": 1, "bbox": [10, 20, 100, 200], "keypoints": [100, 100, 2] * 17}
    for bad in (dict(good, iscrowd="yes"), dict(good, id=[]), dict(good, image_id=2), dict(good, image_id=math.inf)):
        path = _write(tmp_path, images, [good, bad], {1, 2})
        ann = open_annotations("coco", path, tmp_path)
        assert len(ann.people) + sum(ann.report.skipped.values()) == 2


def test_every_person_of_a_missing_image_is_counted(tmp_path):
    images = [{"id": 1, "file_name": "gone.jpg", "width": 640, "height": 480}]
    anns = [{"id": i, "image_id": 1, "bbox": [10, 20, 100, 200], "keypoints": [100, 100, 2] * 17} for i in (1, 2, 3)]
    ann = open_annotations("coco", _write(tmp_path, images, anns, set()), tmp_path)
    assert ann.report.skipped["people whose image is missing"] == 3


def test_named_cases_are_skipped_and_reported(tmp_path):
    """Wrong-length keypoints, zero-size and negative boxes, a missing image: skipped, counted, named."""
    images = [{"id": 1, "file_name": "here.jpg", "width": 640, "height": 480},
              {"id": 2, "file_name": "gone.jpg", "width": 640, "height": 480}]
    ok = {"image_id": 1, "bbox": [10, 20, 100, 200], "keypoints": [100, 100, 2] * 17}
    anns = [dict(ok, id=1), dict(ok, id=2, keypoints=[100, 100, 2] * 14), dict(ok, id=3, bbox=[10, 20, 0, 0]),
            dict(ok, id=4, bbox=[10, 20, -3, 40]), dict(ok, id=5, image_id=2), dict(ok, id=6, keypoints=[1, 2])]
    ann = open_annotations("coco", _write(tmp_path, images, anns, {1}), tmp_path)
    assert [p.ann_id for p in ann.people] == [1]
    assert ann.report.skipped["malformed annotations"] == 4
    assert ann.report.skipped["people whose image is missing"] == 1
    text = ann.report.summary() + " ".join(ann.report.details())
    assert "annotation 2" in text and "annotation 3" in text and "gone.jpg" in text


finite_scalars = st.one_of(st.integers(-10**6, 10**6), st.floats(-1e9, 1e9, allow_nan=False), st.none(),
                           st.booleans(), st.text(max_size=4))


@HYP
@given(dets=st.lists(st.one_of(json_values, st.fixed_dictionaries({
    "image_id": st.one_of(st.integers(0, 5), finite_scalars), "bbox": st.one_of(st.lists(numbers, max_size=5), json_values),
    "score": st.one_of(numbers, scalars), "category_id": st.one_of(st.just(1), finite_scalars)})), max_size=12),
    thr=st.sampled_from([0.0, 0.5]))
def test_any_detection_file_gives_checked_boxes(tmp_path_factory, dets, thr):
    path = tmp_path_factory.mktemp("det") / "dets.json"
    path.write_text(json.dumps(dets))
    try:
        people = load_detections(path, {1, 2, 3}, thr)
    except (DatasetError,) as e:
        assert "\n" not in str(e)
        return
    for p in people:
        assert p.image_id in {1, 2, 3} and np.isfinite(p.box).all() and p.box[2] > 0 and p.box[3] > 0
        assert math.isfinite(p.score) and p.score >= thr


def test_an_infinite_area_falls_back_to_the_box(tmp_path):
    images = [{"id": 1, "file_name": "001.jpg", "width": 640, "height": 480}]
    ann = {"id": 1, "image_id": 1, "bbox": [10, 20, 100, 200], "keypoints": [100, 100, 2] * 17, "area": math.inf}
    people = open_annotations("coco", _write(tmp_path, images, [ann], {1}), tmp_path).people
    assert len(people) == 1 and math.isfinite(people[0].area)


def test_detections_with_infinite_ids_are_skipped(tmp_path):
    path = tmp_path / "dets.json"
    path.write_text('[{"image_id": Infinity, "bbox": [1, 2, 3, 4]}, {"image_id": 1, "bbox": [1, 2, 3, 4], '
                    '"category_id": -Infinity}, {"image_id": 1, "bbox": [1, 2, 3, 4], "score": 0.9}]')
    assert len(load_detections(path, {1})) == 1


@pytest.mark.parametrize("content, needle", [
    ('{"images": [], "annotations": [', "not valid JSON"),
    ("", "not valid JSON"),
    ('{"images": {}, "annotations": []}', "not a COCO keypoint file"),
    (b"\xff\xfe{}", "cannot read"),
])
def test_malformed_annotation_files(tmp_path, content, needle):
    path = tmp_path / "broken file.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(DatasetError, match=needle) as e:
        open_annotations("coco", path, tmp_path)
    assert "\n" not in str(e.value) and path.name in str(e.value)


# -- through the training command --------------------------------------------------------------------------

def _train_main(argv, capfd) -> tuple[int, list[str]]:
    from train.__main__ import main

    capfd.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    err = capfd.readouterr().err
    assert "Traceback" not in err, err
    return code, [ln for ln in err.splitlines() if ln.strip()]


@pytest.fixture
def eval_config(tmp_path):
    from tests.conftest import shared_path

    sample = shared_path("coco_sample")
    cfg = Path(__file__).resolve().parents[2] / "configs" / "train" / "coco_mini_cpu.yaml"
    return [cfg, f"data.val.ann_file={sample / 'test_coco.json'}", f"data.val.img_dir={sample}"]


@pytest.mark.parametrize("results, needle", [
    ('[{"image_id": 785, "keypoints": [1, 2', "not valid JSON"),
    ('{"not": "a list"}', "not a COCO results list"),
    ('[{"image_id": 785, "category_id": 1, "keypoints": [1, 2, 3], "score": 0.9}]', "malformed result"),
    ('[{"image_id": 785, "category_id": 1, "score": 0.9}]', "malformed result"),
])
def test_eval_of_a_malformed_results_file_is_one_line(tmp_path, capfd, eval_config, results, needle):
    cfg, *overrides = eval_config
    pred = tmp_path / "my results.json"
    pred.write_text(results)
    code, lines = _train_main(["eval", "--config", cfg, "--predictions", pred, "--output", tmp_path / "e",
                               *overrides], capfd)
    assert code not in (0, None)
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1 and needle in errors[0], lines


def test_eval_with_a_missing_annotation_file_is_one_line(tmp_path, capfd, eval_config):
    cfg, *_ = eval_config
    pred = tmp_path / "r.json"
    pred.write_text("[]")
    code, lines = _train_main(["eval", "--config", cfg, "--predictions", pred, f"data.val.ann_file={tmp_path}/nope.json",
                               f"data.val.img_dir={tmp_path}"], capfd)
    assert code not in (0, None) and len(lines) == 1 and "data.val.ann_file" in lines[0] and "nope.json" in lines[0], lines


@settings(max_examples=12, deadline=None, derandomize=True)
@given(data=st.data())
def test_any_finite_results_evaluate_without_error(data):
    """Predictions with any finite values (off-image, negative, huge, duplicated) give metrics in [0, 1],
    or NaN / -1 where an area range holds nobody."""
    from tests.conftest import shared_path
    from train.evaluate import evaluate_keypoints

    gt = json.loads(shared_path("coco_sample", "test_coco.json").read_text())
    ids = [img["id"] for img in gt["images"]] + [999]
    coord = st.floats(-1e4, 1e4, allow_nan=False, width=32)
    results = data.draw(st.lists(st.fixed_dictionaries({
        "image_id": st.sampled_from(ids), "category_id": st.just(1),
        "keypoints": st.lists(coord, min_size=51, max_size=51),
        "score": st.floats(-10, 10, allow_nan=False)}), max_size=8))
    if results and data.draw(st.booleans()):
        results = results + results[:2]  # exact duplicates
    from posecore.skeleton import COCO17

    metrics = evaluate_keypoints(gt, results, COCO17.sigmas)
    for name, v in metrics.items():
        assert math.isnan(v) or v == -1 or 0.0 <= v <= 1.0, (name, v)
