"""Running a batch's sources on this machine: one after another in this process, or several at once, each
in a worker process of its own (a fresh interpreter, so no torch or decoder threads are forked).

Why not ``concurrent.futures.ProcessPoolExecutor``: its workers take tasks from one queue behind one
lock, and stopping a running source means signalling the process that runs it. A worker ended while it
held that lock (the pool's own recovery ends workers with SIGTERM too) leaves the others blocked on it for
good; a batch stopped with Ctrl-C hung in the test suite. Here every worker has its own pipe, the batch
knows which worker runs which source, SIGTERM goes only to those, and a worker that ends or does not stop
is ended alone.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from app.batch import STOP_WAIT_S, BatchJob, JobOutcome, Runner, job_ended, run_job, with_threads
from app.run.pipeline import available_cores
from app.run.signals import SignalGuard

CLOSE_WAIT_S = 30.0  # how long an idle worker may take to exit before it is killed


def local_runner(jobs: int) -> Runner:
    """A batch runner (see :func:`app.batch.process_batch`) that runs ``jobs`` sources at once on this
    machine (1: in this process, one after another), the cores shared out between them."""

    def run(todo: Sequence[BatchJob], on_done: Callable[[JobOutcome], None]) -> bool:
        workers = min(jobs, len(todo))  # more workers than sources would only take cores from them
        if workers <= 1:
            return _run_here(with_threads(todo, available_cores()), on_done)
        cores = max(1, available_cores() // workers)
        return _run_workers(with_threads(todo, cores), workers, cores, on_done)

    return run


def _run_here(jobs: Sequence[BatchJob], on_done: Callable[[JobOutcome], None]) -> bool:
    for job in jobs:
        outcome = run_job(job)  # SIGINT in this process: the run stops cleanly and says interrupted
        on_done(outcome)
        if outcome.status == "interrupted":
            return False
    return True


# -- a worker process ---------------------------------------------------------------------------------------


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # in a run: a clean stop, every output keeps whole frames


def _worker_main(conn: Connection, cores: int) -> None:
    """Run the jobs the batch sends, one at a time, and send back each outcome; None or a closed pipe ends
    the worker. Ctrl-C at the terminal reaches the whole process group, but only the batch acts on it (the
    worker starts with SIGINT blocked and keeps it so): it sends SIGTERM to the workers running a source,
    which stop it cleanly. SIGTERM between sources ends the worker quietly."""
    signal.signal(signal.SIGTERM, _raise_interrupt)
    import cv2

    cv2.setNumThreads(cores)
    logging.getLogger("occlupose").setLevel(logging.ERROR)  # a job's warnings would interleave; its outcome says it
    try:
        while (job := _next_job(conn)) is not None:
            try:
                outcome = run_job(job)
            except KeyboardInterrupt:  # the stop came just before the run began or just after it ended
                outcome = job_ended(job, "interrupted", "interrupted")
            conn.send(outcome)
    except KeyboardInterrupt:
        pass
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # while the interpreter shuts down, SIGTERM just ends it


def _next_job(conn: Connection) -> BatchJob | None:
    try:
        return conn.recv()
    except (EOFError, OSError):
        return None  # the batch is gone


# -- the batch's side -----------------------------------------------------------------------------------


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    job: BatchJob | None = None

    def give(self, job: BatchJob) -> None:
        self.job = job
        try:
            self.conn.send(job)
        except OSError:
            pass  # the process has ended: take() says so

    def take(self) -> JobOutcome:
        """The outcome of the running job (it is ready, or the process ended)."""
        job, self.job = self.job, None
        try:
            return self.conn.recv()
        except (EOFError, OSError):  # killed, out of memory: its outputs stay resumable
            self.process.join(5)
            return job_ended(job, "failed", f"its process ended (exit code {self.process.exitcode})")

    def close(self, timeout: float = CLOSE_WAIT_S) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


def _start_worker(ctx, cores: int) -> _Worker:
    mine, theirs = ctx.Pipe()
    # daemon: should the batch process end abruptly, multiprocessing still ends its workers
    process = ctx.Process(target=_worker_main, args=(theirs, cores), daemon=True)
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # the new process inherits the mask
    try:
        process.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
    theirs.close()
    return _Worker(process, mine)


def _run_workers(jobs: Sequence[BatchJob], workers: int, cores: int, on_done: Callable[[JobOutcome], None]) -> bool:
    """Run ``jobs`` in ``workers`` processes; outcomes reach ``on_done`` as sources end (several ending
    together: in the jobs' order). Returns False when interrupted: the running sources are stopped and
    recorded, the ones not started are left for ``--resume``. A stop is held while a job is handed over
    or an outcome recorded, so the batch always knows which worker runs what."""
    ctx = multiprocessing.get_context("spawn")
    order = {job.name: i for i, job in enumerate(jobs)}
    todo = deque(jobs)
    pool: list[_Worker] = []
    guard = SignalGuard()
    guard.install()
    try:
        while True:
            with guard.deferred():
                for worker in [w for w in pool if w.job is None and not w.process.is_alive()]:
                    pool.remove(worker)
                    worker.close(0)
                idle = [w for w in pool if w.job is None]
                while todo and (idle or len(pool) < workers):
                    worker = idle.pop() if idle else _start_worker(ctx, cores)
                    if worker not in pool:
                        pool.append(worker)
                    worker.give(todo.popleft())
            busy = [w for w in pool if w.job is not None]
            if not busy:
                return True
            ready = wait([w.conn for w in busy])
            with guard.deferred():
                for worker in sorted((w for w in busy if w.conn in ready), key=lambda w: order[w.job.name]):
                    on_done(worker.take())
    except KeyboardInterrupt:
        _stop(pool, on_done)
        return False
    finally:
        _stop(pool, lambda outcome: None)  # after any other error: the running sources still close their files
        try:
            with guard.deferred():  # a Ctrl-C now waits until every worker has ended
                for worker in pool:
                    worker.close()
        finally:
            guard.uninstall()


def _stop(pool: list[_Worker], on_done: Callable[[JobOutcome], None]) -> None:
    """Stop the running sources (each closes its files) and record them; one that does not stop within
    STOP_WAIT_S is ended and recorded as interrupted (its outputs hold whole frames up to its last write)."""
    busy = [w for w in pool if w.job is not None]
    for worker in busy:
        try:
            os.kill(worker.process.pid, signal.SIGTERM)
        except OSError:
            pass  # it has just ended: take() says so
    deadline = time.monotonic() + STOP_WAIT_S
    while busy:
        ready = wait([w.conn for w in busy], timeout=max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        for worker in [w for w in busy if w.conn in ready]:
            busy.remove(worker)
            outcome = worker.take()
            if outcome.status == "failed" and outcome.reason.startswith("its process ended"):
                outcome = replace(outcome, status="interrupted", reason="interrupted")
            on_done(outcome)
    for worker in busy:
        job, worker.job = worker.job, None
        worker.process.kill()
        on_done(job_ended(job, "interrupted", f"did not stop within {STOP_WAIT_S:.0f} s"))
