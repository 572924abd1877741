"""Model files that are not what they claim: somebody else's checkpoint, a truncated one, and pickles
that would execute code. Our checkpoint loader (posecore.weights, torch ``weights_only=True``) and the
YOLO loader (Ultralytics' restricted loader, switched on by posecore.ultralytics_env) refuse them with
one line, and the code in a malicious file never runs: each one would create a marker folder.

Case by case, beyond tests/models/test_weights.py: more truncation points, proof that nothing ran,
and the same files through the command line for both loaders.
"""

from __future__ import annotations

import os
import pickle
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from posecore.errors import WeightsError
from posecore.weights import load_checkpoint, read_checkpoint, save_checkpoint

from tests.reliability.conftest import assert_one_line_error
from tests.reliability.media import write_video


class _MakesDir:
    """Unpickling this calls os.mkdir(path): harmless, and visible afterwards."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


class _Execs:
    def __init__(self, path: Path):
        self.code = f"import os; os.mkdir({str(path)!r})"

    def __reduce__(self):
        return (exec, (self.code,))


@pytest.fixture(scope="module")
def good_ckpt(tmp_path_factory) -> Path:
    from posecore.models import build_model

    torch.manual_seed(0)
    model = build_model({"name": "dag_hrnet_small", "input_size": [64, 64], "skeleton": "coco17"})
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny dag.pt", model, extra={"epoch": 3})


def _malicious_files(d: Path, marker: Path) -> dict[str, Path]:
    """Every way we know to smuggle a call into a weights file, each aimed at creating ``marker``."""
    files = {}
    torch.save({"format": "occlupose-checkpoint", "version": 1, "config": '{"name": "dag_hrnet_small"}',
                "state_dict": {}, "extra": {"x": _MakesDir(marker)}}, d / "evil_extra.pt")
    files["evil_extra"] = d / "evil_extra.pt"
    torch.save({"model": _Execs(marker), "train_args": {}}, d / "evil_yolo_like.pt")  # shaped like a YOLO file
    files["evil_yolo_like"] = d / "evil_yolo_like.pt"
    with open(d / "evil_raw.pt", "wb") as f:
        pickle.dump(_MakesDir(marker), f, protocol=2)
    files["evil_raw"] = d / "evil_raw.pt"
    with open(d / "evil_proto0.pt", "wb") as f:
        pickle.dump(_MakesDir(marker), f, protocol=0)  # a text pickle: no binary header at all
    files["evil_proto0"] = d / "evil_proto0.pt"
    return files


def test_our_loader_refuses_pickles_that_run_code(tmp_path):
    marker = tmp_path / "code ran"
    for name, path in _malicious_files(tmp_path, marker).items():
        with pytest.raises(WeightsError) as e:
            load_checkpoint(path)
        msg = str(e.value)
        assert "\n" not in msg and path.name in msg, msg
        assert "refusing to load" in msg or "not a checkpoint" in msg, (name, msg)
        assert not marker.exists(), f"{name}: the file's code ran"


@pytest.mark.parametrize("keep", [0, 2, 10, 100, 0.01, 0.5, 0.9, -1])
def test_truncated_checkpoint_at_any_point(good_ckpt, tmp_path, keep):
    data = good_ckpt.read_bytes()
    n = keep if isinstance(keep, int) and keep >= 0 else (len(data) - 1 if keep == -1 else int(len(data) * keep))
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[:n])
    with pytest.raises(WeightsError) as e:
        read_checkpoint(cut)
    assert "\n" not in str(e.value) and "cut.pt" in str(e.value)


def test_checkpoints_that_are_not_ours(good_ckpt, tmp_path):
    from posecore.detector import bundled_weights

    yolo = bundled_weights()  # an Ultralytics file: a pickle of their model classes
    with pytest.raises(WeightsError, match="refusing to load|not an occlupose checkpoint"):
        read_checkpoint(yolo)
    plain_zip = tmp_path / "archive.pt"
    with zipfile.ZipFile(plain_zip, "w") as z:
        z.writestr("readme.txt", "not a model")
    with pytest.raises(WeightsError, match="corrupt|not"):
        read_checkpoint(plain_zip)
    torch.save({"state_dict": torch.load(good_ckpt, weights_only=True)["state_dict"]}, tmp_path / "other.pt")
    with pytest.raises(WeightsError, match="not an occlupose checkpoint"):
        read_checkpoint(tmp_path / "other.pt")
    torch.save([torch.zeros(3)], tmp_path / "list.pt")
    with pytest.raises(WeightsError, match="not an occlupose checkpoint"):
        read_checkpoint(tmp_path / "list.pt")
    (tmp_path / "folder.pt").mkdir()
    with pytest.raises(WeightsError, match="not found"):
        read_checkpoint(tmp_path / "folder.pt")


def test_dag_weights_through_the_command_line(cli_main, good_ckpt, tmp_path):
    """--pose dag --weights FILE: every bad file is one line naming it; nothing in it runs."""
    clip = write_video(tmp_path / "clip.mp4", n=2)
    marker = tmp_path / "code ran"
    bad = _malicious_files(tmp_path, marker)
    cut = tmp_path / "cut dag.pt"
    cut.write_bytes(good_ckpt.read_bytes()[:5000])
    for path in [*bad.values(), cut]:
        r = cli_main("process", clip, "-o", tmp_path / "o", "-q", "--pose", "dag", "--weights", path,
                     "--imgsz", "64", "--device", "cpu")
        assert_one_line_error(r, path.name)
    assert not marker.exists()


def test_yolo_loader_refuses_pickles_that_run_code(tmp_path):
    """--det-weights FILE, in a fresh process as a user runs it: Ultralytics files are pickles, and the
    restricted loader must refuse these before any of their code runs."""
    clip = write_video(tmp_path / "clip.mp4", n=2)
    marker = tmp_path / "code ran"
    files = _malicious_files(tmp_path, marker)
    # One process checks them all, then runs the command line on one of them (a process start with torch
    # costs seconds): the loader first, so that it meets the files in a fresh interpreter.
    script = (
        "import sys\n"
        "from posecore.detector import load_yolo\n"
        "from posecore.errors import WeightsError\n"
        "clip, out, *paths = sys.argv[1:]\n"
        "for p in paths:\n"
        "    try:\n"
        "        load_yolo(p)\n"
        "        print('LOADED', p)\n"
        "    except WeightsError as e:\n"
        "        print('REFUSED', ' '.join(str(e).split()))\n"
        "sys.stdout.flush()\n"
        "from app.cli import main\n"
        "sys.exit(main(['process', clip, '-o', out, '-q', '--det-weights', paths[1]]))\n"
    )
    import subprocess

    from tests.reliability.conftest import ROOT

    assert files["evil_yolo_like"] == list(files.values())[1]
    r = subprocess.run([sys.executable, "-c", script, str(clip), str(tmp_path / "o"), *map(str, files.values())],
                       capture_output=True, text=True, timeout=180, cwd=ROOT)
    outcomes = [ln for ln in r.stdout.splitlines() if ln.startswith(("LOADED", "REFUSED"))]
    assert len(outcomes) == len(files) and all(o.startswith("REFUSED") for o in outcomes), (r.stdout, r.stderr)
    assert not marker.exists(), "a YOLO weights file ran its code"
    # and the command line reports it in one line
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 1 and len(lines) == 1 and "evil_yolo_like.pt" in lines[0], r.stderr
    assert not marker.exists()


def test_yolo_loader_on_files_that_are_not_yolo(good_ckpt, tmp_path):
    """Our own checkpoint, a truncated YOLO file, text: WeightsError naming the file, in-process."""
    from posecore.detector import bundled_weights, load_yolo

    cut = tmp_path / "cut yolo.pt"
    data = bundled_weights().read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    text = tmp_path / "notes.pt"
    text.write_text("not weights")
    for path in (good_ckpt, cut, text):
        with pytest.raises(WeightsError) as e:
            load_yolo(path)
        assert path.name in str(e.value)


def test_training_loaders_refuse_the_same_files(good_ckpt, tmp_path):
    """The training resume state (train.checkpoint) and starting weights (train.build) read with
    weights_only too: malicious and truncated files are one-line errors, and nothing runs."""
    from posecore.errors import ConfigError
    from posecore.skeleton import get_skeleton
    from train.build import build_net
    from train.checkpoint import load_resume_state
    from train.config import ModelSection

    def start_from(path: Path):
        section = ModelSection(params={"name": "dag_hrnet_small", "input_size": [64, 64]}, backbone_weights=path)
        return build_net(section, get_skeleton("coco17"))

    marker = tmp_path / "code ran"
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good_ckpt.read_bytes()[:3000])
    for path in [*_malicious_files(tmp_path, marker).values(), cut]:
        with pytest.raises(WeightsError) as e:
            load_resume_state(path)
        assert "\n" not in str(e.value) and path.name in str(e.value)
        with pytest.raises(ConfigError) as e:
            start_from(path)
        assert "\n" not in str(e.value) and path.name in str(e.value)
    assert not marker.exists()
    with pytest.raises(WeightsError, match="not a training state"):
        load_resume_state(good_ckpt)  # a model file where a resume state belongs
