"""One forked child of the worker: start it on a list of compiled programs, watch it, kill it, reap everything.

Only the worker imports this (by plain name, with its own directory briefly on ``sys.path``). The worker waits on
the child's result and output pipes with ``select``; each program has its own wall-clock deadline, counted from the
end of the previous one. When a program overruns, floods its output, or the child dies, the worker SIGKILLs the
child's whole session, kills and reaps whatever else is left below it (the worker is a child subreaper, so orphans
of the program come back to it), removes the private directory, and reports the programs that finished plus the
one that failed. No signals are used to time anything.
"""

from __future__ import annotations

import json
import os
import select
import signal
import time
import types

import _child

MAX_RESULT_BYTES = 4096
DEMOTE_AFTER_S = 0.1


def _make_workdir(root: str) -> str:
    while True:
        path = os.path.join(root, f"pot-{os.getpid()}-{os.urandom(6).hex()}")
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            continue


def remove_dir(path: str) -> None:
    """Remove a program's directory (or a worker's base directory) and whatever a program left in it."""
    try:
        os.rmdir(path)  # the usual case: the program wrote nothing
    except FileNotFoundError:
        pass
    except OSError:
        import shutil

        for parent, dirs, _ in os.walk(path):  # a program may have made its subdirectories unreadable
            for name in dirs:
                os.chmod(os.path.join(parent, name), 0o700)
        shutil.rmtree(path, ignore_errors=True)


def _renice(pid: int, niceness: int) -> None:
    try:
        os.setpriority(os.PRIO_PGRP, pid, niceness)
    except OSError:  # gone, or (not root) not allowed to raise the priority back
        pass


def _parse(line: bytes, duration: float) -> dict:
    try:
        reply = json.loads(line)
        if reply.get("status") in _child.STATUSES:
            error = str(reply.get("error", ""))
            return {"status": reply["status"], "value": reply.get("value"), "error": error, "duration_s": duration}
    except (ValueError, AttributeError):
        pass
    return {"status": "error", "value": None, "error": "unreadable result", "duration_s": duration}


def _read_results(pid: int, fds: tuple[int, int], count: int, request: dict) -> tuple[list[dict], str | None]:
    """Replies of the programs that finished, and why the next one did not ("timeout", "output_limit", "eof",
    "too_long"; None when all ``count`` finished). A program still running after ``DEMOTE_AFTER_S`` gets the lowest
    CPU priority, so that programs that never end do not slow down the quick ones beside them."""
    result_r, output_r = fds
    timeout, max_output = float(request["timeout_s"]), int(request["max_output_bytes"])
    replies, buffer, output_bytes, demoted, open_fds = [], b"", 0, False, [result_r, output_r]
    started = time.monotonic()
    while len(replies) < count:
        now = time.monotonic()
        if now >= started + timeout:
            return replies, "timeout"
        if not demoted and now >= started + DEMOTE_AFTER_S:
            _renice(pid, 19)
            demoted = True
        wake = started + (timeout if demoted else min(timeout, DEMOTE_AFTER_S))
        for fd in select.select(open_fds, [], [], wake - now)[0]:
            data = os.read(fd, 65536)
            if fd == output_r:
                output_bytes += len(data)
                if not data:
                    open_fds.remove(fd)
                elif output_bytes > max_output:
                    return replies, "output_limit"
                continue
            if not data:
                return replies, "eof"
            buffer += data
            while b"\n" in buffer:  # one line per finished program; the next one's clock starts now
                line, buffer = buffer.split(b"\n", 1)
                replies.append(_parse(line, round(time.monotonic() - started, 6)))
                started, output_bytes = time.monotonic(), 0
                if demoted:
                    _renice(pid, 0)
                    demoted = False
            if len(buffer) > MAX_RESULT_BYTES:
                return replies, "too_long"
    return replies, None


def _children() -> list[int]:
    pid = os.getpid()
    try:
        with open(f"/proc/{pid}/task/{pid}/children", "rb") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _kill_everything(pid: int) -> int:
    """SIGKILL the child's session and every other process left below the worker; reap. Returns the child's status."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    _, status = os.waitpid(pid, 0)
    for _ in range(100):  # escaped descendants (new session, double fork) were re-parented to us: subreaper
        leftovers = _children()
        if not leftovers:
            break
        for child in leftovers:
            try:
                os.kill(child, signal.SIGKILL)
                os.waitpid(child, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
    return status


def _failure(verdict: str, status: int, duration: float) -> dict:
    if verdict == "timeout":
        kind, error = "timeout", "wall-clock timeout"
    elif verdict == "output_limit":
        kind, error = "output_limit", "too much output on stdout/stderr"
    elif verdict == "too_long":
        kind, error = "error", "result too long"
    elif os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        kind = "timeout" if sig == signal.SIGXCPU else "error"  # RLIMIT_CPU: the backstop for the deadline
        error = f"killed by {signal.strsignal(sig) or sig}"
    else:
        kind, error = "error", f"exited without a result (exit code {os.waitstatus_to_exitcode(status)})"
    return {"status": kind, "value": None, "error": error, "duration_s": duration}


def run_in_fork(codes: list[types.CodeType], request: dict, ctx: dict) -> list[dict]:
    """Run ``codes`` in one sandboxed child. Returns one reply per program that ran, in order: all of them, or a
    prefix whose last reply is the failure that stopped the child (or a MemoryError, after which it stops)."""
    start = time.monotonic()
    workdir = _make_workdir(ctx["tmp_root"])
    ctx["hook"] = _child.make_audit_hook(workdir)
    result_r, result_w = os.pipe()
    output_r, output_w = os.pipe()
    try:
        pid = os.fork()
    except OSError as exc:
        for fd in (result_r, result_w, output_r, output_w):
            os.close(fd)
        remove_dir(workdir)
        return [{"status": "error", "value": None, "error": f"fork failed: {exc}", "duration_s": 0.0}]
    if pid == 0:
        _child.run_in_child(codes, request, workdir, (result_w, output_w), ctx)
    os.close(result_w)
    os.close(output_w)
    try:
        replies, verdict = _read_results(pid, (result_r, output_r), len(codes), request)
    finally:
        status = _kill_everything(pid)
        os.close(result_r)
        os.close(output_r)
        remove_dir(workdir)
    if verdict is not None and not (replies and replies[-1]["status"] == "memory"):
        done = sum(r["duration_s"] for r in replies)
        replies.append(_failure(verdict, status, round(time.monotonic() - start - done, 6)))
    return replies
