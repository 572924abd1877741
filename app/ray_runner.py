"""Running a batch's sources as Ray tasks (``occlupose process ... --ray [ADDRESS]``).

Ray schedules; each task is one single-source run (:func:`app.batch.run_job`) that writes straight into
the output folder, so on a cluster every node must see the sources and OUTDIR at the same paths (a shared
filesystem). The batch process records each outcome in the manifest as its task ends; an interrupted
batch cancels the tasks (each closes its files) and ``--resume`` continues from the manifest.
Ray is optional: ``pip install 'occlupose[cluster]'``.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Sequence

from app.batch import STOP_WAIT_S, BatchJob, JobOutcome, Runner, job_ended, run_job, with_threads
from posecore.errors import OccluposeError, one_line

CONNECT_TIMEOUT_S = 15.0  # an unreachable cluster address is an error after this long, not a hang


def _import_ray():
    try:
        import ray
    except ModuleNotFoundError as e:
        if e.name != "ray":
            raise
        raise OccluposeError("--ray needs Ray: pip install 'occlupose[cluster]'") from None
    return ray


def _check_reachable(address: str, timeout_s: float) -> None:
    """HOST:PORT answers a TCP connection within ``timeout_s`` (ray.init would keep retrying for minutes)."""
    host, sep, port = address.rpartition(":")
    if address.startswith("ray://"):
        host, sep, port = address[len("ray://"):].rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise OccluposeError(f"--ray {address}: expected auto or HOST:PORT of a running Ray cluster")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as e:
        reason = "no answer" if isinstance(e, TimeoutError) else (e.strerror or str(e))
        raise OccluposeError(f"cannot reach the Ray cluster at {address} within {timeout_s:g} s: {reason}") from None


def connect(address: str | None, timeout_s: float = CONNECT_TIMEOUT_S, local_cpus: int | None = None):
    """Start a local Ray instance (``address`` None) with ``local_cpus`` CPUs (None: every core) or join the
    cluster at ``address`` ('auto' or HOST:PORT); returns the ray module. Failures are one-line
    OccluposeErrors."""
    ray = _import_ray()
    # Our one-line messages only: Ray's own logs and the tasks' output stay in Ray's log folder.
    opts = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    if address is not None and address != "auto":
        _check_reachable(address, timeout_s)
    try:
        if address is None:
            from app.run.pipeline import available_cores

            ray.init(num_cpus=local_cpus or available_cores(), **opts)
        else:
            ray.init(address=address, **opts)
    except Exception as e:  # Ray raises ConnectionError, RuntimeError, ValueError ... with long texts
        text = " ".join(str(e).split())
        where = "start a local Ray instance" if address is None else f"join the Ray cluster at {address}"
        raise OccluposeError(f"cannot {where}: {text[:300] or type(e).__name__}") from None
    return ray


def ray_runner(address: str | None, cpus: float = 1.0, gpus: float = 0.0, local_cpus: int | None = None) -> Runner:
    """A batch runner (see :func:`app.batch.process_batch`) that runs each source as a Ray task with
    ``cpus`` CPUs and ``gpus`` GPUs reserved; a local instance (``address`` None) gets ``local_cpus``."""

    def run(jobs: Sequence[BatchJob], on_done: Callable[[JobOutcome], None]) -> bool:
        if not jobs:
            return True
        ray = connect(address, local_cpus=local_cpus)
        try:
            return _run_tasks(ray, with_threads(jobs, max(1, int(cpus))), cpus, gpus, on_done)
        finally:
            ray.shutdown()

    return run


def _run_tasks(ray, jobs: Sequence[BatchJob], cpus: float, gpus: float, on_done) -> bool:
    task = ray.remote(run_job).options(num_cpus=cpus, num_gpus=gpus, max_retries=0)
    refs = {task.remote(job): job for job in jobs}
    pending = list(refs)
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                on_done(_outcome(ray, ref, refs[ref]))
        return True
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref)  # a KeyboardInterrupt in the task: the run closes its files
        for ref in pending:
            outcome = _outcome(ray, ref, refs[ref], timeout=STOP_WAIT_S)
            if outcome.status == "failed":  # cancelled before or while running
                outcome = job_ended(refs[ref], "interrupted", "interrupted")
            on_done(outcome)
        return False


def _outcome(ray, ref, job: BatchJob, timeout: float | None = None) -> JobOutcome:
    try:
        return ray.get(ref, timeout=timeout)
    except Exception as e:  # the task's worker died, was cancelled, or Ray lost it
        return job_ended(job, "failed", f"Ray task failed: {type(e).__name__}: {one_line(e)[:300]}")

