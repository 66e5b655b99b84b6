"""Synthetic GSM8K-style arithmetic word problems from our own templates (``data_source="synthetic_arith"``).

Why: tiny students (0.2-0.7 M parameters) learn a templated program-of-thought task on CPU within a few hundred SFT
steps (``/work/shared/docs/synthetic-task-calibration.md``), which makes the whole pipeline testable end to end. They
do **not** generalise to unseen templates, so every split uses the same templates with fresh names, objects and
numbers: :func:`generate_splits` makes disjoint splits (no question text in two splits).

A template is a question with named number slots, a result expression over those names (1-3 operations among
``+ - * /``) and one explanatory sentence per operation. The gold PoT body assigns each quantity once, in the order
the question mentions it, then ``result = <expression>`` and ``return result`` (10-40 tokens). Numbers are drawn
uniformly and redrawn until every intermediate value is a non-negative integer (exact divisions, no negative
differences) and the answer is a positive integer up to :data:`MAX_ANSWER`. The arithmetic is done here on the
template's own expression with :class:`fractions.Fraction` (a four-operation evaluator, not program execution); the
tests run every gold program through the sandboxed executor as well.

Reproducible: split ``s`` of seed ``k`` uses ``random.Random(f"{k}:{s}")``. Splits are made test first, then
validation, then the rest, so a bigger train split never changes the evaluation splits.

    python -m data_prep.synthetic_arith --output-dir DIR --splits train=5000,validation=300,test=300 --seed 0
"""

from __future__ import annotations

import argparse
import ast
import functools
import operator
import random
import sys
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from data_prep.common import (
    Rows,
    add_exec_args,
    build_rows,
    indent_body,
    render_prompt,
    run_cli,
    run_programs,
    setup_logging,
    write_split,
)
from verl_distill.io import ConversionReport, write_manifest

DATA_SOURCE = "synthetic_arith"
MAX_ANSWER = 10_000
MAX_TRIES = 10_000  # redraws of one problem's numbers before a template is declared unsatisfiable
EVAL_FIRST = ("test", "validation")
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}

NAMES = (("Ava", "she"), ("Ben", "he"), ("Chloe", "she"), ("Daniel", "he"), ("Emma", "she"), ("Felix", "he"),
         ("Grace", "she"), ("Hugo", "he"), ("Isla", "she"), ("Jack", "he"), ("Kira", "she"), ("Leo", "he"),
         ("Maya", "she"), ("Noah", "he"), ("Olivia", "she"), ("Omar", "he"), ("Priya", "she"), ("Ravi", "he"),
         ("Sofia", "she"), ("Tom", "he"), ("Uma", "she"), ("Victor", "he"), ("Wendy", "she"), ("Yusuf", "he"),
         ("Zoe", "she"), ("Mateo", "he"), ("Lena", "she"), ("Kenji", "he"), ("Aisha", "she"), ("Samuel", "he"))
ITEMS = (("apple", "apples"), ("marble", "marbles"), ("sticker", "stickers"), ("pencil", "pencils"),
         ("cookie", "cookies"), ("book", "books"), ("shell", "shells"), ("card", "cards"), ("balloon", "balloons"),
         ("stamp", "stamps"), ("crayon", "crayons"), ("bead", "beads"), ("orange", "oranges"),
         ("cupcake", "cupcakes"), ("toy car", "toy cars"), ("eraser", "erasers"), ("notebook", "notebooks"),
         ("lemon", "lemons"), ("ribbon", "ribbons"), ("button", "buttons"))
BAKED = ("cookies", "muffins", "cupcakes", "buns", "rolls", "brownies", "pretzels", "biscuits")
PRODUCE = ("eggs", "melons", "pumpkins", "peaches", "pears", "potatoes", "tomatoes", "cabbages")
CONTAINERS = (("box", "boxes"), ("bag", "bags"), ("jar", "jars"), ("basket", "baskets"), ("crate", "crates"),
              ("tray", "trays"), ("bucket", "buckets"), ("packet", "packets"))
_PRONOUNS = {"she": ("she", "her", "her", "herself"), "he": ("he", "his", "him", "himself")}
FILLERS = frozenset({"name", "name2", "name3", "he", "He", "his", "His", "him", "self", "item", "items", "a_item",
                     "item2", "items2", "a_item2", "cont", "conts", "baked", "produce"})


@dataclass(frozen=True)
class Template:
    """A problem pattern: question with number slots, ``(variable, low, high)`` slots, expression, NL steps."""

    key: str
    question: str
    numbers: tuple[tuple[str, int, int], ...]
    expr: str
    steps: tuple[str, ...]  # one sentence per operation in evaluation order; ``{s1}``.. are the step results

    @property
    def ops(self) -> int:
        """Number of arithmetic operations (the difficulty)."""
        return sum(isinstance(node, ast.BinOp) for node in ast.walk(_parse(self.expr)))


@functools.cache
def _parse(expr: str) -> ast.expr:
    """Parsed template expression (parsing only; evaluated by :func:`evaluate`)."""
    return ast.parse(expr, mode="eval").body


def _t(key: str, question: str, numbers: str, expr: str, *steps: str) -> Template:
    """Compact constructor: ``numbers`` is ``"var:low-high var:low-high ..."`` in order of mention."""
    slots = tuple((name, int(lo), int(hi)) for name, lo, hi in
                  (spec.replace(":", "-").split("-") for spec in numbers.split()))
    return Template(key, question, slots, expr, steps)


TEMPLATES: tuple[Template, ...] = (
    # one operation
    _t("add_buy", "{name} has {start} {items}. {He} buys {bought} more. How many {items} does {name} have now?",
       "start:2-99 bought:2-99", "start + bought", "{name} has {start} + {bought} = {s1} {items} now."),
    _t("add_pair", "{name} has {first} {items} and {name2} has {second} {items}. How many {items} do they have "
       "altogether?", "first:2-99 second:2-99", "first + second", "Together they have {first} + {second} = {s1}."),
    _t("sub_give", "{name} had {start} {items}. {He} gave {given} of them to {name2}. How many {items} does {name} "
       "have left?", "start:10-99 given:2-60", "start - given", "{name} has {start} - {given} = {s1} {items} left."),
    _t("sub_compare", "{name} has {mine} {items}. {name2} has {theirs} {items}. How many more {items} does {name} "
       "have than {name2}?", "mine:10-99 theirs:2-90", "mine - theirs", "{name} has {mine} - {theirs} = {s1} more."),
    _t("sub_spend", "{name} had {money} dollars. {He} spent {spent} dollars on {a_item}. How many dollars does {he} "
       "have left?", "money:10-99 spent:2-60", "money - spent", "{He} has {money} - {spent} = {s1} dollars left."),
    _t("mul_boxes", "{name} has {boxes} {conts}. Each {cont} holds {per_box} {items}. How many {items} does {name} "
       "have in all?", "boxes:2-12 per_box:2-12", "boxes * per_box", "{name} has {boxes} * {per_box} = {s1}."),
    _t("mul_price", "One {item} costs {price} dollars. {name} buys {count} of them. How many dollars does {name} "
       "spend?", "price:2-20 count:2-12", "price * count", "{name} spends {price} * {count} = {s1} dollars."),
    _t("mul_pages", "{name} reads {per_day} pages every day. How many pages does {he} read in {days} days?",
       "per_day:2-40 days:2-12", "per_day * days", "{He} reads {per_day} * {days} = {s1} pages."),
    _t("div_share", "{name} has {total} {items} and shares them equally among {friends} friends. How many {items} "
       "does each friend get?", "total:4-99 friends:2-9", "total / friends", "Each gets {total} / {friends} = {s1}."),
    _t("div_pack", "{name} packs {total} {items} into {conts}, putting {per_box} {items} in each {cont}. How many "
       "{conts} does {he} fill?", "total:4-99 per_box:2-12", "total / per_box",
       "{He} fills {total} / {per_box} = {s1} {conts}."),
    _t("div_price", "{name} spent {spent} dollars on {items} that cost {price} dollars each. How many {items} did "
       "{he} buy?", "spent:4-99 price:2-12", "spent / price", "{He} bought {spent} / {price} = {s1} {items}."),
    # two operations
    _t("add_sub", "{name} had {start} {items}. {He} found {found} more and then lost {lost}. How many {items} does "
       "{he} have now?", "start:2-60 found:2-40 lost:2-60", "start + found - lost",
       "After finding some, {he} has {start} + {found} = {s1}.", "After losing some, {he} has {s1} - {lost} = {s2}."),
    _t("mul_add", "{name} has {boxes} {conts} with {per_box} {items} in each {cont}, and {loose} loose {items}. How "
       "many {items} does {he} have in total?", "boxes:2-9 per_box:2-12 loose:2-20", "boxes * per_box + loose",
       "The {conts} hold {boxes} * {per_box} = {s1} {items}.", "In total {he} has {s1} + {loose} = {s2} {items}."),
    _t("change", "{name} buys {count} {items} at {price} dollars each. {He} pays with {paid} dollars. How many "
       "dollars of change does {he} get?", "count:2-6 price:2-12 paid:20-99", "paid - count * price",
       "The {items} cost {count} * {price} = {s1} dollars.", "The change is {paid} - {s1} = {s2} dollars."),
    _t("add_three", "{name} picked {first} {items}, {name2} picked {second} and {name3} picked {third}. How many "
       "{items} did they pick in total?", "first:2-60 second:2-60 third:2-60", "first + second + third",
       "{name} and {name2} picked {first} + {second} = {s1}.", "With {name3}: {s1} + {third} = {s2} {items}."),
    _t("keep_share", "{name} had {total} {items}. {He} kept {kept} for {self} and shared the rest equally among "
       "{friends} friends. How many {items} did each friend get?", "total:10-99 kept:2-30 friends:2-9",
       "(total - kept) / friends", "{He} shared {total} - {kept} = {s1} {items}.",
       "Each friend got {s1} / {friends} = {s2} {items}."),
    _t("two_colors", "A {cont} holds {red} red {items} and {blue} blue {items}. How many {items} are there in "
       "{boxes} such {conts}?", "red:2-20 blue:2-20 boxes:2-9", "(red + blue) * boxes",
       "One {cont} holds {red} + {blue} = {s1} {items}.", "{boxes} {conts} hold {s1} * {boxes} = {s2} {items}."),
    _t("shelves", "A shelf has {rows} rows with {per_row} {items} in each row. {name} has {shelves} such shelves. "
       "How many {items} are there on the shelves?", "rows:2-9 per_row:2-12 shelves:2-9", "rows * per_row * shelves",
       "One shelf has {rows} * {per_row} = {s1} {items}.", "{shelves} shelves have {s1} * {shelves} = {s2} {items}."),
    _t("times_as_many", "{name} has {mine} {items}. {name2} has {times} times as many. How many {items} do they "
       "have together?", "mine:2-30 times:2-6", "mine + mine * times",
       "{name2} has {mine} * {times} = {s1} {items}.", "Together they have {mine} + {s1} = {s2} {items}."),
    _t("took_twice", "A {cont} had {start} {items}. {name} took {took} and {name2} took {took2}. How many {items} "
       "are left in the {cont}?", "start:20-99 took:2-40 took2:2-40", "start - took - took2",
       "After {name}, {start} - {took} = {s1} are left.", "After {name2}, {s1} - {took2} = {s2} are left."),
    _t("wage_lunch", "{name} earns {rate} dollars an hour and works {hours} hours. {He} spends {spent} dollars on "
       "lunch. How many dollars does {he} have left?", "rate:5-20 hours:2-8 spent:2-30", "rate * hours - spent",
       "{He} earns {rate} * {hours} = {s1} dollars.", "{He} has {s1} - {spent} = {s2} dollars left."),
    _t("broken_sell", "{name} has {start} {produce}. {broken} of them are spoiled. {He} sells the rest for {price} "
       "dollars each. How many dollars does {he} make?", "start:10-60 broken:2-20 price:2-9",
       "(start - broken) * price", "{He} sells {start} - {broken} = {s1} {produce}.",
       "{He} makes {s1} * {price} = {s2} dollars."),
    # three operations
    _t("packs_give", "{name} buys {packs} packs of {items} with {per_pack} in each pack. {He} gives {given} {items} "
       "to each of {friends} friends. How many {items} does {he} have left?",
       "packs:2-9 per_pack:4-12 given:2-5 friends:2-6", "packs * per_pack - given * friends",
       "{He} buys {packs} * {per_pack} = {s1} {items}.", "{He} gives away {given} * {friends} = {s2} {items}.",
       "{He} has {s1} - {s2} = {s3} {items} left."),
    _t("pool_split", "{name} has {first} {items}, {name2} has {second} and {name3} has {third}. They put them "
       "together and split them equally into {bags} {conts}. How many {items} go in each {cont}?",
       "first:2-40 second:2-40 third:2-40 bags:2-6", "(first + second + third) / bags",
       "{name} and {name2} have {first} + {second} = {s1}.", "With {name3} they have {s1} + {third} = {s2}.",
       "Each {cont} gets {s2} / {bags} = {s3} {items}."),
    _t("two_prices", "{name} buys {count} {items} at {price} dollars each and {count2} {items2} at {price2} dollars "
       "each. How many dollars does {he} spend in total?", "count:2-9 price:2-12 count2:2-9 price2:2-12",
       "count * price + count2 * price2", "The {items} cost {count} * {price} = {s1} dollars.",
       "The {items2} cost {count2} * {price2} = {s2} dollars.", "{He} spends {s1} + {s2} = {s3} dollars."),
    _t("money_left", "{name} has {money} dollars. {He} buys {count} {items} at {price} dollars each and {a_item2} "
       "for {other} dollars. How many dollars does {he} have left?",
       "money:30-99 count:2-6 price:2-9 other:2-20", "money - count * price - other",
       "The {items} cost {count} * {price} = {s1} dollars.", "After that {he} has {money} - {s1} = {s2} dollars.",
       "After the {item2} {he} has {s2} - {other} = {s3} dollars."),
    _t("weekly_run", "{name} runs {weekday} km on each of {days} weekdays and {weekend} km at the weekend. How many "
       "km does {he} run in {weeks} weeks?", "weekday:2-9 days:2-5 weekend:2-15 weeks:2-6",
       "(weekday * days + weekend) * weeks", "On weekdays {he} runs {weekday} * {days} = {s1} km.",
       "Each week {he} runs {s1} + {weekend} = {s2} km.", "In {weeks} weeks {he} runs {s2} * {weeks} = {s3} km."),
    _t("shop_shelves", "A shop has {boxes} {conts} of {items} with {per_box} in each {cont}. It sells {sold} {items} "
       "and puts the rest equally on {shelves} shelves. How many {items} are on each shelf?",
       "boxes:2-9 per_box:4-12 sold:2-30 shelves:2-6", "(boxes * per_box - sold) / shelves",
       "The shop has {boxes} * {per_box} = {s1} {items}.", "After selling, {s1} - {sold} = {s2} are left.",
       "Each shelf gets {s2} / {shelves} = {s3} {items}."),
    _t("bake_left", "{name} baked {trays} trays of {per_tray} {baked}. {He} ate {ate} and gave {gave} to {name2}. "
       "How many {baked} are left?", "trays:2-6 per_tray:4-12 ate:2-9 gave:2-20", "trays * per_tray - ate - gave",
       "{He} baked {trays} * {per_tray} = {s1} {baked}.", "After eating, {s1} - {ate} = {s2} are left.",
       "After giving, {s2} - {gave} = {s3} are left."),
    _t("class_pencils", "A teacher has {classes} classes of {students} students. Each student needs {each} {items}. "
       "The teacher already has {have} {items}. How many more {items} must the teacher buy?",
       "classes:2-4 students:10-30 each:2-4 have:2-60", "classes * students * each - have",
       "There are {classes} * {students} = {s1} students.", "They need {s1} * {each} = {s2} {items}.",
       "The teacher must buy {s2} - {have} = {s3} more."),
)


@dataclass(frozen=True)
class Problem:
    """One generated problem with its gold program body, NL solution and integer answer."""

    question: str
    body: str  # indented function body for the docstring prompt, ending "return result"
    solution_nl: str  # ends "#### answer"
    answer: int
    template: str
    ops: int


def evaluate(expr: str, values: Mapping[str, int]) -> list[Fraction]:
    """Values of ``expr``'s operations in evaluation order (the last is the result). Only ``+ - * /`` on names."""

    def walk(node: ast.expr) -> Fraction:
        if isinstance(node, ast.Name):
            return Fraction(values[node.id])
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Div) and right == 0:
                raise ZeroDivisionError(expr)
            steps.append(_OPS[type(node.op)](left, right))
            return steps[-1]
        raise ValueError(f"unsupported syntax in template expression {expr!r}")

    steps: list[Fraction] = []
    walk(_parse(expr))
    return steps


def _valid(steps: list[Fraction]) -> bool:
    """Every intermediate value a non-negative integer, the answer a positive integer up to MAX_ANSWER."""
    return all(s.denominator == 1 and s >= 0 for s in steps) and 0 < steps[-1] <= MAX_ANSWER


def _fillers(rng: random.Random) -> dict[str, str]:
    """Random names, pronouns, items and containers for one problem."""
    (name, pronoun), (name2, _), (name3, _) = rng.sample(NAMES, 3)
    (item, items), (item2, items2) = rng.sample(ITEMS, 2)
    cont, conts = rng.choice(CONTAINERS)
    he, his, him, self_ = _PRONOUNS[pronoun]
    return {"name": name, "name2": name2, "name3": name3, "he": he, "He": he.capitalize(), "his": his,
            "His": his.capitalize(), "him": him, "self": self_, "item": item, "items": items, "a_item": _a(item),
            "item2": item2, "items2": items2, "a_item2": _a(item2), "cont": cont, "conts": conts,
            "baked": rng.choice(BAKED), "produce": rng.choice(PRODUCE)}


def _a(noun: str) -> str:
    """``noun`` with its indefinite article."""
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def sample_problem(template: Template, rng: random.Random) -> Problem:
    """Draw fillers and numbers for ``template`` until the arithmetic is valid (``RuntimeError`` if it never is)."""
    fill = _fillers(rng)
    for _ in range(MAX_TRIES):
        values = {name: rng.randint(lo, hi) for name, lo, hi in template.numbers}
        try:
            steps = evaluate(template.expr, values)
        except ZeroDivisionError:
            continue
        if _valid(steps):
            break
    else:
        raise RuntimeError(f"template {template.key}: no valid numbers in {MAX_TRIES} draws; widen its ranges")
    answer = int(steps[-1])
    fields = {**fill, **values, **{f"s{i + 1}": int(s) for i, s in enumerate(steps)}}
    lines = [f"{name} = {values[name]}" for name, _, _ in template.numbers]
    body = indent_body([*lines, f"result = {template.expr}", "return result"])
    nl = "\n".join(step.format(**fields) for step in template.steps) + f"\n#### {answer}"
    return Problem(template.question.format(**fields), body, nl, answer, template.key, template.ops)


def templates_for(ops: Iterable[int]) -> list[Template]:
    """Templates with the given numbers of operations; ``ValueError`` if none."""
    wanted = set(ops)
    chosen = [t for t in TEMPLATES if t.ops in wanted]
    if not chosen:
        raise ValueError(f"ops={sorted(wanted)}: no template has that many operations (have 1, 2, 3)")
    return chosen


def generate(
    n: int, *, seed: int | str, ops: Iterable[int] = (1, 2, 3), exclude: Collection[str] = ()
) -> list[Problem]:
    """``n`` problems with distinct questions (none in ``exclude``), reproducible from ``seed``."""
    if n < 0:
        raise ValueError(f"n={n}: must be >= 0")
    rng, templates = random.Random(str(seed)), templates_for(ops)
    seen, problems = set(exclude), []
    for _ in range(n * 100 + 1000):  # collisions are rare; the cap only stops an impossible request
        if len(problems) == n:
            return problems
        problem = sample_problem(rng.choice(templates), rng)
        if problem.question not in seen:
            seen.add(problem.question)
            problems.append(problem)
    raise RuntimeError(f"could not make {n} distinct problems with ops={sorted(set(ops))}")


def generate_splits(
    sizes: Mapping[str, int], *, seed: int | str, ops: Iterable[int] = (1, 2, 3)
) -> dict[str, list[Problem]]:
    """Disjoint splits: split ``s`` uses seed ``f"{seed}:{s}"``; test and validation are made first."""
    ops = tuple(ops)
    order = [s for s in EVAL_FIRST if s in sizes] + [s for s in sizes if s not in EVAL_FIRST]
    seen: set[str] = set()
    splits: dict[str, list[Problem]] = {}
    for split in order:
        splits[split] = generate(sizes[split], seed=f"{seed}:{split}", ops=ops, exclude=seen)
        seen.update(p.question for p in splits[split])
    return {s: splits[s] for s in sizes}


def to_row(
    record: Problem, *, index: int, split: str, fmt: str = "pot", unlabeled: bool = False, guarded: bool = False
) -> Rows:
    """RL row and (if labeled) SFT row for one generated problem, as a PoT body or an NL solution."""
    solution = record.body if fmt == "pot" else record.solution_nl
    return build_rows(
        data_source=DATA_SOURCE, task=fmt, question=record.question, gold=str(record.answer), solution=solution,
        index=index, split=split, source_id=f"{record.template}/{split}-{index}", unlabeled=unlabeled,
        guarded=guarded,
    )


def program(problem: Problem, *, guarded: bool = False) -> str:
    """The full gold program (PoT prompt + body), as a model would complete it."""
    return render_prompt(problem.question, task="pot", guarded=guarded)[0] + problem.body


def verify(problems: list[Problem], **exec_kwargs) -> list[str]:
    """Run every gold program in the sandbox; returns a description of each one that does not give its answer."""
    results = run_programs([program(p) for p in problems], **exec_kwargs)
    return [f"{p.template}: {p.question!r} -> {r.status} {r.value}" for p, r in zip(problems, results, strict=True)
            if r.status != "ok" or r.value != p.answer]


def parse_ops(text: str) -> tuple[int, ...]:
    """``"1,2,3"`` or ``"2-3"`` -> operation counts."""
    try:
        if "-" in text:
            lo, hi = (int(x) for x in text.split("-"))
            return tuple(range(lo, hi + 1))
        return tuple(int(x) for x in text.split(","))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--ops {text!r}: expected e.g. 1,2,3 or 1-3") from err


def parse_splits(text: str) -> dict[str, int]:
    """``"train=5000,validation=300"`` -> sizes by split."""
    try:
        return {name.strip(): int(size) for name, size in (part.split("=") for part in text.split(","))}
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--splits {text!r}: expected e.g. train=5000,validation=300") from err


def main(argv: list[str] | None = None) -> int:
    """CLI: generate disjoint splits and write ``{split}.parquet`` (+ ``{split}_sft.parquet``) and a manifest."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", required=True, type=Path)
    parser.add_argument("--splits", type=parse_splits, default=parse_splits("train=5000,validation=300,test=300"))
    parser.add_argument("--seed", default="0", help="any string; splits use f'{seed}:{split}'")
    parser.add_argument("--ops", type=parse_ops, default=(1, 2, 3), help="operation counts, e.g. 1,2 or 1-3")
    parser.add_argument("--format", choices=("pot", "nl"), default="pot")
    parser.add_argument("--unlabeled", action="store_true", help="no ground truth or reference, no SFT files")
    parser.add_argument("--guarded", action="store_true", help="use the guarded PoT prompt template")
    parser.add_argument("--verify", action="store_true", help="run every gold program in the sandbox first")
    parser.add_argument("-v", "--verbose", action="store_true")
    add_exec_args(parser)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    splits = generate_splits(args.splits, seed=args.seed, ops=args.ops)
    if args.verify:
        bad = verify([p for ps in splits.values() for p in ps], workers=args.workers, timeout_s=args.timeout_s,
                     memory_mb=args.memory_mb)
        if bad:  # our templates are at fault: stop rather than write wrong labels
            raise RuntimeError(f"{len(bad)} gold programs do not reproduce their answers, e.g. {bad[:3]}")
    report = ConversionReport(source=DATA_SOURCE)
    for split, problems in splits.items():
        rows = [to_row(p, index=i, split=split, fmt=args.format, unlabeled=args.unlabeled, guarded=args.guarded)
                for i, p in enumerate(problems)]
        report.read += len(rows)
        report.written.update(write_split(args.output_dir, split=split, rl_rows=[r.rl for r in rows],
                                          sft_rows=[r.sft for r in rows if r.sft is not None]))
    report.extra.update(seed=args.seed, ops=",".join(map(str, args.ops)))
    write_manifest(args.output_dir, {**report.as_dict(), "data_source": DATA_SOURCE, "task": args.format,
                                     "label_source": "none" if args.unlabeled else "gold", "verified": args.verify,
                                     "splits": args.splits,
                                     "templates": [render_prompt("q", task=args.format, guarded=args.guarded)[1]],
                                     "problem_templates": [t.key for t in templates_for(args.ops)]})
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
