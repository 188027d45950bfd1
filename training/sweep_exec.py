"""Where the points of a sweep train: in this process, a local process pool, or Ray tasks.

Every executor runs the same function per point (:func:`run_point`, which reuses a finished point and resumes
an interrupted one) and hands results back as they finish. Ray does the scheduling, the placement by CPU/GPU
request and the retries of a task whose worker died (``max_retries``); nothing here schedules.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import socket
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import ray
import torch
from ray.exceptions import RayError, RayTaskError

from sbnn.errors import UserError

from .checkpoint import load_checkpoint
from .config import TrainConfig
from .sweep_hw import hardware_point
from .trainer import CHECKPOINT, METRICS, train

EXECUTORS = ("local", "ray")
RAY_RETRIES = 3   # re-runs of a point whose worker process or node died; the rerun resumes its checkpoint


@dataclass(frozen=True)
class Point:
    """One training run of a sweep: its config and its own folder."""

    name: str
    cfg: TrainConfig
    out: Path
    hardware: bool = False             # then also export, compile and cost it (sweep_hw.py)
    hw_folding: Path | None = None     # the fixed folding file (None: sweep_hw.fixed_folding)


@dataclass(frozen=True)
class ExecutorConfig:
    """``local`` with ``jobs`` processes (1: in this process), or ``ray`` on ``ray_address`` (None: a local
    runtime of ``jobs`` CPUs), each point asking for ``cpus_per_point`` CPUs and ``gpus_per_point`` GPUs.
    ``threads_per_point`` caps torch's threads in a point (None: the cores split between the local jobs, or the
    CPUs a Ray point asked for); the thread count changes float rounding, so equal counts give equal results."""

    kind: str = "local"
    jobs: int = 1
    ray_address: str | None = None
    cpus_per_point: float = 1.0
    gpus_per_point: float = 0.0
    threads_per_point: int | None = None

    def __post_init__(self):
        if self.kind not in EXECUTORS:
            raise UserError(f"unknown --executor '{self.kind}'; expected one of {', '.join(EXECUTORS)}")
        if self.jobs < 1:
            raise UserError(f"--jobs must be at least 1, got {self.jobs}")
        if self.cpus_per_point <= 0 or self.gpus_per_point < 0:
            raise UserError(f"--cpus-per-point must be > 0 and --gpus-per-point >= 0, got {self.cpus_per_point} "
                            f"and {self.gpus_per_point}")
        if self.threads_per_point is not None and self.threads_per_point < 1:
            raise UserError(f"--threads-per-point must be at least 1, got {self.threads_per_point}")
        if self.ray_address and self.kind != "ray":
            raise UserError("--ray-address needs --executor ray")


def run_or_reuse(cfg: TrainConfig, out: Path, data_dir, progress: bool, device: str = "auto") -> dict:
    """A finished point (metrics.json of the same config) is reused; an interrupted one resumes its checkpoint."""
    metrics_path = out / METRICS
    if metrics_path.exists():
        metrics = json.loads(metrics_path.read_text())
        if not cfg.differences(metrics.get("config", {})):
            return metrics
    resume = (out / CHECKPOINT).exists()
    if resume:
        stored = load_checkpoint(out / CHECKPOINT)["config"]
        diff = ", ".join(f"{k} {a!r} -> {b!r}" for k, a, b in cfg.differences(stored))
        if diff:
            raise UserError(f"{out} holds a sweep point trained with other settings ({diff}); "
                            "sweep into a new --out directory (nothing was changed)")
    return train(cfg, out, data_dir=data_dir, resume=resume, progress=progress, device=device)


def run_point(point: Point, data_dir, progress: bool, device: str, threads: int | None) -> dict:
    """Train (or reuse, or resume) one point; ``threads`` caps torch's intra-op threads in a worker. With
    ``point.hardware`` the point is then compiled and costed in the same worker (``metrics["hardware"]``)."""
    if threads:
        torch.set_num_threads(threads)
    metrics = run_or_reuse(point.cfg, point.out, data_dir, progress, device)
    if point.hardware:
        metrics = {**metrics, "hardware": hardware_point(point.out, point.hw_folding)}
    return metrics


def run_points(points: list[Point], ex: ExecutorConfig, *, data_dir, progress: bool,
               device: str) -> Iterator[tuple[Point, dict]]:
    """Yield ``(point, metrics)`` as the points finish (in order for one local job)."""
    if ex.kind == "ray":
        yield from _run_on_ray(points, ex, data_dir, device)
    elif ex.jobs == 1:
        saved = torch.get_num_threads()
        try:
            for p in points:
                yield p, run_point(p, data_dir, progress, device, ex.threads_per_point)
        finally:
            torch.set_num_threads(saved)
    else:
        # default: the machine's cores split between the workers
        threads = ex.threads_per_point or max(1, (os.cpu_count() or 1) // ex.jobs)
        yield from _run_in_pool(points, ex.jobs, data_dir, device, threads)


def _run_in_pool(points: list[Point], jobs: int, data_dir, device: str, threads: int) -> Iterator[tuple[Point, dict]]:
    with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
        futs = {pool.submit(run_point, p, data_dir, False, device, threads): p for p in points}
        try:
            for fut in as_completed(futs):
                yield futs[fut], fut.result()
        except BaseException:
            for f in futs:
                f.cancel()
            raise


def _run_on_ray(points: list[Point], ex: ExecutorConfig, data_dir, device: str) -> Iterator[tuple[Point, dict]]:
    started_here = _connect(ex)
    try:
        task = ray.remote(num_cpus=ex.cpus_per_point, num_gpus=ex.gpus_per_point, max_retries=RAY_RETRIES)(run_point)
        threads = ex.threads_per_point or max(1, int(ex.cpus_per_point))
        pending = {task.remote(p, data_dir, False, device, threads): p for p in points}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            point = pending.pop(done[0])
            yield point, _get(done[0], point)
    finally:
        if started_here:
            ray.shutdown()


def check_ray_address(ex: ExecutorConfig) -> None:
    """A HOST:PORT address must accept a connection now: ray.init would otherwise retry for minutes."""
    if ex.kind != "ray" or not ex.ray_address or "://" in ex.ray_address or ex.ray_address == "auto":
        return
    host, _, port = ex.ray_address.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--ray-address '{ex.ray_address}': expected HOST:PORT of the head node, e.g. 10.0.0.1:6379")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise UserError(f"--ray-address {ex.ray_address}: nothing answers there ({exc.strerror or exc}); start the "
                        "head with `ray start --head --port PORT` or fix the address") from None


def _connect(ex: ExecutorConfig) -> bool:
    """Join the cluster at ``ray_address``, or start a local runtime; True when this call started Ray."""
    if ray.is_initialized():
        return False
    try:
        if ex.ray_address:
            ray.init(address=ex.ray_address, logging_level="warning", log_to_driver=False)
        else:
            ray.init(num_cpus=ex.jobs, include_dashboard=False, logging_level="warning", log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = ex.ray_address or "a local runtime"
        raise UserError(f"could not start Ray on {where} ({str(exc).splitlines()[0]}); check --ray-address "
                        "(`ray status` on the head node shows it) or run without it") from None
    return True


def _get(ref, point: Point) -> dict:
    """A task's result; a user error inside the task comes back as that one line."""
    try:
        return ray.get(ref)
    except RayTaskError as exc:
        if isinstance(exc.cause, UserError):
            raise UserError(str(exc.cause)) from None
        raise
    except RayError as exc:
        raise UserError(f"sweep point {point.name} failed on Ray after {RAY_RETRIES} retries "
                        f"({type(exc).__name__}); finished points are kept, rerun the sweep to continue") from None

