"""Numbers over seeds (the mean, its standard error and how many seeds, so a comparison can be read against its
uncertainty) and the distance between two loss curves."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Sequence

import torch

from course_lib.engine._checks import check_int, check_number, shown

__all__ = ["Spread", "spread", "noise_variance", "curve_agreement"]


@dataclass(frozen=True)
class Spread:
    """Mean over seeds, its standard error (sample std / sqrt(n); 0 for one seed) and the number of seeds."""

    mean: float
    sem: float
    n: int

    def __post_init__(self) -> None:
        check_number("mean", self.mean, "a real number (NaN or inf for a diverged seed)", lambda v: True)
        check_number("sem", self.sem, ">= 0 (NaN when a seed diverged)", lambda v: v >= 0 or math.isnan(v))
        check_int("n", self.n, 1, unit="seeds")
        if self.n == 1 and self.sem != 0:
            raise ValueError(f"sem must be 0 for one seed (n=1), got {self.sem!r}")


def _numbers(name: str, values, allowed: str, ok) -> list[float]:
    """``values`` as a list of real numbers (not bools, not strings), each with ``ok(v)`` true."""
    if isinstance(values, (str, bytes, torch.Tensor)) or not isinstance(values, Iterable):
        raise TypeError(f"{name} must be a list of numbers, got {shown(values)}")
    return [check_number(f"{name}[{i}]", value, allowed, ok) for i, value in enumerate(values)]


def spread(values: Sequence[float]) -> Spread:
    """The :class:`Spread` of one number per seed; a NaN or an infinity among them gives a NaN standard error."""
    values = _numbers("values", values, "a real number (one per seed)", lambda v: True)
    if not values:
        raise ValueError("spread needs at least one value")
    if len(values) == 1:
        sem = 0.0
    elif all(math.isfinite(v) for v in values):
        sem = statistics.stdev(values) / math.sqrt(len(values))
    else:
        sem = math.nan  # statistics.stdev fails on a NaN; the spread of a diverged run is not a number
    return Spread(statistics.fmean(values), sem, len(values))


def noise_variance(losses: Sequence[float]) -> float:
    """Var(L_t - L_{t-1}) / 2: the step-to-step noise (jitter) of a loss curve, without its trend (lessons 03, 04).

    If L_t = trend_t + e_t with independent noise of variance s^2 and a trend
    that moves little in one step, each difference has variance 2 s^2: halving
    gives s^2, whatever the trend does over the window.  Needs at least 3 finite losses.
    """
    if isinstance(losses, (str, bytes, torch.Tensor)) or not isinstance(losses, (list, tuple)) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in losses):
        raise TypeError(f"losses must be a list of losses, one per step: a list of numbers, got {shown(losses)}")
    for i, value in enumerate(losses):
        if not math.isfinite(value):
            raise ValueError(f"losses[{i}] must be a finite number (a list of losses, one per step), got {value!r}")
    if len(losses) < 3:
        raise ValueError(f"losses must hold at least 3 losses (two differences to take a variance of), got {len(losses)}")
    diffs = [b - a for a, b in zip(losses, losses[1:])]
    return statistics.variance(diffs) / 2


def curve_agreement(reference: list[float], other: list[float], window: int = 20) -> dict:
    """How far ``other``'s loss curve is from ``reference``'s: relative gaps of their ``window``-step moving averages.

    Returns the largest gap over the run (``max_gap``, after the first window)
    and the gap of the last window's means (``final_gap``).
    """
    check_int("window", window, 1)
    reference = _numbers("reference", reference, "a finite loss > 0 (the gaps are relative to it)", lambda v: 0 < v < math.inf)
    other = _numbers("other", other, "a finite loss >= 0", lambda v: 0 <= v < math.inf)
    if len(reference) != len(other) or len(reference) < window:
        raise ValueError(f"the curves must have the same length, at least window={window}: got {len(reference)} and {len(other)}")
    ref, oth = torch.tensor(reference, dtype=torch.float64), torch.tensor(other, dtype=torch.float64)
    kernel = torch.ones(1, 1, window, dtype=torch.float64) / window
    smooth = lambda x: torch.nn.functional.conv1d(x.view(1, 1, -1), kernel).view(-1)
    gaps = (smooth(oth) - smooth(ref)).abs() / smooth(ref)
    return {"window": window, "max_gap": float(gaps.max()), "final_gap": float(gaps[-1]),
            "reference_final": float(smooth(ref)[-1]), "other_final": float(smooth(oth)[-1])}
