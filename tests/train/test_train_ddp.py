"""Multi-process training through torchrun: two CPU processes on the gloo backend, a couple of steps."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from train.distributed import ShardSampler

ROOT = Path(__file__).resolve().parents[2]


def test_shards_split_an_epoch_between_ranks_and_resume_part_way():
    shards = [list(ShardSampler(11, shuffle=True, seed=3, rank=r, world_size=2)) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 6  # padded to a multiple of the world size
    assert set(shards[0]) | set(shards[1]) == set(range(11))
    s = ShardSampler(11, shuffle=True, seed=3, rank=1, world_size=2)
    s.set_epoch(0, skip=4)
    assert list(s) == shards[1][4:] and len(s) == 2
    s.set_epoch(1)
    assert list(s) != shards[1]  # a new order each epoch
    evaluation = [list(ShardSampler(11, shuffle=False, rank=r, world_size=2, pad=False)) for r in range(2)]
    assert sorted(evaluation[0] + evaluation[1]) == list(range(11))  # every crop exactly once


def test_torchrun_two_gloo_processes(tmp_path, cpu_config, tiny_overrides):
    out = tmp_path / "ddp"
    args = tiny_overrides(out, **{"solver.epochs": 1, "solver.max_iters_per_epoch": 2, "data.val.max_people": 6})
    # torchrun leaves a torchelastic_* folder in the temporary directory: this test's, not the machine's.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "TMPDIR": str(tmp_path)}
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "train", "fit", "--config", str(cpu_config), *args],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "x 2 processes" in res.stderr
    assert res.stderr.count("model dag_hrnet_small") == 1  # only rank 0 reports
    with open(out / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and rows[0]["iteration"] == "2" and rows[0]["AP"] != ""
    # Each rank evaluated its share; the main process scored all of them once.
    assert len(json.loads((out / "val_results.json").read_text())) == 6
    assert (out / "last.pt").is_file() and (out / "last_state.pt").is_file()
