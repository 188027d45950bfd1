"""A build described as data: ``sbnn build --config build.yaml``, ``sbnn.build(**options)`` and the resolved
config each build records.

The keys are FINN's ``DataflowBuildConfig`` names where they mean the same thing (``output_dir``,
``board``, ``target_fps``, ``folding_config_file``, ``synth_clk_period_ns``, ``fpga_part``, ``steps``,
``start_step``, ``stop_step``, ``generate_outputs``); sbnn's own options keep the names of their flags
(``frames``, ``weight_mode``, ``data_dir``, ...). Every value is checked for type before a config is made,
so a mistyped file stops with one line naming the key, before any work.

Relative paths in a file are relative to the file (so a config travels with its model); flags and keyword
arguments are relative to the working directory. Flags override the file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from sbnn.errors import UserError
from sbnn.flow.config import STAGES, BuildConfig, CompileConfig
from sbnn.training.config import load_config_file

RESOLVED_CONFIG = "build_config.json"   # in the build folder: what the build ran with, as a --config file

# what FINN's DataflowOutputType values need of our stages: the build stops after the last one asked for
FINN_OUTPUTS = {"estimate_reports": "estimate", "ooc_synth": "estimate", "stitched_ip": "stitch",
                "rtlsim_performance": "rtlsim", "bitfile": "deploy", "pynq_driver": "deploy",
                "deployment_package": "deploy"}

# key -> (kind, BuildConfig / CompileConfig field); kinds: path, str, int, float, bool, steps, outputs
_BUILD_KEYS = {
    "model": ("path", "model"), "board": ("str", "board"), "output_dir": ("path", "build_dir"),
    "build_dir": ("path", "build_dir"), "frames": ("int", "frames"), "data_dir": ("path", "data_dir"),
    "device": ("str", "device"), "progress": ("bool", "progress"), "start_step": ("str", "start_step"),
    "stop_step": ("str", "stop_step"), "dataset": ("str", "dataset"), "images": ("path", "images"),
    "labels": ("path", "labels"),
}
_COMPILE_KEYS = {
    "folding_config_file": ("path", "folding_config_file"), "folding": ("path", "folding_config_file"),
    "target_fps": ("float", "target_fps"), "weight_mode": ("str", "weight_mode"),
    "fpga_part": ("str", "fpga_part"), "fclk_mhz": ("float", "fclk_mhz"),
    "synth_clk_period_ns": ("float", "fclk_mhz"), "input_max_value": ("int", "input_max_value"),
}
_STEP_KEYS = {"steps": "steps", "generate_outputs": "outputs"}
KNOWN_KEYS = (*_BUILD_KEYS, *_COMPILE_KEYS, *_STEP_KEYS)


def _typed(key: str, kind: str, value, where: str, base: Path | None):
    """``value`` as ``kind``, or a one-line error naming the key. YAML 1.1 reads ``1e6`` as a string: numbers
    written as strings are accepted."""
    shown = f"--{key.replace('_', '-')}" if where == "flags" else key   # name what the user typed
    bad = UserError(f"{where}: {shown} must be {_KIND_WORDS[kind]}, got {value!r}")
    if kind in ("path", "str"):
        if not isinstance(value, str) or not value.strip():
            raise bad
        if kind == "path" and base is not None and not Path(value).is_absolute():
            return str(base / value)
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise bad
        return value
    if isinstance(value, bool):
        raise bad
    try:
        number = float(value) if isinstance(value, (int, float, str)) else math.nan
    except ValueError:
        raise bad from None
    if not math.isfinite(number) or (kind == "int" and number != int(number)):
        raise bad
    return int(number) if kind == "int" else number


_KIND_WORDS = {"path": "a path (a string)", "str": "a string", "bool": "true or false", "int": "an integer",
               "float": "a number"}


def _names(key: str, value, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise UserError(f"{where}: {key} must be a non-empty list of names, got {value!r}")
    return [v.lower() for v in value]


def _steps_range(steps: list[str], where: str) -> tuple[str, str]:
    """FINN's ``steps`` as sbnn's: a run of consecutive stages, given as their names in flow order."""
    unknown = [s for s in steps if s not in STAGES]
    if unknown:
        raise UserError(f"{where}: unknown step {unknown[0]!r} in steps; sbnn's steps are {', '.join(STAGES)}")
    first = STAGES.index(steps[0])
    if list(STAGES[first:first + len(steps)]) != steps:
        raise UserError(f"{where}: steps must be consecutive stages in the order {', '.join(STAGES)} (each "
                        f"needs the one before); got {', '.join(steps)}")
    return steps[0], steps[-1]


def _last_output_stage(outputs: list[str], where: str) -> str:
    unknown = [o for o in outputs if o not in FINN_OUTPUTS]
    if unknown:
        raise UserError(f"{where}: unknown output {unknown[0]!r} in generate_outputs; known: "
                        f"{', '.join(FINN_OUTPUTS)}")
    return max((FINN_OUTPUTS[o] for o in outputs), key=STAGES.index)


def normalised(values: dict, where: str = "options", base: Path | None = None) -> dict:
    """``values`` type-checked and under the field names of :class:`BuildConfig` (``compile.*`` for the
    compile's); None means not given and is dropped. ``base``: the folder relative paths are in."""
    if not isinstance(values, dict):
        raise UserError(f"{where} must be a mapping of build options, got {type(values).__name__}")
    unknown = sorted(k for k in values if k not in KNOWN_KEYS)
    if unknown:
        raise UserError(f"{where}: unknown option {unknown[0]!r}; known options: {', '.join(KNOWN_KEYS)}")
    out = {}
    for key, value in values.items():
        if value is None:
            continue
        if key in _BUILD_KEYS:
            kind, name = _BUILD_KEYS[key]
            out[name] = _typed(key, kind, value, where, base)
        elif key in _COMPILE_KEYS:
            kind, name = _COMPILE_KEYS[key]
            number = _typed(key, kind, value, where, base)
            if key == "synth_clk_period_ns":
                if number <= 0:
                    raise UserError(f"{where}: synth_clk_period_ns must be positive, got {value!r}")
                number = round(1000.0 / number, 3)
            out["compile." + name] = number
        elif key == "steps":
            out["start_step"], out["stop_step"] = _steps_range(_names(key, value, where), where)
        elif key == "generate_outputs":
            stop = _last_output_stage(_names(key, value, where), where)
            out["stop_step"] = None if stop == STAGES[-1] else stop
    return out


def config_from_normalised(values: dict) -> BuildConfig:
    fields = set(BuildConfig.__dataclass_fields__)
    build = {k: v for k, v in values.items() if not k.startswith("compile.")}
    missing = sorted(k for k in build if k not in fields)
    if missing:
        raise UserError(f"option {missing[0]!r} is not supported by this sbnn")
    comp = {k.removeprefix("compile."): v for k, v in values.items() if k.startswith("compile.")}
    return BuildConfig(**build, compile=CompileConfig(**comp))


def build_config_from(values: dict, where: str = "options", base: Path | None = None) -> BuildConfig:
    """A validated :class:`BuildConfig` from FINN-style keys."""
    return config_from_normalised(normalised(values, where, base))


def load_build_config(path, overrides: dict | None = None) -> BuildConfig:
    """``path`` (JSON or YAML) with ``overrides`` (flags, keyword arguments; None = not given) on top."""
    values = load_config_file(path)
    where = f"config file {path}"
    from_file = normalised(values, where, base=Path(path).resolve().parent)
    config_from_normalised(from_file)   # the file alone must make sense: its errors name the file
    return config_from_normalised({**from_file, **normalised(overrides or {}, "options")})


def resolved_config(cfg: BuildConfig) -> dict:
    """What the build ran with (absolute paths, the board's clock and part filled in), as a --config file."""
    c = cfg.compile
    values = {"model": cfg.model, "board": cfg.board, "output_dir": cfg.build_dir, "frames": cfg.frames,
              "data_dir": cfg.data_dir, "device": cfg.device, "start_step": cfg.start_step,
              "stop_step": cfg.stop_step, "folding_config_file": c.folding_config_file, "target_fps": c.target_fps,
              "weight_mode": c.weight_mode, "fpga_part": c.fpga_part, "synth_clk_period_ns": c.synth_clk_period_ns,
              "input_max_value": c.input_max_value}
    for name in ("dataset", "images", "labels"):
        if name in BuildConfig.__dataclass_fields__:
            values[name] = getattr(cfg, name)
    return values


def resolved_config_text(cfg: BuildConfig) -> str:
    return json.dumps(resolved_config(cfg), indent=2) + "\n"
