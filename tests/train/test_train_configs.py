"""Every shipped training config is valid: its keys check, its model config resolves to a known builder."""

from __future__ import annotations

from pathlib import Path

import pytest

from posecore.config import to_dict
from posecore.models import get_builder
from posecore.skeleton import get_skeleton
from train.build import model_config
from train.config import load_config
from train.datasets import FORMATS

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs" / "train").glob("*.yaml"))
# The DAG paper's experiments, reproduced with the visibility reasoning of Sun et al. on.
REPRODUCTION = [p for p in CONFIGS if p.stem in {f"dag_{w}_{d}" for w in ("w32", "w48")
                                                  for d in ("coco", "crowdpose", "ochuman")}]


def test_the_configs_are_there():
    names = {p.stem for p in CONFIGS}
    assert {"coco_mini_cpu", "dag_w32_coco", "dag_w48_coco", "dag_w32_crowdpose", "dag_w48_crowdpose",
            "dag_w32_ochuman", "dag_w48_ochuman", "dag_w32_coco_novis"} <= names
    assert len(REPRODUCTION) == 6


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_loads_and_names_a_model_for_its_data(path):
    cfg = load_config(path)
    if cfg.distill is not None:  # the YOLO-feature refiner: distilled on frames, scored on its held-out split
        get_builder(model_config(cfg.model, get_skeleton("coco17"))["name"])
        assert cfg.distill.sources and cfg.distill.heldout
        return
    skeleton = get_skeleton(cfg.data.train.skeleton or FORMATS[cfg.data.train.format].default_skeleton)
    model = model_config(cfg.model, skeleton)
    get_builder(model["name"])  # raises for an unknown model
    assert model["skeleton"] == skeleton.name
    if cfg.model.body_center.source == "visible_joints":
        assert model["name"].startswith("dag_"), "only DAG's ADAM reads at a body centre"
    assert cfg.data.val is not None
    val_skeleton = cfg.data.val.skeleton or FORMATS[cfg.data.val.format].default_skeleton
    assert val_skeleton == skeleton.name
    if cfg.data.val.boxes == "detections":
        assert cfg.data.val.det_file is not None


def test_overrides_reach_nested_keys(cpu_config):
    cfg = load_config(cpu_config, ["augment.limb_joints.ratio=0.25", "loss.structure.scheme=linear",
                                   "model.params.input_size=[64, 64]"])
    assert cfg.augment.limb_joints.ratio == 0.25 and cfg.loss.structure.scheme == "linear"
    assert cfg.model.params["input_size"] == [64, 64]


@pytest.mark.parametrize("path", REPRODUCTION, ids=[p.stem for p in REPRODUCTION])
def test_reproduction_configs_train_with_visibility_reasoning_and_the_body_centre(path):
    cfg = load_config(path)
    model = model_config(cfg.model, get_skeleton(FORMATS[cfg.data.train.format].default_skeleton))
    assert model["visibility"]["enabled"]
    assert cfg.model.body_center.source == "visible_joints"
    assert 0 < cfg.solver.visibility_teacher_epochs < cfg.solver.epochs  # a warm-up, then the predicted mask


def test_the_ablation_differs_from_its_run_only_by_the_visibility_reasoning():
    folder = CONFIGS[0].parent
    full, ablation = (to_dict(load_config(folder / f"{n}.yaml")) for n in ("dag_w32_coco", "dag_w32_coco_novis"))
    assert ablation["model"].pop("params") == {"visibility": {"enabled": False}}
    assert full["model"].pop("params") == {}
    assert ablation.pop("output_dir") != full.pop("output_dir")
    assert ablation == full
