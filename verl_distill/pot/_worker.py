"""A long-lived, pre-warmed worker process: reads requests, runs their programs in forks, answers.

Started by :class:`verl_distill.pot.executor.PotExecutor` as ``python -I _worker.py [--preload sympy]`` with a
minimal environment. ``-I`` keeps PYTHONPATH, the user site and the script directory off ``sys.path``; the worker
imports its sibling modules (``_child``, ``_purity``, ``_fork``: stdlib only) with its directory on ``sys.path``
for that moment only. It imports as little as it can: every loaded module makes each fork dearer.

Protocol, one JSON object per line: the parent writes ``{"codes": [source, ...], "timeout_s", "memory_mb",
"max_output_bytes"}`` on stdin; the worker answers ``{"results": [{"status", "value", "error", "duration_s"}, ...]}``
on stdout, one result per source, in order. Its first line is ``{"ready": true, "layers": {...}}``. EOF on stdin
means: exit.

Per request the worker compiles every source (no code runs; a SyntaxError is answered at once), runs the pure ones
(``_purity.py``) together in one forked child and every other one in a child of its own. When a child stops early
(a timeout, an output flood, a crash), the programs after the failing one are run again in a new child; a program
that hit MemoryError in a shared child is run again alone. Each program keeps its own timeout throughout.
"""

from __future__ import annotations

import ast
import ctypes
import importlib
import json
import math
import os
import resource
import signal
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
try:
    import _child
    import _fork
    import _purity
finally:
    sys.path.remove(_HERE)

PR_SET_CHILD_SUBREAPER = 36
CLONE_NEWNET = 0x40000000


def _probe_uid_drop(libc: ctypes.CDLL) -> bool:
    """Fork once to check that a child can become ``nobody`` and still read the interpreter's files."""
    pid = os.fork()
    if pid == 0:
        ok = False
        try:  # any exception means "no": os._exit below runs before it propagates
            if _child.become_nobody(libc):
                os.listdir(os.path.dirname(os.__file__))  # raises if the stdlib became unreadable
                ok = True
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def _setup(libc: ctypes.CDLL | None) -> dict:
    """Become a child subreaper and, as root, leave the network namespace. Returns which layers are active."""
    layers = {"subreaper": False, "netns": False, "uid_drop": False}
    if libc is not None:
        layers["subreaper"] = libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
        if os.geteuid() == 0:
            layers["netns"] = libc.unshare(CLONE_NEWNET) == 0
            layers["uid_drop"] = _probe_uid_drop(libc)
    return layers


def _compile(source: str, shared: frozenset[str]) -> tuple[object, str, bool]:
    """(code or None, error, pure). Compiling runs no program code, and compiling here rather than in the child
    saves most of the child's page faults; the parser's own limits turn hostile sources into exceptions."""
    if len(source) > _child.MAX_SOURCE_CHARS:
        return None, f"program too long ({len(source)} > {_child.MAX_SOURCE_CHARS} characters)", False
    try:
        tree = ast.parse(source, "<program>")
        return compile(tree, "<program>", "exec"), "", _purity.is_pure(tree, shared)
    except (SyntaxError, ValueError, MemoryError, RecursionError, OverflowError) as exc:
        return None, _child.describe(exc), False


def _run_group(codes: list, request: dict, ctx: dict) -> list[dict]:
    """Run pure programs sharing children; re-run what a stopped child did not finish (see module docstring)."""
    results: list[dict] = []
    while len(results) < len(codes):
        pending = codes[len(results) :]
        replies = _fork.run_in_fork(pending, request, ctx)
        if len(replies) > 1 and replies[-1]["status"] == "memory":  # maybe others' garbage: run it alone
            replies[-1] = _fork.run_in_fork([pending[len(replies) - 1]], request, ctx)[0]
        results.extend(replies)
    return results


def handle(request: dict, ctx: dict) -> list[dict]:
    """One result per source of ``request["codes"]``, in order."""
    compiled = [_compile(source, ctx["shared"]) for source in request["codes"]]
    results: list[dict | None] = [None] * len(compiled)
    pure = [i for i, (code, _, is_pure) in enumerate(compiled) if is_pure]
    for i, reply in zip(pure, _run_group([compiled[i][0] for i in pure], request, ctx), strict=True):
        results[i] = reply
    for i, (code, error, _) in enumerate(compiled):
        if code is None:
            results[i] = {"status": "error", "value": None, "error": error, "duration_s": 0.0}
        elif results[i] is None:
            results[i] = _fork.run_in_fork([code], request, ctx)[0]
    return results


def _make_base_dir() -> str:
    """The worker's directory for its programs' directories; the parent removes it if the worker gets killed."""
    path = os.path.join(os.path.realpath(os.environ.get("TMPDIR") or "/tmp"), f"pot-worker-{os.getpid()}")
    _fork.remove_dir(path)  # left by an earlier process with this pid
    os.mkdir(path, 0o711)  # programs (maybe uid nobody) may pass through it to their own directory, not list it
    return path


def _context(preload: list[str]) -> dict:
    preloaded: dict[str, object] = {"math": math}  # ReFT binds math and sympy in the program's globals
    for name in preload:
        preloaded[name] = importlib.import_module(name)
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # the process's own symbols include libc's
        for name in ("prctl", "capset", "unshare"):  # resolve once here, not in every child
            getattr(libc, name)
    except (OSError, AttributeError):
        libc = None
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # inherited: an oversized write fails with EFBIG, no kill
    layers = _setup(libc)
    max_fd = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    ctx = {"worker_pid": os.getpid(), "libc": libc, "preloaded": preloaded, "drop_uid": layers["uid_drop"]}
    ctx.update(tmp_root=_make_base_dir(), layers=layers)
    ctx.update(max_fd=max_fd if max_fd > 0 else 1024, shared=frozenset(preloaded) - {"math"})
    return ctx


def main(argv: list[str]) -> int:
    preload = argv[argv.index("--preload") + 1].split(",") if "--preload" in argv else []
    ctx = _context(preload)
    proto_in, proto_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # stray prints (ours or a library's) must never corrupt the protocol
        os.dup2(devnull, fd)
    out = os.fdopen(proto_out, "w", buffering=1)
    out.write(json.dumps({"ready": True, "pid": os.getpid(), "layers": ctx["layers"]}) + "\n")
    try:
        for line in os.fdopen(proto_in, "r"):
            start = time.monotonic()
            results = handle(json.loads(line), ctx)
            out.write(json.dumps({"results": results, "seconds": round(time.monotonic() - start, 6)}) + "\n")
    finally:
        _fork.remove_dir(ctx["tmp_root"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
