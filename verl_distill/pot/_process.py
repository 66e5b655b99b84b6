"""Parent-side handle of one sandbox worker process: start it, talk to it line by line, replace it when it fails.

The worker is started as ``python -I _worker.py`` in its own session with a minimal environment (the caller's
secrets, API keys and ``PYTHONPATH`` never reach programs). A handle is used by one thread at a time (the executor
checks it out of a queue); every read has a deadline, so a dead or silent worker costs a bounded wait, never a hang.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

WORKER_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_worker.py")
STARTUP_TIMEOUT_S = 120.0  # importing sympy on a loaded machine
MAX_LINE_BYTES = 1 << 16


class WorkerDied(RuntimeError):
    """The worker exited, broke the protocol, or did not answer in time."""


def _worker_env(tmp: str) -> dict[str, str]:
    env = {"PATH": os.defpath, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TMPDIR": tmp}
    env.update({k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
    return env


class WorkerProcess:
    """One worker; ``preload`` names modules it imports up front (and binds as program globals), e.g. ``("sympy",)``."""

    def __init__(self, preload: tuple[str, ...] = ()) -> None:
        self.preload = preload
        self._proc: subprocess.Popen | None = None
        self._buffer = b""
        self._ready = False
        self.layers: dict = {}
        self.start()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        self._tmp = os.path.realpath(tempfile.gettempdir())
        args = [sys.executable, "-I", WORKER_PATH] + (["--preload", ",".join(self.preload)] if self.preload else [])
        self._proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
            env=_worker_env(self._tmp),
            cwd="/",
            start_new_session=True,  # Ctrl-C in the caller's terminal must not kill workers mid-batch
        )
        self._buffer, self._ready = b"", False

    def stop(self) -> None:
        """Close stdin (the worker exits), then make sure it is gone and its directories with it."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            proc.stdin.close()
            proc.wait(timeout=2.0)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            stream.close()
        # a worker killed mid-program could not clean up: its base directory is pot-worker-<pid> (see _worker.py)
        shutil.rmtree(os.path.join(self._tmp, f"pot-worker-{proc.pid}"), ignore_errors=True)

    def restart(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
        self.stop()
        self.start()

    def _stderr_tail(self) -> str:
        proc = self._proc
        if proc is None or proc.poll() is None:
            return ""
        try:
            return proc.stderr.read(4096).decode(errors="replace").strip().splitlines()[-1:][0]
        except (OSError, IndexError, ValueError):
            return ""

    def _read_line(self, deadline: float) -> dict:
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerDied("no answer before the deadline")
            if not select.select([fd], [], [], remaining)[0]:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                self._proc.wait()
                raise WorkerDied(f"exited with code {self._proc.returncode} {self._stderr_tail()}".strip())
            self._buffer += chunk
            if len(self._buffer) > MAX_LINE_BYTES:
                raise WorkerDied("answer too long")
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            reply = json.loads(line)
        except ValueError as exc:
            raise WorkerDied(f"unreadable answer: {line[:80]!r}") from exc
        if not isinstance(reply, dict):
            raise WorkerDied(f"unreadable answer: {line[:80]!r}")
        return reply

    def request(self, message: dict, *, reply_deadline: float) -> dict:
        """Send one request and return the worker's reply; raises ``WorkerDied`` on any failure."""
        if self._proc is None:
            raise WorkerDied("worker is stopped")
        if not self._ready:  # the first request also waits for the worker's imports; they do not eat its budget
            budget = reply_deadline - time.monotonic()
            self.layers = self._read_line(time.monotonic() + STARTUP_TIMEOUT_S).get("layers", {})
            self._ready = True
            reply_deadline = time.monotonic() + budget
        try:
            self._proc.stdin.write(json.dumps(message).encode() + b"\n")
        except OSError as exc:
            raise WorkerDied(f"cannot send: {exc}") from exc
        return self._read_line(reply_deadline)
