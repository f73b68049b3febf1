"""One helper per kind of figure, labelled in the notebook's language."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from .i18n import check_language, text
from .toy import ToyRun, accumulated_rate, integral_prediction


def plot_rates(curves: Mapping[str, Sequence[float]], lang: str, ax=None) -> Figure:
    """Learning rate against optimizer step, one line per schedule."""
    check_language(lang)
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 3.5))
    for label, rates in curves.items():
        ax.plot(range(len(rates)), rates, label=label)
    ax.set(xlabel=text("step", lang), ylabel=text("lr", lang), title=text("lr_title", lang))
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_integral_law(runs: Mapping[str, ToyRun], lang: str) -> Figure:
    """Rates; w1 against the step; w1 against the accumulated rate tau = sum of eta.

    The last panel is where "weights grow like the integral of the rate" is
    tested: the dashed line is the constant-gradient prediction.
    """
    check_language(lang)
    fig, (rates, by_step, by_tau) = plt.subplots(3, 1, figsize=(7, 9))
    plot_rates({name: run.lr for name, run in runs.items()}, lang, ax=rates)
    for name, run in runs.items():
        by_step.plot(run.w1, label=name)
        by_tau.plot(accumulated_rate(run), run.w1, label=name)
    longest = max(runs.values(), key=lambda run: accumulated_rate(run)[-1])
    by_tau.plot(accumulated_rate(longest), integral_prediction(longest), "k--", label=text("prediction", lang))
    by_step.set(xlabel=text("step", lang), ylabel=text("w1", lang), title=text("w1_title", lang))
    by_tau.set(xlabel=text("tau", lang), ylabel=text("w1", lang), title=text("tau_title", lang))
    by_tau.set_ylim(0, 1.3 * max(max(run.w1) for run in runs.values()))
    by_tau.legend(fontsize="small")
    for ax in (by_step, by_tau):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_excess_loss(runs: Mapping[str, ToyRun], lang: str) -> Figure:
    """Excess expected loss L - H(q) per step on a log scale, one line per schedule."""
    check_language(lang)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for name, run in runs.items():
        ax.plot([max(e, 1e-7) for e in run.excess_loss], label=name, linewidth=1)
    ax.set_yscale("log")
    ax.set(xlabel=text("step", lang), ylabel=text("excess", lang), title=text("excess_title", lang))
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
