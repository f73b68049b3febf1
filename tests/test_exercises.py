"""The lessons' exercises: each check passes the reference solution, fails the typical wrong answers with a
useful message in both languages, and the student edition holds no solution."""

import ast
import importlib.util
import inspect
import math
import re
import sys
from pathlib import Path

import jupytext
import pytest
import torch

from course_lib.show import exercises
from course_lib.i18n import LANGUAGES, text

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted(p.stem for p in (ROOT / "notebooks" / "en").glob("*.md"))


def _tool():
    spec = importlib.util.spec_from_file_location("student_edition", ROOT / "book" / "tools" / "student_edition.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["student_edition"] = module
    spec.loader.exec_module(module)
    return module


student_edition = _tool()


def exercise_cells(notebook) -> list[tuple]:
    """(exercise cell, the check cell after it) for every exercise of a notebook, solved or not."""
    cells = [c for c in notebook.cells if c.cell_type == "code"]
    return [(cell, cells[i + 1]) for i, cell in enumerate(cells) if cell.source.startswith(student_edition.EXERCISE)]


def defined(source: str) -> str:
    return re.search(r"^def (\w+)\(", source, re.M).group(1)


def run_cell(source: str, namespace: dict):
    """Execute a cell; return the value of its last line when that is an expression (as a notebook shows it)."""
    *body, last = source.rstrip().splitlines()
    exec("\n".join(body), namespace)
    try:
        return eval(last, namespace)
    except SyntaxError:
        exec(last, namespace)


EXERCISES = [(lesson, cell, check) for lesson in LESSONS
             for cell, check in exercise_cells(jupytext.read(ROOT / "notebooks" / "en" / f"{lesson}.md"))]


def test_every_lesson_has_at_least_two_exercises_in_each_language():
    for lesson in LESSONS:
        counts = {lang: len(exercise_cells(jupytext.read(ROOT / "notebooks" / lang / f"{lesson}.md"))) for lang in LANGUAGES}
        assert counts["vi"] == counts["en"] >= 2, (lesson, counts)


@pytest.mark.parametrize("lesson, cell, check", EXERCISES, ids=lambda v: v if isinstance(v, str) else "")
def test_exercise_cell_is_marked_folded_and_followed_by_its_check(lesson, cell, check):
    assert student_edition.is_exercise(cell) and student_edition.is_check(check)
    assert cell.metadata["tags"] == ["hide-input"], "the book folds the solution's input and keeps its output"
    assert set(cell.metadata["mystnb"]) == {"code_prompt_show", "code_prompt_hide"}
    name = defined(cell.source)
    assert re.fullmatch(rf"from course_lib\.show\.exercises import (check_\w+)\n\n\1\({name}, LANG\)", check.source), check.source


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("lesson, cell, check", EXERCISES, ids=lambda v: v if isinstance(v, str) else "")
def test_reference_solution_passes(lesson, cell, check, lang, capsys):
    namespace = {**imports_before(lesson, cell), "LANG": lang}
    run_cell(cell.source, namespace)
    verdict = run_cell(check.source, namespace)
    assert isinstance(verdict, exercises.Verdict) and verdict and verdict.status == "correct"
    assert capsys.readouterr().out == verdict.message + "\n"
    before, after = text("ex_correct", lang, name=defined(cell.source), n="\0").split("\0")
    assert verdict.message.startswith(before) and verdict.message.endswith(after)
    assert int(verdict.message[len(before):-len(after)]) >= 2, "a check tries several inputs"


def test_checks_leave_the_random_state_alone():
    """A check builds its models without drawing from the global generator: the lesson's later numbers stay seeded."""
    before = torch.get_rng_state()
    exercises.check_trainable_share(lambda model: 0.5, "en")
    exercises.check_frozen_flop_share(lambda model: 0.5, "en")
    exercises.check_optimizer_groups(lambda model, weight_decay: [], "en")
    assert torch.equal(before, torch.get_rng_state())


def test_hard_restarts_reference_matches_transformers():
    from transformers import get_cosine_with_hard_restarts_schedule_with_warmup

    for steps, cycles in ((100, 1), (100, 2), (90, 3), (7, 2)):
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        scheduler = get_cosine_with_hard_restarts_schedule_with_warmup(optimizer, 0, steps, cycles)
        for t in range(steps + 3):
            assert math.isclose(exercises.hard_restarts_factor(t, steps, cycles), scheduler.lr_lambdas[0](t), abs_tol=1e-12)


# Typical wrong answers: (check, wrong function, the failing call, expected, returned, key of the hint); a value
# written differently in each language is given as (key of the course string, its fields).


def warmup_one_step_ahead(t, num_warmup_steps, num_training_steps):
    if t < num_warmup_steps:
        return (t + 1) / num_warmup_steps
    return 0.5 * (1 + math.cos(math.pi * (t - num_warmup_steps) / (num_training_steps - num_warmup_steps)))


def cosine_clock_not_restarted(t, num_warmup_steps, num_training_steps):
    return t / num_warmup_steps if t < num_warmup_steps else 0.5 * (1 + math.cos(math.pi * t / num_training_steps))


def cycles_with_pi(t, num_steps, num_cycles):
    return 0.5 * (1 + math.cos(math.pi * num_cycles * t / num_steps))


def smooth_instead_of_restarts(t, num_steps, num_cycles):
    return 0.5 * (1 + math.cos(2 * math.pi * num_cycles * t / num_steps))


def factor_scales_up(norm, max_norm):
    return max_norm / norm


def clipped_norm_not_factor(norm, max_norm):
    return min(norm, max_norm)


def clip_each_tensor(grads, max_norm):
    return [g * max_norm / max(float(g.norm()), max_norm) for g in grads]


def clip_by_sum_of_norms(grads, max_norm):
    norm = sum(float(g.norm()) for g in grads)
    return [g * max_norm / max(norm, max_norm) for g in grads]


def ratio_of_frozen(model):
    return sum(p.numel() for p in model.parameters() if not p.requires_grad) / sum(p.numel() for p in model.parameters())


def ratio_counting_frozen_too(model):
    return sum(p.numel() for p in model.parameters()) / sum(p.numel() for p in model.parameters())


def ratio_of_tensors(model):
    return sum(p.requires_grad for p in model.parameters()) / len(list(model.parameters()))


def groups_with_frozen(model, weight_decay):
    return [{"params": [p for p in model.parameters() if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in model.parameters() if p.ndim < 2], "weight_decay": 0.0}]


def groups_decay_everything(model, weight_decay):
    return [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": weight_decay}]


def count_untied(vocab_size, block_size, n_layer, n_embd):
    d = n_embd
    return 2 * vocab_size * d + block_size * d + n_layer * (12 * d * d + 13 * d) + 2 * d


def share_of_distinct_tokens(tokens, S):
    return len(set(tokens) & S) / len(set(tokens))


def flops_without_the_third(model):
    matrices = [p for name, p in model.named_parameters() if p.ndim == 2 and not name.endswith("wpe.weight")]
    return sum(p.numel() for p in matrices if not p.requires_grad) / sum(p.numel() for p in matrices)


def attention_per_sequence(n_layer, n_embd, vocab_size, context):
    return 6 * (12 * n_layer * n_embd**2 + vocab_size * n_embd) + 12 * n_layer * n_embd * context**2


def mfu_in_percent(tokens_per_step, ms_per_step, flops_per_token, peak_flops):
    return 100 * tokens_per_step / (ms_per_step / 1000) * flops_per_token / peak_flops


def mfu_with_milliseconds(tokens_per_step, ms_per_step, flops_per_token, peak_flops):
    return tokens_per_step / ms_per_step * flops_per_token / peak_flops


RECIPE_MODEL = "(model), "
WRONG = [
    pytest.param(exercises.check_warmup_cosine, warmup_one_step_ahead, "(t=0, num_warmup_steps=4, num_training_steps=20)",
                 "0", "0.25", "ex_hint_warmup_ahead", id="warmup-off-by-one"),
    pytest.param(exercises.check_warmup_cosine, cosine_clock_not_restarted, "(t=4, num_warmup_steps=4, num_training_steps=20)",
                 "1", "0.904508", "ex_hint_clock", id="cosine-clock-not-restarted"),
    pytest.param(exercises.check_cosine_cycles, cycles_with_pi, "(t=25, num_steps=100, num_cycles=0.5)",
                 "0.853553", "0.96194", "ex_hint_cycles_pi", id="cycles-pi-not-2pi"),
    pytest.param(exercises.check_hard_restarts, smooth_instead_of_restarts, "(t=50, num_steps=100, num_cycles=1)",
                 "0.5", "0", "ex_hint_smooth_cycles", id="restarts-smooth"),
    pytest.param(exercises.check_clip_coefficient, factor_scales_up, "(norm=0.5, max_norm=1.0)", "1", "2",
                 "ex_hint_scales_up", id="clip-c-over-g-below-threshold"),
    pytest.param(exercises.check_clip_coefficient, clipped_norm_not_factor, "(norm=3.0, max_norm=1.0)", "0.333333", "1",
                 "ex_hint_clipped_norm", id="clip-norm-not-factor"),
    pytest.param(exercises.check_clip_by_global_norm, clip_each_tensor, "(grads=[tensor([3.0, 0.0]), tensor([[0.0, 4.0]])], max_norm=1.0)",
                 "[[0.6, 0], [[0, 0.8]]]", "[[1, 0], [[0, 1]]]", "ex_hint_per_tensor", id="clip-per-tensor"),
    pytest.param(exercises.check_clip_by_global_norm, clip_by_sum_of_norms, "max_norm=1.0)",
                 "[[0.6, 0], [[0, 0.8]]]", "[[0.4286, 0], [[0, 0.5714]]]", "ex_hint_sum_of_norms", id="clip-sum-of-norms"),
    pytest.param(exercises.check_trainable_share, ratio_of_frozen, RECIPE_MODEL, "0.507476", "0.492524",
                 "ex_hint_counted_frozen", id="R-frozen-share"),
    pytest.param(exercises.check_trainable_share, ratio_counting_frozen_too, RECIPE_MODEL, "0.507476", "1",
                 "ex_hint_counted_all", id="R-counting-frozen"),
    pytest.param(exercises.check_trainable_share, ratio_of_tensors, RECIPE_MODEL, "0.507476", "0.411765",
                 "ex_hint_tensors", id="R-tensors"),
    pytest.param(exercises.check_optimizer_groups, groups_with_frozen, "(model, weight_decay=0.01)",
                 ("ex_group_none", {"name": "embeddings.word_embeddings.weight"}),
                 ("ex_group_decay", {"name": "embeddings.word_embeddings.weight", "decay": "0.01"}),
                 "ex_hint_frozen_in_groups", id="groups-frozen-decayed"),
    pytest.param(exercises.check_optimizer_groups, groups_decay_everything, "(model, weight_decay=0.01)",
                 ("ex_group_decay", {"name": "encoder.layer.0.intermediate.bias", "decay": "0"}),
                 ("ex_group_decay", {"name": "encoder.layer.0.intermediate.bias", "decay": "0.01"}),
                 "ex_hint_decay_all", id="groups-biases-decayed"),
    pytest.param(exercises.check_parameter_count, count_untied, "(vocab_size=50257, block_size=1024, n_layer=12, n_embd=768)",
                 "124,439,808", "163,037,184", "ex_hint_untied", id="parameters-untied"),
    pytest.param(exercises.check_token_share, share_of_distinct_tokens, "(tokens=[5, 7, 5, 9, 2, 5], S={5, 9})",
                 "0.666667", "0.5", "ex_hint_distinct", id="p-distinct-tokens"),
    pytest.param(exercises.check_frozen_flop_share, flops_without_the_third, RECIPE_MODEL, "0.321429", "0.857143",
                 "ex_hint_all_flops", id="flops-no-third"),
    pytest.param(exercises.check_flops_per_token, attention_per_sequence, "(n_layer=12, n_embd=768, vocab_size=50304, context=1024)",
                 "8.54655e+08", "1.16706e+11", "ex_hint_per_sequence", id="flops-attention-squared"),
    pytest.param(exercises.check_mfu, mfu_in_percent, "(tokens_per_step=16384, ms_per_step=30.0, flops_per_token=8.55e+08, "
                 "peak_flops=9.89e+14)", "0.472138", "47.2138", "ex_hint_percent", id="mfu-percent"),
    pytest.param(exercises.check_mfu, mfu_with_milliseconds, "ms_per_step=30.0", "0.472138", "0.000472138",
                 "ex_hint_milliseconds", id="mfu-milliseconds"),
]


def written(value: str, lang: str) -> str:
    """A result as the check writes it in ``lang``: Vietnamese has a decimal comma, '; ' between list items,
    '.' between thousands and 8,5·10⁸ for 8.5e+08 (the arguments stay Python: the reader types them)."""
    if lang != "vi":
        return value
    if re.fullmatch(r"\d{1,3}(,\d{3})+", value):
        return value.replace(",", ".")
    value = value.replace(", ", "; ").replace(".", ",")
    return re.sub(r"(\d)e([+-])(\d+)", lambda m: m.group(1) + "·10" + ("⁻" if m.group(2) == "-" else "")
                  + str(int(m.group(3))).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")), value)


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("check, wrong, call, expected, got, hint", WRONG)
def test_typical_wrong_answer_fails_with_input_expected_got_and_hint(check, wrong, call, expected, got, hint, lang, capsys):
    verdict = check(wrong, lang)
    assert not verdict and verdict.status == "wrong"
    message = verdict.message
    assert capsys.readouterr().out == message + "\n", "the check prints its verdict"
    assert message.startswith(text("ex_wrong", lang, call="", got="", expected="", right=0, n=0).split(":")[0])
    assert "Traceback" not in message
    line = next(line for line in message.splitlines() if call in line)
    assert line.strip().startswith(wrong.__name__), "the failing call names the reader's function"
    result = message.splitlines()[message.splitlines().index(line) + 1]
    got, expected = (text(v[0], lang, **{k: written(x, lang) if re.fullmatch(r"[\d.e+-]+", x) else x for k, x in v[1].items()})
                     if isinstance(v, tuple) else written(v, lang) for v in (got, expected))
    assert result in text("ex_wrong", lang, call=call, got=got, expected=expected, right=0, n=0).splitlines(), result
    assert text("ex_hint", lang, hint=text(hint, lang)) in message


ALL_CHECKS = [getattr(exercises, name) for name in exercises.__all__ if name.startswith("check_")]


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda c: c.__name__)
def test_a_function_that_raises_is_reported_not_propagated(check, lang):
    def broken(*arguments):
        raise ValueError("the reader's own message")

    verdict = check(broken, lang)
    assert not verdict and verdict.status == "raised"
    assert "ValueError: the reader's own message" in verdict.message
    assert "broken(" in verdict.message and "Traceback" not in verdict.message


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda c: c.__name__)
def test_placeholder_is_reported_as_not_answered(check, lang):
    def my_answer(*arguments):
        raise NotImplementedError

    verdict = check(my_answer, lang)
    assert not verdict and verdict.status == "not_done"
    assert verdict.message == text("ex_not_done", lang, name="my_answer")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_odd_return_values_get_a_hint(lang):
    forgot_return = exercises.check_clip_coefficient(lambda norm, max_norm: None, lang)
    assert not forgot_return and "None" in forgot_return.message
    assert text("ex_hint_none", lang) in forgot_return.message
    a_string = exercises.check_cosine_cycles(lambda t, num_steps, num_cycles: "0.5", lang)
    assert "'0.5' (str)" in a_string.message and text("ex_hint_not_number", lang) in a_string.message
    not_groups = exercises.check_optimizer_groups(lambda model, weight_decay: list(model.parameters()), lang)
    assert text("ex_hint_group_shape", lang) in not_groups.message
    division = exercises.check_clip_coefficient(lambda norm, max_norm: min(1.0, max_norm / norm), lang)
    assert division.status == "raised" and "ZeroDivisionError" in division.message
    assert text("ex_hint_zero_norm", lang) in division.message


@pytest.mark.parametrize("lang", LANGUAGES)
def test_values_that_cannot_be_read_are_wrong_answers_not_crashes(lang):
    too_large = exercises.check_cosine_cycles(lambda t, num_steps, num_cycles: 10**400, lang)  # float() of it overflows
    assert too_large.status == "wrong" and "(int)" in too_large.message
    assert exercises.check_parameter_count(lambda v, t, n, d: math.inf, lang).status == "wrong"
    text_decay = exercises.check_optimizer_groups(lambda model, wd: [{"params": list(model.parameters()), "weight_decay": "abc"}], lang)
    assert text_decay.status == "wrong"


def test_answers_in_other_forms_pass():
    """A tensor for a number, torch's clip_grad_norm_ factor c / (|g| + 1e-6), gradients changed in place."""
    assert exercises.check_clip_coefficient(lambda norm, max_norm: torch.tensor(min(1.0, max_norm / (norm + 1e-6))), "en")

    def in_place(grads, max_norm):
        params = []
        for g in grads:
            p = torch.nn.Parameter(torch.zeros_like(g))
            p.grad = g
            params.append(p)
        torch.nn.utils.clip_grad_norm_(params, max_norm)
        return grads

    assert exercises.check_clip_by_global_norm(in_place, "en")


# The student edition (book/tools/student_edition.py).


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    written = student_edition.write_edition(out)
    assert len(written) == 2 * 2 * len(LESSONS)
    return out


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("lesson", LESSONS)
def test_student_edition_has_no_solution(edition, lesson, lang, capsys):
    original = jupytext.read(ROOT / "notebooks" / lang / f"{lesson}.ipynb")
    student = jupytext.read(edition / "notebooks" / lang / f"{lesson}.ipynb")
    assert [(c.cell_type, c.source) for c in jupytext.read(edition / "notebooks" / lang / f"{lesson}.md").cells] == \
        [(c.cell_type, c.source) for c in student.cells], "the .md and the .ipynb of the edition agree"
    everything = "\n".join(c.source for c in student.cells)
    assert student_edition.BEGIN not in everything and student_edition.END not in everything
    assert not any("solution" in c.metadata.get("tags", []) for c in student.cells)
    solved = [c for c in original.cells if "solution" in c.metadata.get("tags", [])]
    assert solved, "each lesson has a sentence pointing at the folded solutions, tagged solution"
    for cell in solved:
        assert cell.source not in everything
    pairs, originals = exercise_cells(student), exercise_cells(original)
    assert len(pairs) == len(originals) >= 2
    for (cell, check), (solution, _) in zip(pairs, originals):
        body = solution.source.split(student_edition.BEGIN)[1].split(student_edition.END)[0]
        for line in filter(str.strip, body.splitlines()):
            assert line.strip() not in cell.source, f"solution line left in the student edition: {line!r}"
        assert f"raise NotImplementedError  # {text('ex_placeholder', lang)}" in cell.source
        assert cell.outputs == [] and check.outputs == [] and cell.execution_count is None
        assert "tags" not in cell.metadata and "mystnb" not in cell.metadata, "the student sees the cell unfolded"
        namespace = {"LANG": lang}
        exec(cell.source, namespace)
        function = namespace[defined(cell.source)]
        with pytest.raises(NotImplementedError):
            function(*[None] * len(inspect.signature(function).parameters))
        capsys.readouterr()
        verdict = run_cell(check.source, namespace)
        assert verdict.status == "not_done"
        assert capsys.readouterr().out == text("ex_not_done", lang, name=function.__name__) + "\n"
    kept = [c for c in original.cells if "solution" not in c.metadata.get("tags", [])]
    for before, after in zip(kept, student.cells):
        if after.cell_type == "code" and not (student_edition.is_check(after) or after.source.startswith(student_edition.EXERCISE)):
            assert after.outputs == before.outputs, "the lesson's other outputs are kept"


def test_strip_solution_keeps_the_indentation_and_refuses_unbalanced_markers():
    source = "# ✏️ EXERCISE 1\ndef f(x):\n    # BEGIN SOLUTION\n    y = x + 1\n    return y\n    # END SOLUTION\n"
    assert student_edition.strip_solution(source, "en") == (
        "# ✏️ EXERCISE 1\ndef f(x):\n    raise NotImplementedError  # " + text("ex_placeholder", "en"))
    for broken in ("# BEGIN SOLUTION\nx = 1\n", "x = 1\n# END SOLUTION\n", "# BEGIN SOLUTION\n# BEGIN SOLUTION\n"):
        with pytest.raises(ValueError, match="SOLUTION"):
            student_edition.strip_solution(broken, "vi")


# Lesson 02, second edition: per-part clipping, checked by the SGD step it leads to.


def _norms(parts):
    return {name: torch.sqrt(sum((p.grad**2).sum() for p in params)).item() for name, params in parts.items()}


def parts_by_global_norm(parts, max_norm):
    norms = _norms(parts)
    torch.nn.utils.clip_grad_norm_([p for params in parts.values() for p in params], max_norm)
    return norms


def parts_tensor_by_tensor(parts, max_norm):
    norms = _norms(parts)
    for params in parts.values():
        for p in params:
            torch.nn.utils.clip_grad_norm_([p], max_norm)
    return norms


def parts_not_in_place(parts, max_norm):
    norms = _norms(parts)
    for name, params in parts.items():
        for p in params:
            p.grad * (max_norm / max(norms[name], max_norm))
    return norms


def parts_scaled_up(parts, max_norm):
    norms = _norms(parts)
    for name, params in parts.items():
        for p in params:
            p.grad.mul_(max_norm / norms[name])
    return norms


def parts_norms_after(parts, max_norm):
    for params in parts.values():
        torch.nn.utils.clip_grad_norm_(params, max_norm)
    return _norms(parts)


PART_CALL = "max_norm=0.25), model = body_and_head(seed=0)"


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("wrong, head_after, body_after, head_before, hint", [
    pytest.param(parts_by_global_norm, "0.2434", "0.05688", "0.7434", "ex_hint_part_global", id="one-global-factor"),
    pytest.param(parts_tensor_by_tensor, "0.2582", "0.1737", "0.7434", "ex_hint_part_tensor", id="tensor-by-tensor"),
    pytest.param(parts_not_in_place, "0.7434", "0.1737", "0.7434", "ex_hint_in_place", id="not-in-place"),
    pytest.param(parts_scaled_up, "0.25", "0.25", "0.7434", "ex_hint_scales_up", id="scaled-up-below-c"),
    pytest.param(parts_norms_after, "0.25", "0.1737", "0.25", "ex_hint_norm_before", id="norms-after-clipping"),
])
def test_per_part_clipping_mistakes_fail_with_the_step_they_lead_to(wrong, head_after, body_after, head_before, hint, lang):
    verdict = exercises.check_clip_per_part(wrong, lang)
    assert verdict.status == "wrong"
    lines = verdict.message.splitlines()
    call = next(i for i, line in enumerate(lines) if PART_CALL in line)
    assert lines[call].strip().startswith(wrong.__name__ + "({'body': list(model[0].parameters())")
    got = text("ex_part_norms", lang, part=text("part_head", lang), before=written(head_before, lang), after=written(head_after, lang))
    body = text("ex_part_norms", lang, part=text("part_body", lang), before=written("0.1737", lang), after=written(body_after, lang))
    right = text("ex_part_norms", lang, part=text("part_head", lang), before=written("0.7434", lang), after=written("0.25", lang))
    assert f"{body}; {got}" in lines[call + 1] and lines[call + 1].rstrip(".").endswith(right)
    assert text("ex_hint", lang, hint=text(hint, lang)) in verdict.message


def test_per_part_clipping_accepts_torch_once_per_part_and_tensor_norms():
    """clip_grad_norm_ once per part (returning 0-d tensors) is a right answer; the check draws no global random number."""
    before = torch.get_rng_state()
    per_part = lambda parts, max_norm: {name: torch.nn.utils.clip_grad_norm_(params, max_norm) for name, params in parts.items()}
    assert exercises.check_clip_per_part(per_part, "en")
    assert torch.equal(before, torch.get_rng_state())


def test_per_part_clipping_needs_the_parts_norms_as_a_dict():
    as_list = exercises.check_clip_per_part(lambda parts, max_norm: list(parts_norms_after(parts, max_norm).values()), "vi")
    assert not as_list and text("ex_hint_part_norms", "vi") in as_list.message
    removed = exercises.check_clip_per_part(
        lambda parts, max_norm: [setattr(p, "grad", None) for ps in parts.values() for p in ps] and _norms_zero(parts), "en")
    assert not removed and text("ex_hint_grad_removed", "en") in removed.message


def _norms_zero(parts):
    return {name: 0.0 for name in parts}
# Lesson 01, second edition: exercise 4 runs the tiny GPT at peak rate 0.1.


def _high_rate_run(eta_max=0.1, warmup=40, steps=None, seed_offset=0):
    """A reader's high_rate_run(seed): the tiny GPT under AdamW with the given peak, warm-up and length."""
    from course_lib.engine.schedules import ScheduledLR, cosine_with_warmup
    from course_lib.engine.training import train
    from course_lib.lessons.lr_schedules import GPT_STEPS, phrase_batches, tiny_gpt
    from course_lib.models.gpt import lm_loss

    steps = steps or GPT_STEPS

    def high_rate_run(seed):
        model = tiny_gpt(seed + seed_offset)
        optimizer = torch.optim.AdamW(model.parameters(), lr=eta_max)
        scheduler = ScheduledLR(optimizer, cosine_with_warmup(warmup, steps))
        return train(model, optimizer, phrase_batches(seed), lm_loss, steps, scheduler=scheduler, precision="fp64", log_every=steps)

    return high_rate_run


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("wrong, hint, fields", [
    pytest.param(dict(warmup=0), "ex_hint_gpt_no_warmup", {"first": "0,1"}, id="no-warmup"),
    pytest.param(dict(warmup=5), "ex_hint_gpt_short_warmup", {"warmup": 5}, id="warmup-too-short"),
    pytest.param(dict(eta_max=0.01, warmup=0), "ex_hint_gpt_peak", {}, id="peak-lowered"),
    pytest.param(dict(warmup=120), "ex_hint_gpt_peak", {}, id="warmup-as-long-as-the-run"),
    pytest.param(dict(steps=60, warmup=10), "ex_hint_gpt_steps", {}, id="other-length"),
])
def test_warmup_run_check_fails_typical_mistakes_with_their_hint(wrong, hint, fields, lang):
    if "first" in fields and lang == "en":
        fields = {"first": "0.1"}
    verdict = exercises.check_warmup_run(_high_rate_run(**wrong), lang)
    assert verdict.status == "wrong" and not verdict
    assert "high_rate_run(seed=0)" in verdict.message
    assert text("ex_hint", lang, hint=text(hint, lang, **fields)) in verdict.message


@pytest.mark.parametrize("lang", LANGUAGES)
def test_warmup_run_check_wants_a_history(lang):
    verdict = exercises.check_warmup_run(lambda seed: [4.2, 0.1], lang)
    assert verdict.status == "wrong" and text("ex_hint_gpt_history", lang) in verdict.message


def test_warmup_run_check_leaves_the_random_state_alone():
    before = torch.get_rng_state()

    def seeds_globally(seed):
        torch.manual_seed(seed)
        raise ValueError("stop")

    assert exercises.check_warmup_run(seeds_globally, "en").status == "raised"
    assert torch.equal(before, torch.get_rng_state())


def _drift_forgets_set_to_none(model, batches, warm, set_to_none):
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.1)
    frozen = model[0].weight.detach().clone()
    for t, (x, y) in enumerate(batches):
        if t == warm:
            model[0].requires_grad_(False)
            frozen = model[0].weight.detach().clone()
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return (model[0].weight.detach() - frozen).abs().max().item()


def _drift_since_start(model, batches, warm, set_to_none):
    start = model[0].weight.detach().clone()
    exercises.frozen_drift(model, batches, warm, set_to_none)
    return (model[0].weight.detach() - start).abs().max().item()


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("wrong, call, hint", [
    (_drift_forgets_set_to_none, "(model, batches, warm=3, set_to_none=False)", "ex_hint_drift_none"),
    (_drift_since_start, "(model, batches, warm=3, set_to_none=True)", "ex_hint_drift_since_start"),
])
def test_frozen_drift_check_runs_the_experiment_and_names_the_mistake(wrong, call, hint, lang, capsys):
    """Lesson 03, exercise 3: the reference moves the frozen layer only when frozen late with zeroed (not None) grads."""
    results = {(warm, none): exercises.frozen_drift(*exercises._drift_setup(), warm, none) for warm in (0, 3) for none in (True, False)}
    assert [key for key, value in results.items() if value != 0.0] == [(3, False)]  # the others: bit-identical
    assert exercises.check_frozen_drift(exercises.frozen_drift, lang)
    verdict = exercises.check_frozen_drift(wrong, lang)
    assert not verdict and verdict.status == "wrong" and wrong.__name__ + call in verdict.message
    assert text("ex_hint", lang, hint=text(hint, lang)) in verdict.message
    capsys.readouterr()
    before = torch.get_rng_state()
    exercises.check_frozen_drift(lambda *a: 0.0, lang)
    assert torch.equal(before, torch.get_rng_state())
# Lesson 04, second edition: the FLOP rule by position, and the Adam experiment.


def flops_one_third_rule(model):
    matrices = [p for name, p in model.named_parameters() if p.ndim == 2 and not name.endswith("wpe.weight")]
    return sum(p.numel() for p in matrices if not p.requires_grad) / (3 * sum(p.numel() for p in matrices))


def adam_ratio_with_sgd(gradients, lr):
    w = torch.zeros_like(gradients[0], requires_grad=True)
    optimizer = torch.optim.SGD([w], lr=lr)
    for g in gradients:
        before = w.detach().clone()
        w.grad = g
        optimizer.step()
    return ((w.detach() - before).norm() / (lr * w.numel() ** 0.5)).item()


def adam_ratio_since_start(gradients, lr):
    w = torch.zeros_like(gradients[0], requires_grad=True)
    optimizer = torch.optim.Adam([w], lr=lr)
    for g in gradients:
        w.grad = g
        optimizer.step()
    return (w.detach().norm() / (lr * w.numel() ** 0.5)).item()


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("check, wrong, call, expected, got, hint", [
    pytest.param(exercises.check_frozen_flop_share, flops_one_third_rule, RECIPE_MODEL, "0.321429", "0.285714",
                 "ex_hint_third_only", id="flops-one-third-rule"),
    pytest.param(exercises.check_adam_update_ratio, adam_ratio_with_sgd, "(gradients, lr=0.01)", "1", "0.3",
                 "ex_hint_adam_sgd", id="adam-ratio-sgd"),
    pytest.param(exercises.check_adam_update_ratio, adam_ratio_since_start, "(gradients, lr=0.01)", "1", "20",
                 "ex_hint_adam_since_start", id="adam-ratio-since-start"),
])
def test_lesson04_wrong_answers_fail_with_their_hint(check, wrong, call, expected, got, hint, lang, capsys):
    test_typical_wrong_answer_fails_with_input_expected_got_and_hint(check, wrong, call, expected, got, hint, lang, capsys)


def test_the_flop_rule_saves_two_thirds_with_everything_frozen():
    from course_lib.lessons.targeted_freezing_gpt import flop_saving

    assert flop_saving(exercises._gpt("all")) == pytest.approx(2 / 3)
    assert flop_saving(exercises._gpt("none")) == 0
    assert flop_saving(exercises._gpt("bottom")) > flop_saving(exercises._gpt("targeted")) > 1 / 3 * 0.857143


# Lesson 03, second edition: the answers to the open questions are folded solutions, left out of the student edition.


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("lesson", LESSONS)
def test_student_edition_holds_no_folded_answer(edition, lesson, lang):
    student = jupytext.read(edition / "notebooks" / lang / f"{lesson}.md")
    for cell in student.cells:
        assert "{dropdown}" not in cell.source and ":class: dropdown" not in cell.source, \
            f"an answer left in the student edition of {lesson} ({lang}): tag its cell solution\n{cell.source[:200]}"


# Lesson 05, second edition: what learners get wrong.  The reference solutions as the lesson writes them, and each
# typical mistake failing with its hint, in both languages.


def micro_batch_losses(losses, masks):
    total = sum(m for mask in masks for row in mask for m in row)
    return [sum(l * m for row_l, row_m in zip(loss, mask) for l, m in zip(row_l, row_m)) / total for loss, mask in zip(losses, masks)]


def mean_of_means(losses, masks):
    sums = [sum(l * m for row_l, row_m in zip(loss, mask) for l, m in zip(row_l, row_m)) for loss, mask in zip(losses, masks)]
    counts = [sum(m for row in mask for m in row) for mask in masks]
    return [s / n / len(losses) for s, n in zip(sums, counts)]


def padding_counted(losses, masks):
    total = sum(len(row) for mask in masks for row in mask)
    return [sum(l * m for row_l, row_m in zip(loss, mask) for l, m in zip(row_l, row_m)) / total for loss, mask in zip(losses, masks)]


def runs_under_no_sync(num_micro_batches):
    return [i < num_micro_batches - 1 for i in range(num_micro_batches)]


def never_under_no_sync(num_micro_batches):
    return [False] * num_micro_batches


def always_under_no_sync(num_micro_batches):
    return [True] * num_micro_batches


def optimizer_steps(num_samples, micro_batch, accumulate, world_size):
    return num_samples // (micro_batch * accumulate * world_size)


def micro_batches_as_steps(num_samples, micro_batch, accumulate, world_size):
    return num_samples // micro_batch


def steps_without_processes(num_samples, micro_batch, accumulate, world_size):
    return num_samples // (micro_batch * accumulate)


def fp16_step(model, optimizer, scaler, loss, max_norm):
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    scaler.step(optimizer)
    scaler.update()


def fp16_step_clipping_scaled(model, optimizer, scaler, loss, max_norm):
    scaler.scale(loss).backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    scaler.step(optimizer)
    scaler.update()


def fp16_step_without_update(model, optimizer, scaler, loss, max_norm):
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    scaler.step(optimizer)


def mfu_on(tokens_per_s, flops_per_token, gpu):
    from course_lib.engine.timing import PEAK_FLOPS

    return tokens_per_s * flops_per_token / PEAK_FLOPS[gpu]["bf16"]


def mfu_on_a100_constant(tokens_per_s, flops_per_token, gpu):
    return tokens_per_s * flops_per_token / 312e12


def mfu_on_sparse_peak(tokens_per_s, flops_per_token, gpu):
    from course_lib.engine.timing import PEAK_FLOPS

    return tokens_per_s * flops_per_token / (2 * PEAK_FLOPS[gpu]["bf16"])


LESSON05_MISTAKES = [
    (exercises.check_accumulated_losses, micro_batch_losses),
    (exercises.check_no_sync_flags, runs_under_no_sync),
    (exercises.check_optimizer_steps, optimizer_steps),
    (exercises.check_fp16_step, fp16_step),
    (exercises.check_mfu_peak, mfu_on),
]


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("check, solution", LESSON05_MISTAKES, ids=lambda v: getattr(v, "__name__", ""))
def test_lesson05_mistakes_reference_solutions_pass(check, solution, lang, capsys):
    verdict = check(solution, lang)
    assert verdict and verdict.status == "correct"
    assert capsys.readouterr().out == verdict.message + "\n"


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("check, wrong, hint", [
    pytest.param(exercises.check_accumulated_losses, mean_of_means, "ex_hint_mean_of_means", id="mean-of-means"),
    pytest.param(exercises.check_accumulated_losses, padding_counted, "ex_hint_padding_counted", id="padding-counted"),
    pytest.param(exercises.check_no_sync_flags, never_under_no_sync, "ex_hint_sync_every", id="sync-every-micro-batch"),
    pytest.param(exercises.check_no_sync_flags, always_under_no_sync, "ex_hint_never_sync", id="never-synced"),
    pytest.param(exercises.check_optimizer_steps, micro_batches_as_steps, "ex_hint_micro_batches_as_steps", id="micro-batches-as-steps"),
    pytest.param(exercises.check_optimizer_steps, steps_without_processes, "ex_hint_forgot_processes", id="processes-forgotten"),
    pytest.param(exercises.check_fp16_step, fp16_step_clipping_scaled, "ex_hint_clip_scaled", id="clip-scaled"),
    pytest.param(exercises.check_fp16_step, fp16_step_without_update, "ex_hint_scaler_update", id="no-scaler-update"),
    pytest.param(exercises.check_mfu_peak, mfu_on_a100_constant, "ex_hint_a100_peak", id="a100-peak"),
    pytest.param(exercises.check_mfu_peak, mfu_on_sparse_peak, "ex_hint_sparse_peak", id="sparse-peak"),
])
def test_lesson05_mistakes_fail_with_their_hint(check, wrong, hint, lang):
    verdict = check(wrong, lang)
    assert not verdict and verdict.status == "wrong"
    assert f"{wrong.__name__}(" in verdict.message and "Traceback" not in verdict.message
    assert text("ex_hint", lang, hint=text(hint, lang)) in verdict.message


@pytest.mark.parametrize("lang", LANGUAGES)
def test_lesson05_clip_scaled_shows_an_update_about_scale_times_too_small(lang):
    """The failing case's message: the wrong update is the right one divided by the scale 65,536."""
    from course_lib.i18n import count, significant

    message = exercises.check_fp16_step(fp16_step_clipping_scaled, lang).message
    wrong, right = (text("ex_fp16_step", lang, change=change, scale=count(131072, lang)) for change in
                    (significant(0.1 / 65536, lang, 4), significant(0.1, lang, 4)))
    assert wrong in message and right in message


def test_lesson05_checks_leave_the_random_state_alone():
    before = torch.get_rng_state()
    exercises.check_fp16_step(lambda *a: None, "en")
    exercises.check_accumulated_losses(lambda losses, masks: [0.0] * len(losses), "en")
    assert torch.equal(before, torch.get_rng_state())


def imports_before(lesson: str, exercise) -> dict:
    """The names the lesson's import statements have defined when the student reaches `exercise` (a solution may use
    `torch` or `PEAK_FLOPS` as the notebook imported them); only imports run, not the lesson's other code."""
    namespace = {}
    for cell in jupytext.read(ROOT / "notebooks" / "en" / f"{lesson}.md").cells:
        if cell.source == exercise.source:
            return namespace
        if cell.cell_type == "code":
            source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
            imports = [node for node in ast.parse(source).body if isinstance(node, (ast.Import, ast.ImportFrom))]
            exec(compile(ast.Module(imports, type_ignores=[]), lesson, "exec"), namespace)
    raise AssertionError(f"{lesson}: exercise cell not found")
