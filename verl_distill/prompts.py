"""Versioned prompt templates.

A template is a frozen record ``(name, version, text)``; a released version never changes meaning. Rows store the
template they were built with as ``"name@version"`` in ``extra_info.template``, so runs stay comparable.

PoT templates follow ReFT's docstring style: the prompt is the head of ``def solution():`` with the question as its
docstring, and the model writes the body (one assignment per quantity, ``return result``). The ``_guarded`` variant
adds seed 002's Appendix B.3 instruction at the end of the docstring.
"""

from __future__ import annotations

from dataclasses import dataclass

GUARD_INSTRUCTION = "Please provide full reasoning before computing result; do not answer with result only."


@dataclass(frozen=True)
class PromptTemplate:
    """A named, versioned prompt with ``{question}`` (and optionally other) placeholders."""

    name: str
    version: int
    text: str

    @property
    def key(self) -> str:
        """``name@version``, the form stored in rows."""
        return f"{self.name}@{self.version}"

    def render(self, **fields: str) -> str:
        """Fill the placeholders; a missing field raises ``KeyError`` naming it."""
        return self.text.format(**fields)


_TEMPLATES: dict[str, PromptTemplate] = {}


def register_template(template: PromptTemplate) -> PromptTemplate:
    """Add a template; re-registering a key with different text is an error (versions never change meaning)."""
    old = _TEMPLATES.get(template.key)
    if old is not None and old != template:
        raise ValueError(f"template {template.key} already exists with different text; bump the version")
    _TEMPLATES[template.key] = template
    return template


def get_template(key: str) -> PromptTemplate:
    """Look up ``name@version`` (or ``name`` for the newest version)."""
    if "@" in key:
        if key not in _TEMPLATES:
            raise KeyError(f"unknown prompt template {key!r}; known: {sorted(_TEMPLATES)}")
        return _TEMPLATES[key]
    versions = [t for t in _TEMPLATES.values() if t.name == key]
    if not versions:
        raise KeyError(f"unknown prompt template {key!r}; known: {sorted(_TEMPLATES)}")
    return max(versions, key=lambda t: t.version)


def escape_docstring(text: str) -> str:
    """Make ``text`` safe inside a triple-quoted docstring."""
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"').strip()
    return text[:-1] + '\\"' if text.endswith('"') else text  # a closing quote would merge with the delimiter


POT = register_template(PromptTemplate("pot_docstring", 1, 'def solution():\n    """{question}"""\n'))
POT_GUARDED = register_template(
    PromptTemplate("pot_docstring_guarded", 1, 'def solution():\n    """{question} ' + GUARD_INSTRUCTION + '"""\n')
)
NL = register_template(
    PromptTemplate("nl_gsm8k", 1, "{question}\nLet's think step by step and output the final answer after \"####\".")
)


def pot_prompt(question: str, *, guarded: bool = False) -> tuple[str, str]:
    """Render a PoT prompt; returns ``(text, template_key)``."""
    template = POT_GUARDED if guarded else POT
    return template.render(question=escape_docstring(question)), template.key

# Judge prompts (seed 002 §2.2.2). The paper's exact prompt text was lost in our copy of the paper, so these are
# our own wording: the question, the student's solution, and an instruction to answer with one word, Yes or No.
# The judge's reply is a single token, so the last words of the prompt matter most: they name both answers.
_JUDGE_HEAD = (
    "You are grading a student's answer to a math word problem.\n\n"
    "Question:\n{question}\n\n"
)
JUDGE_POT = register_template(
    PromptTemplate(
        "judge_pot",
        1,
        _JUDGE_HEAD
        + "The student wrote this Python program; the value it returns is the student's final answer.\n"
        "```python\n{solution}\n```\n\n"
        "Does the program compute the correct answer to the question with sound reasoning? "
        "Answer with exactly one word: Yes or No.",
    )
)
JUDGE_NL = register_template(
    PromptTemplate(
        "judge_nl",
        1,
        _JUDGE_HEAD
        + "Student's solution (the final answer follows \"####\"):\n{solution}\n\n"
        "Is the student's final answer correct and is the reasoning sound? "
        "Answer with exactly one word: Yes or No.",
    )
)
# A compact PoT judge prompt for tiny judges trained from scratch (the CPU demo): half the tokens of judge_pot@1, so
# its SFT costs half as much per step; a tiny judge learned about as fast per step with either (pairwise accuracy
# 0.85-0.90 after 500-1,000 steps, issue 3's sweep). A judge must be served with the template it was trained on.
JUDGE_POT_COMPACT = register_template(
    PromptTemplate("judge_pot_compact", 1, "Question: {question}\nProgram:\n{solution}\nCorrect? Yes or No.")
)
JUDGE_TEMPLATES = {"pot": JUDGE_POT, "nl": JUDGE_NL}

# Reranker input (seed 002 §2.2.3, ReFT's reranker format): plain text, no chat template, no special tokens.
RERANKER = register_template(PromptTemplate("reranker_reft", 1, "Question:\n{question}\nAnswer reasoning:\n{solution}"))

# Seed 000 Appendix A, Figure 8: the few-shot prompt its teachers answered on GSM8K (answers end "The answer is N.").
# Line breaks are reconstructed from the figure; the last block is as printed there (no "A:" before the cue).
_SEED000_GSM8K_SHOTS = (
    "Q:\nThere are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, "
    "there will be 21 trees. How many trees did the grove workers plant today?\nA:\nLet's break this down step by "
    "step!\nStep 1: There are 15 trees originally.\nStep 2: Then there were 21 trees after some more were planted.\n"
    "Step 3: So there must have been 21 - 15 = 6.\nThe answer is 6.\n\n"
    "Q:\nIf there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?\nA:\n"
    "Let's break this down step by step!\nStep 1: There are originally 3 cars.\nStep 2: 2 more cars arrive, "
    "3 + 2 = 5.\nThe answer is 5.\n\n"
    "Q:\nLeah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in total?\n"
    "A:\nLet's break this down step by step!\nStep 1: Originally, Leah had 32 chocolates.\nStep 2: Her sister had "
    "42.\nStep 3: So in total they had 32 + 42 = 74.\nStep 4: After eating 35, they had 74 - 35 = 39.\n"
    "The answer is 39.\n\n"
)
FEWSHOT_GSM8K_SEED000 = register_template(PromptTemplate(
    "fewshot_gsm8k_seed000", 1, _SEED000_GSM8K_SHOTS + "Q: {question}\nLet's break this down step by step!"))
# Figure 9 (MMLU-Pro): two shots provided by the dataset (its validation split, same category), rendered by
# ``data_prep.mmlu_pro`` into {shots} as "Question: ...\nOptions: ...\nAnswer: ...\n\n" blocks; options as "A. ...".
FEWSHOT_MMLU_PRO_SEED000 = register_template(PromptTemplate(
    "fewshot_mmlu_pro_seed000", 1,
    "{shots}Question: {question}\nOptions: {options}\nAnswer:\nLet's break this down step by step!"))
