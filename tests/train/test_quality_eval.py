"""python -m train eval-quality: its config is checked before any model is loaded."""

from __future__ import annotations

import pytest

from posecore.errors import ConfigError
from train.__main__ import main
from train.quality_eval import load_config


def _write(tmp_path, text):
    p = tmp_path / "q.yaml"
    p.write_text(text)
    return p


def test_config_loads_settings_and_rejects_unknown_sections(tmp_path):
    cfg = load_config(_write(tmp_path, "settings:\n  fast: {}\n  best: {passes: {flip: true}}\n"))
    assert list(cfg.settings) == ["fast", "best"] and cfg.sets == []
    with pytest.raises(ConfigError, match="settings.best"):
        load_config(_write(tmp_path, "settings:\n  best: {tracker: {max_lost: 3}}\n"))
    with pytest.raises(ConfigError, match="settings"):
        load_config(_write(tmp_path, "videos: []\n"))


def test_unknown_setting_name_is_one_line_and_status_2(tmp_path, capsys):
    path = _write(tmp_path, "settings:\n  fast: {}\n")
    assert main(["eval-quality", "--config", str(path), "--settings", "fast,ultra", "--no-speed"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ultra" in err[0]
