"""Turn a model response into a runnable PoT program: ``def solution(): ...`` source, or ``None``.

Why: PoT prompts (``verl_distill.prompts``, ReFT docstring style) end with ``def solution():\\n    \"\"\"<q>\"\"\"\\n``
and the model writes the BODY; but models, and ReFT's gold data, also write the whole function, sometimes inside
a ```python fence, sometimes followed by prose. Every consumer (reward, evaluation, bench) must read a response the
same way, so this is one named pipeline of pure steps (``PIPELINE``):

1. ``strip_fences``: keep the first fenced block that holds ``def solution(`` (else the first block; an unclosed
   fence runs to the end); no fence: the whole text.
2. Function mode (a line starts with ``def solution(``): keep the import lines just above it, then the function.
   Body mode (otherwise): drop leading/trailing blank lines, repair a first line whose indentation was stripped,
   dedent, re-indent by 4 spaces under ``def solution():``. A body whose lines never look like code is prose: None.
3. ``take_function``: the function ends where its block ends (Python's own tokenizer finds the dedent, so
   multi-line strings are safe) or after its first body-level ``return`` statement (later lines are dead code,
   typically junk), whichever comes first.

LIMITS: heuristics, not a parser of intent. Prose indented like code inside the function stays (the program then
fails with SyntaxError, as it should); a body with no indentation and no ``return`` keeps trailing prose; only the
first ``def solution(`` is used. ``code_lines`` counts physical lines holding code in the function body, without the
header, the docstring, comments and blank lines (seed 002 B.3's "shorter than 4 lines" guard reads it).
"""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass

PIPELINE = "pot_program@1"
HEADER = "def solution():"

_FENCE = re.compile(r"```[^\n`]*\n(.*?)(?:```|\Z)", re.S)
_DEF = re.compile(r"^[ \t]*def solution\(", re.M)
_IMPORT = re.compile(r"^(import\s+\w|from\s+[\w.]+\s+import\s)")
_CODE_LIKE = re.compile(
    r"^\s*(return\b|import\s|from\s+[\w.]+\s+import\s|print\s*\(|(for|while|if)\b.*:\s*$"
    r"|[A-Za-z_][\w.]*(\[[^\]]*\])?\s*(,\s*[A-Za-z_]\w*\s*)*([-+*/%]|\*\*|//)?=(?!=))"
)
_SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}


@dataclass(frozen=True)
class PotProgram:
    """A runnable program: ``source`` defines ``solution()``; ``mode`` is "function" or "body"."""

    source: str
    code_lines: int
    mode: str


def strip_fences(text: str) -> str:
    """Content of the first fenced block holding ``def solution(`` (else of the first block), or ``text``."""
    blocks = _FENCE.findall(text)
    if not blocks:
        return text
    return next((b for b in blocks if "def solution(" in b), blocks[0])


def _tokens(source: str):  # generator of TokenInfo; stops quietly at a tokenizer error
    try:
        yield from tokenize.generate_tokens(io.StringIO(source).readline)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return


def take_function(lines: list[str]) -> list[str]:
    """``lines[0]`` is a ``def`` header; keep the lines of that function (see module docstring, step 3)."""
    depth, line_start, in_header, returning = 0, True, True, False
    last_significant = ""
    for tok in _tokens("\n".join(lines) + "\n"):
        if tok.type == tokenize.INDENT:
            depth += 1
        elif tok.type == tokenize.DEDENT:
            depth -= 1
            if depth <= 0:
                return lines[: tok.start[0] - 1]
        elif tok.type == tokenize.NEWLINE:
            if returning or (depth == 0 and not (in_header and last_significant == ":")):
                return lines[: tok.end[0]]  # end of the first body-level return, or of a one-line function
            in_header, line_start = False, True
        elif tok.type not in _SKIP:
            if line_start and depth == 1 and tok.string == "return":
                returning = True
            line_start, last_significant = False, tok.string
    return lines


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def normalize_body(code: str) -> list[str] | None:
    """Body lines re-indented by 4 spaces (lines less indented than the body stay as they are, ending it)."""
    lines = [ln.rstrip().expandtabs(4) for ln in code.splitlines()]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines or not any(_CODE_LIKE.match(ln) for ln in lines):
        return None
    common = _indent(lines[0])
    following = next((_indent(ln) for ln in lines[1:] if ln.strip()), common)
    if common < following and not lines[0].endswith(":"):  # the first line's indentation was stripped by someone
        lines[0], common = " " * following + lines[0].lstrip(), following
    return [("    " + ln[common:]) if ln.strip() and _indent(ln) >= common else ln for ln in lines]


def _function_lines(code: str) -> list[str]:
    lines = code.splitlines()
    start = next(i for i, ln in enumerate(lines) if _DEF.match(ln))
    indent = _indent(lines[start].expandtabs(4))
    body = [ln.expandtabs(4) for ln in lines[start:]]
    body = [ln[indent:] if _indent(ln) >= indent else ln for ln in body]
    preamble = start
    while preamble > 0 and _IMPORT.match(lines[preamble - 1].strip()):
        preamble -= 1
    return [ln.strip() for ln in lines[preamble:start]] + take_function(body)


def count_code_lines(source: str) -> int:
    """Physical lines holding code inside ``solution()``'s body (no header, docstring, comments or blanks)."""
    rows: set[int] = set()
    header_end, docstring_next = None, False
    for tok in _tokens(source):
        if header_end is None:
            if tok.type == tokenize.NEWLINE and tok.line.lstrip().startswith("def solution"):
                header_end, docstring_next = tok.start[0], True
            continue  # the header and the imports above it do not count
        if tok.type in _SKIP:
            continue
        if docstring_next and tok.type == tokenize.STRING:
            docstring_next = False
            continue
        docstring_next = False
        rows.update(range(tok.start[0], tok.end[0] + 1))
    if header_end is None:
        return sum(1 for ln in source.splitlines()[1:] if ln.strip() and not ln.strip().startswith("#"))
    return len(rows)


def extract_program(response: str | None) -> PotProgram | None:
    """Run the pipeline on one response; ``None`` when there is no program (empty, whitespace, pure prose)."""
    if response is None or not response.strip():
        return None
    code = strip_fences(response)
    if _DEF.search(code):
        lines, mode = _function_lines(code), "function"
    else:
        body = normalize_body(code)
        if body is None:
            return None
        lines, mode = take_function([HEADER] + body), "body"
    source = "\n".join(lines).rstrip() + "\n"
    return PotProgram(source=source, code_lines=count_code_lines(source), mode=mode)
