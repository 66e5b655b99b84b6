"""Final-answer extraction and comparison, shared by pseudo-labeling, rewards and evaluation.

``extract(text, "numeric@1")`` finds the answer with a named, versioned pipeline of small steps
(:mod:`.pipelines`, :mod:`.steps`); ``answers_equivalent(pred, gold, kind=...)`` compares it with a gold answer
(:mod:`.equivalence`). Store the pipeline key next to every extracted answer.
"""

from verl_distill.extract.equivalence import (
    KINDS,
    answers_equivalent,
    canonical_number,
    normalize_letter,
    normalize_number,
)
from verl_distill.extract.pipelines import (
    TASK_PIPELINES,
    Extraction,
    Pipeline,
    Step,
    extract,
    get_pipeline,
    list_pipelines,
    pipeline_for_task,
    register_pipeline,
)

__all__ = [
    "KINDS",
    "TASK_PIPELINES",
    "Extraction",
    "Pipeline",
    "Step",
    "answers_equivalent",
    "canonical_number",
    "extract",
    "get_pipeline",
    "list_pipelines",
    "normalize_letter",
    "normalize_number",
    "pipeline_for_task",
    "register_pipeline",
]
