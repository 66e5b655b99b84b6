"""The sandbox, one property per test: each hostile program costs at most its timeout, harms nothing, and the
executor serves the next program correctly."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

import psutil
import pytest

from verl_distill.pot import PotExecutor

TIMEOUT = 1.0
SLACK = 1.5  # fork, scheduling and reaping on a loaded 2-core machine
OK_PROGRAM = "def solution():\n    return 6 * 7\n"


def program(*body: str) -> str:
    return "def solution():\n" + "".join(f"    {line}\n" for line in body)


@pytest.fixture(scope="module")
def executor():
    with PotExecutor(num_workers=3, sympy_workers=1, timeout_s=TIMEOUT, max_output_bytes=1 << 16) as ex:
        yield ex


def run_one(executor: PotExecutor, source: str):
    return executor.run([source])[0]


def assert_healthy(executor: PotExecutor) -> None:
    results = executor.run([OK_PROGRAM] * 4)
    assert [(r.status, r.value) for r in results] == [("ok", 42.0)] * 4


def test_runs_outside_the_caller_process(executor: PotExecutor) -> None:
    result = run_one(executor, program("import os", "return os.getpid()"))
    assert result.ok and result.value != os.getpid()
    assert run_one(executor, program("import os", "return os.getppid()")).value != os.getpid()


@pytest.mark.parametrize(
    "body",
    [
        ("while True:", "    pass"),
        ("import time", "time.sleep(1000)"),  # wall clock, not CPU time
        ("return 10**10**10",),  # C-level big-int power: no Python signal could interrupt it
        (
            "import signal as s",
            "s.signal(s.SIGTERM, s.SIG_IGN)",
            "s.signal(s.SIGINT, s.SIG_IGN)",
            "while 1:",
            "    pass",
        ),
    ],
    ids=["loop", "sleep", "bigpow", "ignores-signals"],
)
def test_never_ending_programs_cost_at_most_their_timeout(executor: PotExecutor, body: tuple[str, ...]) -> None:
    start = time.monotonic()
    result = run_one(executor, program(*body))
    assert result.status in ("timeout", "memory")
    assert time.monotonic() - start < TIMEOUT + SLACK
    assert_healthy(executor)


def test_memory_is_limited(executor: PotExecutor) -> None:
    result = run_one(executor, program("x = bytearray(50 * 2**30)", "return 1"))
    assert result.status == "memory"
    result = executor.run([program("x = bytearray(300 * 2**20)", "return 1")], memory_mb=256)[0]
    assert result.status == "memory"
    assert_healthy(executor)


def _processes_with(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if marker in " ".join(proc.info["cmdline"] or []):
            found.append(proc)
    return found


@pytest.mark.parametrize(
    "body",
    [
        ("import subprocess", "subprocess.Popen(['sleep', '1000.25'])", "return 1"),
        ("import os", "os.system('sleep 1000.25 &')", "return 1"),
        ("import os", "if os.fork() == 0:", "    os.execv('/bin/sleep', ['sleep', '1000.25'])", "return 1"),
        # skip the audit hook by faking subprocess's ``sys.audit``: the OS layers (NPROC, killpg, subreaper) remain
        (
            "import subprocess, types",
            "subprocess.sys = types.SimpleNamespace(audit=lambda *a: None)",
            "subprocess.Popen(['sleep', '1000.25'], start_new_session=True)",
            "return 1",
        ),
    ],
    ids=["popen", "system", "fork-exec", "popen-bypassing-audit"],
)
def test_no_child_process_survives(executor: PotExecutor, body: tuple[str, ...]) -> None:
    run_one(executor, program(*body))
    time.sleep(0.2)
    assert _processes_with("1000.25") == []
    for pid in executor.worker_pids():
        assert psutil.Process(pid).children() == []
    assert_healthy(executor)


def test_no_network(executor: PotExecutor) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    try:
        result = run_one(executor, program("import socket", f"socket.create_connection(('127.0.0.1', {port}), 1)"))
        assert result.status == "error"
        with pytest.raises(TimeoutError):
            listener.accept()  # nothing arrived
    finally:
        listener.close()


def test_private_temporary_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))  # where the workers create program directories
    writer = program("import os", "open('note.txt', 'w').write('hi')", "return len(os.listdir('.'))")
    reader = program("import os", f"return int(os.getcwd().startswith({str(tmp_path)!r})) + len(os.listdir('.'))")
    with PotExecutor(num_workers=1, sympy_workers=1, timeout_s=TIMEOUT) as ex:
        assert [r.value for r in ex.run([writer, reader, writer, reader])] == [1.0, 1.0, 1.0, 1.0]
    assert list(tmp_path.iterdir()) == []  # every program directory was removed


@pytest.mark.parametrize(
    "body",
    [
        ("open(PATH, 'w').write('owned')",),
        ("open(PATH, 'a').write('owned')",),
        ("import os", "os.remove(PATH)"),
        ("import os", "os.rename(PATH, PATH + '.moved')"),
        (
            "import shutil",
            "shutil.rmtree(os.path.dirname(PATH))",
        ),
        ("import os", "fd = os.open(PATH, os.O_WRONLY | os.O_TRUNC)", "os.write(fd, b'owned')"),
        (
            "import pathlib",
            "pathlib.Path(PATH).write_text('owned')",
        ),
        ("import os", "os.chmod(PATH, 0o777)"),
        ("import os", "os.symlink(PATH, 'link')", "open('link', 'w').write('owned')"),
    ],
    ids=["write", "append", "remove", "rename", "rmtree", "os-open", "pathlib", "chmod", "symlink"],
)
def test_files_outside_its_directory_are_untouched(executor: PotExecutor, tmp_path: Path, body: tuple) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("precious")
    target.chmod(0o644)
    source = program("import os", f"PATH = {str(target)!r}", *body, "return 1")
    result = run_one(executor, source)
    assert result.status == "error"
    assert target.read_text() == "precious" and (target.stat().st_mode & 0o777) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious.txt"]


def test_output_flood_is_cut_and_the_caller_stays_small(executor: PotExecutor) -> None:
    rss_before = psutil.Process().memory_info().rss
    start = time.monotonic()
    result = run_one(executor, program("s = 'x' * 10**6", "while True:", "    print(s)"))
    assert result.status == "output_limit"
    assert time.monotonic() - start < TIMEOUT + SLACK
    assert psutil.Process().memory_info().rss - rss_before < 50 * 2**20
    assert run_one(executor, program("print('a little output is fine')", "return 1")).ok


@pytest.mark.parametrize(
    "body",
    [
        ("import os", "os.kill(os.getppid(), 9)"),
        ("import os", "os.killpg(0, 9)"),
        ("import os, signal", "os.kill(os.getppid(), signal.SIGTERM)"),
        ("import sys", "sys.exit(0)"),
        ("import os", "os._exit(0)"),
        ("raise BaseException('boom')",),
        ("raise KeyboardInterrupt",),
        ("return solution()",),  # infinite recursion
    ],
    ids=["kill-parent", "kill-group", "term-parent", "sys-exit", "os-exit", "base-exception", "ctrl-c", "recursion"],
)
def test_hostile_endings_harm_nothing(executor: PotExecutor, body: tuple[str, ...]) -> None:
    workers = sorted(executor.worker_pids())
    start = time.monotonic()
    result = run_one(executor, program(*body))
    assert result.status == "error"
    assert time.monotonic() - start < TIMEOUT + SLACK
    assert sorted(executor.worker_pids()) == workers  # no worker had to be replaced
    assert_healthy(executor)


def test_a_dead_worker_is_replaced_and_its_program_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    with PotExecutor(num_workers=1, sympy_workers=1, timeout_s=5.0) as ex:
        assert_healthy(ex)
        victim = ex.worker_pids()[0]
        threading.Timer(0.5, os.kill, (victim, signal.SIGKILL)).start()
        start = time.monotonic()
        result = ex.run([program("import time", "time.sleep(3)", "return 1")])[0]
        assert result.status == "error" and "worker failed" in result.error
        assert time.monotonic() - start < 2.5
        assert victim not in ex.worker_pids()
        assert_healthy(ex)
    assert list(tmp_path.iterdir()) == []  # not even the killed worker's directories are left


PATCHER = program(
    "import math, builtins, sys",
    "math.sqrt = lambda x: 666",
    "builtins.abs = lambda x: 666",
    "sys.modules['math'] = None",
    "globals()['shared'] = 666",
    "return 1",
)
USER = program("import math", "return math.sqrt(16) + abs(-1) + globals().get('shared', 0)")


def test_programs_cannot_change_each_others_results(executor: PotExecutor) -> None:
    assert [r.value for r in executor.run([PATCHER, USER] * 4)] == [1.0, 5.0] * 4  # same batch
    for _ in range(3):  # consecutive batches, same workers
        assert run_one(executor, PATCHER).value == 1.0
        assert run_one(executor, USER).value == 5.0


def test_programs_do_not_see_the_callers_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POT_TEST_SECRET", "hunter2")
    with PotExecutor(num_workers=1, sympy_workers=1, timeout_s=TIMEOUT) as ex:
        assert run_one(ex, program("import os", "return int('POT_TEST_SECRET' in os.environ)")).value == 0.0


def test_concurrent_callers_from_threads_without_alarm_signals(executor: PotExecutor) -> None:
    errors: list[str] = []

    def caller(k: int) -> None:
        sources = [program(f"return {k} * 100 + {i}") for i in range(10)]
        values = [r.value for r in executor.run(sources)]
        if values != [float(k * 100 + i) for i in range(10)]:
            errors.append(f"thread {k}: {values}")

    threads = [threading.Thread(target=caller, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert signal.alarm(0) == 0  # nothing armed an alarm in this process


# Pure programs (plain arithmetic on their own names; verl_distill/pot/_purity.py) may share one forked child.
PURITY = [
    ("x = 2\nreturn math.sqrt(x) * 3", True),
    ("import math\nfrom math import ceil\nreturn ceil(2.5)", True),
    ("total = []\nfor i in range(3):\n    total.append(i)\nreturn sum(total)", True),
    ("while True:\n    pass", True),  # pure is about shared state, not time: the deadline still applies
    ("math.sqrt = abs\nreturn 1", False),
    ("import os\nreturn 1", False),
    ("return ().__class__", False),
    ("return open('x')", False),
    ("return getattr(math, 'pi')", False),
    ("global counter\ncounter = 1\nreturn 1", False),
    ("return sympy.Integer(2)", False),
    ("try:\n    return 1\nexcept Exception:\n    return 2", False),
]


@pytest.mark.parametrize(("body", "pure"), PURITY)
def test_purity_allow_list(body: str, pure: bool) -> None:
    import ast

    from verl_distill.pot._purity import is_pure

    source = "def solution():\n" + "".join(f"    {line}\n" for line in body.splitlines())
    assert is_pure(ast.parse(source), frozenset({"sympy"})) is pure


def test_a_builtin_shadowed_elsewhere_is_not_taken_for_a_local() -> None:
    import ast

    from verl_distill.pot._purity import is_pure

    source = "def f():\n    setattr = 0\n\ndef solution():\n    setattr(math, 'sqrt', abs)\n    return 1\n"
    assert not is_pure(ast.parse(source))


def test_a_stuck_program_in_a_shared_child_does_not_cost_the_others(executor: PotExecutor) -> None:
    sources = [program(f"return {i}") for i in range(7)]
    sources.insert(3, program("while True:", "    pass"))
    start = time.monotonic()
    results = executor.run(sources)  # 8 pure programs: one request, one shared child, then a re-run of the rest
    assert [r.status for r in results] == ["ok"] * 3 + ["timeout"] + ["ok"] * 4
    assert [r.value for r in results if r.ok] == [float(i) for i in range(7)]
    assert time.monotonic() - start < TIMEOUT + SLACK
    assert max(r.duration_s for r in results if r.ok) < 0.5


def test_memory_garbage_of_one_program_cannot_fail_the_next(executor: PotExecutor) -> None:
    garbage = program("a = [0] * (25 * 10**6)", "a.append(a)", "return 1")  # ~200 MB of cyclic garbage
    results = executor.run([garbage] * 8, memory_mb=512)
    assert [r.status for r in results] == ["ok"] * 8
