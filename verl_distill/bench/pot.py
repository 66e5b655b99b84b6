"""``verl-distill bench pot``: our PoT executor against the two usual ways of running model programs.

Executors, all with the same wall-clock timeout per program:
- ``ours``: :class:`verl_distill.pot.PotExecutor` (warm sandbox workers; a fork per program, shared by pure ones),
  started once before the clock starts (its start-up time is printed separately).
- ``subprocess``: one fresh ``python -c`` per program, run one after another (``subprocess.run(timeout=...)``); the
  naive baseline. It is slow, so it runs on the first ``--subprocess-limit`` programs of each workload; rates are
  per program, so they still compare.
- ``reft``: ReFT's ``src/python_engine.run_python_code``: a fresh pool of 8 processes per batch of 32 programs,
  ReFT's ``process_code``/``run``/``floatify``, RLIMIT_AS in each pool process, a per-program timeout that kills and
  replaces the pool process. ReFT uses ``pebble.ProcessPool``; pebble is not a dependency, so its scheduling is
  re-implemented here with ``multiprocessing`` (fork), the way pebble does it on Linux.

``ours-1by1`` (information only, gold workload): ours called with one program at a time from 16 threads, the way
verl's per-sample reward managers call ``compute_score``; it shows what batching (shared children) buys.

Workloads: the 3,043 gold SVAMP programs of ReFT (``svamp_python_sdp.json``), and the same list with every 50th
program replaced by ``while True: pass`` (2% never end). Targets checked: every gold program scores 1.0 with ours;
ours is at least as fast as ``reft`` on gold; at least 3x ``reft`` on the mix.

LIMITS: timings depend on the machine and on its load (run it on a quiet machine); forking cost grows with the
forking process's memory, which favours ``reft`` here (a small bench process) over ReFT's real setting (a
training process).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import logging
import math
import multiprocessing
import multiprocessing.connection
import os
import resource
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

logger = logging.getLogger(__name__)

DEFAULT_DATA = "/work/shared/data/reft_mwp/svamp_python_sdp.json"
LOOPER = "def solution():\n    while True:\n        pass\n"
REFT_MAX_MEM = 2**30 * 12 * 10  # ReFT's initializer limit (bytes)
_SUBPROCESS_RUNNER = (  # sympy only when the program names it: importing it costs ~0.5 s per process
    "import sys, math\nsrc = sys.stdin.read()\nns = {'math': math}\n"
    "if 'sympy' in src:\n    import sympy\n    ns['sympy'] = sympy\n"
    "exec(src, ns)\nprint(repr(float(ns['solution']())))\n"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench pot``."""
    parser = subparsers.add_parser("pot", help="PoT executor speed and correctness vs subprocess and ReFT's pool")
    parser.add_argument("--data", default=DEFAULT_DATA, help="ReFT *_python_sdp.json (answer_cot, answer_value)")
    parser.add_argument("--timeout", type=float, default=2.0, help="per-program wall-clock timeout, all executors")
    parser.add_argument("--workers", type=int, default=None, help="our worker count (default: PotExecutor's)")
    parser.add_argument("--subprocess-limit", type=int, default=300, help="programs per workload for subprocess")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N gold programs")
    parser.add_argument("--loop-every", type=int, default=50, help="mix: every Nth program never ends (50 = 2%%)")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    parser.set_defaults(func=run)


def load_gold(path: str, limit: int | None = None) -> tuple[list[str], list[float]]:
    """Gold programs and answers (ReFT's answer parsing: ``float(x.replace(',', ''))``)."""
    rows = json.loads(Path(path).read_text())[:limit]
    return [r["answer_cot"] for r in rows], [float(str(r["answer_value"]).replace(",", "")) for r in rows]


def make_mix(programs: list[str], every: int) -> list[str]:
    """Every ``every``-th program replaced by one that never ends."""
    return [LOOPER if (i + 1) % every == 0 else p for i, p in enumerate(programs)]


# ---- executor (a): ours ------------------------------------------------------------------------------------------
def start_ours(timeout: float, workers: int | None) -> tuple[object, float]:
    """A warm executor (its workers have imported everything) and the seconds that took."""
    from verl_distill.pot import PotExecutor

    start = time.perf_counter()
    executor = PotExecutor(num_workers=workers, timeout_s=timeout)
    executor.run(["def solution():\n    return 0\n"] * 64 + ["def solution():\n    return sympy.Integer(0)\n"] * 8)
    return executor, time.perf_counter() - start


def run_ours(executor: object, programs: list[str], bar: tqdm) -> list[float | None]:
    """All programs at once; ``run`` is thread-safe, so chunks go in from several threads (only to move the bar)."""
    from verl_distill.pot import extract_program

    def chunk_values(chunk: list[str]) -> list[float | None]:
        sources = [p.source if p else None for p in map(extract_program, chunk)]
        values = [r.value for r in executor.run(sources)]
        bar.update(len(chunk))
        return values

    chunks = [programs[i : i + 64] for i in range(0, len(programs), 64)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return [v for values in pool.map(chunk_values, chunks) for v in values]


def run_ours_one_by_one(executor: object, programs: list[str], bar: tqdm) -> list[float | None]:
    """verl's per-sample reward path: ``run([one program])`` from 16 threads (no shared children)."""
    from verl_distill.pot import extract_program

    def value(program: str) -> float | None:
        extracted = extract_program(program)
        result = executor.run([extracted.source if extracted else None])[0]
        bar.update(1)
        return result.value

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        return list(pool.map(value, programs))


# ---- executor (b): one python subprocess per program -------------------------------------------------------------
def _run_subprocess_one(program: str, timeout: float) -> float | None:
    try:
        done = subprocess.run(
            [sys.executable, "-c", _SUBPROCESS_RUNNER], input=program, capture_output=True, text=True, timeout=timeout
        )
        return float(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else None
    except (subprocess.TimeoutExpired, ValueError, IndexError):
        return None


def run_subprocess(programs: list[str], timeout: float, bar: tqdm) -> list[float | None]:
    values = []
    for program in programs:
        values.append(_run_subprocess_one(program, timeout))
        bar.update(1)
    return values


# ---- executor (c): ReFT's fresh 8-process pool per batch ---------------------------------------------------------
def reft_process_code(code: str) -> str:
    """ReFT ``process_code``: prepend imports, stop at the first blank line, neutralise ``sys.exit``."""
    code = code.replace("sys.exit", "print")
    kept = ["import math", "import sympy"]
    for line in code.split("\n"):
        if line.strip() == "" and not line.startswith("def solution"):
            break
        kept.append(line)
    return "\n".join(kept)


def _reft_pool_process(conn: multiprocessing.connection.Connection) -> None:
    import sympy

    resource.setrlimit(resource.RLIMIT_AS, (REFT_MAX_MEM, REFT_MAX_MEM))
    while (code := conn.recv()) is not None:
        globals_, locals_ = {"sympy": sympy, "math": math}, {}
        try:  # ReFT's run(): exec with separate globals/locals, then eval("solution()"), then floatify
            exec(code, globals_, locals_)  # this IS the baseline being measured
            value = float(eval("solution()", globals_, locals_))
        except Exception:  # ReFT maps every failure to None
            value = None
        conn.send(value)


def _spawn(ctx: multiprocessing.context.BaseContext) -> tuple:
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_reft_pool_process, args=(child,), daemon=True)
    process.start()
    child.close()
    return process, parent


def reft_batch(codes: list[str], timeout: float, procs: int = 8) -> list[float | None]:
    """One ``run_python_code`` call: start ``procs`` processes, schedule, kill overdue tasks' processes, close."""
    ctx = multiprocessing.get_context("fork")
    idle, busy = [_spawn(ctx) for _ in range(procs)], {}
    pending, results = deque(enumerate(codes)), [None] * len(codes)
    while pending or busy:
        while idle and pending:
            (process, conn), (index, code) = idle.pop(), pending.popleft()
            conn.send(code)
            busy[conn] = (process, index, time.monotonic())
        wait_s = max(0.0, min(start + timeout for _, _, start in busy.values()) - time.monotonic())
        for conn in multiprocessing.connection.wait(list(busy), timeout=wait_s):
            process, index, _ = busy.pop(conn)
            try:
                results[index] = conn.recv()
                idle.append((process, conn))
            except EOFError:
                idle.append(_spawn(ctx))
        for conn, (process, _, start) in list(busy.items()):
            if time.monotonic() - start > timeout:  # pebble: stop the worker, start a new one
                process.terminate()
                process.join()
                del busy[conn]
                idle.append(_spawn(ctx))
    for process, conn in idle:
        conn.send(None)
        process.join()
    return results


def run_reft(programs: list[str], timeout: float, bar: tqdm, batch: int = 32) -> list[float | None]:
    import numpy  # noqa: F401 - ReFT's python_engine imports numpy and sympy before it forks its pools
    import sympy  # noqa: F401

    values: list[float | None] = []
    for start in range(0, len(programs), batch):
        codes = [reft_process_code(p) for p in programs[start : start + batch]]
        values += reft_batch(codes, timeout)
        bar.update(len(codes))
    return values


# ---- measurement and report --------------------------------------------------------------------------------------
def _cpu_seconds(pids: tuple[int, ...] = ()) -> float:
    """CPU time of this process, its reaped children, and the live processes ``pids`` with their reaped children."""
    total = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
                for f in ("ru_utime", "ru_stime"))  # fmt: skip
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return total


def measure(name: str, workload: str, runner: Callable, programs: list[str], golds: list, pids: tuple = ()) -> dict:
    """Time ``runner(programs, bar)`` (wall and CPU) and count its correct answers."""
    from verl_distill.pot import score_value

    with tqdm(total=len(programs), desc=f"{workload:>4} {name}", unit="prog", leave=False) as bar:
        start, cpu = time.perf_counter(), _cpu_seconds(pids)
        values = runner(programs, bar)
        seconds, cpu = time.perf_counter() - start, _cpu_seconds(pids) - cpu
    correct = sum(g is not None and score_value(v, g) for v, g in zip(values, golds, strict=True))
    row = {"executor": name, "workload": workload, "programs": len(programs), "seconds": round(seconds, 3)}
    row.update(rate=round(len(programs) / seconds, 1), cpu_ms_per_program=round(cpu / len(programs) * 1e3, 2))
    row.update(correct=correct, expected=sum(g is not None for g in golds))
    cpu_ms = row["cpu_ms_per_program"]
    print(f"{workload:>4} {name:>10}: {row['programs']:5d} programs in {seconds:7.2f}s = {row['rate']:7.1f} prog/s"
          f" ({cpu_ms:6.2f} CPU-ms/prog), correct {correct}/{row['expected']}", flush=True)  # fmt: skip
    return row


def _report(rows: list[dict]) -> dict[str, bool]:
    rate = {(r["workload"], r["executor"]): r["rate"] for r in rows}
    for workload in ("gold", "mix"):
        ours = rate[(workload, "ours")]
        print(f"{workload:>4}: ours/reft = {ours / rate[(workload, 'reft')]:.2f}x,"
              f" ours/subprocess = {ours / rate[(workload, 'subprocess')]:.2f}x")  # fmt: skip
    gold_ours = next(r for r in rows if r["executor"] == "ours" and r["workload"] == "gold")
    targets = {
        "all gold programs score 1.0 with ours": gold_ours["correct"] == gold_ours["expected"],
        "gold: ours >= reft": rate[("gold", "ours")] >= rate[("gold", "reft")],
        "mix: ours >= 3x reft": rate[("mix", "ours")] >= 3 * rate[("mix", "reft")],
    }
    for target, met in targets.items():
        print(f"target {'MET    ' if met else 'NOT MET'}: {target}")
    return targets


def run(args: argparse.Namespace) -> int:
    """Run every executor on both workloads, print rates, ratios and targets; 0 if all targets are met."""
    gold_programs, golds = load_gold(args.data, args.limit)
    mix_programs = make_mix(gold_programs, args.loop_every)
    mix_golds = [None if p == LOOPER else g for p, g in zip(mix_programs, golds, strict=True)]
    workloads = (("gold", gold_programs, golds), ("mix", mix_programs, mix_golds))
    n_sub = min(args.subprocess_limit, len(gold_programs))
    print(f"{len(gold_programs)} gold programs; mix: {mix_programs.count(LOOPER)} never end; timeout {args.timeout}s;"
          f" subprocess runs the first {n_sub} of each workload", flush=True)  # fmt: skip
    executor, startup_s = start_ours(args.timeout, args.workers)
    print(f"ours: {len(executor.worker_pids())} warm workers started in {startup_s:.2f}s (once per process; not in"
          " the rates below)", flush=True)  # fmt: skip
    rows = []
    with executor:
        pids = tuple(executor.worker_pids())
        for workload, programs, answers in workloads:
            rows.append(measure("ours", workload, lambda p, b: run_ours(executor, p, b), programs, answers, pids))
        one_by_one = lambda p, b: run_ours_one_by_one(executor, p, b)  # noqa: E731
        rows.append(measure("ours-1by1", "gold", one_by_one, gold_programs, golds, pids))  # information only
    for workload, programs, answers in workloads:
        rows.append(measure("reft", workload, lambda p, b: run_reft(p, args.timeout, b), programs, answers))
        sub = lambda p, b: run_subprocess(p, args.timeout, b)  # noqa: E731
        rows.append(measure("subprocess", workload, sub, programs[:n_sub], answers[:n_sub]))
    targets = _report(rows)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        result = {"timeout_s": args.timeout, "ours_startup_s": round(startup_s, 3), "rows": rows, "targets": targets}
        args.out.write_text(json.dumps(result, indent=2))
    return 0 if all(targets.values()) else 1
