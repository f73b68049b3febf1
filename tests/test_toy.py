"""course_lib.models.toy, experiments, tables, i18n, report, plotting and widgets: the pieces the lessons' experiments use."""

import math

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from course_lib.engine.stats import spread
from course_lib.lessons.lr_schedules import accumulated_rate, integral_law_holds_until, integral_prediction, late_excess, paired_difference, run_seeds, settled_step
from course_lib.i18n import LANGUAGES, number, number_list, plain, text
from course_lib.show.plotting import (
    plot_clip_directions,
    plot_clipping_runs,
    plot_excess_loss,
    plot_integral_law,
    plot_rates,
)
from course_lib.show.report import Table
from course_lib.engine.schedules import Constant, cosine_with_warmup, linear_with_warmup
from course_lib.show.tables import compare_clipping, compare_layer_clipping, compare_schedules, integral_law_table
from course_lib.models.toy import QuadraticToy, best_loss, expected_loss, train_quadratic, train_softmax_toy
from course_lib.engine.training import History
from course_lib.show.widgets import ScheduleExplorer, explorer_figure


def test_expected_loss_is_cross_entropy_of_softmax():
    w = torch.tensor([0.7, -0.4])
    log_p = torch.log_softmax(w, 0)
    q = 0.8
    assert expected_loss(0.7, -0.4, q) == pytest.approx(-(q * log_p[0] + (1 - q) * log_p[1]).item(), rel=1e-6)
    assert expected_loss(50.0, -50.0, 1.0) == pytest.approx(0.0, abs=1e-12)  # no overflow


def test_best_loss_is_reached_at_log_odds():
    q = 0.9
    gap = math.log(q / (1 - q))
    assert expected_loss(gap, 0.0, q) == pytest.approx(best_loss(q))
    assert expected_loss(gap + 0.3, 0.0, q) > best_loss(q)
    assert best_loss(1.0) == 0.0


def test_first_update_matches_hand_computed_gradient():
    """p = (1/2, 1/2): dL/dw1 = -(1 - p1) = -1/2, so one SGD step of rate 0.2 moves w1 to +0.1."""
    run = train_softmax_toy(Constant(), 0.2, 1)
    assert run.metric("w1") == pytest.approx([0.0, 0.1])
    assert run.metric("w2") == pytest.approx([0.0, -0.1])
    assert run.metric_steps("w1") == [-1, 0]  # the start, then after the update of step 0
    assert run.lr == [0.2]
    assert run.metric("excess_loss")[0] == pytest.approx(math.log(2))


def test_warmup_first_update_changes_nothing():
    run = train_softmax_toy(linear_with_warmup(5, 20), 1.0, 3)
    assert run.metric("w1")[1] == 0.0 and run.metric("w1")[2] > 0.0


def test_runs_are_deterministic_per_seed_and_differ_across_seeds():
    kwargs = dict(target_prob=0.9, batch_size=4)
    a = train_softmax_toy(Constant(), 0.5, 50, seed=3, **kwargs)
    b = train_softmax_toy(Constant(), 0.5, 50, seed=3, **kwargs)
    c = train_softmax_toy(Constant(), 0.5, 50, seed=4, **kwargs)
    assert a.metric("w1") == b.metric("w1") and a.metric("w1") != c.metric("w1")


def test_noiseless_toy_only_learns_while_the_rate_is_positive():
    run = train_softmax_toy(cosine_with_warmup(0, 100, num_cycles=1), 0.2, 100)
    w1 = run.metric("w1")
    assert abs(w1[51] - w1[50]) < 1e-4 < w1[11] - w1[10]


def test_integral_law_holds_early_and_breaks_later():
    run = train_softmax_toy(Constant(), 0.05, 200)
    assert accumulated_rate(run)[-1] == pytest.approx(10.0)
    assert integral_prediction(run)[4] == pytest.approx(0.5 * 0.05 * 4)
    until = integral_law_holds_until(run)
    assert until is not None and 5 < until < 200
    w1 = run.metric("w1")
    assert abs(w1[until] - integral_prediction(run)[until]) <= 0.1 * integral_prediction(run)[until]
    assert w1[-1] < 0.5 * integral_prediction(run)[-1]


def test_same_accumulated_rate_gives_nearly_same_weights():
    """Gradient flow in tau: schedules with the same sum of rates end close together."""
    linear = train_softmax_toy(linear_with_warmup(0, 200), 0.1, 200)
    cosine = train_softmax_toy(cosine_with_warmup(0, 200), 0.1, 200)
    assert accumulated_rate(linear)[-1] == pytest.approx(accumulated_rate(cosine)[-1])
    assert linear.metric("w1")[-1] == pytest.approx(cosine.metric("w1")[-1], abs=0.01)


def test_decay_beats_constant_rate_under_noise():
    kwargs = dict(target_prob=0.9, batch_size=8)
    constant = run_seeds(Constant(), 1.0, 300, range(4), **kwargs)
    cosine = run_seeds(cosine_with_warmup(0, 300), 1.0, 300, range(4), **kwargs)
    assert sum(map(late_excess, cosine)) < sum(map(late_excess, constant)) / 3
    diff = paired_difference(constant, cosine)
    assert diff.a_lower == 0 and diff.difference.n == 4 and diff.difference.mean > 3 * diff.difference.sem


def test_settled_step():
    def run(values):
        history = History()
        for t, value in enumerate(values):
            history.add("excess_loss", t - 1, value)
        return history

    assert settled_step(run([1.0, 0.5, 0.005, 0.002]), 0.01) == 2
    assert settled_step(run([1.0, 0.005, 0.5, 0.002]), 0.01) == 3
    assert settled_step(run([1.0, 0.005, 0.002, 0.5]), 0.01) is None


def test_spread_is_mean_and_standard_error():
    s = spread([1.0, 2.0, 3.0, 4.0])
    assert s.mean == 2.5 and s.n == 4 and s.sem == pytest.approx(math.sqrt(5 / 3) / 2)
    assert spread([7.0]).sem == 0.0


@pytest.mark.parametrize("lang", LANGUAGES)
def test_tables_are_in_the_readers_language(lang):
    runs = {"a": run_seeds(Constant(), 1.0, 40, range(2), target_prob=0.9)}
    table = compare_schedules(runs, lang, excess=0.02)
    assert table.header[0] == text("schedule", lang)
    assert table.header[1] == text("late_excess", lang, n=2)
    assert table.header[2] == text("settled", lang, excess=plain(0.02, lang)) and ("0,02" if lang == "vi" else "0.02") in table.header[2]
    law = integral_law_table({"a": train_softmax_toy(Constant(), 0.2, 40)}, lang, tolerance=0.25)
    assert law.header[1] == text("law_holds", lang, tolerance="25")
    decimal = "," if lang == "vi" else "."
    assert decimal in table.rows[0][1] and " ± " in table.rows[0][1]


def test_numbers_are_written_the_readers_way():
    assert plain(1e6, "en") == "10⁶" and plain(1e-3, "vi") == "10⁻³" and plain(0.01, "vi") == "0,01" and plain(25, "en") == "25"
    assert number_list([0.5, 1.0], "vi", 2) == "[0,50; 1,00]" and number_list([0.5, 1.0], "en", 2) == "[0.50, 1.00]"


def test_bad_toy_arguments():
    with pytest.raises(ValueError, match="target_prob"):
        train_softmax_toy(Constant(), 0.1, 10, target_prob=0.4)
    with pytest.raises(ValueError, match="num_steps must be >= 1"):
        train_softmax_toy(Constant(), 0.1, 0)


def test_toy_edge_values_that_stay_valid():
    assert torch.equal(QuadraticToy((1, -2)).w, QuadraticToy((1.0, -2.0)).w)  # int starting weights are weights too
    assert QuadraticToy([3]).w.dtype == torch.get_default_dtype()
    assert best_loss(0.0) == best_loss(1) == 0.0
    assert expected_loss(torch.tensor(0.7), -0.4, 0.8) == pytest.approx(expected_loss(0.7, -0.4, 0.8))
    assert expected_loss(0.0, 0.0, 0.0) == pytest.approx(math.log(2))


def test_i18n_rejects_unknown_language_and_key():
    with pytest.raises(ValueError, match=r"lang must be one of 'vi', 'en', got 'fr'"):
        text("step", "fr")
    with pytest.raises(KeyError):
        text("no-such-string", "en")
    assert number(0.5, "vi", 2) == "0,50" and number(0.5, "en", 2) == "0.50"


def test_no_string_key_is_written_twice():
    """A repeated key in the dict literal silently keeps only the last entry."""
    import ast
    import collections
    import inspect

    import course_lib.i18n as i18n

    table = next(node for node in ast.walk(ast.parse(inspect.getsource(i18n)))
                 if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "_STRINGS")
    counts = collections.Counter(key.value for key in table.value.keys)
    assert [key for key, n in counts.items() if n > 1] == []


def test_every_string_exists_in_both_languages():
    from course_lib.i18n import _STRINGS

    for key, translations in _STRINGS.items():
        assert set(translations) == set(LANGUAGES), key
        assert all(translations.values()), key


def test_table_renders_html_and_text_and_checks_widths():
    table = Table(("a", "b<"), (("1", "2"), ("333", "4")))
    assert "<th>b&lt;</th>" in table._repr_html_()
    assert str(table).splitlines()[0] == "a   | b<"
    with pytest.raises(ValueError, match="row"):
        Table(("a",), (("1", "2"),))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_figures_are_labelled_in_the_readers_language(lang):
    runs = {"x": train_softmax_toy(Constant(), 0.2, 20)}
    fig = plot_rates({"x": [1.0, 0.5]}, lang)
    assert fig.axes[0].get_xlabel() == text("step", lang)
    assert fig.axes[0].get_title() == text("lr_title", lang)
    fig = plot_integral_law(runs, lang)
    assert fig.axes[2].get_xlabel() == text("tau", lang)
    fig = plot_excess_loss(runs, lang)
    assert fig.axes[0].get_ylabel() == text("excess", lang)


def test_explorer_shows_a_still_image_and_keeps_warmup_within_schedule():
    explorer = ScheduleExplorer("vi")
    bundle, metadata = explorer._repr_mimebundle_()
    assert bundle["image/png"].startswith("iVBORw0KGgo")  # a PNG, base64
    assert metadata == {"image/png": {"width": 560}}  # drawn at twice that many pixels: sharp on a phone
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"] == text("explorer_text", "vi")
    explorer.warmup.value = 300
    explorer.total.value = 50
    assert explorer.warmup.max == 50 and explorer.warmup.value == 50
    assert len(explorer_figure(10, 50, 2.0, 0.1, "en").axes) == 2


def test_quadratic_converges_below_one_and_explodes_above():
    assert train_quadratic(0.4, 50).loss[-1] < 1e-10
    exploding = train_quadratic(1.5, 100)
    ratios = [b / a for a, b in zip(exploding.loss[:10], exploding.loss[1:11])]
    assert ratios == pytest.approx([4.0] * 10, rel=1e-5)  # (1 - 2 eta)^2
    assert any(exploding.skipped) and all(math.isfinite(v) for v in exploding.metric("update_norm"))


def test_clipped_quadratic_steps_are_bounded_by_eta_c():
    history = train_quadratic(1.5, 100, clip=1.0)
    assert max(history.metric("update_norm")) <= 1.5 * 1.0 + 1e-6
    assert not any(history.skipped)
    decayed = train_quadratic(1.5, 100, clip=1.0, schedule=linear_with_warmup(0, 100))
    assert decayed.loss[-1] < 1e-3


@pytest.mark.parametrize("clip", [None, 1.0])
@pytest.mark.parametrize("decay", [False, True])
def test_plain_pytorch_loop_gives_the_courses_numbers(clip, decay):
    """Lesson 02 shows train_quadratic_plain as the idiom; it must give train_quadratic's numbers at every step.

    Loss, norm before clipping and weights before the update.  Without clipping they are identical.  With
    clipping torch divides by |g| + 1e-6 where course_lib divides by |g|: about 1e-6 relative per clipped step.
    """
    from course_lib.lessons.plain import train_quadratic_plain
    from course_lib.engine.training import Callback

    class Weights(Callback):
        def __init__(self):
            self.values = []

        def on_step_begin(self, state):
            self.values.append(state.model.w.detach().tolist())

    weights = Weights()
    course = train_quadratic(
        1.5, 100, clip=clip, schedule=linear_with_warmup(0, 100) if decay else None, callbacks=[weights]
    )
    loss, norm, w = train_quadratic_plain(1.5, 100, max_norm=clip or math.inf, decay_steps=100 if decay else None)
    steps = [t for t, g in enumerate(course.grad_norm) if math.isfinite(g)]
    assert len(steps) == (62 if (clip, decay) == (None, False) else 100)  # only the unclipped constant rate overflows
    plain = [x for t in steps for x in (loss[t], norm[t], *w[t])]
    ours = [x for t in steps for x in (course.loss[t], course.grad_norm[t], *weights.values[t])]
    if clip is None:
        assert plain == ours
    else:
        assert plain == pytest.approx(ours, rel=1e-4, abs=1e-40)


def test_plain_pytorch_loop_writes_nan_where_the_course_skips():
    from course_lib.lessons.plain import train_quadratic_plain

    course = train_quadratic(1.5, 100)
    _, norm, w = train_quadratic_plain(1.5, 100)
    first = course.skipped.index(True)
    assert math.isinf(norm[first]) and math.isfinite(w[first][0]) and math.isnan(w[first + 1][0])


@pytest.mark.parametrize("lang", LANGUAGES)
def test_clipping_table(lang):
    runs = {"a": train_quadratic(1.5, 40), "b": train_quadratic(1.5, 40, clip=1.0, schedule=linear_with_warmup(0, 40))}
    table = compare_clipping(runs, lang, target=1e-4, blown_up=1e8)
    assert table.header[4] == text("diverged", lang, blown_up="10⁸") and table.header[3].endswith("10⁻⁴")
    assert table.rows[0][3] == text("never", lang) and table.rows[0][4] == text("yes", lang)
    assert table.rows[1][4] == text("no", lang)


def test_global_clipping_scales_all_layers_alike_and_per_layer_does_not():
    table = compare_layer_clipping(0.25, "en")
    (body, head) = table.rows
    assert body[3] == head[3] and float(body[3]) < 1.0
    assert float(body[1]) < 0.25 < float(head[1])
    assert body[5] == "1.000" and float(head[4]) == pytest.approx(0.25, abs=1e-3)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_clipping_figures_are_labelled(lang):
    fig = plot_clip_directions([3.0, 0.5], 1.0, lang)
    assert fig.axes[0].get_title() == text("directions_title", lang)
    runs = {"x": train_quadratic(1.5, 20, clip=1.0)}
    fig = plot_clipping_runs(runs, lang, show_norms=["x"])
    assert fig.axes[1].get_ylabel() == text("grad_norm", lang)


def test_initialization_and_layernorm_keep_values_in_range():
    from course_lib.lessons.gradient_clipping import value_ranges

    r = value_ranges(depth=16, width=128)
    assert r[("normal", False)]["output_rms"] > 1e10 and not math.isfinite(r[("normal", False)]["first_grad_norm"])
    assert r[("uniform", False)]["output_rms"] < 1e-4 and r[("uniform", False)]["first_grad_norm"] < 1e-8
    assert 0.3 < r[("he", False)]["output_rms"] < 3 and 0.1 < r[("he", False)]["first_grad_norm"] < 10
    assert all(0.5 < r[(init, True)]["output_rms"] < 1 for init in ("normal", "uniform", "he"))


# Lesson 01, second edition: warm-up on the tiny GPT, Adam's zero-rate step, the cosine past its declared end.

from course_lib.lessons.lr_schedules import GPT_STEPS, late_loss, phrase_batches, tiny_gpt, train_tiny_gpt  # noqa: E402


def test_tiny_gpt_is_float64_seeded_and_leaves_the_random_state_alone():
    before = torch.get_rng_state()
    a, b, c = tiny_gpt(0), tiny_gpt(0), tiny_gpt(1)
    assert torch.equal(before, torch.get_rng_state())
    assert all(p.dtype == torch.float64 for p in a.parameters())
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.transformer.wte.weight, c.transformer.wte.weight)
    assert torch.equal(phrase_batches(3)(7), phrase_batches(3)(7)) and not torch.equal(phrase_batches(3)(7), phrase_batches(4)(7))


def test_train_tiny_gpt_follows_its_schedule_and_repeats_exactly():
    run = train_tiny_gpt(0.01, 20, 0, steps=30)
    assert len(run.loss) == len(run.lr) == 30
    assert run.lr[0] == 0.0 and math.isclose(run.lr[20], 0.01) and max(run.lr) == run.lr[20]
    assert run.loss == train_tiny_gpt(0.01, 20, 0, steps=30).loss
    assert late_loss(run) == sum(run.loss[-20:]) / 20 and late_loss(run, last=1000) == sum(run.loss) / 30
    assert train_tiny_gpt(0.01, 0, 0, steps=30).lr[0] == 0.01


def test_warmup_rescues_the_tiny_gpt_at_a_high_peak_rate():
    """The lesson's claim at 0.1: without warm-up the loss spikes above its start and the run gets stuck above 1.5; with 20
    warm-up steps the loss never rises above its start and the run ends below 1.5."""
    without, with_warmup = train_tiny_gpt(0.1, 0, 0), train_tiny_gpt(0.1, 20, 0)
    assert len(without.loss) == GPT_STEPS and without.loss[0] == with_warmup.loss[0]
    assert max(without.loss[:15]) > without.loss[0] + 1 and max(with_warmup.loss[:15]) == with_warmup.loss[0]
    assert late_loss(without) > 1.5 > late_loss(with_warmup)


def test_a_zero_rate_step_moves_adams_state_but_not_the_weights():
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    optimizer = torch.optim.AdamW([w], lr=0.0)
    w.grad = torch.tensor([0.5, -1.0], dtype=torch.float64)
    optimizer.step()
    state = optimizer.state[w]
    assert w.tolist() == [1.0, -2.0] and int(state["step"]) == 1
    assert torch.allclose(state["exp_avg"], 0.1 * w.grad) and torch.allclose(state["exp_avg_sq"], 0.001 * w.grad**2)


def test_the_cosine_rises_past_its_declared_end_and_linear_decay_holds_its_floor():
    cosine, linear = cosine_with_warmup(10, 100, min_lr_ratio=0.1), linear_with_warmup(10, 100, min_lr_ratio=0.1)
    assert math.isclose(cosine(100), 0.1) and cosine(150) > 0.5 and cosine(190) > 0.95
    assert linear(100) == linear(150) == linear(190) == 0.1


# --- lesson 03's and 04's figures: legends beside the data, not over it -----------------------------

def _covered_points(fig) -> list[str]:
    """Each legend's label and the curve of its axes that runs under the legend's box (display coordinates,
    straight segments sampled between the plotted points, so a horizontal threshold line counts too)."""
    import numpy as np

    fig.canvas.draw()
    covered = []
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None:
            continue
        box = legend.get_window_extent()
        for line in ax.get_lines():
            xy = line.get_transform().transform(line.get_xydata())
            xy = xy[np.isfinite(xy).all(axis=1)]
            dense = np.concatenate([np.linspace(a, b, 20) for a, b in zip(xy, xy[1:])]) if len(xy) > 1 else xy
            inside = (dense[:, 0] > box.x0) & (dense[:, 0] < box.x1) & (dense[:, 1] > box.y0) & (dense[:, 1] < box.y1)
            if inside.any():
                covered.append(f"{ax.get_title() or ax.get_ylabel()!r}: legend covers {line.get_label()!r}")
    return covered


def _small_legend_text(fig) -> list[str]:
    """Legend entries written smaller than their axes' tick labels."""
    small = []
    for ax in fig.axes:
        legend = ax.get_legend()
        tick = ax.yaxis.get_ticklabels()[0].get_fontsize()
        small += [f"{t.get_text()!r}: {t.get_fontsize():.1f} pt < {tick:.1f} pt" for t in (legend.get_texts() if legend else [])
                  if t.get_fontsize() < tick]
    return small


@pytest.mark.parametrize("lang", LANGUAGES)
def test_lesson_03_and_04_legends_leave_the_data_visible(lang):
    """The lessons' stored runs, drawn as the lessons draw them: no legend box over a curve, legend text no smaller than the ticks,
    and lesson 04's axis labelled in words, not with an identifier."""
    import matplotlib.pyplot as plt

    from course_lib.lessons import finetuning_bert, targeted_freezing_gpt
    from course_lib.show.plotting import plot_finetune_norms, plot_weight_changes

    frozen = [r for r in finetuning_bert.load_results("gpu")["runs"] if r["variant"] == "frozen"]
    runs = {r["variant"]: r for r in targeted_freezing_gpt.load_results("gpu")["runs"] if r["seed"] == 0}
    for fig in (plot_finetune_norms(frozen[0], 1.0, lang), plot_weight_changes(runs["full"], runs["targeted"], lang)):
        assert not _covered_points(fig)
        assert not _small_legend_text(fig)
        plt.close(fig)
    fig = plot_weight_changes(runs["full"], runs["targeted"], lang)
    axis = fig.axes[0].get_ylabel()
    assert axis == text("gpt_change_axis", lang) and "$" in axis and "|_F" not in axis   # mathtext, not "|W_t − W_t₋₁|_F"
    labels = fig.axes[0].get_legend_handles_labels()[1] + [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert not any("attn." in label or "transformer." in label for label in labels), labels
    plt.close(fig)
