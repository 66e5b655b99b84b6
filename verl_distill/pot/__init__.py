"""Program-of-Thought execution: turn a response into a program (``program``) and run it sandboxed (``executor``).

Import direction: this package is low-level (no imports from pipelines, trainers or the CLI).
"""

from verl_distill.pot.executor import ExecResult, PotExecutor, get_default_executor, score_value
from verl_distill.pot.program import PotProgram, count_code_lines, extract_program

__all__ = [
    "ExecResult",
    "PotExecutor",
    "PotProgram",
    "count_code_lines",
    "extract_program",
    "get_default_executor",
    "score_value",
]
