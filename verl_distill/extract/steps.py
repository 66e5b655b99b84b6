"""Small pure steps that find a final answer in a model's output.

Each step maps the output text to the answer text it found, or ``None``. Steps only locate and trim (markdown
bold, ``$...$``, a whole ``\\boxed{}``, ReFT's ``<203>`` brackets, a trailing period); reading the answer as a
number or a letter is the job of :mod:`verl_distill.extract.equivalence`. Where a step can match several times,
the **last** match wins, since models restate the final answer at the end.

:func:`drop_think` prepares the text: only what follows the last ``</think>`` is searched, and an output with an
unclosed ``<think>`` (cut off while reasoning) holds no answer.
"""

from __future__ import annotations

import re

from verl_distill.extract.equivalence import normalize_letter

_HASH = re.compile(r"####[ \t]*([^\n]*)")
_HEADING = re.compile(r"^(?:\d+[.)]\s+[A-Za-z]|[A-Za-z])")  # markdown "#### 2. Compute" or "#### Step 3"
_ANSWER_IS = re.compile(r"\banswer\**\s*(?:(?:is|was|would be|will be|should be)\b|[:=])[\s*:]*", re.IGNORECASE)
_MC_ANSWER = re.compile(
    r"(?i:\b(?:answer|option|choice)\**\s*(?:is\b|[:=])(?:\s+(?:option|choice))?)[\s*:]*"
    r"(?:[(\[]\s*([A-Ja-j])\s*[)\]]|([A-J])(?![A-Za-z0-9]))"
)
_END_PAREN_LETTER = re.compile(r"\(([A-J])\)[.*\s]*$")  # "... so I choose (B)." ending the output
_BOX = re.compile(r"\\(?:boxed|fbox|framebox)(?![A-Za-z])")
_WHOLE_COMMAND = re.compile(r"\\(?:boxed|fbox|framebox|text|textbf|mathbf|mathrm|mbox)(?![A-Za-z])")
_PAREN_NUMBER = re.compile(r"^\(\s*(-?\d+(?:\.\d+)?)\s*\)$")  # AoPS "\textbf{(113) }"; never a tuple "(1,2)"
_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_NUMBER_TOKEN = re.compile(
    r"\\[dt]?frac\s*\{[^{}]*\}\s*\{[^{}]*\}"
    r"|(?<![\w.])-?\$?\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+|[eE][-+]?\d+)?"
    r"|(?<![\w.\d])-?\.\d+"
)
_SENTENCE_END = re.compile(r"\.(?:\s|$)|\s+(?:I hope it is correct|because|since)\b", re.IGNORECASE)
_MATH_SPAN = re.compile(r"^(\$\$.+?\$\$|\$.+?\$|\\\[.+?\\\]|\\\(.+?\\\))")
_WRAPPERS = (  # whole-answer wrappers, peeled until none is left (stray ``*`` and backticks are stripped too)
    re.compile(r"^__(.*)__$", re.DOTALL),
    re.compile(r"^\$\$(.*)\$\$$|^\$(.*)\$$|^\\\[(.*)\\\]$|^\\\((.*)\\\)$", re.DOTALL),
    re.compile(r"^<(.*)>$", re.DOTALL),
    _PAREN_NUMBER,
)


def drop_think(text: str) -> str:
    """Keep what follows the last ``</think>``; an unclosed ``<think>`` leaves nothing."""
    if "</think>" in text:
        return text.rsplit("</think>", 1)[1]
    return "" if "<think>" in text else text


def braced(text: str, start: int) -> str | None:
    """The content of the ``{...}`` group opening at ``text[start]``, or ``None`` if unbalanced (truncated)."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i]
    return None


def _unwrap_command(text: str) -> str:
    m = _WHOLE_COMMAND.match(text)
    if m is None:
        return text
    rest = text[m.end() :].lstrip()
    inner = braced(rest, 0) if rest.startswith("{") else None
    return inner if inner is not None and len(inner) + 2 == len(rest) else text


def clean_answer(text: str) -> str:
    """Trim whitespace, trailing punctuation and whole-answer wrappers (``**x**``, ``$x$``, ``\\boxed{x}``,
    ``\\textbf{x}``, ``<x>``, ``(113)``)."""
    previous = None
    while text != previous:
        previous = text
        text = text.strip().strip("*`").rstrip(".,;!").strip()
        for pattern in _WRAPPERS:
            m = pattern.match(text)
            if m:
                text = next(g for g in m.groups() if g is not None)
        text = _unwrap_command(text)
    return text


def _answer_or_none(text: str) -> str | None:
    return clean_answer(text) or None


def gsm8k_hash(text: str) -> str | None:
    """GSM8K's ``#### 72``: the last ``####`` line that is not a markdown heading."""
    for m in reversed(list(_HASH.finditer(text))):
        line = m.group(1).strip()
        if line and not _HEADING.match(line):
            return _answer_or_none(line)
    return None


def _first_sentence(text: str) -> str:
    text = text.lstrip(" \t*:").rstrip()
    m = _MATH_SPAN.match(text)
    if m:
        return m.group(1)
    end = _SENTENCE_END.search(text)
    return text[: end.start()] if end else text


def answer_is(text: str) -> str | None:
    """The last "the (final) answer is X" / "Answer: X" / "**Answer:** X"; X runs to the end of its sentence."""
    matches = list(_ANSWER_IS.finditer(text))
    if not matches:
        return None
    after = text[matches[-1].end() :].lstrip()
    return _answer_or_none(_first_sentence(after.split("\n", 1)[0]))


def boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (or ``\\fbox``, ``\\framebox``), braces balanced."""
    matches = list(_BOX.finditer(text))
    if not matches:
        return None
    rest = text[matches[-1].end() :].lstrip()
    if not rest.startswith("{"):
        return _answer_or_none(rest.split(maxsplit=1)[0].rstrip("$")) if rest else None  # "\boxed 5"
    inner = braced(rest, 0)
    return None if inner is None else _answer_or_none(inner)


def answer_tag(text: str) -> str | None:
    """The content of the last ``<answer>...</answer>``."""
    matches = _TAG.findall(text)
    return _answer_or_none(matches[-1]) if matches else None


def last_number(text: str) -> str | None:
    """The last number in the text (with sign, ``$``, thousands commas, decimals, ``a/b`` or ``\\frac{a}{b}``)."""
    matches = _NUMBER_TOKEN.findall(text)
    return _answer_or_none(matches[-1]) if matches else None


def _trailing_letter(text: str) -> str | None:
    """A last line ending with "(C)", or a last line that is just the letter."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return None
    last = lines[-1].strip()
    m = _END_PAREN_LETTER.search(last)
    if m:
        return m.group(1)
    return normalize_letter(clean_answer(last)) if len(last) <= 6 else None  # a bare "C" or "(C)." line


def mc_letter(text: str) -> str | None:
    """A choice letter A-J: "answer is (C)", "Answer: C", ``\\boxed{C}``, ``<answer>C</answer>``, "(C)" at the end,
    or an output that is just the letter."""
    matches = _MC_ANSWER.findall(text)
    if matches:
        return "".join(matches[-1]).upper()
    for found in (boxed(text), answer_tag(text)):
        letter = normalize_letter(found) if found else None
        if letter:
            return letter
    return _trailing_letter(text)
