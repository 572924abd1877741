import os
import pickle

import pytest
import torch

from posecore.errors import WeightsError
from posecore.models import build_model
from posecore.weights import load_checkpoint, read_checkpoint, save_checkpoint


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_model({"name": "dag_hrnet_small", "input_size": [64, 64], "skeleton": "crowdpose14"})


def test_round_trip_rebuilds_the_model_from_the_file_alone(tmp_path, model):
    extra = {"epoch": 7, "ap": 0.5, "opt": {"m": torch.ones(2)}}
    path = save_checkpoint(tmp_path / "sub" / "dag.pt", model, extra=extra)
    loaded, config = load_checkpoint(path)
    assert config == {"name": "dag_hrnet_small", "input_size": [64, 64], "skeleton": "crowdpose14"}
    assert not loaded.training and loaded.num_joints == 14
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k
    ckpt = read_checkpoint(path)
    assert ckpt.extra["epoch"] == 7 and torch.equal(ckpt.extra["opt"]["m"], torch.ones(2))
    # Plain torch can read it safely too.
    assert torch.load(path, weights_only=True)["format"] == "occlupose-checkpoint"
    assert not any(p.name.endswith(".tmp") for p in path.parent.iterdir())


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_refuses_what_is_not_ours_or_not_safe(tmp_path, model):
    good = save_checkpoint(tmp_path / "good.pt", model)
    blob = good.read_bytes()
    torch.save({"format": "occlupose-checkpoint", "payload": _Evil()}, tmp_path / "evil_zip.pt")
    with open(tmp_path / "evil_raw.pt", "wb") as f:
        pickle.dump(_Evil(), f)
    torch.save(model.state_dict(), tmp_path / "bare.pt")
    cases = {
        "missing.pt": "not found",
        _write(tmp_path / "truncated.pt", blob[: len(blob) // 2]).name: "corrupt or truncated",
        _write(tmp_path / "text.pt", b"hello world").name: "not a checkpoint",
        "evil_zip.pt": "refusing to load",
        "evil_raw.pt": "refusing to load",
        "bare.pt": "not an occlupose checkpoint",
    }
    for name, message in cases.items():
        with pytest.raises(WeightsError, match=message):
            load_checkpoint(tmp_path / name)


def test_mismatched_weights_and_configs_are_clear(tmp_path, model):
    ckpt = torch.load(save_checkpoint(tmp_path / "a.pt", model), weights_only=True)
    other = dict(ckpt, config=ckpt["config"].replace("crowdpose14", "coco17"))
    torch.save(other, tmp_path / "wrong_skeleton.pt")
    with pytest.raises(WeightsError, match="do not fit dag_hrnet_small: shape mismatch: multi_head.conv.weight"):
        load_checkpoint(tmp_path / "wrong_skeleton.pt")
    torch.save(dict(ckpt, config='{"name": "no_such_model"}'), tmp_path / "unknown.pt")
    with pytest.raises(WeightsError, match="does not build a model"):
        load_checkpoint(tmp_path / "unknown.pt")
    torch.save(dict(ckpt, version=99), tmp_path / "future.pt")
    with pytest.raises(WeightsError, match="newer"):
        load_checkpoint(tmp_path / "future.pt")


def test_save_needs_a_config_and_plain_extras(tmp_path, model):
    with pytest.raises(ValueError, match="name"):
        save_checkpoint(tmp_path / "x.pt", torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="extra.when"):
        save_checkpoint(tmp_path / "x.pt", model, extra={"when": object()})


def test_shipped_refiner_loads_in_a_fresh_process_whatever_was_imported_before():
    """The model registry must not depend on which module happened to be imported first."""
    import subprocess
    import sys
    from importlib import resources

    shipped = resources.files("posecore.assets") / "weights" / "refiner_yolo11n.pt"
    code = ("import sys; from posecore.weights import load_checkpoint; "
            "model, cfg = load_checkpoint(sys.argv[1]); print(cfg['name'], type(model).__name__)")
    out = subprocess.run([sys.executable, "-c", code, str(shipped)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr.strip().splitlines()[-1:]
    assert out.stdout.split() == ["yolo_refiner", "YoloRefinerNet"]


def test_every_builder_is_registered_by_importing_the_models_package():
    import subprocess
    import sys

    code = "from posecore.models import list_models; print(' '.join(list_models()))"
    alone = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert alone.returncode == 0, alone.stderr
    assert "yolo_refiner" in alone.stdout.split()
