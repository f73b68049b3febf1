"""The schedule explorer (sliders in Jupyter and Colab, a still figure on the static site) and the progress bar in the reader's language.

The explorer's display bundle carries both the live widget and a PNG of the
figure at the default slider values.  Jupyter and Colab draw the widget; the
book is configured to skip widget views, so the site shows the PNG.
"""

from __future__ import annotations

import base64
import io
import math

import ipywidgets as widgets
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from course_lib.engine._checks import check_between, check_int, check_number, check_type
from course_lib.engine.callbacks import Progress
from course_lib.engine.schedules import check_eta_max, cosine_with_warmup
from course_lib.i18n import check_language, number, text
from course_lib.models.toy import train_softmax_toy
from course_lib.show.plotting import plot_rates

_TOTAL = (20, 1000)  # the sliders' ranges
_CYCLES = (0.25, 4.0)
_ETA_MIN = (0.0, 1.0)
_DPI = 150  # twice the pixels of the width shown, so the still image stays sharp on a phone's screen
_WIDTH = 560  # the width at which Jupyter, Colab and the site show it, in CSS pixels
_VIEW = "application/vnd.jupyter.widget-view+json"  # the live widget's entry of a display bundle


def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes; the figure is closed so it is not shown a second time."""
    check_type("fig", fig, Figure, "a matplotlib Figure, e.g. from plot_rates")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI)
    plt.close(fig)
    return buffer.getvalue()


def explorer_figure(
    warmup: int, total: int, cycles: float, eta_min: float, lang: str, eta_max: float = 1.0
) -> Figure:
    """Rate of warm-up + cosine(C, eta_min) above, the noisy toy trained with it below (narrow enough for a phone)."""
    check_language(lang)
    check_int("total", total, minimum=1)
    check_int("warmup", warmup, 0, total)
    check_number("cycles", cycles, "a finite number > 0", lambda v: 0 < v < math.inf)
    check_eta_max(eta_max)
    check_between("eta_min", eta_min, 0.0, eta_max, "eta_min may not exceed eta_max")
    schedule = cosine_with_warmup(warmup, total, num_cycles=cycles, min_lr_ratio=eta_min / eta_max)
    run = train_softmax_toy(schedule, eta_max, total, target_prob=0.9, seed=0)
    fig, (left, right) = plt.subplots(2, 1, figsize=(_WIDTH / 80, 6))
    plot_rates({"η(t)": run.lr}, lang, ax=left)
    left.get_legend().remove()
    left.set_title(
        text(
            "explorer_title",
            lang,
            warmup=warmup,
            total=total,
            cycles=number(cycles, lang, 2),
            eta_min=number(eta_min, lang, 2),
        ),
        fontsize="small",
    )
    right.plot([max(e, 1e-7) for e in run.metric("excess_loss")], linewidth=1)
    right.set_yscale("log")
    right.set(xlabel=text("step", lang), ylabel=text("excess", lang))
    right.grid(alpha=0.3)
    fig.tight_layout()
    return fig


class ScheduleExplorer(widgets.VBox):
    """Sliders for warm-up, total steps T, cycles C and eta_min, over a live figure."""

    def __init__(self, lang: str, warmup: int = 20, total: int = 300, cycles: float = 0.5, eta_min: float = 0.0):
        self.lang = check_language(lang)
        check_int("total", total, *_TOTAL)
        check_int("warmup", warmup, 0, total)
        check_between("cycles", cycles, *_CYCLES, "the slider's range")
        check_between("eta_min", eta_min, *_ETA_MIN, "the slider's range, as a fraction of eta_max")
        style = {"description_width": "initial"}
        self.total = widgets.IntSlider(value=total, min=_TOTAL[0], max=_TOTAL[1], step=10, description=text("total_slider", lang), style=style)
        self.warmup = widgets.IntSlider(value=warmup, min=0, max=total, step=1, description=text("warmup_slider", lang), style=style)
        self.cycles = widgets.FloatSlider(value=cycles, min=_CYCLES[0], max=_CYCLES[1], step=0.25, description=text("cycles_slider", lang), style=style)
        self.eta_min = widgets.FloatSlider(value=eta_min, min=_ETA_MIN[0], max=_ETA_MIN[1], step=0.05, description=text("eta_min_slider", lang), style=style)
        self.image = widgets.Image(format="png", width=_WIDTH)
        self.total.observe(self._limit_warmup, "value")
        for slider in (self.total, self.warmup, self.cycles, self.eta_min):
            slider.observe(self._redraw, "value")
        super().__init__([widgets.HBox([self.warmup, self.total]), widgets.HBox([self.cycles, self.eta_min]), self.image])
        self._redraw()

    def _limit_warmup(self, change: dict) -> None:
        self.warmup.max = change["new"]

    def _redraw(self, change: dict | None = None) -> None:
        fig = explorer_figure(self.warmup.value, self.total.value, self.cycles.value, self.eta_min.value, self.lang)
        self.image.value = figure_png(fig)
        if change is None:
            self._still = self.image.value

    def _repr_mimebundle_(self, **kwargs) -> dict:
        # ipywidgets 8 builds the live view here; 7 (Colab's 7.7.1) has no such method: the same entry is made here
        parent = getattr(super(), "_repr_mimebundle_", None)
        bundle = (parent(**kwargs) if parent else None) or {}
        if parent is None and self._view_name is not None:
            bundle[_VIEW] = {"version_major": 2, "version_minor": 0, "model_id": self._model_id}
        bundle["image/png"] = base64.b64encode(self._still).decode("ascii")
        bundle["text/plain"] = text("explorer_text", self.lang)
        return bundle, {"image/png": {"width": _WIDTH}}

    if hasattr(widgets.Widget, "_ipython_display_"):  # ipywidgets 7: IPython displays through this, not the bundle

        def _ipython_display_(self, **kwargs) -> None:
            from IPython.display import display

            bundle, metadata = self._repr_mimebundle_()
            display(bundle, metadata=metadata, raw=True)
            if _VIEW in bundle:
                self._handle_displayed(**kwargs)


def progress_bar(lang: str) -> Progress:
    """The loop's progress bar (:class:`~course_lib.engine.callbacks.Progress`) with its words and numbers in ``lang``."""
    check_language(lang)
    # Vietnamese writes a space before the per cent sign: tqdm's own left part, with that space
    bar_format = "{desc}: {percentage:3.0f} %|{bar}{r_bar}" if lang == "vi" else None
    return Progress(text("progress_desc", lang), text("progress_unit", lang),
                    lambda loss: f"{text('progress_loss', lang)} {number(loss, lang, 4)}", bar_format=bar_format)
