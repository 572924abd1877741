"""``fit`` and ``eval`` on the real COCO-mini subset, cut to seconds: outputs, resume, and resume after a kill."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from posecore.weights import load_checkpoint
from tests.conftest import shared_path
from train import commands

ROOT = Path(__file__).resolve().parents[2]


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_fit_writes_checkpoints_logs_plots_then_resumes_and_evaluates(tmp_path, cpu_config, tiny_overrides, capsys,
                                                                     sample_paths):
    out = tmp_path / "run"
    state = commands.fit(cpu_config, tiny_overrides(out))
    assert (state.epoch, state.iteration) == (2, 2)
    for name in ("last.pt", "best.pt", "last_state.pt", "log.csv", "losses.png", "metrics.png", "config.yaml",
                 "val_results.json"):
        assert (out / name).is_file(), name
    assert (out / "losses.png").read_bytes()[:4] == b"\x89PNG"
    rows = read_csv(out / "log.csv")
    assert [r["epoch"] for r in rows] == ["1", "2"]
    for key in ("loss.lt", "loss.lm", "loss.lp", "loss.ls", "AP", "visible.AP", "occluded.AP"):
        assert key in rows[0] and rows[0][key] != "", key
    # The resume state and the model both load with weights_only=True.
    resume = torch.load(out / "last_state.pt", map_location="cpu", weights_only=True)
    assert resume["state"]["iteration"] == 2
    model, cfg = load_checkpoint(out / "last.pt")
    assert cfg["name"] == "dag_hrnet_small" and tuple(model.input_size) == (64, 64)

    # Asking for one more epoch continues from the saved state instead of starting over.
    capsys.readouterr()
    state = commands.fit(cpu_config, tiny_overrides(out, **{"solver.epochs": 3}))
    assert (state.epoch, state.iteration) == (3, 3)
    assert "resuming from" in capsys.readouterr().err
    rows2 = read_csv(out / "log.csv")
    assert [r["epoch"] for r in rows2] == ["1", "2", "3"] and rows2[:2] == rows

    printed: list[str] = []
    metrics = commands.evaluate(cpu_config, tiny_overrides(out), weights=out / "last.pt", out=printed.append,
                                note=lambda s: None)
    assert 0.0 <= metrics["AP"] <= 1.0 and "occluded.AP" in metrics
    assert printed[1].startswith("AP ") and any(line.startswith("visible joints") for line in printed)
    assert (out / "eval" / "metrics.json").is_file() and (out / "eval" / "results.json").is_file()

    # Detection boxes from the sample's results file, with flip test.
    det_file = sample_paths("coco")[1].parent / "test_coco_det_AP_H_56.json"
    notes: list[str] = []
    metrics = commands.evaluate(cpu_config, tiny_overrides(out, **{"data.val.boxes": "detections",
                                                                   "data.val.det_file": det_file,
                                                                   "data.val.det_score_thr": 0.9,
                                                                   "eval.flip_test": "true"}),
                                weights=out / "last.pt", output=tmp_path / "det", out=printed.append, note=notes.append)
    assert any("4 detected boxes, flip test on" in n for n in notes) and 0.0 <= metrics["AP"] <= 1.0


def test_resume_after_the_process_is_killed(tmp_path, cpu_config, tiny_overrides, capsys):
    out = tmp_path / "run"
    args = tiny_overrides(out, **{"solver.checkpoint_every_iters": 1, "solver.max_iters_per_epoch": 3,
                                  "solver.epochs": 1, "solver.eval_every": 0})
    proc = subprocess.Popen([sys.executable, "-m", "train", "fit", "--config", str(cpu_config), *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state_file = out / "last_state.pt"
    try:
        deadline = time.time() + 120
        while not state_file.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    done = torch.load(state_file, map_location="cpu", weights_only=True)["state"]
    assert 1 <= done["iteration"] < 3 and done["step_in_epoch"] == done["iteration"]  # killed mid-epoch
    capsys.readouterr()
    state = commands.fit(cpu_config, args)
    err = capsys.readouterr().err
    assert f"(iteration {done['iteration']})" in err
    assert (state.epoch, state.iteration) == (1, 3)  # no step done twice, none skipped


def test_a_few_steps_with_visibility_reasoning_switch_the_mask_and_read_at_the_body_centre(
        tmp_path, cpu_config, tiny_overrides, capsys, monkeypatch):
    from train.build import PoseForward

    given = []  # what each training step handed the model besides the image
    call = PoseForward.__call__

    def spy(self, net, batch):
        given.append((self.teacher_force, self.centers, tuple(batch["body_center"].shape)))
        return call(self, net, batch)

    monkeypatch.setattr(PoseForward, "__call__", spy)
    out = tmp_path / "vis"
    state = commands.fit(cpu_config, tiny_overrides(out, **{
        "model.params.visibility": "{enabled: true, dim: 32}", "model.body_center.source": "visible_joints",
        "solver.visibility_teacher_epochs": 1, "solver.eval_every": 0}))
    assert state.iteration == 2
    assert "visibility mask: ground truth for 1 epoch, then VisNet's prediction" in capsys.readouterr().err
    # Epoch 1 with the ground-truth mask, epoch 2 with VisNet's; both with the joints' body centre.
    assert given == [(True, True, (2, 2)), (False, True, (2, 2))]
    rows = read_csv(out / "log.csv")
    assert all(float(r["loss.lvis"]) > 0 for r in rows)
    model, cfg = load_checkpoint(out / "last.pt")
    assert model.gcn.visibility is not None and cfg["visibility"]["enabled"]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "train", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=env)


def test_cli_bad_input_is_one_line_without_traceback(cpu_config):
    res = run_cli("fit", "--config", str(cpu_config), "solver.epochs=0")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == ["error: solver.epochs: must be >= 1, got 0"]


@pytest.mark.parametrize("override,needle", [
    ("solver.nope=1", "solver.nope: unknown key"),
    ("solver.batch_size=many", "solver.batch_size: expected an integer"),
    ("augment.limb_joints.ratio=2", "augment.limb_joints.ratio: must be <= 1.0"),
    ("augment.instance_paste.scale_range=[2, 1]", "augment.instance_paste: scale_range"),
    ("data.train.ann_file=/nonexistent/ann.json", "data.train.ann_file: no such file"),
    ("model.params.name=no_such_model", "unknown model 'no_such_model'"),
])
def test_config_mistakes_name_their_key(override, needle, cpu_config, capsys):
    from train.__main__ import main

    if override.startswith("model."):
        shared_path("coco_mini_train2017")  # the model is built after the data is read

    assert main(["fit", "--config", str(cpu_config), override]) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # (after the dataset report, when the data was read first)
    assert last.startswith("error: ") and needle in last and "Traceback" not in err


def test_eval_of_missing_weights_is_one_line(cpu_config, capsys, tmp_path):
    from train.__main__ import main

    shared_path("coco_sample")  # the data files are checked before the weights

    assert main(["eval", "--config", str(cpu_config), "--weights", str(tmp_path / "none.pt")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_eval_scores_a_predictions_file(tmp_path, cpu_config, load_gt, capsys):
    import json

    from train.__main__ import main
    from train.evaluate import gt_as_results

    results = tmp_path / "gt_results.json"
    results.write_text(json.dumps(gt_as_results(load_gt("coco"))))
    assert main(["eval", "--config", str(cpu_config), "--predictions", str(results), "--output", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("AP 1.0000")
    assert json.loads((tmp_path / "metrics.json").read_text())["AP"] == 1.0
