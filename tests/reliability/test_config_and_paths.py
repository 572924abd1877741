"""Settings and paths: every bad setting is refused with its key's name in one line; paths with spaces
and non-ASCII characters work everywhere (sources, outputs, configs, weights), also under a C locale.

Settings errors are raised before any model loads, so these run in-process and fast; the end-to-end
path test runs the real command once in a subprocess.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from app.run.pipeline import Pipeline
from posecore.io.result_writers import read_jsonl
from posecore.io.sources import open_source

from tests.reliability.conftest import assert_one_line_error, run_cli
from tests.reliability.media import pattern, scripted_pipeline, write_video


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("c") / "clip.mp4", n=3)


@pytest.mark.parametrize("yaml_text, key", [
    # unknown keys, at every level
    ("detectr:\n  imgsz: 320\n", "detectr: unknown key"),
    ("detector:\n  colour: red\n", "detector.colour: unknown key"),
    ("tracker:\n  max_lots: 3\n", "tracker.max_lots: unknown key"),
    ("pose:\n  weight: a.pt\n", "pose.weight: unknown key"),
    # wrong types
    ("detector:\n  imgsz: big\n", "detector.imgsz: expected int or 'auto', got 'big'"),
    ("detector:\n  imgsz: 320.5\n", "detector.imgsz: expected int or 'auto'"),
    ("detector:\n  half: 'yes please'\n", "detector.half: expected true or false"),
    ("detector:\n  conf: [0.1]\n", "detector.conf: expected a number"),
    ("tracker: 5\n", "tracker: expected a mapping"),
    ("prefetch: '4'\n", "prefetch: expected an integer"),
    ("pose:\n  backend: openpose\n", "pose.backend: expected one of"),
    # out of range
    ("detector:\n  conf: 0\n", "detector.conf: must be > 0"),
    ("detector:\n  imgsz: 8\n", "detector.imgsz: must be >= 32"),
    ("detector:\n  iou: 1.5\n", "detector.iou: must be <= 1"),
    ("tracker:\n  max_lost: -1\n", "tracker.max_lost: must be >= 0"),
    ("tracker:\n  kp_meas_std: .inf\n", "tracker.kp_meas_std: expected a finite number"),
    ("prefetch: 0\n", "prefetch: must be >= 1"),
])
def test_bad_setting_in_a_config_file_names_its_key(cli_main, clip, tmp_path, yaml_text, key):
    cfg = tmp_path / "my settings é.yaml"
    cfg.write_text(yaml_text, encoding="utf-8")
    assert_one_line_error(cli_main("process", clip, "-o", tmp_path / "o", "-q", "--config", cfg), key)
    assert not (tmp_path / "o").exists()  # refused before anything was written


def test_cross_field_check_names_the_full_key(cli_main, clip, tmp_path):
    r = cli_main("process", clip, "-o", tmp_path / "o", "-q", "--set", "tracker.low_score=0.9")
    assert_one_line_error(r, "tracker.low_score")


@pytest.mark.parametrize("content, needle", [
    ("detector: [unclosed\n", "invalid YAML"),
    ("- just\n- a list\n", "expected a mapping at the top level"),
    (b"detector:\n  imgsz: \xff\xfe\n", "cannot read config"),
])
def test_malformed_config_files(cli_main, clip, tmp_path, content, needle):
    cfg = tmp_path / "bad config.yaml"
    cfg.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert_one_line_error(cli_main("process", clip, "-o", tmp_path / "o", "-q", "--config", cfg), needle, cfg.name)


def test_missing_config_and_a_folder_as_config(cli_main, clip, tmp_path):
    assert_one_line_error(cli_main("process", clip, "-q", "--config", tmp_path / "nope.yaml"), "config file not found")
    assert_one_line_error(cli_main("process", clip, "-q", "--config", tmp_path), "cannot read config")


@pytest.mark.parametrize("override, needle", [
    ("=3", "expected KEY=VALUE"),
    ("tracker.", "expected KEY=VALUE"),
    ("noequals", "expected KEY=VALUE"),
    ("detector=3", "detector: expected a mapping"),
    ("detector.imgsz.x=3", "detector.imgsz: expected int or 'auto'"),
    ("tracker.min_hits=0", "tracker.min_hits: must be >= 1"),
    ("detector.max_det=1e3", "detector.max_det: expected an integer"),
    ("workers=99", "workers: must be <= 16"),
])
def test_bad_overrides(cli_main, clip, tmp_path, override, needle):
    assert_one_line_error(cli_main("process", clip, "-o", tmp_path / "o", "-q", "--set", override), needle)


@pytest.mark.parametrize("args", [["--max-frames", "0"], ["--max-frames", "ten"], ["--imgsz", "big"],
                                  ["--conf", "high"], ["--pose", "openpose"]])
def test_bad_flags_are_usage_errors(cli_main, clip, tmp_path, args):
    r = cli_main("process", clip, "-o", tmp_path / "o", *args)
    assert_one_line_error(r, args[0], "usage: occlupose process --help", prefix="occlupose process: error:")
    assert r.returncode == 2


def test_config_file_values_are_used(cli_main, clip, tmp_path, monkeypatch):
    """A good config file with non-ASCII in its path reaches the pipeline unchanged."""
    seen = {}

    def from_config(cls, cfg):
        seen["cfg"] = cfg
        return scripted_pipeline()

    monkeypatch.setattr(Pipeline, "from_config", classmethod(from_config))
    cfg = tmp_path / "réglages 設定.yaml"
    cfg.write_text("tracker:\n  max_lost: 7\ndetector:\n  imgsz: 320\n", encoding="utf-8")
    r = cli_main("process", clip, "-o", tmp_path / "o", "-q", "--config", cfg, "--set", "tracker.min_hits=3")
    assert r.returncode == 0, r.stderr
    c = seen["cfg"]
    assert (c.tracker.max_lost, c.detector.imgsz, c.tracker.min_hits) == (7, 320, 3)


def test_non_ascii_paths_everywhere_in_process(cli_main, tmp_path, monkeypatch):
    monkeypatch.setattr(Pipeline, "from_config", classmethod(lambda cls, cfg: scripted_pipeline()))
    src_dir = tmp_path / "vidéos de l'été" / "北京 2024"
    src_dir.mkdir(parents=True)
    clip = write_video(src_dir / "Clip n°1 – copie.mp4", n=4)
    out = tmp_path / "résultats" / "run 1 ✓"
    r = cli_main("process", clip, "-o", out, "-q")
    assert r.returncode == 0, r.stderr
    stem = "Clip_n_1___copie"
    assert len(list(read_jsonl(out / f"{stem}.jsonl"))) == 4
    assert len(json.loads((out / f"{stem}.coco.json").read_text())) == 8
    assert len(list(open_source(str(out / f"{stem}.mp4")))) == 4
    assert str(out / f"{stem}.jsonl") in r.stdout

    photos = tmp_path / "фото группы"
    photos.mkdir()
    for i, name in enumerate(["première.jpg", "второй.png", "第三.jpg"]):
        ok, buf = cv2.imencode(name[-4:], pattern(i, 64, 48))
        (photos / name).write_bytes(buf.tobytes())
    r = cli_main("process", photos, "-o", out, "-q")
    assert r.returncode == 0, r.stderr
    recs = list(read_jsonl(out / "фото_группы.jsonl"))
    assert sorted(rec["source"] for rec in recs) == sorted(["première.jpg", "второй.png", "第三.jpg"])
    annotated = sorted(p.name for p in (out / "фото_группы_annotated").iterdir())
    assert annotated == sorted(["première.jpg", "второй.jpg", "第三.jpg"])


def test_real_command_with_non_ascii_paths_under_c_locale(tmp_path):
    """End to end in a subprocess, with the C locale (ASCII) a bare server or container often has."""
    folder = tmp_path / "dossier été" / "видео"
    folder.mkdir(parents=True)
    clip = write_video(folder / "danse à deux.mp4", n=3, size=(96, 64))
    weights = tmp_path / "poids spéciaux"
    weights.mkdir()
    from posecore.detector import bundled_weights

    (weights / "modèle n.pt").write_bytes(bundled_weights().read_bytes())
    out = tmp_path / "sortie ü"
    r = run_cli("process", clip, "-o", out, "-q", "--imgsz", "64", "--det-weights", weights / "modèle n.pt",
                "--device", "cpu", env={"LC_ALL": "C", "LANG": "C"}, timeout=240)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert [rec["frame"] for rec in read_jsonl(out / "danse_à_deux.jsonl")] == [0, 1, 2]
    assert (out / "danse_à_deux.coco.json").is_file()
    assert "danse_à_deux.jsonl" in r.stdout
    assert np.all([p.stat().st_size > 0 for p in out.iterdir()])


def test_a_broken_optional_command_does_not_break_the_others(cli_main, clip, tmp_path, monkeypatch):
    """An optional command module (the benchmark, say) that fails to import: `process` still runs,
    and the broken command says why in one line."""
    import importlib

    from app import cli

    real_import = importlib.import_module

    def import_module(name, *args):
        if name == "app.brokencmd":
            raise RuntimeError("half-written module")
        return real_import(name, *args)

    monkeypatch.setattr(cli.importlib, "import_module", import_module)
    monkeypatch.setattr(cli, "EXTRA_COMMANDS", ("app.brokencmd", "app.no_such_command"))
    monkeypatch.setattr(Pipeline, "from_config", classmethod(lambda cls, cfg: scripted_pipeline()))
    assert cli_main("process", clip, "-o", tmp_path / "o", "-q").returncode == 0
    assert_one_line_error(cli_main("brokencmd"), "brokencmd command is unavailable", "half-written module")
