import argparse
import json

import pytest

from app.bench import models as model_bench
from posecore.errors import OccluposeError


def _parse(argv):
    parser = argparse.ArgumentParser()
    model_bench.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["bench-models", *argv])


def test_bench_models_prints_and_writes_per_person_latency(tmp_path, capsys):
    out = tmp_path / "bench.json"
    args = _parse(["--models", "hrnet_small", "--people", "2", "--repeats", "1", "--warmup", "0",
                   "--device", "cpu", "--json", str(out)])
    assert args.func is model_bench.run
    assert args.func(args) == 0
    report = json.loads(out.read_text())
    rows = {r["model"]: r for r in report["rows"]}
    assert set(rows) == {"hrnet_small", "fgmh_gcn", "couplegraph (per pair)"}
    small = rows["hrnet_small"]
    assert small["people"] == 2 and small["ms_per_person"] > 0 and small["input"] == "256x192"
    assert abs(small["gmacs"] - 0.459) < 0.01
    assert "ms/person" in capsys.readouterr().out


def test_unknown_model_is_a_user_error():
    with pytest.raises(OccluposeError, match="unknown"):
        model_bench.run(_parse(["--models", "nope"]))
