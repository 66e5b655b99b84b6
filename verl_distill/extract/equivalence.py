"""Is an extracted answer the same as the gold answer?

Three kinds of comparison, one per kind of task:

* ``numeric`` (word problems): both sides go through :func:`normalize_number` and are compared with
  ``math.isclose(pred, gold, rel_tol=1e-9, abs_tol=1e-4)``. The absolute 1e-4 accepts a rounded ``0.3333`` for ``1/3``
  but not ``0.33``; the relative 1e-9 only absorbs float noise, so ``1000001`` never equals ``1000000``.
  A percent sign is dropped, like a unit: ``"50%"`` equals ``"50"`` and not ``"0.5"`` (GSM8K and ReFT gold
  answers for "what percent" questions are the bare number).
* ``latex`` (competition math): when both sides are plain numbers (see :func:`normalize_number` with no unit words)
  the numeric rule above decides; otherwise Math-Verify's ``parse``/``verify`` does, with its timeouts **disabled**:
  they use ``signal.alarm``, which raises in the worker threads verl runs sync rewards in.
* ``mc`` (multiple choice): letters A-J, case-insensitive; ``"(c)"`` equals ``"C"``.

Who is at fault decides: a gold answer that cannot be read under its kind raises ``ValueError`` (a bad label), a
prediction that cannot be read is simply not equivalent.

Limits: without a timeout, Math-Verify can hang on huge values (``9^{9^{9}}`` never returns). Predictions that
look costly (exponent towers, exponents or factorials of 6+ digits, over 1000 characters) are treated as not
equivalent, which is a heuristic, not a guarantee. Mixed numbers (``1 1/2``) and decimal commas (``3,5``) are
not read as numbers.
"""

from __future__ import annotations

import functools
import logging
import math
import re

from math_verify import parse, verify

logger = logging.getLogger(__name__)

KINDS = ("numeric", "latex", "mc")
ABS_TOL = 1e-4
REL_TOL = 1e-9
_MAX_LATEX_CHARS = 1000

# LaTeX and typography that carries no value, removed before reading a number or a letter.
_LATEX_NOISE = (
    (re.compile(r"\\(?:text|textbf|mathrm|mbox|mathbf|boxed)\s*\{([^{}]*)\}"), r" \1"),
    (re.compile(r"\^\s*\{?\\circ\}?|°|\\degree"), " "),
    (re.compile(r"\\[dt]frac"), r"\\frac"),
    (re.compile(r"\\(?:left|right)\b|\\[,;:! ]|~"), " "),
    (re.compile(r"\{,\}"), ","),
    (re.compile(r"\\%"), "%"),
    (re.compile(r"\\?\$|\\[()]|\*\*"), ""),
    (re.compile(r"[−–]"), "-"),
)
_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
_PREFIX = r"^(?:[A-Za-z]\w*\s*=\s*)?(?P<sign>[-+]?)\s*(?:[$€£¥]|usd\b)?\s*(?P<sign2>[-+]?)\s*"  # "x = -$5"
_LATEX_FRAC = r"\\frac\s*\{\s*(?P<fnum>-?(?:NUM))\s*\}\s*\{\s*(?P<fden>-?(?:NUM))\s*\}|\\frac(?P<snum>\d)(?P<sden>\d)"
_SLASH_FRAC = r"(?P<num>NUM)\s*/\s*(?P<den>NUM)"
_DECIMAL = r"(?P<dec>NUM)(?:[eE](?P<exp>[-+]?\d+)|\s*(?:\\times|×|\\cdot|x|\*)\s*10\s*\^\s*\{?(?P<exp10>[-+]?\d+)\}?)?"
_NUMBER = re.compile(
    (_PREFIX + "(?:" + "|".join((_LATEX_FRAC, _SLASH_FRAC, _DECIMAL)) + ")").replace("NUM", _NUM), re.IGNORECASE
)
_UNIT_POWER = re.compile(r"\^\s*\{?[23]\}?|[²³]")
_OPERATOR_START = re.compile(r"^\s*[-+*/^×÷=<>\\]")
_LETTER = re.compile(r"^\(?([A-J])\)?(?:$|[\s.:)\]])|^\(?([a-j])\)?\.?$")
_END_LETTER = re.compile(r"\(([A-J])\)\s*$")
_TOWER = re.compile(r"\^\s*\{[^{}]*\^|\^\s*\w\s*\^")
_BIG_EXPONENT = re.compile(r"\^\s*\{?\s*-?\d{6,}|\*\*\s*\d{6,}|\d{6,}\s*!")


def _strip_latex_noise(text: str) -> str:
    for pattern, repl in _LATEX_NOISE:
        text = pattern.sub(repl, text)
    return text.strip().strip("<>").strip()


def _to_float(token: str) -> float:
    return float(token.replace(",", ""))


def _number_value(m: re.Match[str]) -> float | None:
    if m["fnum"] is not None:
        num, den = _to_float(m["fnum"]), _to_float(m["fden"])
    elif m["snum"] is not None:
        num, den = float(m["snum"]), float(m["sden"])
    elif m["num"] is not None:
        num, den = _to_float(m["num"]), _to_float(m["den"])
    else:
        exp = int(m["exp"] or m["exp10"] or "0")
        if abs(exp) > 400:  # beyond float range; not a plausible answer anyway
            return None
        num, den = _to_float(m["dec"]) * 10.0**exp, 1.0
    if den == 0 or not math.isfinite(num):
        return None
    negative = (m["sign"] == "-") != (m["sign2"] == "-")
    return -num / den if negative else num / den


def _read_number(text: str, *, allow_units: bool) -> float | None:
    text = _strip_latex_noise(text)
    m = _NUMBER.match(text)
    if m is None:
        return None
    rest = text[m.end() :].strip()
    if allow_units:
        rest = _UNIT_POWER.sub("", rest)
        if re.search(r"\d", rest) or _OPERATOR_START.match(rest):
            return None
    elif rest.rstrip(".").strip() not in ("", "%"):
        return None
    return _number_value(m)


def normalize_number(text: str) -> float | None:
    """Read one number from a short answer, or ``None``.

    Accepts commas (``1,234``), currency (``$ € £``), signs, decimals, scientific notation (``1.5e3``,
    ``1.5 \\times 10^{3}``), fractions (``3/4``, ``\\frac{3}{4}``, ``\\dfrac``), a trailing period, and unit words or
    ``%`` after the number (``"12 apples"`` -> 12, ``"50%"`` -> 50). Anything after the number that holds a digit or
    starts with an operator (``"3 + 4 = 7"``) makes it ``None``, so an expression is never read as its first number.
    """
    return _read_number(text, allow_units=True)


def canonical_number(text: str) -> str | None:
    """:func:`normalize_number` written back as a short decimal string (``"$1,234.00"`` -> ``"1234"``)."""
    value = normalize_number(text)
    if value is None:
        return None
    if value == 0:
        return "0"
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return f"{value:.12g}"


def normalize_letter(text: str) -> str | None:
    """A multiple-choice letter A-J from ``"C"``, ``"(c)"``, ``"C. Paris"``, ``"**C**"`` or ``"Paris (C)"``."""
    text = _strip_latex_noise(text).strip("*_` ")
    m = _LETTER.match(text) or _END_LETTER.search(text)
    return next(g for g in m.groups() if g).upper() if m else None


def _latex_too_costly(text: str) -> bool:
    return len(text) > _MAX_LATEX_CHARS or bool(_TOWER.search(text) or _BIG_EXPONENT.search(text))


def _mv_parse(text: str) -> tuple:
    wrapped = text if "\\boxed" in text else f"\\boxed{{{text}}}"
    return tuple(parse(wrapped, parsing_timeout=None))


@functools.lru_cache(maxsize=4096)
def _parse_gold(gold: str) -> tuple:
    return _mv_parse(gold)


def _numbers_close(pred: float, gold: float, *, abs_tol: float, rel_tol: float) -> bool:
    return math.isclose(pred, gold, rel_tol=rel_tol, abs_tol=abs_tol)


def _latex_equivalent(pred: str | None, gold: str, *, abs_tol: float, rel_tol: float) -> bool:
    gold_value = _read_number(gold, allow_units=False)
    if gold_value is None and not _parse_gold(gold):
        raise ValueError(f"gold answer {gold!r} cannot be parsed as LaTeX; fix the label or use kind='numeric'/'mc'")
    if pred is None:
        return False
    pred_value = _read_number(pred, allow_units=False)
    if gold_value is not None and pred_value is not None:  # plain numbers: no need for sympy
        return _numbers_close(pred_value, gold_value, abs_tol=abs_tol, rel_tol=rel_tol)
    if _latex_too_costly(pred):
        logger.debug("prediction %.80r looks too costly for Math-Verify; not equivalent", pred)
        return False
    pred_parsed = _mv_parse(pred)
    return bool(pred_parsed) and verify(list(_parse_gold(gold)), list(pred_parsed), timeout_seconds=None)


def answers_equivalent(
    pred: str | None,
    gold: str,
    *,
    kind: str,
    abs_tol: float = ABS_TOL,
    rel_tol: float = REL_TOL,
) -> bool:
    """Whether ``pred`` answers the same as ``gold`` under ``kind`` (``numeric``, ``latex`` or ``mc``).

    ``pred=None`` (nothing extracted) is never equivalent. A ``gold`` unreadable under ``kind`` raises ``ValueError``.
    """
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not one of {KINDS}")
    if abs_tol < 0 or rel_tol < 0:
        raise ValueError(f"tolerances must be >= 0, got abs_tol={abs_tol!r}, rel_tol={rel_tol!r}")
    if not isinstance(gold, str) or not gold.strip():
        raise ValueError(f"gold answer must be a non-empty string, got {gold!r}; unlabeled rows need another reward")
    if kind == "latex":
        return _latex_equivalent(pred, gold, abs_tol=abs_tol, rel_tol=rel_tol)
    read = normalize_number if kind == "numeric" else normalize_letter
    gold_value = read(gold)
    if gold_value is None:
        raise ValueError(f"gold answer {gold!r} is not a valid {kind} answer; fix the label or the task's kind")
    pred_value = None if pred is None else read(pred)
    if pred_value is None:
        return False
    if kind == "mc":
        return pred_value == gold_value
    return _numbers_close(pred_value, gold_value, abs_tol=abs_tol, rel_tol=rel_tol)
