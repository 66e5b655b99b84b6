"""Run model-written PoT programs (``def solution(): ... return x``) safely and fast, with ReFT's semantics.

Why: the verifiable reward (seed 002 section 2.2.1, after ReFT) executes every sampled program. verl calls sync
reward functions from worker *threads*, so nothing here may use signals in the caller, and a program must never run
in the caller's process. It also has to be fast: RL scores thousands of programs per step.

Design: ``PotExecutor`` keeps long-lived worker processes (``_worker.py``, started with ``python -I`` and a minimal
environment, ``math`` pre-imported; a few "sympy" workers also pre-import sympy and get the programs whose text
mentions ``sympy``, because forking a sympy-sized interpreter costs several times more). The parent cuts a batch
into requests of up to ``MAX_CHUNK`` programs and dispatches them over a thread pool, one worker per thread at a
time. A worker compiles each program and ``fork()``s a sandboxed child (``_child.py``; copy-on-write, so no program
can change what another sees): one child per program, except that programs whose syntax shows they cannot touch
shared state (``_purity.py``: plain arithmetic on their own names) share a child, one after another, each in a fresh
namespace with its own deadline, which makes plain programs several times cheaper on small VMs where a fork costs
~1 ms of page faults. The worker enforces every deadline with ``select`` and SIGKILLs the child's whole session
(``_fork.py``). A worker that dies or stops answering is replaced, and its programs are reported as ``error``.
Throughput: ``verl-distill bench pot``.

Semantics (ReFT ``src/python_engine.py`` + ``train_rl_reft.py``): the program runs with ``math`` (and ``sympy``)
bound as globals; the value of ``solution()`` goes through ``float()`` (so ints, bools, numeric strings, numpy/sympy
numbers, Fractions count); ``score_value`` compares with ``abs(pred - gold) <= 1e-2``. Differences from ReFT: NaN
and infinity are ``non_numeric`` (ReFT would score them 0.1), blank lines do not truncate the program (ReFT cuts at
the first one; ``program.py`` extracts the function instead), and top-level helpers are visible inside
``solution()`` (ReFT's separate globals/locals hide them).

Statuses (``ExecResult.status``): ``ok`` (finite number returned), ``non_numeric`` (returned something ``float()``
rejects, or NaN/inf), ``error`` (exception, SyntaxError, SystemExit, crash, refused by the sandbox, worker failure),
``timeout`` (wall-clock deadline), ``memory`` (MemoryError under RLIMIT_AS), ``output_limit`` (printed more than
``max_output_bytes``), ``no_program`` (``None`` or blank source; not executed).

LIMITS: see ``_child.py`` for what the sandbox does not stop (it is a fence for model programs, not a security
boundary). Timing precision is the worker's ``select`` loop (milliseconds); a timeout is wall-clock, so a loaded
machine can time out a slow but correct program. Programs that import heavy modules (numpy) pay the import every
time. Calling ``run`` with one program at a time (verl's per-sample reward) forgoes the shared children: batch when
you can.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from verl_distill.pot._child import STATUSES
from verl_distill.pot._process import WorkerDied, WorkerProcess

logger = logging.getLogger(__name__)

REPLY_GRACE_S = 10.0  # beyond the programs' timeouts, before a silent worker is declared dead
MAX_CHUNK = 8  # programs per worker request


@dataclass(frozen=True)
class ExecResult:
    """Outcome of one program. ``value`` is set only when ``status == "ok"``; ``error`` is "" when ok."""

    status: str
    value: float | None
    error: str
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def ran(self) -> bool:
        """The program finished without crashing or timing out (its return value may still be non-numeric)."""
        return self.status in ("ok", "non_numeric")


def _default_workers() -> int:
    # More workers than cores: a program waiting out its wall-clock timeout (a loop, a sleep) holds its worker, and
    # an idle worker costs only ~12 MB and no CPU.
    return min(16, max(8, 2 * (os.cpu_count() or 1)))


def _validate_limits(timeout_s: float, memory_mb: int, max_output_bytes: int) -> None:
    if not (isinstance(timeout_s, (int, float)) and math.isfinite(timeout_s) and timeout_s > 0):
        raise ValueError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
    if not (isinstance(memory_mb, int) and memory_mb >= 64):
        raise ValueError(f"memory_mb must be an int >= 64 (the interpreter itself needs ~50 MB), got {memory_mb!r}")
    if not (isinstance(max_output_bytes, int) and max_output_bytes >= 0):
        raise ValueError(f"max_output_bytes must be an int >= 0, got {max_output_bytes!r}")


def _to_result(reply: object) -> ExecResult:
    """Check a worker reply (never trust its shape) and turn it into an ``ExecResult``."""
    if not isinstance(reply, dict):
        return ExecResult("error", None, f"malformed worker reply: {reply!r:.80}", 0.0)
    status, value = reply.get("status"), reply.get("value")
    duration = float(reply.get("duration_s") or 0.0)
    error = str(reply.get("error", ""))[:500]
    if status not in STATUSES:
        return ExecResult("error", None, f"malformed worker reply: {status!r}", duration)
    if status == "ok":
        if not (isinstance(value, (int, float)) and math.isfinite(value)):
            return ExecResult("error", None, f"malformed worker value: {value!r}", duration)
        return ExecResult("ok", float(value), "", duration)
    return ExecResult(status, None, error, duration)


class PotExecutor:
    """A pool of warm sandbox workers. Thread-safe; use as a context manager or call ``close()``."""

    def __init__(
        self,
        *,
        num_workers: int | None = None,
        sympy_workers: int | None = None,
        timeout_s: float = 5.0,
        memory_mb: int = 1024,
        max_output_bytes: int = 1 << 20,
    ) -> None:
        num_workers = _default_workers() if num_workers is None else num_workers
        if not (isinstance(num_workers, int) and num_workers >= 1):
            raise ValueError(f"num_workers must be an int >= 1, got {num_workers!r}")
        sympy_workers = max(1, num_workers // 4) if sympy_workers is None else sympy_workers
        if not (isinstance(sympy_workers, int) and sympy_workers >= 1):
            raise ValueError(f"sympy_workers must be an int >= 1, got {sympy_workers!r}")
        _validate_limits(timeout_s, memory_mb, max_output_bytes)
        self.timeout_s, self.memory_mb, self.max_output_bytes = float(timeout_s), memory_mb, max_output_bytes
        self.pid = os.getpid()
        self._closed = False
        self._workers = [WorkerProcess(preload=()) for _ in range(num_workers)]
        self._workers += [WorkerProcess(preload=("sympy",)) for _ in range(sympy_workers)]
        self._idle: dict[bool, queue.SimpleQueue] = {False: queue.SimpleQueue(), True: queue.SimpleQueue()}
        for worker in self._workers:
            self._idle[bool(worker.preload)].put(worker)
        self._pool = concurrent.futures.ThreadPoolExecutor(len(self._workers), thread_name_prefix="pot-exec")

    @property
    def closed(self) -> bool:
        return self._closed

    def worker_pids(self) -> list[int]:
        """PIDs of the live worker processes (for diagnostics and tests)."""
        return [w.pid for w in self._workers if w.pid is not None]

    def run(
        self, programs: Sequence[str | None], *, timeout_s: float | None = None, memory_mb: int | None = None
    ) -> list[ExecResult]:
        """Run each program's ``solution()``; results come back in input order. ``None``/blank -> ``no_program``."""
        if self._closed:
            raise RuntimeError("PotExecutor is closed")
        timeout_s = float(self.timeout_s if timeout_s is None else timeout_s)
        memory_mb = self.memory_mb if memory_mb is None else memory_mb
        _validate_limits(timeout_s, memory_mb, self.max_output_bytes)
        bad = next((i for i, p in enumerate(programs) if not (p is None or isinstance(p, str))), None)
        if bad is not None:
            raise TypeError(f"programs[{bad}] must be a str or None, got {type(programs[bad]).__name__}")
        results: list[ExecResult] = [ExecResult("no_program", None, "no program", 0.0)] * len(programs)
        futures = {}
        for chunk in self._chunks(programs):
            sources = [programs[i] for i in chunk]
            futures[self._pool.submit(self._run_chunk, sources, timeout_s, memory_mb)] = chunk
        for future, chunk in futures.items():
            for i, result in zip(chunk, future.result(), strict=True):
                results[i] = result
        return results

    def _chunks(self, programs: Sequence[str | None]) -> list[list[int]]:
        """Indices grouped per request: programs naming sympy go to the sympy workers; a request holds up to
        ``MAX_CHUNK`` programs (the worker may run pure ones in one fork), but never so many that workers idle."""
        chunks = []
        for heavy in (False, True):
            todo = [i for i, p in enumerate(programs) if p is not None and p.strip() and ("sympy" in p) == heavy]
            workers = sum(1 for w in self._workers if bool(w.preload) == heavy)
            size = max(1, min(MAX_CHUNK, -(-len(todo) // workers)))
            chunks += [todo[k : k + size] for k in range(0, len(todo), size)]
        return chunks

    def _run_chunk(self, sources: list[str], timeout_s: float, memory_mb: int) -> list[ExecResult]:
        idle = self._idle["sympy" in sources[0]]
        worker = idle.get()
        start = time.monotonic()
        request = {"codes": sources, "timeout_s": timeout_s, "memory_mb": memory_mb}
        request["max_output_bytes"] = self.max_output_bytes
        deadline = start + len(sources) * (timeout_s + 1.0) + REPLY_GRACE_S
        try:
            replies = worker.request(request, reply_deadline=deadline).get("results")
            if not (isinstance(replies, list) and len(replies) == len(sources)):
                raise WorkerDied(f"answered {type(replies).__name__} for {len(sources)} programs")
            return [_to_result(reply) for reply in replies]
        except WorkerDied as exc:
            logger.warning("pot worker %s failed (%s); replacing it", worker.pid, exc)
            worker.restart()
            return [ExecResult("error", None, f"worker failed: {exc}", time.monotonic() - start)] * len(sources)
        finally:
            idle.put(worker)

    def close(self) -> None:
        """Stop the workers (their running programs are killed with them). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
        for worker in self._workers:
            worker.stop()

    def __enter__(self) -> PotExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_DEFAULTS: dict[tuple, PotExecutor] = {}
_DEFAULTS_LOCK = threading.Lock()


def get_default_executor(**kwargs: object) -> PotExecutor:
    """The process-wide executor for these constructor kwargs, created on first use (thread-safe).

    Re-created when it was closed or when this process is a fork of the one that created it (its pipes belong to
    the parent). Limits that vary per call (``timeout_s``, ``memory_mb``) are better passed to ``run``.
    """
    key = tuple(sorted(kwargs.items()))
    with _DEFAULTS_LOCK:
        executor = _DEFAULTS.get(key)
        if executor is None or executor.closed or executor.pid != os.getpid():
            executor = PotExecutor(**kwargs)
            _DEFAULTS[key] = executor
        return executor


@atexit.register
def _close_defaults() -> None:
    for executor in list(_DEFAULTS.values()):
        if executor.pid == os.getpid():
            executor.close()


def score_value(value: float | None, gold: float, *, tol: float = 1e-2) -> bool:
    """ReFT's comparison: ``abs(pred - gold) <= tol`` (absolute, ``tol=1e-2``); ``None`` is never correct."""
    if value is None or not math.isfinite(value):
        return False
    return abs(value - gold) <= tol
