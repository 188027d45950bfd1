"""Builds described as data: `sbnn build --config FILE` (FINN's DataflowBuildConfig names), the Python API
`sbnn.build(...)`, the resolved config each build records, and start_step / stop_step.

A config-file build, a flag build and an API call of the same options give the same report (slow tier: two
full builds of a tiny model).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import yaml

from sbnn.errors import UserError
from sbnn.flow.config_file import RESOLVED_CONFIG, build_config_from, load_build_config

# no vivado on PATH (the build stops at a ready project); the venv's bin first: Verilator's make calls `python`
PATH = os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"])
FRAMES = 20
# what differs between two builds of the same design in two folders
_PER_RUN = ("build_dir", "vivado", "deploy")


# ---- the config file, without building ----------------------------------------------------------
def _write_yaml(path: Path, values: dict) -> Path:
    path.write_text(yaml.safe_dump(values))
    return path


def test_finn_names_map_onto_the_build(tmp_path):
    folding = tmp_path / "fold.json"
    folding.write_text("{}")
    cfg = build_config_from({"board": "pynq-z2", "output_dir": str(tmp_path / "out"), "synth_clk_period_ns": 10.0,
                             "folding_config_file": str(folding), "steps": ["export", "compile", "stitch"],
                             "fpga_part": "xc7z020clg400-1"})
    assert cfg.build_dir == str(tmp_path / "out") and cfg.compile.fclk_mhz == 100.0
    assert cfg.compile.folding_config_file == str(folding)
    assert (cfg.start_step, cfg.stop_step) == ("export", "stitch")
    assert build_config_from({"generate_outputs": ["estimate_reports", "stitched_ip"]}).stop_step == "estimate"
    assert build_config_from({"generate_outputs": ["bitfile"]}).stop_step is None, "bitfile needs every stage"


def test_yaml_numbers_written_as_strings_and_paths_relative_to_the_file(tmp_path):
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    (conf_dir / "fold.json").write_text("{}")
    # PyYAML (YAML 1.1) reads 1e6 as the string '1e6'
    path = conf_dir / "build.yaml"
    path.write_text("target_fps: 1e6\noutput_dir: out\nframes: 50\n")
    assert yaml.safe_load(path.read_text())["target_fps"] == "1e6"
    cfg = load_build_config(path)
    assert cfg.compile.target_fps == 1e6 and cfg.frames == 50
    assert cfg.build_dir == str(conf_dir / "out"), "relative to the file, not to the working directory"
    path.write_text("folding_config_file: fold.json\n")
    assert load_build_config(path).compile.folding_config_file == str(conf_dir / "fold.json")


def test_flags_override_the_file_whatever_name_each_uses(tmp_path):
    path = _write_yaml(tmp_path / "b.yaml", {"frames": 50, "output_dir": "a", "target_fps": 1000.0})
    cfg = load_build_config(path, {"frames": 7, "build_dir": str(tmp_path / "b"), "target_fps": None})
    assert cfg.frames == 7 and cfg.build_dir == str(tmp_path / "b")
    assert cfg.compile.target_fps == 1000.0, "a flag not given (None) leaves the file's value"


@pytest.mark.parametrize("values, message", [
    ({"frames": "many"}, "frames must be an integer, got 'many'"),
    ({"frames": 2.5}, "frames must be an integer"),
    ({"target_fps": ".nan"}, "target_fps must be a number"),
    ({"board": 3}, "board must be a string"),
    ({"progress": "yes"}, "progress must be true or false"),
    ({"output_dirr": "x"}, "unknown option 'output_dirr'"),
    ({"steps": ["compile", "export"]}, "steps must be consecutive stages"),
    ({"steps": ["synth"]}, "unknown step 'synth'"),
    ({"generate_outputs": ["bitstream"]}, "unknown output 'bitstream'"),
    ({"synth_clk_period_ns": 5}, "differs from board pynq-z2"),
    ({"synth_clk_period_ns": 0}, "synth_clk_period_ns must be positive"),
    ({"start_step": "rtlsim", "stop_step": "compile"}, "start_step rtlsim comes after stop_step compile"),
    ({"stop_step": "synth"}, "stop_step must be one of"),
])
def test_bad_values_stop_with_one_line_naming_file_and_key(tmp_path, values, message):
    path = _write_yaml(tmp_path / "b.yaml", values)
    with pytest.raises(UserError, match=message) as exc:
        load_build_config(path)
    assert "\n" not in str(exc.value)
    if "must be" in message and "step" not in message:
        assert str(path) in str(exc.value), "a type error names the file"


def test_bad_config_file_is_one_line_cli_error(tmp_path, capsys):
    from sbnn.cli import main

    path = tmp_path / "b.yaml"
    path.write_text("frames: [1, 2\n")
    assert main(["build", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not valid yaml" in err and "Traceback" not in err
    assert main(["build", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "not found" in capsys.readouterr().err


def test_train_stage_exists_only_for_the_embedded_default(tmp_path):
    ckpt = tmp_path / "checkpoint.pt"
    ckpt.write_bytes(b"not read by the config")
    assert build_config_from({"stop_step": "train"}).stop_step == "train"
    with pytest.raises(UserError, match="no train stage"):
        build_config_from({"model": str(ckpt), "stop_step": "train"})


# ---- builds ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    pytest.importorskip("finn")
    from sbnn.training.config import TrainConfig
    from sbnn.training.trainer import train

    out = tmp_path_factory.mktemp("tiny") / "run"
    cfg = TrainConfig(dataset="mnist-5k", model="mlp", hidden="16", epochs=1, train_subset=500, batch_size=128,
                      domain="alpha-beta", ec=0.1)
    train(cfg, out, progress=False)
    return out / "checkpoint.pt"


@pytest.fixture(scope="module")
def flag_build(tiny_ckpt, tmp_path_factory) -> Path:
    from sbnn.cli import main

    build = tmp_path_factory.mktemp("flags") / "b"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", PATH)
        mp.delenv("XILINX_VIVADO", raising=False)
        assert main(["build", str(tiny_ckpt), "--build-dir", str(build), "--frames", str(FRAMES),
                     "--weight-mode", "baked", "--quiet"]) == 0
    return build


def _without_timings(value):
    """``value`` without the run's timings (keys ending in ``_s``: Yosys and stage seconds)."""
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if not k.endswith("_s")}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def _same_design(report: dict) -> dict:
    return _without_timings({k: v for k, v in report.items() if k not in _PER_RUN})


def _report(build: Path) -> dict:
    return _same_design(json.loads((build / "report.json").read_text()))


@pytest.mark.slow
def test_config_file_build_gives_the_flags_report(flag_build, tiny_ckpt, tmp_path, monkeypatch):
    from sbnn.cli import main

    monkeypatch.setenv("PATH", PATH)
    monkeypatch.delenv("XILINX_VIVADO", raising=False)
    conf = _write_yaml(tmp_path / "build.yaml", {"model": str(tiny_ckpt), "board": "pynq-z2",
                                                  "output_dir": "from_config", "frames": FRAMES,
                                                  "weight_mode": "baked", "synth_clk_period_ns": 10.0})
    assert main(["build", "--config", str(conf), "--quiet"]) == 0
    built = tmp_path / "from_config"
    a, b = _report(flag_build), _report(built)
    assert a["bit_exact"] is True and a["frames_verified"] == FRAMES
    assert a == b, [k for k in a if a[k] != b.get(k)]
    # the resolved config is recorded, with absolute paths, and reads back as the same options
    recorded = json.loads((built / RESOLVED_CONFIG).read_text())
    assert recorded["output_dir"] == str(built) and recorded["model"] == str(tiny_ckpt)
    assert recorded["synth_clk_period_ns"] == 10.0 and recorded["fpga_part"].startswith("xc7z020")
    flags_recorded = json.loads((flag_build / RESOLVED_CONFIG).read_text())
    assert {**flags_recorded, "output_dir": None} == {**recorded, "output_dir": None}


@pytest.mark.slow
def test_python_api_with_config_and_overrides(flag_build, tiny_ckpt, tmp_path, monkeypatch):
    import sbnn

    monkeypatch.setenv("PATH", PATH)
    monkeypatch.delenv("XILINX_VIVADO", raising=False)
    before = _report(flag_build)
    sim = (flag_build / "rtlsim" / "rtlsim.json").stat().st_mtime_ns
    # the flag build's own recorded config: the same options, so every stage is reused
    report = sbnn.build(config=str(flag_build / RESOLVED_CONFIG), progress=False)
    assert _same_design(report) == before
    assert (flag_build / "rtlsim" / "rtlsim.json").stat().st_mtime_ns == sim
    # a keyword overrides the file: start_step redoes rtlsim (and deploy), the stages before it are reused
    stitched = (flag_build / "stitch" / ".done").stat().st_mtime_ns
    report = sbnn.build(config=str(flag_build / RESOLVED_CONFIG), start_step="rtlsim", progress=False)
    assert _same_design(report) == before and report["bit_exact"] is True
    assert (flag_build / "stitch" / ".done").stat().st_mtime_ns == stitched
    assert (flag_build / "rtlsim" / "rtlsim.json").stat().st_mtime_ns > sim
    with pytest.raises(UserError, match="frames must be an integer"):
        sbnn.build(str(tiny_ckpt), frames="twenty", build_dir=str(tmp_path / "never"))
    assert not (tmp_path / "never").exists(), "bad options stop before anything is created"


@pytest.mark.slow   # a whole build (20-40 s): the slow tier, which CI also runs
def test_stop_step_leaves_no_report_and_start_step_needs_earlier_stages(tiny_ckpt, tmp_path, monkeypatch, capsys):
    import sbnn
    from sbnn.cli import main

    monkeypatch.setenv("PATH", PATH)
    monkeypatch.delenv("XILINX_VIVADO", raising=False)
    build = tmp_path / "b"
    assert main(["build", str(tiny_ckpt), "--build-dir", str(build), "--stop-step", "compile"]) == 0
    assert "stopped after compile as asked" in capsys.readouterr().err
    assert (build / "compile" / ".done").is_file() and not (build / "stitch").exists()
    assert not (build / "report.json").exists(), "a stopped build does not look complete"
    with pytest.raises(UserError, match="start_step rtlsim needs stage stitch done"):
        sbnn.build(str(tiny_ckpt), build_dir=str(build), start_step="rtlsim", progress=False)
    summary = sbnn.build(str(tiny_ckpt), build_dir=str(build), generate_outputs=["stitched_ip"], progress=False)
    assert summary["stopped_after"] == "stitch" and summary["complete"] is False
    assert summary["stages_done"] == ["export", "compile", "stitch"]
