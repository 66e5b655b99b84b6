"""What happens inside a forked sandbox child (stdlib only: the worker imports it from this directory).

The worker (``_worker.py`` via ``_fork.py``) forks a child for one program, or for a few pure ones
(``_purity.py``); the child calls :func:`run_in_child`, which never returns. In order, the child: starts its own
session (so the worker can kill it and anything it started with one ``killpg``), sets resource limits, drops root
to ``nobody`` when it has root, asks to be SIGKILLed if the worker dies, moves into its private directory, points
stdout/stderr at the output pipe, installs an audit hook that refuses the dangerous operations, runs each program
in a fresh namespace, and writes one JSON line ``{"status", "value", "error"}`` per program to the result pipe.

Layers, each useful on its own (a program must get past every one of them):
- OS: own session; RLIMIT_AS (memory), RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_NPROC=0 (no fork, no threads, except for
  uid 0), RLIMIT_CORE=0, no_new_privs; as root also uid/gid ``nobody`` (keeping only the right to read files) and,
  in the worker, an empty network namespace.
- Python: an audit hook refusing fork/exec/spawn/subprocess/os.system/kill, sockets, ctypes, gc introspection,
  ``__code__`` swaps, and writes, deletes or renames of paths outside the private directory.

LIMITS (what this does NOT protect against; it is a fence for buggy or reward-hacking model programs, not a
security boundary against a determined attacker): reads are allowed (any world-readable file, /proc, the worker's
environment, which holds no secrets); the audit hook is Python-level, so already-imported C modules that raise no
audit events (``_posixsubprocess``) can bypass it, and a program that reaches the hook through frame objects could
weaken it; without root there is no uid drop and no network namespace, so those layers rest on the audit hook
alone; a program may write (bounded by RLIMIT_FSIZE) inside its own directory; CPU-bound C code is stopped only by
the worker's SIGKILL at the deadline. Programs sharing a child are kept apart by ``_purity.py``'s allow-list, not by
this module.
"""

from __future__ import annotations

import builtins
import ctypes
import json
import math
import os
import resource
import signal
import sys
import types

STATUSES = ("ok", "timeout", "error", "non_numeric", "no_program", "memory", "output_limit")
NOBODY = 65534
MAX_ERROR_CHARS = 200
MAX_FILE_BYTES = 16 << 20
MAX_SOURCE_CHARS = 100_000
PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_SET_NO_NEW_PRIVS = 38
CAP_DAC_READ_SEARCH = 2
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

# audit events refused outright (prefix match)
_REFUSED = (
    "os.fork", "os.forkpty", "os.exec", "os.spawn", "os.posix_spawn", "os.system", "os.kill", "os.killpg",
    "subprocess.", "pty.", "socket.", "ctypes.", "gc.get_objects", "gc.get_referrers", "gc.get_referents",
    "os.setuid", "os.setgid", "os.setresuid", "os.setresgid", "os.chroot", "resource.setrlimit", "resource.prlimit",
    "urllib.", "http.", "ftplib.", "smtplib.", "webbrowser.", "sys.remote_exec", "sqlite3.",
)  # fmt: skip
# audit events whose path arguments (by position) must lie inside the private directory
_PATH_ARGS = {
    "os.remove": (0,), "os.rename": (0, 1), "os.rmdir": (0,), "os.mkdir": (0,), "os.chmod": (0,), "os.chown": (0,),
    "os.link": (0, 1), "os.symlink": (0, 1), "os.truncate": (0,), "os.utime": (0,), "os.mkfifo": (0,),
    "os.mknod": (0,), "os.setxattr": (0,), "os.removexattr": (0,), "shutil.rmtree": (0,), "shutil.copyfile": (1,),
    "shutil.copytree": (1,), "shutil.chown": (0,), "shutil.move": (0, 1), "shutil.unpack_archive": (1,),
}  # fmt: skip
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _inside(path: object, root: str) -> bool:
    """Whether ``path`` (str/bytes/PathLike; an int is an already-open fd) resolves inside ``root``."""
    if isinstance(path, int):
        return True
    try:
        real = os.path.realpath(os.fsdecode(os.fspath(path)))
    except (TypeError, ValueError):
        return False
    return real == root or real.startswith(root + os.sep)


def make_audit_hook(root: str):  # a closure; it is referenced only by the interpreter's hook list
    """The audit hook for a program whose private directory is ``root`` (a resolved path). Built in the worker."""

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            mode, flags = args[1], args[2]
            writing = any(c in mode for c in "wax+") if isinstance(mode, str) else bool((flags or 0) & _WRITE_FLAGS)
            if writing and not _inside(args[0], root):
                raise PermissionError(f"sandbox: writing {args[0]!r} outside the program directory")
        elif event in _PATH_ARGS:
            if not all(_inside(args[i], root) for i in _PATH_ARGS[event] if i < len(args)):
                raise PermissionError(f"sandbox: {event} outside the program directory")
        elif event == "object.__setattr__" and len(args) > 1 and args[1] in ("__code__", "__globals__"):
            raise PermissionError(f"sandbox: setting {args[1]} is refused")
        elif event.startswith(_REFUSED):
            raise PermissionError(f"sandbox: {event} is refused")

    return hook


def _set_limits(timeout_s: float, memory_mb: int) -> None:
    cpu = int(math.ceil(timeout_s)) + 1
    limits = {
        resource.RLIMIT_AS: memory_mb << 20,
        resource.RLIMIT_CPU: cpu,
        resource.RLIMIT_FSIZE: MAX_FILE_BYTES,
        resource.RLIMIT_CORE: 0,
        resource.RLIMIT_NPROC: 0,
    }
    for which, value in limits.items():
        hard = value + 1 if which == resource.RLIMIT_CPU else value  # SIGXCPU first, SIGKILL one second later
        resource.setrlimit(which, (value, hard))


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


# Built once in the worker: allocating in the child costs page faults, which are slow on small VMs.
_CAPS_HEADER = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
_CAPS_DATA = (_CapData * 2)(_CapData(1 << CAP_DAC_READ_SEARCH, 1 << CAP_DAC_READ_SEARCH, 0))


def become_nobody(libc: ctypes.CDLL) -> bool:
    """As root: become uid/gid ``nobody`` keeping only CAP_DAC_READ_SEARCH (read any file, so the interpreter can
    still import modules from a root-only prefix such as ``/root/.pyenv``; write, delete, kill and fork limits apply).
    Returns False when this is not possible (the worker probes it once and then skips it)."""
    if os.geteuid() != 0 or libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0:
        return False
    os.setgroups([])
    os.setresgid(NOBODY, NOBODY, NOBODY)
    os.setresuid(NOBODY, NOBODY, NOBODY)
    return libc.capset(ctypes.byref(_CAPS_HEADER), _CAPS_DATA) == 0


def _arm_parent_death(libc: ctypes.CDLL | None, worker_pid: int) -> None:
    """Ask for SIGKILL when the worker dies (after any uid change, which clears it) and forbid privilege gain."""
    if libc is not None:
        libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != worker_pid:  # the worker died before PDEATHSIG was armed
        os._exit(1)


def to_number(value: object) -> float:
    """ReFT's ``floatify``: ``float(value)`` (so bools, numeric strings, numpy/sympy numbers and Fractions pass).

    Raises ``ValueError`` for NaN and infinity (ReFT would score them 0.1; we treat them as non-numeric).
    """
    number = float(value)  # TypeError / ValueError / OverflowError propagate
    if not math.isfinite(number):
        raise ValueError(f"not finite: {number}")
    return number


def describe(exc: BaseException) -> str:
    """``Type: message``, at most ``MAX_ERROR_CHARS`` characters."""
    try:
        text = f"{type(exc).__name__}: {exc}"
    except BaseException:  # a hostile __str__ must not lose the result
        text = type(exc).__name__
    return text[:MAX_ERROR_CHARS]


def execute(code: types.CodeType, preloaded: dict[str, object]) -> dict:
    """Run ``code``, call ``solution()`` and classify the outcome (runs in the sandboxed child)."""
    namespace = {"__name__": "__main__", "__builtins__": builtins, **preloaded}
    try:
        exec(code, namespace)  # this is the sandbox
        solution = namespace.get("solution")
        if not callable(solution):
            return {"status": "error", "value": None, "error": "NameError: no callable solution() defined"}
        value = solution()
    except MemoryError as exc:
        return {"status": "memory", "value": None, "error": describe(exc)}
    except BaseException as exc:  # SystemExit, KeyboardInterrupt, ... are the program's failures
        return {"status": "error", "value": None, "error": describe(exc)}
    try:
        return {"status": "ok", "value": to_number(value), "error": ""}
    except BaseException as exc:
        return {"status": "non_numeric", "value": None, "error": describe(exc)}


def encode_reply(reply: dict) -> bytes:
    """One JSON line; the common ``ok`` case is formatted by hand (``json`` would touch more pages in the child)."""
    if reply["status"] == "ok":
        return b'{"status": "ok", "value": %s, "error": ""}\n' % repr(reply["value"]).encode()
    return json.dumps(reply).encode() + b"\n"


def run_in_child(codes: list[types.CodeType], request: dict, workdir: str, fds: tuple[int, int], ctx: dict) -> None:
    """Body of the forked child; never returns. Runs ``codes`` one after another, one result line each.

    ``fds``: (result pipe, output pipe) write ends. ``ctx``: ``worker_pid``, ``libc`` (or None), ``preloaded``
    (program globals), ``drop_uid`` (worker-probed), ``max_fd``, ``hook`` (the audit hook). Whatever can be prepared
    is prepared by the worker before the fork: every page the child writes costs a copy-on-write fault. Several
    codes share a child only when each is pure (``_purity.py``); after a MemoryError the child stops, so that the
    worker re-runs the program alone.
    """
    result_fd, output_fd = fds
    exit_code = 70
    try:
        os.setsid()
        _set_limits(float(request["timeout_s"]), int(request["memory_mb"]))
        if ctx["drop_uid"]:
            os.chown(workdir, NOBODY, NOBODY)
            if not become_nobody(ctx["libc"]):
                os._exit(71)
        _arm_parent_death(ctx["libc"], ctx["worker_pid"])
        os.chdir(workdir)
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        os.closerange(3, result_fd)  # the worker's protocol pipes and anything else inherited
        os.closerange(result_fd + 1, ctx["max_fd"])
        sys.addaudithook(ctx["hook"])
        for code in codes:
            reply = execute(code, ctx["preloaded"])
            os.write(result_fd, encode_reply(reply))
            if reply["status"] == "memory":
                break
        exit_code = 0
    finally:
        os._exit(exit_code)
