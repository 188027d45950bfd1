"""The accuracy-vs-sparsity sweep on tiny settings: every scheme runs, the table, CSV and plot appear."""

import csv

import pytest

from sbnn.cli import main


def test_sweep_tiny(tmp_path, capsys):
    out = tmp_path / "sweep"
    args = ["sweep", "--dataset", "digits", "--model", "tfc", "--epochs", "2", "--ecs", "0.5,0.1", "--out", str(out),
            "--quiet"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "Dense ±1 baseline" in printed
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert [(r["scheme"], r["ec_target"]) for r in rows] == [
        ("bipolar-dense", ""), ("alpha-beta", "0.5"), ("alpha-beta", "0.1"), ("alpha-beta-learned", "0.5"),
        ("alpha-beta-learned", "0.1"), ("zero-beta", "0.5"), ("zero-beta", "0.1"), ("bipolar-pruned", "0.5"),
        ("bipolar-pruned", "0.1")]
    for r in rows[1:]:
        if r["scheme"] != "alpha-beta-learned":   # exact EC by construction; the learned one is a budget
            assert float(r["connections"]) == pytest.approx(float(r["ec_target"]), abs=0.01), r
    assert (out / "sweep.png").stat().st_size > 10_000
    table = (out / "sweep.md").read_text()
    assert table.count("\n| 0.") == 2
    # a rerun reuses every finished point instead of training again
    stamp = (out / "alpha-beta_ec0.1" / "metrics.json").stat().st_mtime_ns
    assert main(args) == 0
    assert (out / "alpha-beta_ec0.1" / "metrics.json").stat().st_mtime_ns == stamp
    # other settings into the same folder: refused, nothing overwritten
    capsys.readouterr()
    assert main([a if a != "2" else "1" for a in args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "other settings" in err and "epochs 2 -> 1" in err
    assert (out / "alpha-beta_ec0.1" / "metrics.json").stat().st_mtime_ns == stamp


def test_sweep_rejects_bad_ec(tmp_path, capsys):
    rc = main(["sweep", "--dataset", "digits", "--ecs", "0.5,2", "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert rc == 2 and "(0, 1)" in err and err.count("\n") == 1


def test_sweep_parallel_jobs(tmp_path, capsys):
    """--jobs 2 trains points in worker processes: every point ends up in the table, and a rerun
    (sequential this time) reuses all of them."""
    out = tmp_path / "sweep"
    args = ["sweep", "--dataset", "digits", "--model", "tfc", "--epochs", "1", "--ecs", "0.1", "--out", str(out),
            "--quiet"]
    assert main(args + ["--jobs", "2"]) == 0
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert len(rows) == 5 and all(0.0 < float(r["test_accuracy"]) <= 1.0 for r in rows)
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/metrics.json")}
    assert len(stamps) == 5
    assert main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/metrics.json")} == stamps


def test_sweep_rejects_bad_jobs(tmp_path, capsys):
    rc = main(["sweep", "--dataset", "digits", "--jobs", "0", "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert rc == 2 and "--jobs" in err and err.count("\n") == 1


def test_seeds_aggregate_to_mean_and_std():
    """Rows per (scheme, EC) over the seeds: mean accuracy, sample std, difference of the means to the dense
    baseline's; one seed leaves the std empty."""
    from sbnn.training.sweep import aggregate

    def run(scheme, ec, seed, acc):
        return {"scheme": scheme, "ec_target": ec, "seed": seed, "connections": 0.1 if ec else 0.5,
                "test_accuracy": acc, "epochs": 1, "seconds_per_epoch": 1.0, "run": f"{scheme}_{seed}"}

    rows = aggregate([run("bipolar-dense", None, 0, 0.80), run("bipolar-dense", None, 1, 0.84),
                      run("alpha-beta", 0.1, 0, 0.70), run("alpha-beta", 0.1, 1, 0.78)], [0, 1])
    assert [r["seeds"] for r in rows] == [2, 2]
    assert rows[0]["test_accuracy"] == pytest.approx(0.82)
    assert rows[0]["test_accuracy_std"] == pytest.approx(0.0283, abs=1e-4)
    assert rows[1]["delta_vs_dense"] == pytest.approx(-0.08) and rows[1]["run"] == "alpha-beta_0,alpha-beta_1"
    assert aggregate([run("bipolar-dense", None, 0, 0.8)], [0])[0]["test_accuracy_std"] == ""


def test_learned_points_use_the_reference_gamma_grid_unless_overridden():
    from sbnn.training.config import TrainConfig
    from sbnn.training.sweep import run_config

    base = TrainConfig(dataset="digits", model="tfc", epochs=1)
    # the reference code's (EC, gamma) pairs; no budget penalty at EC 0.5
    assert [run_config(base, "alpha-beta-learned", ec).gamma for ec in (0.5, 0.25, 0.1, 0.05, 0.02)] == \
        [0.0, 0.02, 0.04, 0.07, 0.08]
    assert run_config(base, "alpha-beta-learned", 0.2).gamma == 0.02     # nearest grid EC on a log scale: 0.25
    assert run_config(base, "alpha-beta-learned", 0.1, gamma=0.3).gamma == 0.3
    assert run_config(base, "alpha-beta-learned", 0.5, gamma=0.3).gamma == 0.0
    assert run_config(base, "alpha-beta", 0.1, gamma=0.3).gamma == base.gamma   # other schemes have no penalty
