"""The options of a compile and of a build, each validated once, when the config is made.

Modelled on FINN's ``DataflowBuildConfig``: the same names where they mean the
same (``board``, ``target_fps``, ``folding_config_file``, ``fpga_part``,
``synth_clk_period_ns``), one object per run that every step receives.
:class:`BuildConfig` embeds a :class:`CompileConfig`, so ``sbnn build`` and
``sbnn compile`` share one validation of the compile options. Every error is one
actionable line (:class:`sbnn.errors.UserError`) naming the flag to change.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sbnn.artifacts import check_output_dir
from sbnn.bitstreams.boards import DEFAULT_BOARD, DEFAULT_FPGA_PART, Board, get_board
from sbnn.errors import UserError
from sbnn.flow.user_data import check_data_options
from sbnn.hls.kernel import AUTO_WEIGHT_MODE, WEIGHT_MODES
from sbnn.training.device import resolve_device

DEFAULT_FCLK_MHZ = 100.0
# the build's stages, in order (FINN's "steps"); start_step / stop_step name one of them
STAGES = ("train", "export", "compile", "stitch", "estimate", "rtlsim", "deploy")


def load_folding(path) -> dict:
    """The folding JSON ``{node name: {"PE": .., "SIMD": .., "weight_mode": ..}}``, checked for shape."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"folding file {p} not found; write a JSON object {{node name: {{\"PE\": .., \"SIMD\": ..}}}}")
    try:
        cfg = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"folding file {p} is not valid JSON ({exc})") from None
    if not isinstance(cfg, dict):
        raise UserError(f"folding file {p} must hold a JSON object mapping node names to settings, got a "
                        f"{type(cfg).__name__}; e.g. {{\"MVAU_0\": {{\"PE\": 4, \"SIMD\": 8}}}}")
    for node, entry in cfg.items():
        _check_folding_entry(p, node, entry)
    return cfg


# folding-file settings whose shape is known before the graph is (any other key is a node attribute, FINN-style)
_FOLDING_FACTORS = ("PE", "SIMD")


def _check_folding_entry(path: Path, node: str, entry) -> None:
    """One node's settings (or "Defaults"): an object, PE/SIMD positive integers, a known weight_mode."""
    if not isinstance(entry, dict):
        raise UserError(f"folding file {path}: entry '{node}' must be an object like {{\"PE\": 4, \"SIMD\": 8}}, "
                        f"got {entry!r}")
    for factor in _FOLDING_FACTORS:
        value = entry.get(factor)
        if factor in entry and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise UserError(f"folding file {path}: {factor} of '{node}' must be a positive integer, got {value!r}")
    mode = entry.get("weight_mode")
    if "weight_mode" in entry and mode not in (*WEIGHT_MODES, AUTO_WEIGHT_MODE):
        raise UserError(f"folding file {path}: weight_mode of '{node}' must be {', '.join(WEIGHT_MODES)} or "
                        f"{AUTO_WEIGHT_MODE}, got {mode!r}")


def _positive_finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


@dataclass
class CompileConfig:
    """What ``sbnn compile`` is asked for (``--folding``, ``--target-fps``, ``--fclk-mhz``, ``--weight-mode``,
    ``--fpga-part``).

    ``fclk_mhz`` / ``fpga_part`` left at None mean "the default": 100 MHz and the
    pynq-z2's part for a compile alone, the board's clock and part in a build.
    """

    folding_config_file: str | None = None   # per-layer PE/SIMD JSON; or
    target_fps: float | None = None          # fold automatically for this throughput at fclk_mhz
    fclk_mhz: float | None = None
    weight_mode: str = AUTO_WEIGHT_MODE      # weight storage of the sparse MVAUs: baked, memory or auto (per layer)
    fpga_part: str | None = None
    # pixel value that the model reads as 1.0: the hardware then takes integer pixels (FINN's ToTensor
    # pre-processing, merged); None = what `sbnn export` recorded in the model (float input otherwise)
    input_max_value: int | None = None

    def __post_init__(self) -> None:
        if self.folding_config_file is not None:
            self.folding_config_file = str(Path(self.folding_config_file).resolve())
        self.validate()

    def validate(self) -> None:
        if self.weight_mode not in (*WEIGHT_MODES, AUTO_WEIGHT_MODE):
            raise UserError(f"--weight-mode must be {', '.join(WEIGHT_MODES)} or {AUTO_WEIGHT_MODE}, "
                            f"got '{self.weight_mode}'")
        if self.folding_config_file is not None and self.target_fps is not None:
            raise UserError("pass either --folding FILE or --target-fps, not both")
        if self.target_fps is not None and not _positive_finite(self.target_fps):
            raise UserError(f"--target-fps must be positive (finite frames/s), got {self.target_fps}")
        if self.fclk_mhz is not None and not _positive_finite(self.fclk_mhz):
            raise UserError(f"--fclk-mhz must be positive (a finite clock in MHz), got {self.fclk_mhz}")
        if self.fpga_part is not None and (not isinstance(self.fpga_part, str) or not self.fpga_part.strip()):
            raise UserError(f"--fpga-part must name a Xilinx part, got {self.fpga_part!r}")
        if self.input_max_value is not None and (isinstance(self.input_max_value, bool)
                                                 or not isinstance(self.input_max_value, int)
                                                 or not 1 <= self.input_max_value <= 65535):
            raise UserError(f"--input-max-value must be an integer pixel value in 1..65535 (255 for 8-bit images), "
                            f"got {self.input_max_value!r}")
        if self.folding_config_file is not None:
            load_folding(self.folding_config_file)

    @classmethod
    def from_options(cls, *, folding=None, target_fps=None, fclk_mhz=None, weight_mode=AUTO_WEIGHT_MODE,
                     fpga_part=None, input_max_value=None) -> CompileConfig:
        """From the flag-style names (``folding``) used by the CLI and the keyword API of compile_model."""
        return cls(folding_config_file=None if folding is None else str(folding), target_fps=target_fps,
                   fclk_mhz=fclk_mhz, weight_mode=weight_mode, fpga_part=fpga_part, input_max_value=input_max_value)

    def resolved(self) -> CompileConfig:
        """A copy with the defaults filled in (100 MHz, the default board's part)."""
        return self._with(fclk_mhz=self.fclk_mhz or DEFAULT_FCLK_MHZ, fpga_part=self.fpga_part or DEFAULT_FPGA_PART)

    def for_board(self, board: Board) -> CompileConfig:
        """A copy that targets ``board``'s part and clock; a conflicting explicit value is an error."""
        for flag, have, want in (("fpga_part", self.fpga_part, board.part),
                                 ("fclk_mhz", self.fclk_mhz, board.fclk_mhz)):
            if have is not None and have != want:
                raise UserError(f"compile option {flag}={have} differs from board {board.name} ({want}); a build "
                                "takes the part and clock from --board")
        return self._with(fpga_part=board.part, fclk_mhz=board.fclk_mhz)

    def _with(self, **values) -> CompileConfig:
        """A copy with defaults filled in; not validated again (the values were checked or come from a board)."""
        new = copy.copy(self)
        for k, v in values.items():
            setattr(new, k, v)
        return new

    @property
    def synth_clk_period_ns(self) -> float | None:
        return 1000.0 / self.fclk_mhz if self.fclk_mhz else None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class BuildConfig:
    """What ``sbnn build`` is asked for: a model, a board, the build directory and the embedded compile options."""

    model: str | None = None          # checkpoint.pt from `sbnn train` or a QONNX .onnx; None = train the default
    board: str = DEFAULT_BOARD
    build_dir: str | None = None      # default: build/<model run name>_<board>, made absolute
    frames: int = 1000                # real test frames verified in rtlsim
    data_dir: str | None = None       # where the data set's files are (CIFAR: the python-pickle folder)
    device: str = "auto"              # training stage (embedded default): auto, cpu, cuda or cuda:N
    progress: bool = True
    start_step: str | None = None     # redo from this stage on (the stages before it must be done)
    stop_step: str | None = None      # stop after this stage: no report, the build is not complete
    # verification data (rtlsim, accuracy, deploy images): a named data set's test images, the user's .npy
    # files, or else the data set the model records; random inputs when there is none
    dataset: str | None = None
    images: str | None = None         # .npy, one image per row, pixels as the board receives them
    labels: str | None = None         # .npy, one class index per image
    compile: CompileConfig = field(default_factory=CompileConfig)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        board = get_board(self.board)
        self.board = board.name
        if not isinstance(self.frames, int) or self.frames < 1:
            raise UserError(f"--frames must be positive, got {self.frames}")
        if self.model is not None:
            if not Path(self.model).is_file():
                raise UserError(f"model {self.model} not found; pass a checkpoint.pt from `sbnn train` or a QONNX "
                                ".onnx, or no model to build the embedded default")
            self.model = str(Path(self.model).resolve())
        self._validate_data()
        if self.data_dir is not None:
            if not Path(self.data_dir).is_dir():
                raise UserError(f"--data-dir {self.data_dir} is not a directory; point it at the folder holding "
                                "the data set's files (for CIFAR-10, the one with cifar-10-batches-py)")
            self.data_dir = str(Path(self.data_dir).resolve())
        if self.model is None:
            resolve_device(self.device)   # the embedded default trains: a bad --device stops before any work
        if not isinstance(self.compile, CompileConfig):
            raise UserError("BuildConfig.compile must be a CompileConfig")
        self.compile = self.compile.for_board(board)
        self._validate_steps()
        name = "default" if self.model is None else \
            Path(self.model).stem.replace(".", "_") if self.model_is_onnx else Path(self.model).parent.name
        self.build_dir = str(Path(self.build_dir or Path("build") / f"{name}_{board.name}").resolve())
        check_output_dir(self.build_dir, "--build-dir")

    def _validate_data(self) -> None:
        check_data_options(self.frames, self.dataset, self.images, self.labels)
        if self.dataset is not None:
            self.dataset = self.dataset.strip().lower()
        for name in ("images", "labels"):
            if getattr(self, name) is not None:
                setattr(self, name, str(Path(getattr(self, name)).resolve()))

    @property
    def model_is_onnx(self) -> bool:
        """The model is a QONNX file (no checkpoint: no training history, the export stage copies it)."""
        return self.model is not None and Path(self.model).suffix.lower() == ".onnx"

    def _validate_steps(self) -> None:
        stages = self.stages
        for flag, step in (("start_step", self.start_step), ("stop_step", self.stop_step)):
            if step is not None and step not in stages:
                raise UserError(f"{flag} must be one of {', '.join(stages)}, got {step!r}"
                                + ("; a build of a given model has no train stage" if step == "train" else ""))
        if self.start_step and self.stop_step and stages.index(self.start_step) > stages.index(self.stop_step):
            raise UserError(f"start_step {self.start_step} comes after stop_step {self.stop_step}; "
                            f"the stages run in the order {', '.join(stages)}")

    @property
    def stages(self) -> tuple[str, ...]:
        """The stages this build runs through: all of them, but no training for a given model."""
        return STAGES if self.model is None else STAGES[1:]

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def board_info(self) -> Board:
        return get_board(self.board)

    @property
    def synth_clk_period_ns(self) -> float:
        return self.compile.synth_clk_period_ns

    @property
    def output_dir(self) -> Path:
        return Path(self.build_dir)
