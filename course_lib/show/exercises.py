"""The lessons' exercises: one check per exercise, which runs the reader's function and says what is wrong.

Each lesson ends with exercises.  The reader writes a small function in a cell
marked ``# ✏️ EXERCISE``, then runs the check cell below it,
``check_...(fn, LANG)``.  A check calls ``fn`` on a few inputs, compares each
result with course_lib's own implementation (the one the lesson teaches) and
prints a verdict in the reader's language: correct; or the first input that
failed, the value expected and the value returned, and a hint when the answer
matches a typical mistake (a warm-up one step ahead, the clipping factor
c/|g| applied below the threshold, R counting frozen parameters, ...).

A function that raises is a failed check that names the exception, never a
traceback.  One that still raises ``NotImplementedError``, the placeholder of
the student edition (``book/tools/student_edition.py``), has not been answered
yet and is told so.  Every check returns a :class:`Verdict`, true when the
answer is right; wrong arguments to a check (not a function, an unknown
language) raise a TypeError or ValueError that names the argument.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable

import torch

from course_lib.engine._checks import check_choice, check_int, check_type, shown
from course_lib.engine.clipping import clip_factor, clip_grad_norm_per_layer_, global_norm
from course_lib.engine.freezing import freeze, param_groups, trainable_ratio
from course_lib.engine.schedules import CosineDecay, cosine_with_warmup
from course_lib.engine.timing import mfu
from course_lib.engine.training import History
from course_lib.i18n import bracketed, check_language, count, number, plain, significant, text
from course_lib.lessons.corpus import token_share
from course_lib.lessons.finetuning_bert import RECIPE
from course_lib.lessons.lr_schedules import GPT_SEEDS, GPT_STEPS, late_loss, one_thread
from course_lib.lessons.targeted_freezing_gpt import flop_saving, trains
from course_lib.models.gpt import GPT, GPTConfig, flops_per_token, parameter_count
from course_lib.models.toy import body_and_head

__all__ = [
    "Verdict",
    "check_warmup_cosine",
    "check_cosine_cycles",
    "check_hard_restarts",
    "check_clip_coefficient",
    "check_clip_by_global_norm",
    "check_trainable_share",
    "check_optimizer_groups",
    "check_parameter_count",
    "check_token_share",
    "check_frozen_flop_share",
    "check_flops_per_token",
    "check_mfu",
    "hard_restarts_factor",
    "check_clip_per_part",
    "check_warmup_run",
    "check_frozen_drift",
    "frozen_drift",
    "check_adam_update_ratio",
    "check_accumulated_losses",
    "check_no_sync_flags",
    "check_optimizer_steps",
    "check_fp16_step",
    "check_mfu_peak",
]


@dataclass(frozen=True)
class Verdict:
    """What a check found.  ``status``: "correct", "wrong", "raised" or "not_done"; ``message`` is what it printed."""

    exercise: str
    status: str
    message: str

    def __post_init__(self) -> None:
        check_type("exercise", self.exercise, str, "the name of the function checked")
        check_choice("status", self.status, ("correct", "wrong", "raised", "not_done"))
        check_type("message", self.message, str, "the message the check printed")

    @property
    def passed(self) -> bool:
        return self.status == "correct"

    def __bool__(self) -> bool:
        return self.passed

    def _ipython_display_(self) -> None:
        """Nothing more to show in a notebook: the check has printed its message."""


# ------------------------------------------------------------------------------------------------ the checking engine


@dataclass(frozen=True)
class _Case:
    arguments: Callable[[], tuple]  # fresh arguments for every call: a function may change its inputs
    shown: Callable[[str, str], str]  # (function name, lang) -> the call as the reader reads it


class _Odd:
    """A returned value that cannot be compared (None, a string, a list of the wrong length...)."""

    def __init__(self, value: object, hint: str | None):
        self.shown, self.hint = shown(value), hint


def _call(*names: str) -> Callable[[tuple], Callable[[str, str], str]]:
    """The call ``f(a=1, b=2)`` built from the argument names and values."""

    def make(values: tuple) -> Callable[[str, str], str]:
        parts = [f"{n}={_short(v)}" for n, v in zip(names, values)]
        return lambda name, lang: f"{name}({', '.join(parts)})"

    return make


def _short(value: object) -> str:
    """An argument as the reader would type it: a set in sorted order, a very large or small float in e-notation."""
    if isinstance(value, set):
        return "{" + ", ".join(map(repr, sorted(value))) + "}"
    if isinstance(value, float) and value and not 1e-4 <= abs(value) < 1e6:
        return f"{value:.6g}"
    return repr(value)


def _cases(make_call, rows) -> list[_Case]:
    """One case per row of plain values (numbers, lists, sets: rebuilt by each call, so nothing is shared)."""
    return [_Case(lambda row=row: tuple(_copy(v) for v in row), make_call(row)) for row in rows]


def _copy(value):
    return type(value)(value) if isinstance(value, (list, set)) else value


def _read_number(value: object, arguments: tuple) -> float | _Odd:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.item())
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return _Odd(value, "ex_hint_none" if value is None else "ex_hint_not_number")


def _read_answer(read: Callable, value: object, arguments: tuple):
    """``read`` of the reader's returned value; a value it cannot convert (an int too large for a float, a weight decay
    "abc") is a wrong answer like any other, not a crash of the check."""
    try:
        return read(value, arguments)
    except (OverflowError, TypeError, ValueError):
        return _Odd(value, None)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-12)


def _show_number(value: float, other: object, lang: str) -> str:
    return significant(value, lang, 6)


def _check_fn(fn: object, example: str) -> None:
    if not callable(fn):
        raise TypeError(f"fn must be the function you wrote, as in {example} (the function itself, not its result), "
                        f"got {shown(fn)}")


def _check(
    fn: Callable,
    lang: str,
    example: str,
    cases: list[_Case],
    reference: Callable,
    mistakes: tuple[tuple[Callable, str], ...] = (),
    *,
    read: Callable = _read_number,
    same: Callable = _close,
    show: Callable = _show_number,
    errors: dict[type, str] | None = None,
) -> Verdict:
    """Run ``fn`` on every case, compare with ``reference``, print the verdict and return it.

    ``read(value, arguments)`` turns a returned value into something ``same``
    can compare (or an :class:`_Odd`); ``show(value, other, lang)`` writes a
    value where it differs from ``other``; ``mistakes`` pairs a typical wrong
    implementation with the key of its hint, shown when ``fn`` returns what
    that mistake returns on every input; ``errors`` maps an exception type
    to a hint.
    """
    _check_fn(fn, example)
    check_language(lang)
    name = getattr(fn, "__name__", type(fn).__name__)
    expected = []
    for case in cases:
        arguments = case.arguments()
        expected.append(read(reference(*arguments), arguments))
    outcomes = []
    for case in cases:
        arguments = case.arguments()
        try:
            value = fn(*arguments)
        except NotImplementedError:
            return _verdict(name, "not_done", text("ex_not_done", lang, name=name))
        except Exception as error:  # the reader's code may raise anything: report it, never a traceback
            outcomes.append(error)
            continue
        outcomes.append(_read_answer(read, value, arguments))
    wrong = [i for i, (got, want) in enumerate(zip(outcomes, expected)) if _failed(got, want, same)]
    if not wrong:
        return _verdict(name, "correct", text("ex_correct", lang, name=name, n=len(cases)))
    first, right = wrong[0], len(cases) - len(wrong)
    got, call = outcomes[first], cases[first].shown(name, lang)
    if isinstance(got, Exception):
        detail = (str(got).strip().splitlines() or ["-"])[0][:200]
        message = text("ex_raised", lang, call=call, error=type(got).__name__, detail=detail, right=right, n=len(cases))
        hint = next((key for kind, key in (errors or {}).items() if isinstance(got, kind)), None)
        return _verdict(name, "raised", _with_hint(message, hint, lang))
    if isinstance(got, _Odd):
        message = text("ex_wrong", lang, call=call, got=got.shown, expected=show(expected[first], None, lang), right=right,
                       n=len(cases))
        return _verdict(name, "wrong", _with_hint(message, got.hint, lang))
    want = expected[first]
    message = text("ex_wrong", lang, call=call, got=show(got, want, lang), expected=show(want, got, lang), right=right, n=len(cases))
    hint = next((key for mistake, key in mistakes if _matches(mistake, cases, outcomes, first, read, same)), None)
    return _verdict(name, "wrong", _with_hint(message, hint, lang))


def _failed(got, want, same) -> bool:
    return isinstance(got, (Exception, _Odd)) or not same(got, want)


def _matches(mistake: Callable, cases: list[_Case], outcomes: list, first: int, read: Callable, same: Callable) -> bool:
    """Whether ``mistake`` returns what the reader's function returned, at the first failure and wherever both return."""
    for i, (case, got) in enumerate(zip(cases, outcomes)):
        if isinstance(got, (Exception, _Odd)):
            continue
        arguments = case.arguments()
        try:
            value = read(mistake(*arguments), arguments)
        except Exception:  # e.g. c / |g| at |g| = 0: no verdict from this input
            if i == first:
                return False
            continue
        if isinstance(value, _Odd) or not same(got, value):
            return False
    return True


def _with_hint(message: str, hint: str | None, lang: str) -> str:
    return message if hint is None else message + "\n" + text("ex_hint", lang, hint=text(hint, lang))


def _verdict(name: str, status: str, message: str) -> Verdict:
    print(message)
    return Verdict(name, status, message)


# ------------------------------------------------------------------------------------------------ lesson 01: schedules


def _half_cosine(progress: float) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def check_warmup_cosine(fn: Callable, lang: str) -> Verdict:
    """Lesson 01: ``fn(t, num_warmup_steps, num_training_steps)``, the multiplier of warm-up + half cosine.

    Reference: :func:`course_lib.engine.schedules.cosine_with_warmup`.  Mistakes
    recognised: a warm-up (or the whole schedule) one step ahead, the cosine's
    clock not restarted after the warm-up, the cosine run over T instead of
    T - T_warm, a full cosine cycle instead of half of one.
    """
    reference = lambda t, w, n: cosine_with_warmup(w, n)(t)
    rows = [(t, 4, 20) for t in (0, 1, 3, 4, 5, 12, 19)] + [(t, 10, 100) for t in (0, 5, 9, 10, 55, 99)] + [(0, 0, 10), (5, 0, 10)]
    mistakes = (
        (lambda t, w, n: (t + 1) / w if t < w else reference(t, w, n), "ex_hint_warmup_ahead"),
        (lambda t, w, n: reference(t + 1, w, n), "ex_hint_warmup_ahead"),
        (lambda t, w, n: t / w if t < w else _half_cosine(t / n), "ex_hint_clock"),
        (lambda t, w, n: t / w if t < w else _half_cosine((t - w) / n), "ex_hint_decay_length"),
        (lambda t, w, n: t / w if t < w else _half_cosine(2 * (t - w) / (n - w)), "ex_hint_half_cosine"),
    )
    make = _call("t", "num_warmup_steps", "num_training_steps")
    return _check(fn, lang, "check_warmup_cosine(warmup_cosine_factor, LANG)", _cases(make, rows), reference, mistakes)


def check_cosine_cycles(fn: Callable, lang: str) -> Verdict:
    """Lesson 01: ``fn(t, num_steps, num_cycles)`` = ½(1 + cos(2πCt/T)), the cosine with C smooth cycles.

    Reference: :class:`course_lib.engine.schedules.CosineDecay`.  Mistakes recognised:
    πCt/T for the angle (C counted in half cycles), cos without ½(1 + ·).
    """
    reference = lambda t, n, c: CosineDecay(n, c)(t)
    rows = [(t, 100, 0.5) for t in (0, 25, 50, 100)] + [(t, 100, 1.0) for t in (25, 50, 75)] + [(t, 100, 2.0) for t in (10, 25, 60)]
    rows.append((70, 100, 1.5))
    mistakes = (
        (lambda t, n, c: _half_cosine(c * t / n), "ex_hint_cycles_pi"),
        (lambda t, n, c: math.cos(2 * math.pi * c * t / n), "ex_hint_cos_range"),
    )
    make = _call("t", "num_steps", "num_cycles")
    return _check(fn, lang, "check_cosine_cycles(cosine_cycles_factor, LANG)", _cases(make, rows), reference, mistakes)


def hard_restarts_factor(t: int, num_steps: int, num_cycles: int) -> float:
    """Cosine with C hard restarts, without warm-up: ½(1 + cos(π · frac(C t / T))), and 0 from t = T on.

    Each of the C cycles falls from the peak to 0 along half a cosine, then
    jumps straight back to the peak (SGDR's restarts; transformers'
    ``get_cosine_with_hard_restarts_schedule_with_warmup`` with no warm-up,
    which the tests compare it with).  The course's schedules do not restart;
    lesson 01's exercise contrasts the two.
    """
    check_int("t", t, 0)
    check_int("num_steps", num_steps, 1)
    check_int("num_cycles", num_cycles, 1, unit="cycles")
    progress = t / max(1, num_steps)
    if progress >= 1.0:
        return 0.0
    return max(0.0, _half_cosine((num_cycles * progress) % 1.0))


def check_hard_restarts(fn: Callable, lang: str) -> Verdict:
    """Lesson 01: ``fn(t, num_steps, num_cycles)``, the cosine with C hard restarts, for 0 ≤ t < T.

    Reference: :func:`hard_restarts_factor`.  Mistakes recognised: the smooth
    cycles of :class:`course_lib.engine.schedules.CosineDecay`, a full cosine within
    each cycle, no restart at all (the fractional part forgotten).
    """
    rows = [(t, 100, 1) for t in (0, 50, 99)] + [(t, 100, 2) for t in (0, 25, 49, 50, 75)] + [(t, 100, 3) for t in (20, 34, 67, 90)]
    mistakes = (
        (lambda t, n, c: CosineDecay(n, c)(t), "ex_hint_smooth_cycles"),
        (lambda t, n, c: _half_cosine(2 * ((c * t / n) % 1.0)), "ex_hint_restart_half"),
        (lambda t, n, c: _half_cosine(c * t / n), "ex_hint_no_restart"),
    )
    make = _call("t", "num_steps", "num_cycles")
    return _check(fn, lang, "check_hard_restarts(hard_restarts_factor, LANG)", _cases(make, rows), hard_restarts_factor, mistakes)


# ------------------------------------------------------------------------------------------------ lesson 02: clipping


def check_clip_coefficient(fn: Callable, lang: str) -> Verdict:
    """Lesson 02: ``fn(norm, max_norm)`` = c / max(|g|, c), the factor that clipping by norm multiplies g by.

    Reference: :func:`course_lib.engine.clipping.clip_factor`.  Mistakes recognised:
    c/|g| also below the threshold (which scales small gradients up), the
    clipped norm min(|g|, c) instead of the factor, the factor inverted.
    """
    rows = [(3.0, 1.0), (0.5, 1.0), (1.0, 1.0), (0.0, 1.0), (10.0, 2.5), (2.0, 5.0), (1e6, 1.0)]
    mistakes = (
        (lambda g, c: c / g, "ex_hint_scales_up"),
        (lambda g, c: min(g, c), "ex_hint_clipped_norm"),
        (lambda g, c: max(g, c) / c, "ex_hint_inverted"),
    )
    make = _call("norm", "max_norm")
    return _check(fn, lang, "check_clip_coefficient(clip_coefficient, LANG)", _cases(make, rows), clip_factor, mistakes,
                  errors={ZeroDivisionError: "ex_hint_zero_norm"})


def _clip_global(grads: list[torch.Tensor], max_norm: float) -> list[torch.Tensor]:
    factor = clip_factor(float(global_norm(grads)), max_norm)
    return [g * factor for g in grads]


def _read_tensors(value: object, arguments: tuple) -> list[torch.Tensor] | _Odd:
    if value is None:
        return _Odd(value, "ex_hint_none")
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, torch.Tensor) for v in value) or (
            len(value) != len(arguments[0])):
        return _Odd(value, "ex_hint_tensor_list")
    return [v.detach().to(torch.float64) for v in value]


def _same_tensors(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(x.shape == y.shape and torch.allclose(x, y, rtol=1e-5, atol=1e-7) for x, y in zip(a, b))


def _show_tensors(value: list[torch.Tensor], other: object, lang: str) -> str:
    return _nested([v.tolist() for v in value], lang)


def _nested(values, lang: str) -> str:
    """Nested lists of numbers, 4 significant digits, written the reader's way (``[0,6; 0,8]`` in Vietnamese)."""
    if not isinstance(values, list):
        return significant(values, lang, 4)
    return bracketed((_nested(v, lang) for v in values), lang)


def _per_tensor(grads, c):
    return [g * clip_factor(float(g.norm()), c) for g in grads]


def _sum_of_norms(grads, c):
    return [g * clip_factor(float(sum(g.norm() for g in grads)), c) for g in grads]


def _no_square_root(grads, c):
    return [g * clip_factor(float(sum(g.norm() ** 2 for g in grads)), c) for g in grads]


def _always_scaled(grads, c):
    return [g * (c / float(global_norm(grads))) for g in grads]


def check_clip_by_global_norm(fn: Callable, lang: str) -> Verdict:
    """Lesson 02: ``fn(grads, max_norm)`` returns the gradients clipped by their global norm, one factor for all.

    Reference: :func:`course_lib.engine.clipping.global_norm` and ``clip_factor``, as
    :func:`course_lib.engine.clipping.clip_grad_norm_` applies them.  Mistakes
    recognised: each tensor clipped by its own norm, the sum of the norms (or
    of their squares) taken as |g|, c/|g| also below the threshold.
    """
    rows = [
        ([[3.0, 0.0], [[0.0, 4.0]]], 1.0),
        ([[0.6, 0.8], [0.0, 0.5]], 1.0),
        ([[0.3, 0.4]], 1.0),
        ([[1.0, 2.0, 2.0], [4.0], [[0.0]]], 2.5),
        ([[0.4, 0.3], [1.2]], 1.0),
    ]

    def case(row) -> _Case:
        values, c = row
        listed = "[" + ", ".join(f"tensor({v})" for v in values) + "]"
        return _Case(lambda: ([torch.tensor(v) for v in values], c),
                     lambda name, lang: f"{name}(grads={listed}, max_norm={c})")

    mistakes = (
        (_per_tensor, "ex_hint_per_tensor"),
        (_sum_of_norms, "ex_hint_sum_of_norms"),
        (_no_square_root, "ex_hint_square_root"),
        (_always_scaled, "ex_hint_scales_up"),
    )
    return _check(fn, lang, "check_clip_by_global_norm(clip_by_global_norm, LANG)", [case(r) for r in rows], _clip_global,
                  mistakes, read=_read_tensors, same=_same_tensors, show=_show_tensors)


# ------------------------------------------------------------------------------------------------ lesson 03: freezing


class _TinyEncoder(torch.nn.Module):
    """A BERT-shaped encoder of width 8 with BERT's parameter names, small enough to count in an instant."""

    def __init__(self, layers: int = 2, width: int = 8):
        super().__init__()
        nn = torch.nn
        self.embeddings = nn.ModuleDict({"word_embeddings": nn.Embedding(50, width),
                                         "position_embeddings": nn.Embedding(16, width), "LayerNorm": nn.LayerNorm(width)})
        attention = lambda: nn.ModuleDict({"query": nn.Linear(width, width), "key": nn.Linear(width, width),
                                           "value": nn.Linear(width, width), "output": nn.Linear(width, width)})
        self.encoder = nn.ModuleDict({"layer": nn.ModuleList(
            nn.ModuleDict({"attention": attention(), "intermediate": nn.Linear(width, 4 * width),
                           "output": nn.Linear(4 * width, width), "LayerNorm": nn.LayerNorm(width)})
            for _ in range(layers))})
        self.classifier = nn.Linear(width, 2)


def _encoder(frozen: str | None) -> torch.nn.Module:
    """The tiny encoder with the parameters matching ``frozen`` frozen; the global random state is left as it was."""
    with torch.random.fork_rng(devices=[]):
        model = _TinyEncoder()
    if frozen is not None:
        freeze(model, frozen)
    return model


_ENCODERS = (("ex_encoder_recipe", RECIPE), ("ex_encoder_unfrozen", None), ("ex_encoder_head_only", r"^(embeddings|encoder)\."))


def _model_cases(build, choices, call: str, extra: tuple = ()) -> list[_Case]:
    """One case per (description key, choice): a fresh model from ``build(choice)``, then ``extra`` arguments."""
    return [_Case(lambda choice=choice, more=more: (build(choice), *more),
                  lambda name, lang, key=key, more=more: text("ex_where", lang, call=f"{name}({call.format(*more)})",
                                                              what=text(key, lang)))
            for (key, choice), more in zip(choices, extra or [()] * len(choices))]


def _numel(model, keep) -> int:
    return sum(p.numel() for p in model.parameters() if keep(p))


def check_trainable_share(fn: Callable, lang: str) -> Verdict:
    """Lesson 03: ``fn(model)`` = R, the share of the model's numbers that train (requires_grad), counted in numbers.

    Reference: :func:`course_lib.engine.freezing.trainable_ratio`.  Mistakes
    recognised: the frozen share 1 - R, every parameter counted (R = 1),
    tensors counted instead of numbers.
    """
    mistakes = (
        (lambda m: _numel(m, lambda p: not p.requires_grad) / _numel(m, lambda p: True), "ex_hint_counted_frozen"),
        (lambda m: 1.0, "ex_hint_counted_all"),
        (lambda m: sum(p.requires_grad for p in m.parameters()) / len(list(m.parameters())), "ex_hint_tensors"),
    )
    return _check(fn, lang, "check_trainable_share(trainable_share, LANG)", _model_cases(_encoder, _ENCODERS, "model"),
                  trainable_ratio, mistakes)


def _read_groups(value: object, arguments: tuple) -> dict[str, float] | _Odd:
    """{parameter name: its weight decay} over the groups returned; an _Odd for anything an optimizer would refuse."""
    if value is None:
        return _Odd(value, "ex_hint_none")
    if not isinstance(value, (list, tuple)) or not all(isinstance(g, dict) and "params" in g and "weight_decay" in g for g in value):
        return _Odd(value, "ex_hint_group_shape")
    names = {id(p): n for n, p in arguments[0].named_parameters()}
    decay: dict[str, float] = {}
    for group in value:
        for p in group["params"]:
            if id(p) not in names or names[id(p)] in decay:
                return _Odd(value, "ex_hint_group_twice")
            decay[names[id(p)]] = float(group["weight_decay"])
    return decay


def _same_groups(a: dict[str, float], b: dict[str, float]) -> bool:
    return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)


def _differing(a: dict[str, float], b: dict[str, float]) -> str:
    return next(k for k in [*a, *b] if k not in a or k not in b or not _close(a[k], b[k]))


def _show_groups(value: dict[str, float], other: object, lang: str) -> str:
    """The first parameter on which ``value`` and ``other`` disagree, and where ``value`` puts it."""
    if not isinstance(other, dict):
        decayed = sum(1 for decay in value.values() if decay > 0)
        return text("ex_groups_summary", lang, decayed=decayed, plain=len(value) - decayed,
                    decay=significant(max(value.values(), default=0.0), lang, 6))
    name = _differing(value, other)
    if name in value:
        return text("ex_group_decay", lang, name=name, decay=significant(value[name], lang, 6))
    return text("ex_group_none", lang, name=name)


def _groups(model, weight_decay, keep, decayed):
    params = [(n, p) for n, p in model.named_parameters() if keep(p)]
    return [{"params": [p for n, p in params if decayed(n, p)], "weight_decay": weight_decay},
            {"params": [p for n, p in params if not decayed(n, p)], "weight_decay": 0.0}]


def check_optimizer_groups(fn: Callable, lang: str) -> Verdict:
    """Lesson 03: ``fn(model, weight_decay)`` returns the optimizer's parameter groups: trainable parameters only,
    matrices with ``weight_decay``, biases and LayerNorm weights with 0.

    Reference: :func:`course_lib.engine.freezing.param_groups`.  Mistakes recognised:
    frozen parameters left in the groups, every parameter decayed, the two
    groups swapped.
    """
    matrix = lambda n, p: p.ndim >= 2
    trainable = lambda p: p.requires_grad
    mistakes = (
        (lambda m, wd: _groups(m, wd, lambda p: True, matrix), "ex_hint_frozen_in_groups"),
        (lambda m, wd: _groups(m, wd, trainable, lambda n, p: True), "ex_hint_decay_all"),
        (lambda m, wd: _groups(m, wd, trainable, lambda n, p: p.ndim < 2), "ex_hint_groups_swapped"),
    )
    choices = (_ENCODERS[0], _ENCODERS[1])
    cases = _model_cases(_encoder, choices, "model, weight_decay={}", extra=((0.01,), (0.1,)))
    return _check(fn, lang, "check_optimizer_groups(optimizer_groups, LANG)", cases, param_groups, mistakes,
                  read=_read_groups, same=_same_groups, show=_show_groups)


# ------------------------------------------------------------------------------------------------ lesson 04: a GPT


def check_parameter_count(fn: Callable, lang: str) -> Verdict:
    """Lesson 04: ``fn(vocab_size, block_size, n_layer, n_embd)``, the parameters of the course's GPT (tied output layer).

    Reference: :func:`course_lib.models.gpt.parameter_count` = V·d + T·d + L·(12d² + 13d) + 2d.
    Mistakes recognised: the output layer counted again (untied), no position
    embedding, no biases and LayerNorms, 4d² per block, no final LayerNorm.
    """
    reference = lambda v, t, n, d: parameter_count(GPTConfig(vocab_size=v, block_size=t, n_layer=n, n_head=1, n_embd=d))
    rows = [(50257, 1024, 12, 768), (2048, 64, 4, 64), (100, 8, 1, 16), (4096, 128, 6, 256)]
    mistakes = (
        (lambda v, t, n, d: reference(v, t, n, d) + v * d, "ex_hint_untied"),
        (lambda v, t, n, d: reference(v, t, n, d) - t * d, "ex_hint_position"),
        (lambda v, t, n, d: v * d + t * d + n * 12 * d * d, "ex_hint_biases"),
        (lambda v, t, n, d: reference(v, t, n, d) - n * 8 * d * d, "ex_hint_block_matrices"),
        (lambda v, t, n, d: reference(v, t, n, d) - 2 * d, "ex_hint_final_norm"),
    )
    make = _call("vocab_size", "block_size", "n_layer", "n_embd")
    return _check(fn, lang, "check_parameter_count(gpt_parameter_count, LANG)", _cases(make, rows), reference, mistakes,
                  show=_show_count)


def _show_count(value: float, other: object, lang: str) -> str:
    return count(int(value), lang) if float(value).is_integer() else significant(value, lang, 6)


def check_token_share(fn: Callable, lang: str) -> Verdict:
    """Lesson 04: ``fn(tokens, S)`` = p, the share of the generated tokens (a list of ids) that are in the set S.

    Reference: :func:`course_lib.lessons.corpus.token_share`.  Mistakes recognised:
    distinct tokens counted instead of every occurrence, a division by |S|.
    """
    reference = lambda tokens, S: token_share(torch.tensor(tokens), S)
    rows = [([5, 7, 5, 9, 2, 5], {5, 9}), ([1, 2, 3], {4}), ([3, 3, 3, 3], {3}), ([10, 11, 10, 12, 13, 14, 10, 11], {10, 11, 99})]
    mistakes = (
        (lambda tokens, S: len(set(tokens) & S) / len(set(tokens)), "ex_hint_distinct"),
        (lambda tokens, S: sum(t in S for t in tokens) / len(S), "ex_hint_divide_by_s"),
        (lambda tokens, S: len(set(tokens) & S) / len(S), "ex_hint_divide_by_s"),
    )
    make = _call("tokens", "S")
    return _check(fn, lang, "check_token_share(play_token_share, LANG)", _cases(make, rows), reference, mistakes)


def _gpt(frozen: str) -> GPT:
    """A GPT of 2 blocks of width 16 with ``frozen`` (a lesson 04 variant, "none" or "all") frozen; the random state is left as it was."""
    with torch.random.fork_rng(devices=[]):
        model = GPT(GPTConfig(vocab_size=64, block_size=16, n_layer=2, n_head=2, n_embd=16))
    for name, p in model.named_parameters():
        p.requires_grad_(frozen != "all" and (frozen == "none" or trains(name, frozen, 2)))
    return model


def _matrices(model, keep_position: bool = False):
    return [p for n, p in model.named_parameters() if p.ndim == 2 and (keep_position or not n.endswith("wpe.weight"))]


def _frozen_share(params, divide: int) -> float:
    params = list(params)
    return sum(p.numel() for p in params if not p.requires_grad) / (divide * sum(p.numel() for p in params))


def _saving_by_position(model, output_on_top: bool = True, keep_position: bool = False) -> float:
    """flop_saving's rule, or a mistaken variant: ``output_on_top=False`` leaves wte at the bottom; ``keep_position`` counts wpe."""
    cost = total = 0
    below = False
    for name, p in model.named_parameters():
        counted = p.ndim == 2 and (keep_position or not name.endswith("wpe.weight"))
        if counted and not (output_on_top and name.endswith("wte.weight")):
            cost += p.numel() * (2 + 2 * below + 2 * p.requires_grad)
            total += p.numel()
        below = below or p.requires_grad
    if output_on_top:
        wte = model.transformer.wte.weight
        cost += wte.numel() * (2 + 2 * below + 2 * wte.requires_grad)
        total += wte.numel()
    return 1 - cost / (6 * total)


def check_frozen_flop_share(fn: Callable, lang: str) -> Verdict:
    """Lesson 04: ``fn(model)``, the share of a training step's matrix-multiply FLOPs that freezing saves.

    Reference: :func:`course_lib.lessons.targeted_freezing_gpt.flop_saving`: per
    weight and token 2 FLOPs forward, 2 for the weight gradient if it trains,
    2 for the input gradient if anything below it trains; wte is also the
    output layer, on top; wpe is a look-up.  Mistakes recognised: the old
    one-third rule (frozen / 3 × all), every FLOP of a frozen weight saved,
    the output layer left at the bottom, the position embedding counted.
    """
    choices = (("ex_gpt_targeted", "targeted"), ("ex_gpt_reversed", "reversed"), ("ex_gpt_bottom", "bottom"),
               ("ex_gpt_unfrozen", "none"), ("ex_gpt_all_frozen", "all"))
    mistakes = (
        (lambda m: _frozen_share(_matrices(m), 3), "ex_hint_third_only"),
        (lambda m: _frozen_share(_matrices(m), 1), "ex_hint_all_flops"),
        (lambda m: _saving_by_position(m, output_on_top=False), "ex_hint_output_on_top"),
        (lambda m: _saving_by_position(m, keep_position=True), "ex_hint_position_lookup"),
    )
    return _check(fn, lang, "check_frozen_flop_share(frozen_flop_share, LANG)", _model_cases(_gpt, choices, "model"),
                  flop_saving, mistakes)


# ------------------------------------------------------------------------------------------------ lesson 05: speed


def check_flops_per_token(fn: Callable, lang: str) -> Verdict:
    """Lesson 05: ``fn(n_layer, n_embd, vocab_size, context)`` = 6N + 12·L·d·T, N = 12·L·d² + V·d.

    Reference: :func:`course_lib.models.gpt.flops_per_token`.  Mistakes
    recognised: attention counted per sequence (T²), attention left out, 2
    FLOPs per weight (the forward pass only), the position embedding counted
    in N, the output layer left out of N.
    """
    def reference(n, d, v, t):
        return flops_per_token(GPTConfig(vocab_size=v, block_size=t, n_layer=n, n_head=1, n_embd=d))

    weights = lambda n, d, v: 12 * n * d * d + v * d
    rows = [(12, 768, 50304, 1024), (2, 128, 2048, 64), (12, 768, 50304, 8192), (24, 2048, 50304, 2048)]
    mistakes = (
        (lambda n, d, v, t: 6 * weights(n, d, v) + 12 * n * d * t * t, "ex_hint_per_sequence"),
        (lambda n, d, v, t: 6 * weights(n, d, v), "ex_hint_attention_missing"),
        (lambda n, d, v, t: 2 * weights(n, d, v) + 12 * n * d * t, "ex_hint_forward_only"),
        (lambda n, d, v, t: 2 * weights(n, d, v) + 4 * n * d * t, "ex_hint_forward_only"),
        (lambda n, d, v, t: 6 * (weights(n, d, v) + t * d) + 12 * n * d * t, "ex_hint_position_lookup"),
        (lambda n, d, v, t: 6 * 12 * n * d * d + 12 * n * d * t, "ex_hint_output_layer"),
    )
    make = _call("n_layer", "n_embd", "vocab_size", "context")
    return _check(fn, lang, "check_flops_per_token(training_flops_per_token, LANG)", _cases(make, rows), reference, mistakes)


def check_mfu(fn: Callable, lang: str) -> Verdict:
    """Lesson 05: ``fn(tokens_per_step, ms_per_step, flops_per_token, peak_flops)``, MFU as a fraction.

    Reference: :func:`course_lib.engine.timing.mfu` at tokens/s = tokens per step /
    (ms per step / 1000).  Mistakes recognised: milliseconds used as seconds,
    a percentage instead of a fraction, the ratio inverted.
    """
    reference = lambda k, ms, f, peak: mfu(k / (ms / 1e3), f, peak)
    rows = [(16384, 30.0, 8.55e8, 989e12), (4096, 120.0, 1.2e9, 312e12), (512, 2.5, 5e7, 65e12)]
    mistakes = (
        (lambda k, ms, f, peak: k / ms * f / peak, "ex_hint_milliseconds"),
        (lambda k, ms, f, peak: 100 * reference(k, ms, f, peak), "ex_hint_percent"),
        (lambda k, ms, f, peak: 1 / reference(k, ms, f, peak), "ex_hint_mfu_inverted"),
    )
    make = _call("tokens_per_step", "ms_per_step", "flops_per_token", "peak_flops")
    return _check(fn, lang, "check_mfu(model_flops_utilization, LANG)", _cases(make, rows), reference, mistakes)


# ------------------------------------------------------------------------------------------------ lesson 02, second edition

_PART_RATE = 0.1  # the SGD rate of the step the check takes after the reader's clipping


def _body_and_head_parts(seed: int) -> dict[str, list[torch.nn.Parameter]]:
    model = body_and_head(seed)
    return {"body": list(model[0].parameters()), "head": list(model[1].parameters())}


def _read_part_step(value: object, arguments: tuple):
    """The norms returned, each part's norm after the reader's clipping, and the weights after one SGD step with it."""
    parts = arguments[0]
    if value is None:
        return _Odd(value, "ex_hint_none")
    if not isinstance(value, dict) or set(value) != set(parts):
        return _Odd(value, "ex_hint_part_norms")
    norms = {name: _read_number(v, arguments) for name, v in value.items()}
    if any(isinstance(v, _Odd) for v in norms.values()):
        return _Odd(value, "ex_hint_part_norms")
    params = [p for ps in parts.values() for p in ps]
    if any(p.grad is None for p in params):
        return _Odd(value, "ex_hint_grad_removed")
    after = {name: float(global_norm([p.grad for p in ps])) for name, ps in parts.items()}
    torch.optim.SGD(params, lr=_PART_RATE).step()
    return norms, after, [p.detach().to(torch.float64).clone() for p in params]


def _same_part_step(a, b) -> bool:
    (norms_a, after_a, weights_a), (norms_b, after_b, weights_b) = a, b
    return (all(_close(norms_a[k], norms_b[k]) and _close(after_a[k], after_b[k]) for k in norms_b)
            and _same_tensors(weights_a, weights_b))


def _show_part_step(value, other: object, lang: str) -> str:
    norms, after, _ = value
    return "; ".join(text("ex_part_norms", lang, part=text(f"part_{name}", lang), before=significant(norms[name], lang, 4),
                          after=significant(after[name], lang, 4)) for name in norms)


def _part_norms(parts) -> dict[str, float]:
    return {name: float(global_norm([p.grad for p in ps])) for name, ps in parts.items()}


def _parts_by_global_norm(parts, c):
    norms = _part_norms(parts)
    torch.nn.utils.clip_grad_norm_([p for ps in parts.values() for p in ps], c)
    return norms


def _parts_per_tensor(parts, c):
    norms = _part_norms(parts)
    for ps in parts.values():
        for p in ps:
            p.grad.mul_(clip_factor(float(p.grad.norm()), c))
    return norms


def _parts_not_in_place(parts, c):
    return _part_norms(parts)


def _parts_norm_after(parts, c):
    clip_grad_norm_per_layer_(parts, c)
    return _part_norms(parts)


def _parts_scaled_up(parts, c):
    norms = _part_norms(parts)
    for name, ps in parts.items():
        for p in ps:
            p.grad.mul_(c / norms[name])
    return norms


def check_clip_per_part(fn: Callable, lang: str) -> Verdict:
    """Lesson 02: ``fn(parts, max_norm)`` clips each part's gradients by that part's own norm, in place, and returns
    ``{part: its norm before clipping}``.

    ``parts`` maps "body" and "head" to the parameters of
    :func:`course_lib.models.toy.body_and_head`, whose gradients are computed.
    After ``fn`` the check takes one SGD step with the gradients ``fn`` left
    and compares the norms and the weights with
    :func:`course_lib.engine.clipping.clip_grad_norm_per_layer_`'s.  Mistakes
    recognised: one global factor for all parts, each tensor clipped by its
    own norm, gradients not changed in place, c/|g| also below the threshold,
    the norms returned after clipping instead of before.
    """
    rows = ((0, 0.25), (1, 1.0), (2, 0.5), (3, 0.25), (5, 0.1))

    def case(seed: int, c: float) -> _Case:
        return _Case(lambda: (_body_and_head_parts(seed), c),
                     lambda name, lang: f"{name}({{'body': list(model[0].parameters()), 'head': list(model[1].parameters())}}, "
                                        f"max_norm={c}), model = body_and_head(seed={seed})")

    mistakes = (
        (_parts_by_global_norm, "ex_hint_part_global"),
        (_parts_per_tensor, "ex_hint_part_tensor"),
        (_parts_not_in_place, "ex_hint_in_place"),
        (_parts_scaled_up, "ex_hint_scales_up"),
        (_parts_norm_after, "ex_hint_norm_before"),
    )
    return _check(fn, lang, "check_clip_per_part(clip_per_part_, LANG)", [case(*row) for row in rows],
                  lambda parts, c: {k: float(v) for k, v in clip_grad_norm_per_layer_(parts, c).items()}, mistakes,
                  read=_read_part_step, same=_same_part_step, show=_show_part_step)
# ------------------------------------------------------------------------------------------------ lesson 01: warm-up, run


GPT_EXERCISE_PEAK = 0.1  # lesson 01's exercise 4: the peak rate at which the tiny GPT gets stuck without warm-up
GPT_EXERCISE_LIMIT = 1.5  # a late loss above this is a stuck run: far from both outcomes the lesson measures


def check_warmup_run(fn: Callable, lang: str) -> Verdict:
    """Lesson 01: ``fn(seed)`` trains the tiny GPT at peak rate 0.1 with a warm-up of the reader's choice and returns its History.

    The check runs ``fn`` for every seed of ``GPT_SEEDS`` and asks that each
    run trains ``GPT_STEPS`` steps, reaches the peak rate 0.1 and ends with a
    late loss (:func:`~course_lib.lessons.lr_schedules.late_loss`) below 1.5:
    without warm-up every seed stays above it.  Mistakes recognised: no
    warm-up (the first update at the peak), a lowered peak or a warm-up as
    long as the run, another number of steps, something else than a History
    returned.
    """
    _check_fn(fn, "check_warmup_run(high_rate_run, LANG)")
    check_language(lang)
    name = getattr(fn, "__name__", type(fn).__name__)
    seeds = list(GPT_SEEDS)
    eta, limit = GPT_EXERCISE_PEAK, GPT_EXERCISE_LIMIT
    for right, seed in enumerate(seeds):
        call = f"{name}(seed={seed})"
        try:
            with torch.random.fork_rng(devices=[]), one_thread():  # the lesson's random state stays as it was
                history = fn(seed)
        except NotImplementedError:
            return _verdict(name, "not_done", text("ex_not_done", lang, name=name))
        except Exception as error:  # the reader's code may raise anything: report it, never a traceback
            detail = (str(error).strip().splitlines() or ["-"])[0][:200]
            message = text("ex_raised", lang, call=call, error=type(error).__name__, detail=detail, right=right, n=len(seeds))
            return _verdict(name, "raised", message)
        if not isinstance(history, History):
            problem, hint = text("ex_gpt_not_history", lang, got=shown(history)), text("ex_hint_gpt_history", lang)
        elif len(history.lr) != GPT_STEPS:
            problem, hint = text("ex_gpt_steps", lang, got=len(history.lr), steps=GPT_STEPS), text("ex_hint_gpt_steps", lang)
        elif not math.isclose(max(history.lr), eta, rel_tol=1e-9):
            problem = text("ex_gpt_peak", lang, got=significant(max(history.lr), lang, 4), eta=plain(eta, lang))
            hint = text("ex_hint_gpt_peak", lang)
        else:
            late = late_loss(history)
            if math.isfinite(late) and late < limit:
                continue
            problem = text("ex_gpt_loss", lang, got=number(late, lang, 2), limit=plain(limit, lang))
            warmup = next((t for t, rate in enumerate(history.lr) if math.isclose(rate, eta, rel_tol=1e-9)), 0)
            hint = (text("ex_hint_gpt_no_warmup", lang, first=significant(history.lr[0], lang, 4)) if warmup == 0
                    else text("ex_hint_gpt_short_warmup", lang, warmup=warmup))
        message = text("ex_gpt_wrong", lang, right=right, n=len(seeds), call=call, problem=problem)
        return _verdict(name, "wrong", message + "\n" + text("ex_hint", lang, hint=hint))
    return _verdict(name, "correct", text("ex_correct", lang, name=name, n=len(seeds)))
# ------------------------------------------------------------------------------------------------ lesson 03: frozen weights under AdamW


def frozen_drift(model: torch.nn.Module, batches: list, warm: int, set_to_none: bool) -> float:
    """Lesson 03's experiment: AdamW (lr 0.01, weight decay 0.1) over *all* of ``model``'s parameters; at step ``warm``
    the first layer ``model[0]`` is frozen with ``requires_grad_(False)``; returns how far its weight moved after that.

    Each step zeroes the gradients with ``zero_grad(set_to_none=set_to_none)``.
    A layer frozen before it ever had a gradient keeps ``.grad = None`` and
    AdamW skips it: 0.0 exactly.  One frozen after training keeps a zero
    gradient when ``set_to_none=False``, and AdamW still moves it (its first
    moment and the weight decay).
    """
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.1)
    frozen = model[0].weight.detach().clone()
    for step, (x, y) in enumerate(batches):
        if step == warm:
            model[0].requires_grad_(False)
            frozen = model[0].weight.detach().clone()
        optimizer.zero_grad(set_to_none=set_to_none)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return (model[0].weight.detach() - frozen).abs().max().item()


def _drift_setup() -> tuple[torch.nn.Module, list]:
    """A small float64 network and six batches, the same at every call; the global random state is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)).double()
        batches = [(torch.randn(16, 4, dtype=torch.float64), torch.randint(0, 2, (16,))) for _ in range(6)]
    return model, batches


def _drift_without(model, batches, warm, set_to_none, *, since_start=False, rebuild=False, always_none=False):
    """:func:`frozen_drift` with one typical mistake."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.1)
    start = model[0].weight.detach().clone()
    frozen = start
    for step, (x, y) in enumerate(batches):
        if step == warm:
            model[0].requires_grad_(False)
            frozen = model[0].weight.detach().clone()
            if rebuild:
                optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.01, weight_decay=0.1)
        optimizer.zero_grad(set_to_none=True if always_none else set_to_none)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return (model[0].weight.detach() - (start if since_start else frozen)).abs().max().item()


def check_frozen_drift(fn: Callable, lang: str) -> Verdict:
    """Lesson 03: ``fn(model, batches, warm, set_to_none)`` runs the experiment of :func:`frozen_drift` and returns the
    largest change of ``model[0].weight`` after it was frozen.

    Mistakes recognised: ``set_to_none`` not passed to ``zero_grad`` (or the
    optimizer rebuilt without the frozen layer), the change measured from
    the start instead of from the freezing.
    """
    rows = [(0, True), (0, False), (3, True), (3, False)]
    cases = [_Case(lambda warm=warm, none=none: (*_drift_setup(), warm, none),
                   lambda name, lang, warm=warm, none=none: f"{name}(model, batches, warm={warm}, set_to_none={none})")
             for warm, none in rows]
    mistakes = (
        (lambda m, b, w, s: _drift_without(m, b, w, s, always_none=True), "ex_hint_drift_none"),
        (lambda m, b, w, s: _drift_without(m, b, w, s, rebuild=True), "ex_hint_drift_none"),
        (lambda m, b, w, s: _drift_without(m, b, w, s, since_start=True), "ex_hint_drift_since_start"),
    )
    return _check(fn, lang, "check_frozen_drift(frozen_drift, LANG)", cases, frozen_drift, mistakes)
# ------------------------------------------------------------------------------------------------ lesson 04, second edition


def _adam_ratio(gradients, lr: float, optimizer=torch.optim.Adam, divide=lambda lr, n: lr * math.sqrt(n), last: bool = True) -> float:
    """The reference experiment (and, with other arguments, its typical mistakes): |ΔW|_F / (η √n) of Adam's last step."""
    w = torch.zeros_like(gradients[0], requires_grad=True)
    step = optimizer([w], lr=lr)
    start = w.detach().clone()
    for g in gradients:
        before = w.detach().clone()
        w.grad = g.clone()
        step.step()
    change = w.detach() - (before if last else start)
    return float(change.norm() / divide(lr, w.numel()))


def _gradient_runs() -> list[tuple[str, list, float]]:
    """The check's inputs: (description key, 20 gradients of an 8 × 8 matrix, η), drawn from a fixed seed."""
    g = torch.Generator().manual_seed(0)
    noise = [torch.randn(8, 8, generator=g, dtype=torch.float64) for _ in range(20)]
    steady = torch.randn(8, 8, generator=g, dtype=torch.float64)
    return [("ex_adam_constant", [torch.full((8, 8), 0.3, dtype=torch.float64)] * 20, 0.01),
            ("ex_adam_constant_large", [torch.full((8, 8), 300.0, dtype=torch.float64)] * 20, 0.01),
            ("ex_adam_noise", noise, 0.001),
            ("ex_adam_noise_large", [1000 * x for x in noise], 0.001),
            ("ex_adam_mixed", [steady + 2 * x for x in noise], 0.01)]


def check_adam_update_ratio(fn: Callable, lang: str) -> Verdict:
    """Lesson 04 (an experiment): ``fn(gradients, lr)`` runs Adam on a zero matrix, one step per gradient, and returns the
    last step's |ΔW|_F / (lr · √n), n the number of weights.

    Each run is a small experiment (20 Adam steps); the reference runs the
    same.  The cases show what the ratio measures: 1 for a gradient that never
    changes, whatever its size; lower for one whose signs change; the same
    for a gradient 1000 times larger.  Mistakes recognised: |ΔW|_F not divided,
    divided by lr · n, the change since the start instead of the last step,
    SGD instead of Adam.
    """
    cases = [_Case(lambda grads=grads, lr=lr: ([x.clone() for x in grads], lr),
                   lambda name, lang, key=key, lr=lr: text("ex_where", lang, call=f"{name}(gradients, lr={lr})", what=text(key, lang)))
             for key, grads, lr in _gradient_runs()]
    mistakes = (
        (lambda grads, lr: _adam_ratio(grads, lr, divide=lambda lr, n: 1.0), "ex_hint_adam_not_divided"),
        (lambda grads, lr: _adam_ratio(grads, lr, divide=lambda lr, n: lr * n), "ex_hint_adam_n"),
        (lambda grads, lr: _adam_ratio(grads, lr, last=False), "ex_hint_adam_since_start"),
        (lambda grads, lr: _adam_ratio(grads, lr, optimizer=torch.optim.SGD), "ex_hint_adam_sgd"),
    )
    return _check(fn, lang, "check_adam_update_ratio(adam_update_ratio, LANG)", cases, _adam_ratio, mistakes,
                  same=lambda a, b: math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-9))
# ------------------------------------------------------------------------------------------------ lesson 05: what learners get wrong


def _read_numbers(value: object, arguments: tuple) -> list[float] | _Odd:
    """A list of numbers, one per micro-batch (the first argument's length)."""
    if value is None:
        return _Odd(value, "ex_hint_none")
    if not isinstance(value, (list, tuple)) or len(value) != len(arguments[0]):
        return _Odd(value, "ex_hint_one_per_micro_batch")
    numbers_read = [_read_number(v, arguments) for v in value]
    if any(isinstance(v, _Odd) for v in numbers_read):
        return _Odd(value, "ex_hint_one_per_micro_batch")
    return numbers_read


def _same_numbers(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))


def _show_numbers(value: list[float], other: object, lang: str) -> str:
    return bracketed((significant(v, lang, 6) for v in value), lang)


def _micro_batch_losses(losses, masks, divide) -> list[float]:
    """Each micro-batch's summed real-token loss, divided as ``divide(sum of the mask, numel, totals)`` says."""
    sums = [sum(l * m for row_l, row_m in zip(ls, ms) for l, m in zip(row_l, row_m)) for ls, ms in zip(losses, masks)]
    counts = [sum(sum(row) for row in ms) for ms in masks]
    sizes = [sum(len(row) for row in ms) for ms in masks]
    return [s / divide(n, size, counts, sizes) for s, n, size in zip(sums, counts, sizes)]


def _token_mean_losses(losses, masks) -> list[float]:
    return _micro_batch_losses(losses, masks, lambda n, size, counts, sizes: sum(counts))


def check_accumulated_losses(fn: Callable, lang: str) -> Verdict:
    """Lesson 05: ``fn(losses, masks)`` returns, for each micro-batch, the loss to call ``backward()`` on, so that the
    accumulated gradient is the whole batch's: sum(token losses · mask) / (real tokens in all micro-batches).

    ``losses[i]`` holds micro-batch ``i``'s per-position losses (rows of
    sequences), ``masks[i]`` 1 for a real token and 0 for padding.
    Reference: the token mean of :func:`course_lib.lessons.training_mistakes.accumulation_normalisation`.
    Mistakes recognised: the mean of the micro-batches' means (each mean / k),
    padding counted, each micro-batch's mean not divided by k, the sum not
    divided at all.
    """
    rows = [
        ([[[2.0, 1.0, 4.0, 3.0], [1.0, 5.0, 0.0, 0.0]], [[3.0, 0.0, 0.0, 0.0]]],
         [[[1, 1, 1, 1], [1, 1, 0, 0]], [[1, 0, 0, 0]]]),
        ([[[1.5, 2.5, 0.5]], [[4.0, 2.0, 6.0]], [[3.0, 9.0, 1.0]]], [[[1, 1, 1]], [[1, 1, 0]], [[1, 0, 0]]]),
        ([[[0.5, 1.0], [2.0, 4.0]], [[3.0, 1.0], [2.0, 2.0]]], [[[1, 1], [1, 1]], [[1, 1], [1, 1]]]),
        ([[[6.0, 2.0, 2.0, 2.0, 1.0, 1.0]], [[1.0, 3.0, 2.0, 8.0, 4.0, 7.0]]], [[[1, 1, 1, 1, 1, 1]], [[1, 0, 0, 0, 0, 0]]]),
    ]
    k = lambda counts: len(counts)
    mistakes = (
        (lambda ls, ms: _micro_batch_losses(ls, ms, lambda n, size, counts, sizes: n * k(counts)), "ex_hint_mean_of_means"),
        (lambda ls, ms: _micro_batch_losses(ls, ms, lambda n, size, counts, sizes: sum(sizes)), "ex_hint_padding_counted"),
        (lambda ls, ms: _micro_batch_losses(ls, ms, lambda n, size, counts, sizes: size * k(counts)), "ex_hint_padding_counted"),
        (lambda ls, ms: _micro_batch_losses(ls, ms, lambda n, size, counts, sizes: n), "ex_hint_means_not_divided"),
        (lambda ls, ms: _micro_batch_losses(ls, ms, lambda n, size, counts, sizes: 1), "ex_hint_sum_not_divided"),
    )
    make = _call("losses", "masks")
    return _check(fn, lang, "check_accumulated_losses(micro_batch_losses, LANG)", _cases(make, rows), _token_mean_losses,
                  mistakes, read=_read_numbers, same=_same_numbers, show=_show_numbers)


def _read_flags(value: object, arguments: tuple) -> list[bool] | _Odd:
    """A list of k booleans (k = the argument)."""
    if value is None:
        return _Odd(value, "ex_hint_none")
    if not isinstance(value, (list, tuple)) or len(value) != arguments[0] or not all(isinstance(v, bool) for v in value):
        return _Odd(value, "ex_hint_flags")
    return list(value)


def _show_flags(value: list[bool], other: object, lang: str) -> str:
    return bracketed((repr(v) for v in value), lang)


def check_no_sync_flags(fn: Callable, lang: str) -> Verdict:
    """Lesson 05: ``fn(num_micro_batches)`` returns, for each micro-batch of one optimizer step, whether its forward and
    backward run under ``model.no_sync()``: every one but the last (DDP then all-reduces once, in the last backward).

    Mistakes recognised: no ``no_sync`` at all (an all-reduce per
    micro-batch), ``no_sync`` on every micro-batch (never averaged), the
    all-reduce in the first micro-batch instead of the last.
    """
    rows = [(4,), (2,), (1,), (8,)]
    mistakes = (
        (lambda k: [False] * k, "ex_hint_sync_every"),
        (lambda k: [True] * k, "ex_hint_never_sync"),
        (lambda k: [i > 0 for i in range(k)], "ex_hint_sync_first"),
    )
    make = _call("num_micro_batches")
    return _check(fn, lang, "check_no_sync_flags(runs_under_no_sync, LANG)", _cases(make, rows), lambda k: [i < k - 1 for i in range(k)],
                  mistakes, read=_read_flags, same=lambda a, b: a == b, show=_show_flags)


def check_optimizer_steps(fn: Callable, lang: str) -> Verdict:
    """Lesson 05: ``fn(num_samples, micro_batch, accumulate, world_size)``, the optimizer steps of one pass over the data:
    samples / (micro_batch · accumulate · world_size), the length a learning-rate schedule must be declared with.

    Mistakes recognised: micro-batches counted as steps (samples /
    micro_batch), the processes forgotten, the accumulation forgotten.
    """
    rows = [(64000, 8, 4, 2), (12000, 12, 5, 1), (48000, 16, 1, 4), (491520, 12, 5, 8), (1024, 4, 2, 2)]
    mistakes = (
        (lambda n, b, k, p: n / b, "ex_hint_micro_batches_as_steps"),
        (lambda n, b, k, p: n / (b * k), "ex_hint_forgot_processes"),
        (lambda n, b, k, p: n / (b * p), "ex_hint_forgot_accumulation"),
    )
    make = _call("num_samples", "micro_batch", "accumulate", "world_size")
    return _check(fn, lang, "check_optimizer_steps(optimizer_steps, LANG)", _cases(make, rows), lambda n, b, k, p: n // (b * k * p),
                  mistakes, show=_show_count)


_FP16_LR = 0.1


def _fp16_case(seed: int, scale: float, gain: float):
    """(model, optimizer, scaler, loss): a float64 network with its initial weights kept, SGD, a GradScaler, a loss × gain."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()
        x, y = torch.randn(10, 6, dtype=torch.float64), torch.randn(10, 3, dtype=torch.float64)
    model._course_initial = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=_FP16_LR)
    scaler = torch.amp.GradScaler("cpu", init_scale=scale, growth_interval=1)
    loss = gain * torch.nn.functional.mse_loss(model(x), y)
    return model, optimizer, scaler, loss


def _fp16_step(model, optimizer, scaler, loss, max_norm, *, clip_first=False, clip=True, update=True):
    """The right fp16 step, or (with other arguments) a typical mistake."""
    scaler.scale(loss).backward()
    if not clip_first:
        scaler.unscale_(optimizer)
    if clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    scaler.step(optimizer)
    if update:
        scaler.update()


def _read_fp16_step(value: object, arguments: tuple):
    """The update's norm |ΔW| and the scale after the step (what the next step will use)."""
    model, _, scaler = arguments[:3]
    change = math.sqrt(sum(float((p.detach() - w).pow(2).sum()) for p, w in zip(model.parameters(), model._course_initial)))
    return change, float(scaler.get_scale())


def _show_fp16_step(value, other: object, lang: str) -> str:
    change, scale = value
    return text("ex_fp16_step", lang, change=significant(change, lang, 4), scale=count(int(scale), lang))


def check_fp16_step(fn: Callable, lang: str) -> Verdict:
    """Lesson 05: ``fn(model, optimizer, scaler, loss, max_norm)`` takes one fp16-style step with a ``GradScaler``:
    backward of the scaled loss, ``scaler.unscale_(optimizer)``, ``clip_grad_norm_``, ``scaler.step``, ``scaler.update``.

    Each case is a small float64 network with SGD (lr 0.1) and a scaler
    (growth every step); the check compares the update's norm and the
    scale after the step with the right order's.  Mistakes recognised:
    clipping before ``unscale_`` (the scaled gradients clipped), no clipping,
    no ``scaler.update()``.
    """
    rows = [(0, 2.0**16, 10.0, 1.0), (1, 2.0**10, 1.0, 0.5), (2, 2.0**16, 0.01, 1.0), (3, 2.0**8, 30.0, 2.0)]
    cases = [_Case(lambda seed=seed, scale=scale, gain=gain, c=c: (*_fp16_case(seed, scale, gain), c),
                   lambda name, lang, seed=seed, scale=scale, c=c: text(
                       "ex_where", lang, call=f"{name}(model, optimizer, scaler, loss, max_norm={c})",
                       what=text("ex_fp16_case", lang, seed=seed, scale=count(int(scale), lang))))
             for seed, scale, gain, c in rows]
    mistakes = (
        (lambda *a: _fp16_step(*a, clip_first=True), "ex_hint_clip_scaled"),
        (lambda *a: _fp16_step(*a, clip=False), "ex_hint_no_clip"),
        (lambda *a: _fp16_step(*a, update=False), "ex_hint_scaler_update"),
    )
    same = lambda a, b: math.isclose(a[0], b[0], rel_tol=1e-6, abs_tol=1e-15) and a[1] == b[1]
    return _check(fn, lang, "check_fp16_step(fp16_step, LANG)", cases, _fp16_step, mistakes,
                  read=_read_fp16_step, same=same, show=_show_fp16_step)


def check_mfu_peak(fn: Callable, lang: str) -> Verdict:
    """Lesson 05: ``fn(tokens_per_s, flops_per_token, gpu)``, MFU as a fraction against the dense bf16 peak of ``gpu``
    (a key of :data:`course_lib.engine.timing.PEAK_FLOPS`).

    Mistakes recognised: nanoGPT's A100 constant (312 TFLOP/s) on every GPU,
    a peak "with sparsity" (twice the dense one), a percentage.
    """
    from course_lib.engine.timing import PEAK_FLOPS
    from course_lib.lessons.training_mistakes import NANOGPT_PEAK, SPARSITY

    rows = [(445407.0, 854654976.0, "H100 SXM"), (300000.0, 854654976.0, "H200"), (150000.0, 854654976.0, "A100"),
            (40000.0, 3.0e8, "L4"), (200000.0, 1.2e9, "H100 PCIe")]
    reference = lambda t, f, gpu: t * f / PEAK_FLOPS[gpu]["bf16"]
    mistakes = (
        (lambda t, f, gpu: t * f / NANOGPT_PEAK, "ex_hint_a100_peak"),
        (lambda t, f, gpu: t * f / (SPARSITY * PEAK_FLOPS[gpu]["bf16"]), "ex_hint_sparse_peak"),
        (lambda t, f, gpu: 100 * reference(t, f, gpu), "ex_hint_percent"),
    )
    make = _call("tokens_per_s", "flops_per_token", "gpu")
    return _check(fn, lang, "check_mfu_peak(mfu_on, LANG)", _cases(make, rows), reference, mistakes)
