"""`sbnn sweep --executor ray`: each (scheme, EC, seed) point a Ray task on a local runtime (2 CPUs, no
dashboard); the table is the local executor's for the same seeds, and a rerun reuses every finished point."""

from __future__ import annotations

import csv
import socket

import pytest

from sbnn.cli import main

# 4 scheme points at one EC plus the dense baseline, 2 seeds: 10 runs per executor
TINY = ["--dataset", "digits", "--model", "tfc", "--epochs", "1", "--train-subset", "1024", "--ecs", "0.25",
        "--seeds", "0,1", "--device", "cpu", "--quiet"]
# one torch thread per point in both executors: the thread count changes float rounding, and a net this
# short of training turns a flipped near-zero weight into a different prediction
SAME_THREADS = ["--threads-per-point", "1"]
TIMING = {"seconds_per_epoch"}


def _table(path):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in csv.DictReader(path.open())]


@pytest.mark.slow
def test_ray_sweep_matches_local(tmp_path, capsys):
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    assert main(["sweep", "--out", str(local), *TINY, *SAME_THREADS]) == 0
    assert main(["sweep", "--out", str(on_ray), "--executor", "ray", "--jobs", "2", *TINY, *SAME_THREADS]) == 0
    printed = capsys.readouterr().out
    assert "mean ± std over 2 seeds" in printed and "(10 runs)" in printed
    rows = _table(on_ray / "sweep.csv")
    assert rows == _table(local / "sweep.csv")
    assert _table(on_ray / "sweep_runs.csv") == _table(local / "sweep_runs.csv")
    assert (on_ray / "sweep.md").read_text() == (local / "sweep.md").read_text()
    assert len(rows) == 5 and all(r["seeds"] == "2" and r["test_accuracy_std"] != "" for r in rows)
    # a finished point is reused: a rerun on Ray trains nothing (no metrics.json rewritten)
    stamps = {p: p.stat().st_mtime_ns for p in on_ray.glob("*/metrics.json")}
    assert len(stamps) == 10
    assert main(["sweep", "--out", str(on_ray), "--executor", "ray", "--jobs", "2", *TINY, *SAME_THREADS]) == 0
    assert {p: p.stat().st_mtime_ns for p in on_ray.glob("*/metrics.json")} == stamps


def test_ray_address_needs_ray_executor(tmp_path, capsys):
    rc = main(["sweep", "--out", str(tmp_path / "s"), "--ray-address", "127.0.0.1:6379", *TINY])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--executor ray" in err


def test_unreachable_ray_address_is_one_line(tmp_path, capsys):
    with socket.socket() as s:   # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rc = main(["sweep", "--out", str(tmp_path / "s"), "--executor", "ray", "--ray-address", f"127.0.0.1:{port}",
               *TINY])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "nothing answers" in err and "ray start --head" in err, err
    assert not (tmp_path / "s").exists()


def test_bad_seeds_are_one_line(tmp_path, capsys):
    for seeds, needle in (("0,x", "comma-separated integers"), ("1,1", "distinct")):
        rc = main(["sweep", "--out", str(tmp_path / "s"), *TINY[:-5], "--seeds", seeds, "--quiet"])
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1 and needle in err, err
    assert not (tmp_path / "s").exists()
