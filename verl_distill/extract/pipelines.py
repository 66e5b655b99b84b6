"""Named, versioned extraction pipelines.

A pipeline is an ordered list of steps from :mod:`verl_distill.extract.steps` plus a *kind* (``numeric``,
``latex`` or ``mc``). :func:`extract` drops any ``<think>`` block, runs the steps in order and keeps the first
answer that the kind's reader accepts: ``numeric`` keeps only answers read as a number and writes them back as a
short decimal (``"$1,234.00"`` -> ``"1234"``, ``"3/4"`` -> ``"0.75"``, so majority votes count equal numbers
together), ``latex`` keeps any non-empty text, ``mc`` keeps a letter A-J. A step whose answer is rejected falls
through to the next step ("The answer is that she has 5 apples" -> the last number, 5).

Pipelines are known as ``"name@version"`` and stored next to every extracted answer. A released version never
changes meaning: to change a pipeline, register a new version.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from verl_distill.extract import steps
from verl_distill.extract.equivalence import KINDS, canonical_number, normalize_letter


@dataclass(frozen=True)
class Step:
    """One named extraction step: output text -> answer text or ``None``."""

    name: str
    fn: Callable[[str], str | None]


@dataclass(frozen=True)
class Pipeline:
    """Ordered steps; the first answer accepted by the ``kind``'s reader wins."""

    name: str
    version: int
    kind: str
    steps: tuple[Step, ...]

    @property
    def key(self) -> str:
        """``name@version``, the form stored next to extracted answers."""
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class Extraction:
    """An extracted answer (``None`` when no step found one), the pipeline key and the step that found it."""

    answer: str | None
    pipeline: str
    step: str | None


GSM8K_HASH = Step("gsm8k_hash", steps.gsm8k_hash)
ANSWER_IS = Step("answer_is", steps.answer_is)
BOXED = Step("boxed", steps.boxed)
ANSWER_TAG = Step("answer_tag", steps.answer_tag)
LAST_NUMBER = Step("last_number", steps.last_number)
MC_LETTER = Step("mc_letter", steps.mc_letter)


def _text(answer: str) -> str | None:
    return answer or None


_READERS: dict[str, Callable[[str], str | None]] = {
    "numeric": canonical_number,
    "latex": _text,
    "mc": normalize_letter,
}
_PIPELINES: dict[str, Pipeline] = {}
TASK_PIPELINES = {"nl": "numeric@1", "pot": "numeric@1", "latex": "latex@1", "mc": "mc@1"}


def register_pipeline(pipeline: Pipeline) -> Pipeline:
    """Add a pipeline; re-registering a key with other steps is an error (versions never change meaning)."""
    if pipeline.kind not in KINDS:
        raise ValueError(f"pipeline {pipeline.key}: kind={pipeline.kind!r} is not one of {KINDS}")
    old = _PIPELINES.get(pipeline.key)
    if old is not None and old != pipeline:
        raise ValueError(f"pipeline {pipeline.key} already exists with other steps; register a new version")
    _PIPELINES[pipeline.key] = pipeline
    return pipeline


def list_pipelines() -> list[str]:
    """All registered ``name@version`` keys, sorted."""
    return sorted(_PIPELINES)


def get_pipeline(key: str) -> Pipeline:
    """Look up ``name@version``, or ``name`` for its newest version; unknown keys raise ``ValueError``."""
    if not isinstance(key, str) or not key:
        raise ValueError(f"pipeline must be a non-empty 'name@version' string, got {key!r}")
    if "@" in key:
        found = _PIPELINES.get(key)
    else:
        versions = [p for p in _PIPELINES.values() if p.name == key]
        found = max(versions, key=lambda p: p.version) if versions else None
    if found is None:
        raise ValueError(f"unknown extraction pipeline {key!r}; known: {list_pipelines()}")
    return found


def pipeline_for_task(task: str) -> str:
    """The pipeline key for a row's ``extra_info["task"]`` (``nl``, ``pot``, ``latex``, ``mc``)."""
    if task not in TASK_PIPELINES:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASK_PIPELINES)} (extra_info['task'])")
    return TASK_PIPELINES[task]


def extract(text: str, pipeline: str) -> Extraction:
    """Run ``pipeline`` (``"name@version"`` or ``"name"``) on a model output."""
    found = get_pipeline(pipeline)
    if not isinstance(text, str):
        raise ValueError(f"text to extract from must be a str, got {type(text).__name__}")
    read = _READERS[found.kind]
    body = steps.drop_think(text)
    for step in found.steps:
        raw = step.fn(body)
        answer = read(raw) if raw else None
        if answer:
            return Extraction(answer=answer, pipeline=found.key, step=step.name)
    return Extraction(answer=None, pipeline=found.key, step=None)


for _step, _kind in (
    (GSM8K_HASH, "numeric"),
    (ANSWER_IS, "latex"),
    (BOXED, "latex"),
    (ANSWER_TAG, "latex"),
    (LAST_NUMBER, "numeric"),
    (MC_LETTER, "mc"),
):
    register_pipeline(Pipeline(_step.name, 1, _kind, (_step,)))

NUMERIC_V1 = register_pipeline(
    Pipeline("numeric", 1, "numeric", (GSM8K_HASH, BOXED, ANSWER_TAG, ANSWER_IS, LAST_NUMBER))
)
LATEX_V1 = register_pipeline(Pipeline("latex", 1, "latex", (BOXED, ANSWER_TAG, ANSWER_IS, GSM8K_HASH)))
MC_V1 = register_pipeline(Pipeline("mc", 1, "mc", (MC_LETTER,)))
