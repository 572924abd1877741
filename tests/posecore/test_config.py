from dataclasses import dataclass, field
from typing import Literal

import pytest

from posecore.config import apply_overrides, dotted_keys, from_dict, load_yaml, option, to_dict
from posecore.errors import ConfigError


@dataclass
class Inner:
    rate: float = option(0.5, ge=0.0, le=1.0)
    mode: Literal["a", "b"] = "a"


@dataclass
class Outer:
    size: int = option(640, ge=32)
    name: str | None = None
    inner: Inner = field(default_factory=Inner)
    pair: tuple[int, int] = (1, 2)


def test_defaults_and_nested_values():
    cfg = from_dict(Outer, {"size": 320, "inner": {"rate": 1}, "pair": [3, 4]})
    assert cfg.size == 320 and cfg.inner.rate == 1.0 and cfg.pair == (3, 4) and cfg.inner.mode == "a"
    assert from_dict(Outer, to_dict(cfg)) == cfg


@pytest.mark.parametrize("data, key", [
    ({"sise": 3}, "sise: unknown key"),
    ({"size": "big"}, "size: expected an integer"),
    ({"size": 16}, "size: must be >= 32"),
    ({"size": True}, "size: expected an integer"),
    ({"inner": {"rate": 2.0}}, "inner.rate: must be <= 1.0"),
    ({"inner": {"mode": "c"}}, "inner.mode: expected one of"),
    ({"inner": {"speed": 1}}, "inner.speed: unknown key"),
    ({"pair": [1]}, "pair: expected 2 items"),
    ({"inner": 3}, "inner: expected a mapping"),
    ({"inner": {"rate": float("nan")}}, "inner.rate: expected a finite number"),
])
def test_bad_values_name_the_key(data, key):
    with pytest.raises(ConfigError, match=key.replace("(", r"\(")):
        from_dict(Outer, data)


def test_overrides_parse_yaml_values():
    data = apply_overrides({"inner": {"rate": 0.1}}, ["inner.rate=0.25", "size=128", "name=null"])
    cfg = from_dict(Outer, data)
    assert cfg.inner.rate == 0.25 and cfg.size == 128 and cfg.name is None
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_overrides({}, ["size"])


def test_load_yaml_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_yaml(bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_yaml(lst)


def test_bundled_pipeline_yaml_equals_code_defaults():
    import configs
    from app.run.pipeline import PipelineConfig

    data = load_yaml(configs.path("pipeline.yaml"))
    cfg = from_dict(PipelineConfig, data)
    defaults = to_dict(PipelineConfig())
    for section in data:
        assert to_dict(cfg)[section] == defaults[section], section


def test_dotted_keys_name_the_settings_given():
    assert dotted_keys({}) == frozenset()
    assert dotted_keys({"stills": False, "tracker": {"max_lost": 60, "kalman": {"q": 1}}, "pose": {}}) == {
        "stills", "tracker.max_lost", "tracker.kalman.q", "pose"}


@dataclass
class Switches:
    refine: Literal["auto", "on", "off"] = "auto"
    answer: Literal["yes", "no", "maybe"] = "maybe"


@pytest.mark.parametrize("raw, field_name, expected", [
    ("refine=on", "refine", "on"), ("refine=off", "refine", "off"), ("refine=auto", "refine", "auto"),
    ("answer=yes", "answer", "yes"), ("answer=no", "answer", "no"),
])
def test_literal_words_that_yaml_reads_as_booleans(raw, field_name, expected):
    """``--set pose.refine=on``: YAML 1.1 reads on/off/yes/no as booleans; a Literal of words takes the word."""
    cfg = from_dict(Switches, apply_overrides({}, [raw]))
    assert getattr(cfg, field_name) == expected


def test_literal_boolean_without_a_matching_word_is_refused():
    with pytest.raises(ConfigError, match="inner.mode: expected one of"):
        from_dict(Outer, {"inner": {"mode": True}})


def test_set_pose_refine_on_as_readme_documents():
    from app.run.pipeline import load_pipeline_config

    assert load_pipeline_config(apply_overrides({}, ["pose.refine=on"])).pose.refine == "on"
    assert load_pipeline_config(apply_overrides({}, ["pose.refine=off"])).pose.refine == "off"
