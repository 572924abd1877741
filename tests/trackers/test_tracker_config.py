"""The tracker's configuration: YAML and code agree, every key is bounded, bad values are named."""

from __future__ import annotations

import dataclasses

import pytest

import configs
from posecore.config import from_dict, load_yaml
from posecore.errors import ConfigError
from trackers import Tracker, TrackerConfig


def test_yaml_lists_every_key_with_the_code_default():
    data = load_yaml(configs.path("tracker.yaml"))
    assert set(data) == {f.name for f in dataclasses.fields(TrackerConfig)}
    assert from_dict(TrackerConfig, data) == TrackerConfig()


def test_every_key_is_bounded_and_documented():
    for f in dataclasses.fields(TrackerConfig):
        meta = f.metadata
        # Numbers have bounds; a choice (Literal) is bounded by its values.
        assert any(meta.get(b) is not None for b in ("ge", "gt", "le", "lt")) or "Literal" in str(f.type), f.name
        assert meta.get("help"), f.name


@pytest.mark.parametrize("key, value", [("max_lost", -1), ("kp_min_conf", 0.0), ("iou_weight", 1.5),
                                        ("min_hits", 2.5), ("velocity_damping", "fast")])
def test_bad_values_raise_config_error_naming_the_key(key, value):
    with pytest.raises(ConfigError, match=key):
        Tracker(**{key: value})
    with pytest.raises(ConfigError, match=key):
        Tracker.from_config({key: value})


def test_inconsistent_thresholds_are_rejected():
    with pytest.raises(ConfigError, match="low_score"):
        Tracker(low_score=0.8, high_score=0.5)


def test_explicit_arguments_and_config_agree():
    cfg = from_dict(TrackerConfig, {"max_lost": 12, "min_hits": 4})
    assert Tracker.from_config(cfg).config == Tracker(max_lost=12, min_hits=4).config == Tracker(cfg).config
    assert Tracker.from_config({"max_lost": 12, "min_hits": 4}).config == cfg
    assert Tracker(cfg, max_lost=7).config.max_lost == 7
    assert Tracker.from_config(None).config == TrackerConfig()
