"""One helper per kind of figure, labelled in the notebook's language."""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import Formatter

from course_lib.engine._checks import (
    check_choice,
    check_int,
    check_number,
    check_type,
    shown,
)
from course_lib.engine.clipping import clip_grad_norm_, clip_grad_value_
from course_lib.engine.training import History
from course_lib.i18n import check_language, plain, text
from course_lib.lessons import finetuning_bert
from course_lib.lessons.lr_schedules import accumulated_rate, integral_prediction


class _ReaderTicks(Formatter):
    """Tick labels of another formatter, rewritten the Vietnamese way: 0,5 for 0.5 and 2.048 for 2048.

    Wraps whatever matplotlib chose for the axis (plain, log, offset), so the ticks stay where matplotlib puts them.
    """

    def __init__(self, inner: Formatter):
        self.inner = inner

    def set_axis(self, axis):
        super().set_axis(axis)
        self.inner.set_axis(axis)

    def set_locs(self, locs):
        self.inner.set_locs(locs)

    def __call__(self, x, pos=None):
        return vietnamese_numbers(self.inner(x, pos))

    def format_ticks(self, values):
        return [vietnamese_numbers(label) for label in self.inner.format_ticks(values)]

    def get_offset(self):
        return vietnamese_numbers(self.inner.get_offset())

    def format_data_short(self, value):
        return vietnamese_numbers(self.inner.format_data_short(value))


def _vietnamese_number(match: re.Match) -> str:
    whole, fraction = match.group(1), match.group(2)
    if len(whole) >= 4:
        whole = f"{int(whole):,}".replace(",", ".")
    return whole + ("," + fraction if fraction else "")


def vietnamese_numbers(label: str) -> str:
    """The numbers in a tick label written the Vietnamese way: decimal comma, thousands dot (10.000; 0,25)."""
    label = re.sub(r"(\d)e([+\-−]?)(\d+)", lambda m: m.group(1) + "·10" + ("⁻" if m.group(2) in "-−" and m.group(2) else "")
                   + str(int(m.group(3))).translate(_SUPERSCRIPT), label)
    return re.sub(r"(?<![\\\w.,])(\d+)(?:\.(\d+))?(?![\w])", _vietnamese_number, label)


_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def localize_ticks(fig: Figure, lang: str) -> Figure:
    """Every axis of ``fig`` labels its ticks the reader's way; call it after the axes' scales are set."""
    if check_language(lang) == "vi":
        for ax in fig.axes:
            for axis in (ax.xaxis, ax.yaxis):
                for get, put in ((axis.get_major_formatter, axis.set_major_formatter),
                                 (axis.get_minor_formatter, axis.set_minor_formatter)):
                    current = get()
                    if not isinstance(current, _ReaderTicks):
                        put(_ReaderTicks(current))
    return fig


def _check_entries(name: str, entries: Mapping, ok: Callable[[object], bool], allowed: str) -> None:
    """A non-empty mapping {label: value} whose every value passes ``ok``."""
    check_type(name, entries, Mapping, f"a dict {{label: {allowed}}}")
    if not entries:
        raise ValueError(f"{name} is empty: pass a dict {{label: {allowed}}} with at least one entry")
    for label, value in entries.items():
        if not ok(value):
            raise TypeError(f"{name}[{label!r}] must be {allowed}, got {shown(value)}")


def _is_curve(rates: object) -> bool:
    """A 1-d tensor or a sequence of real numbers (a curve of strings would be drawn as categories)."""
    if isinstance(rates, torch.Tensor):
        return rates.ndim == 1 and rates.dtype.is_floating_point
    return (hasattr(rates, "__len__") and hasattr(rates, "__iter__") and not isinstance(rates, (str, bytes, Mapping))
            and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in rates))


def _check_curve(name: str, values: object, allowed: str) -> None:
    """A non-empty list of real numbers, e.g. a run's losses."""
    if not (isinstance(values, (list, tuple)) and _is_curve(values)):
        raise TypeError(f"{name} must be {allowed}: a list of numbers, got {shown(values)}")
    if not values:
        raise ValueError(f"{name} is empty: it must be {allowed}")


def _check_run(name: str, run: object, keys: tuple[str, ...], allowed: str) -> None:
    """A mapping (one of a lesson's results) whose ``keys`` are present."""
    check_type(name, run, Mapping, allowed)
    missing = [key for key in keys if key not in run]
    if missing:
        raise ValueError(f"{name} lacks {', '.join(map(repr, missing))}: it must be {allowed}")


def _check_runs(name: str, runs: object, allowed: str) -> None:
    """A non-empty list (or tuple) of results."""
    if not isinstance(runs, (list, tuple)):
        raise TypeError(f"{name} must be a list of {allowed}, got {shown(runs)}")
    if not runs:
        raise ValueError(f"{name} is empty: pass a list of {allowed}")


def _legend_below(ax: Axes, columns: int | None = None, gap: float = 0.2) -> None:
    """The legend under the axes, where it covers no curve (figures are saved with bbox_inches="tight"), in the tick
    labels' size, so that it stays legible when a phone shrinks the figure.

    ``columns``: by default two, or one when a label is long, so that the legend is no wider than the axes.
    ``gap``: how far below the axes, in axes heights (small for a panel whose x tick labels are shared below).
    """
    if columns is None:
        columns = 1 if max(len(label) for label in ax.get_legend_handles_labels()[1]) > 36 else 2
    ax.legend(fontsize=plt.rcParams["ytick.labelsize"], loc="upper center", bbox_to_anchor=(0.5, -gap), ncol=columns,
              frameon=False)


def plot_rates(curves: Mapping[str, Sequence[float]], lang: str, ax=None) -> Figure:
    """Learning rate against optimizer step, one line per schedule."""
    check_language(lang)
    _check_entries("curves", curves, _is_curve, "a list of learning rates, e.g. schedule.lrs(num_steps, eta_max)")
    for label, rates in curves.items():
        if not len(rates):
            raise ValueError(f"curves[{label!r}] is empty: pass at least one learning rate, e.g. schedule.lrs(num_steps, eta_max)")
    if ax is not None:
        check_type("ax", ax, Axes, "a matplotlib Axes, or None for a new figure")
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 3.5))
    for label, rates in curves.items():
        ax.plot(range(len(rates)), rates, label=label)
    ax.set(xlabel=text("step", lang), ylabel=text("lr", lang), title=text("lr_title", lang))
    _legend_below(ax)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return localize_ticks(fig, lang)


def plot_integral_law(runs: Mapping[str, History], lang: str) -> Figure:
    """Rates; w1 against the step; w1 against the accumulated rate tau = sum of eta.

    The last panel is where "weights grow like the integral of the rate" is
    tested: the dashed line is the constant-gradient prediction.  One legend,
    under the last panel, names the curves of all three.
    """
    check_language(lang)
    _check_entries("runs", runs, lambda run: isinstance(run, History) and "w1" in run.metrics, "a History from train_softmax_toy")
    fig, (rates, by_step, by_tau) = plt.subplots(3, 1, figsize=(7, 9))
    plot_rates({name: run.lr for name, run in runs.items()}, lang, ax=rates)
    rates.get_legend().remove()
    for name, run in runs.items():
        by_step.plot(run.metric("w1"), label=name)
        by_tau.plot(accumulated_rate(run), run.metric("w1"), label=name)
    longest = max(runs.values(), key=lambda run: accumulated_rate(run)[-1])
    by_tau.plot(accumulated_rate(longest), integral_prediction(longest), "k--", label=text("prediction", lang))
    by_step.set(xlabel=text("step", lang), ylabel=text("w1", lang), title=text("w1_title", lang))
    by_tau.set(xlabel=text("tau", lang), ylabel=text("w1", lang), title=text("tau_title", lang))
    by_tau.set_ylim(0, 1.3 * max(max(run.metric("w1")) for run in runs.values()))
    _legend_below(by_tau)
    for ax in (by_step, by_tau):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return localize_ticks(fig, lang)


def plot_excess_loss(runs: Mapping[str, History], lang: str) -> Figure:
    """Excess expected loss L - H(q) per step on a log scale, one line per schedule."""
    check_language(lang)
    _check_entries("runs", runs, lambda run: isinstance(run, History) and "w1" in run.metrics, "a History from train_softmax_toy")
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for name, run in runs.items():
        ax.plot([max(e, 1e-7) for e in run.metric("excess_loss")], label=name, linewidth=1)
    ax.set_yscale("log")
    ax.set(xlabel=text("step", lang), ylabel=text("excess", lang), title=text("excess_title", lang))
    _legend_below(ax)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return localize_ticks(fig, lang)


def plot_clip_directions(gradient: Sequence[float], max_norm: float, lang: str) -> Figure:
    """A 2-D gradient, clipped by norm (same direction) and by value (turned), with the ball |g| <= c."""
    check_language(lang)
    check_type("gradient", gradient, Sequence, "two numbers (g1, g2), e.g. (3.0, 1.0)")
    if len(gradient) != 2:
        raise ValueError(f"gradient must hold two numbers (g1, g2): the figure is 2-D, got {len(gradient)}: {gradient!r}")
    for i, component in enumerate(gradient):
        check_number(f"gradient[{i}]", component, "finite", math.isfinite)
    check_number("max_norm", max_norm, "> 0 and finite (the radius of the ball drawn)", lambda v: 0 < v < math.inf)
    g = torch.nn.Parameter(torch.zeros(2))
    clipped = {}
    for key, clip in (("by_norm", clip_grad_norm_), ("by_value", clip_grad_value_)):
        g.grad = torch.tensor(gradient, dtype=torch.float32)
        clip([g], max_norm)
        clipped[key] = g.grad.tolist()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.add_patch(plt.Circle((0, 0), max_norm, fill=False, linestyle="--", color="gray", label=text("threshold", lang)))
    ax.add_patch(plt.Rectangle((-max_norm, -max_norm), 2 * max_norm, 2 * max_norm, fill=False, linestyle=":", color="gray"))
    for key, vector, color in (("gradient", list(gradient), "black"), ("by_norm", clipped["by_norm"], "tab:blue"), ("by_value", clipped["by_value"], "tab:orange")):
        ax.annotate("", xy=vector, xytext=(0, 0), arrowprops=dict(arrowstyle="->", color=color, linewidth=2))
        ax.plot([], [], color=color, label=text(key, lang))
    span = max(abs(v) for v in gradient) * 1.1
    ax.set(xlim=(-0.3, span), ylim=(-0.3, max(span / 2, max_norm * 1.2)), aspect="equal")
    ax.set_title(text("directions_title", lang), fontsize="medium")
    # below the axes, so that it never covers an arrow
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2, frameon=False)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return localize_ticks(fig, lang)


def plot_clipping_runs(runs: Mapping[str, History], lang: str, show_norms: Sequence[str]) -> Figure:
    """Top: loss per step of every run.  Bottom: |g| before and after clipping for the runs named."""
    check_language(lang)
    _check_entries("runs", runs, lambda run: isinstance(run, History), "a History (from train)")
    check_type("show_norms", show_norms, (list, tuple), "a list of run names, e.g. [name] for one run")
    if not show_norms:
        raise ValueError(f"show_norms is empty: name at least one of the runs {list(runs)}")
    for name in show_norms:
        if name not in runs:
            raise ValueError(f"show_norms names {name!r}, which is not one of the runs {list(runs)}")
    # stacked, so that each panel keeps its width on a phone; legends below the axes cover no curve
    fig, (left, right) = plt.subplots(2, 1, figsize=(6.4, 9))
    colors = {}
    for name, history in runs.items():
        (line,) = left.plot([max(v, 1e-30) for v in history.loss], label=name)
        colors[name] = line.get_color()  # each run keeps its color in both panels
    left.set_yscale("log")
    left.set_ylim(bottom=1e-12)
    left.set(xlabel=text("step", lang), ylabel=text("loss", lang), title=text("loss_title", lang))
    left.legend(loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=2, frameon=False)
    for name in show_norms:
        history = runs[name]
        right.plot(history.grad_norm, color=colors[name], label=f"{name}: {text('raw_norm', lang)}")
        right.plot(history.clipped_norm, linestyle="--", color=colors[name], label=f"{name}: {text('clipped_norm', lang)}")
    right.set_yscale("log")
    right.set_ylim(bottom=1e-3)
    right.set(xlabel=text("step", lang), ylabel=text("grad_norm", lang), title=text("grad_norm_title", lang))
    right.legend(loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=1, frameon=False)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return localize_ticks(fig, lang)


def plot_finetune_norms(run: Mapping, clip: float, lang: str) -> Figure:
    """Lesson 03: per-step gradient norms before clipping: the whole model, the MLP layers together, the pooler and the
    head, with c (top); each MLP layer on its own (middle); the norm clipping removed, |g| - |g'| (bottom)."""
    check_language(lang)
    keys = ("grad_norm", "grad_norm_parts", "norm_lost")
    _check_run("run", run, keys, "one of finetuning_bert.run()'s results")
    for key in ("grad_norm", "norm_lost"):
        _check_curve(f"run[{key!r}]", run[key], "one value per step")
    check_number("clip", clip, "> 0 and finite (the clipping threshold drawn)", lambda v: 0 < v < math.inf)
    layers = sorted((name for name in run["grad_norm_parts"] if name.startswith("mlp.")), key=lambda n: int(n.split(".")[1]))
    fig, (top, middle, bottom) = plt.subplots(3, 1, figsize=(7, 9.5), sharex=True, height_ratios=(3, 2, 1.5))
    steps = range(len(run["grad_norm"]))
    top.plot(steps, run["grad_norm"], label=text("norm_global", lang), linewidth=1, color="black")
    for part, key, color in (("mlp", "norm_mlp_all", "tab:blue"), ("pooler", "norm_pooler", "tab:orange"),
                             ("classifier", "norm_classifier", "tab:green")):
        top.plot(steps, finetuning_bert.part_norm(run, part), label=text(key, lang, n=len(layers)), linewidth=1, color=color)
    top.axhline(clip, color="black", linestyle="--", linewidth=1, label=text("threshold", lang))
    top.set_yscale("log")
    top.set(ylabel=text("grad_norm", lang), title=text("finetune_norms_title", lang))
    _legend_below(top, columns=2, gap=0.03)
    colors = plt.get_cmap("Blues")
    for i, layer in enumerate(layers):
        middle.plot(steps, run["grad_norm_parts"][layer], linewidth=0.8, color=colors(0.35 + 0.65 * i / max(1, len(layers) - 1)),
                    label=text("norm_mlp_layer", lang, i=layer.split(".")[1]))
    middle.axhline(clip, color="black", linestyle="--", linewidth=1)
    middle.set_yscale("log")
    middle.set(ylabel=text("grad_norm", lang))
    _legend_below(middle, columns=3, gap=0.03)
    bottom.plot(steps, run["norm_lost"], color="tab:red", linewidth=1)
    bottom.set(xlabel=text("step", lang), ylabel=text("norm_lost_axis", lang))
    for ax in (top, middle, bottom):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return localize_ticks(fig, lang)


_GPT_STYLE = {"full": ("tab:blue", "-"), "targeted": ("tab:orange", "-"), "reversed": ("tab:green", "--"), "bottom": ("tab:red", "-.")}


def plot_gpt_losses(runs: Sequence[Mapping], lang: str) -> Figure:
    """Lesson 04: training loss per step (left) and held-out loss per evaluation (right), one line per run."""
    check_language(lang)
    _check_runs("runs", runs, "results of targeted_freezing_gpt.run")
    for i, run in enumerate(runs):
        _check_run(f"runs[{i}]", run, ("variant", "loss", "eval_steps", "eval_loss"), "one of targeted_freezing_gpt.run()'s results")
        check_choice(f"runs[{i}]['variant']", run["variant"], tuple(_GPT_STYLE))
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    for run in runs:
        color, style = _GPT_STYLE[run["variant"]]
        label = text(f"gpt_{run['variant']}", lang)
        left.plot(range(len(run["loss"])), run["loss"], color=color, linestyle=style, linewidth=0.8, label=label)
        right.plot(run["eval_steps"], run["eval_loss"], color=color, linestyle=style, marker="o", markersize=3, label=label)
    left.set(xlabel=text("step", lang), ylabel=text("gpt_loss_axis", lang), title=text("gpt_train_title", lang))
    right.set(xlabel=text("step", lang), title=text("gpt_eval_title", lang))
    for ax in (left, right):
        ax.grid(alpha=0.3)
    _legend_below(right)
    fig.tight_layout()
    return localize_ticks(fig, lang)


def plot_loss_scatter(a: Mapping, b: Mapping, lang: str) -> Figure:
    """Lesson 04: model A's held-out loss (x) against model B's (y) at each evaluation, with the line y = x."""
    check_language(lang)
    for name, run in (("a", a), ("b", b)):
        _check_run(name, run, ("eval_steps", "eval_loss"), "one of targeted_freezing_gpt.run()'s results")
        _check_curve(f"{name}['eval_loss']", run["eval_loss"], "one held-out loss per evaluation")
        if len(run["eval_loss"]) != len(run["eval_steps"]):
            raise ValueError(f"{name} must hold one held-out loss per evaluation step, got {len(run['eval_loss'])} losses "
                             f"and {len(run['eval_steps'])} steps")
    if a["eval_steps"] != b["eval_steps"]:
        raise ValueError("the two runs must be evaluated at the same steps")
    fig, ax = plt.subplots(figsize=(5, 4.6))
    points = ax.scatter(a["eval_loss"], b["eval_loss"], c=a["eval_steps"], cmap="viridis", zorder=3)
    low = min(a["eval_loss"] + b["eval_loss"])
    high = max(a["eval_loss"] + b["eval_loss"])
    pad = 0.05 * (high - low)
    ax.plot([low - pad, high + pad], [low - pad, high + pad], color="black", linestyle="--", linewidth=1, label="y = x")
    ax.set(xlabel=text("gpt_loss_a", lang), ylabel=text("gpt_loss_b", lang), title=text("gpt_scatter_title", lang))
    ax.set_aspect("equal")
    fig.colorbar(points, ax=ax, label=text("step", lang), shrink=0.8)
    ax.legend(loc="upper left", fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return localize_ticks(fig, lang)


def _matrix_label(name: str, lang: str) -> str:
    """ "transformer.h.1.attn.c_proj.weight" -> "block 1: c_proj"; a name of another form is shown as it is."""
    found = re.fullmatch(r"(?:transformer\.)?h\.(\d+)\.\w+\.(\w+)\.weight", name)
    return text("gpt_change_matrix", lang, block=found[1], matrix=found[2]) if found else name


def plot_weight_changes(a: Mapping, b: Mapping, lang: str) -> Figure:
    """Lesson 04: |W_t - W_{t-1}|_F per step of each matrix that trains in B, in A (dotted) and in B (solid)."""
    check_language(lang)
    for name, run in (("a", a), ("b", b)):
        _check_run(name, run, ("weight_change",), "one of targeted_freezing_gpt.run()'s results")
    names = sorted(b["weight_change"])
    if not names:
        raise ValueError("run b recorded no weight change: was it run with the WeightChange probe?")
    for name in names:
        if name not in a["weight_change"]:
            raise ValueError(f"run a recorded no weight change of {name!r}, which b trains: were both run with the same probe?")
    fig, ax = plt.subplots(figsize=(10, 4))
    colors = plt.get_cmap("tab10")
    # one legend entry per model (its line style) and one per matrix (its colour), not eight "B: h.0.attn.c_attn"
    handles = [Line2D([], [], color="black", linewidth=0.9, linestyle=style, label=text(key, lang))
               for key, style in (("gpt_change_b", "-"), ("gpt_change_a", ":"))]
    for i, name in enumerate(names):
        for run, style in ((b, "-"), (a, ":")):
            changes = [x if x > 0 else math.nan for x in run["weight_change"][name]]  # a zero rate at step 0: no point on a log axis
            ax.plot(changes, color=colors(i), linewidth=0.9, linestyle=style)
        handles.append(Line2D([], [], color=colors(i), linewidth=2, label=_matrix_label(name, lang)))
    ax.set_yscale("log")
    ax.set(xlabel=text("step", lang), ylabel=text("gpt_change_axis", lang), title=text("gpt_change_title", lang))
    # beside the axes: no curve under it, and the figure stays more than twice as wide as high, so that on a
    # phone the site keeps it wide and lets it scroll (course.js) rather than shrinking it to the screen
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, fontsize=plt.rcParams["ytick.labelsize"])
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return localize_ticks(fig, lang)


def plot_attention_lengths(rows: Sequence[Mapping], lang: str) -> Figure:
    """Lesson 05: time (left) and memory (right) of one attention layer against the length T, fused and written out, log-log."""
    check_language(lang)
    _check_runs("rows", rows, "rows of optimization_options.attention_lengths")
    for i, row in enumerate(rows):
        _check_run(f"rows[{i}]", row, ("length",), "a row of optimization_options.attention_lengths")
    measured = ("fused_ms", "naive_ms", "fused_memory_mb", "naive_memory_mb")
    if not any(row.get(key) is not None for row in rows for key in measured):
        raise ValueError(f"rows hold no measurement: each row of attention_lengths has some of {list(measured)}")
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    lengths = [r["length"] for r in rows]
    for ax, suffix, label in ((axes[0], "ms", "attn_time_axis"), (axes[1], "memory_mb", "attn_memory_axis")):
        for kind, style in (("fused", "o-"), ("naive", "s--")):
            values = [r.get(f"{kind}_{suffix}") for r in rows]
            points = [(t, v) for t, v in zip(lengths, values) if v is not None]
            if points:
                ax.plot(*zip(*points), style, label=text(f"attn_{kind}", lang))
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set(xlabel=text("col_length", lang), ylabel=text(label, lang))
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize="small")
    fig.suptitle(text("attn_title", lang))
    fig.tight_layout()
    return localize_ticks(fig, lang)


def plot_loss_curves(plain: Sequence[float], fast: Sequence[float], lang: str, window: int = 20) -> Figure:
    """Lesson 05: the loss per step of the plain fp32 step and of the fast step, with their moving averages; beside it their gap.

    The fast step's average is dashed (the two curves lie on top of each
    other); the right panel is the gap of the moving averages in per cent,
    with the ±2 % tolerance set before the run.
    """
    check_language(lang)
    _check_curve("plain", plain, "the loss per step of the plain step")
    _check_curve("fast", fast, "the loss per step of the fast step")
    check_int("window", window, 1, unit="steps")
    if len(plain) != len(fast):
        raise ValueError(f"plain and fast must be loss curves of the same length, got {len(plain)} and {len(fast)}")
    if window > len(plain):
        raise ValueError(f"window must be at most the curves' {len(plain)} steps (a moving average over more steps than there "
                         f"are has no point to draw), got {window}")
    fig, (ax, gap) = plt.subplots(1, 2, figsize=(10, 3.8), gridspec_kw={"width_ratios": (3, 2)})
    smooth = {}
    for values, color, style, key in ((plain, "tab:blue", "-", "bench_plain"), (fast, "tab:orange", "--", "bench_fast")):
        curve = torch.tensor(values, dtype=torch.float64)
        ax.plot(range(len(values)), values, color=color, linewidth=0.5, alpha=0.3)
        smooth[key] = curve.unfold(0, window, 1).mean(dim=1)
        ax.plot(range(window - 1, len(values)), smooth[key].tolist(), color=color, linestyle=style, linewidth=1.6,
                label=text(key, lang))  # dashed over solid: the curves lie on top of each other
    ax.set(xlabel=text("step", lang), ylabel=text("gpt_loss_axis", lang), title=text("bench_loss_title", lang))
    ax.grid(alpha=0.3)
    ax.legend()
    steps = range(window - 1, len(plain))
    gap.plot(steps, (100 * (smooth["bench_fast"] / smooth["bench_plain"] - 1)).tolist(), color="tab:orange")
    gap.axhline(0, color="tab:blue", linewidth=1)
    for bound in (-2, 2):  # the tolerance set before the run
        gap.axhline(bound, color="grey", linestyle=":", linewidth=1)
    gap.set(xlabel=text("step", lang), ylabel=text("bench_gap_axis", lang), title=text("bench_gap_title", lang), ylim=(-2.5, 2.5))
    gap.grid(alpha=0.3)
    fig.tight_layout()
    return localize_ticks(fig, lang)


def plot_warmup_losses(runs: Mapping[str, Sequence[History]], eta_max: float, lang: str, uniform: float | None = None) -> Figure:
    """Lesson 01: training loss per step of the tiny GPT, one thin line per seed, one colour per schedule.

    ``runs``: {label: one History per seed}; ``uniform``, when given, is drawn
    as a dashed line (the loss of a uniform guess, ln of the vocabulary size).
    """
    check_language(lang)
    check_number("eta_max", eta_max, "> 0 and finite (the peak rate the runs used)", lambda v: 0 < v < math.inf)
    _check_entries("runs", runs, lambda group: isinstance(group, (list, tuple)) and len(group) > 0
                   and all(isinstance(h, History) and h.loss for h in group),
                   "a non-empty list of Histories (one per seed), e.g. [train_tiny_gpt(eta, w, seed) for seed in GPT_SEEDS]")
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for colour, (label, group) in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"], runs.items()):
        for i, history in enumerate(group):
            ax.plot(range(len(history.loss)), history.loss, color=colour, linewidth=0.9, alpha=0.8, label=label if i == 0 else None)
    if uniform is not None:
        check_number("uniform", uniform, "a finite number (a loss)", math.isfinite)
        ax.axhline(uniform, color="grey", linestyle="--", linewidth=0.8)
    ax.set(xlabel=text("step", lang), ylabel=text("gpt_loss_axis", lang), title=text("gpt_warmup_title", lang, eta=plain(eta_max, lang)))
    ax.grid(alpha=0.3)
    _legend_below(ax)
    fig.tight_layout()
    return localize_ticks(fig, lang)
