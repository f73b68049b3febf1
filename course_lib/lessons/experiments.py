"""The measurements lessons 01 and 02 report, as numbers (``course_lib.show.tables`` formats them).

Convention for the softmax toy: ``t`` counts updates done, so ``w1[t]`` is
the weight after ``t`` updates and ``tau[t] = eta_0 + ... + eta_{t-1}``.
Comparisons over seeds return a :class:`Spread` (mean, standard error of the
mean, number of seeds), so every ranking the lessons state can be checked
against its uncertainty.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import torch

from course_lib.engine._checks import check_int
from course_lib.engine.clipping import LayerGradNorms, clip_grad_norm_, clip_grad_norm_per_layer_, norm_lost
from course_lib.engine.schedules import Schedule
from course_lib.models.toy import body_and_head, train_softmax_toy
from course_lib.engine.training import History

__all__ = [
    "Spread",
    "spread",
    "accumulated_rate",
    "integral_prediction",
    "integral_law_holds_until",
    "run_seeds",
    "settled_step",
    "late_excess",
    "late_jitter",
    "ScheduleStats",
    "schedule_stats",
    "PairedDifference",
    "paired_difference",
    "ClippingStats",
    "clipping_stats",
    "layer_clipping",
    "INITS",
    "value_ranges",
]


@dataclass(frozen=True)
class Spread:
    """Mean over seeds, its standard error (sample std / sqrt(n); 0 for one seed) and the number of seeds."""

    mean: float
    sem: float
    n: int


def spread(values: Sequence[float]) -> Spread:
    values = list(values)
    if not values:
        raise ValueError("spread needs at least one value")
    sem = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return Spread(statistics.fmean(values), sem, len(values))


# ---------------------------------------------------------------------------------------------- lesson 01


def accumulated_rate(history: History) -> list[float]:
    """tau[t] = eta_0 + ... + eta_{t-1}, for t = 0 .. number of updates: the "time" gradient flow sees."""
    out, total = [0.0], 0.0
    for rate in history.lr:
        total += rate
        out.append(total)
    return out


def integral_prediction(history: History, target_prob: float = 1.0) -> list[float]:
    """w1[t] predicted by "weights grow like the integral of the rate".

    At the start p = (1/2, 1/2), so the expected gradient of w1 is
    -(q - 1/2); if it stayed constant, w1[t] = (q - 1/2) * tau[t].
    """
    return [(target_prob - 0.5) * tau for tau in accumulated_rate(history)]


def integral_law_holds_until(history: History, tolerance: float = 0.1, target_prob: float = 1.0) -> int | None:
    """Last t at which w1[t] is within ``tolerance`` (relative) of the prediction; None if always."""
    if not 0 < tolerance < 1:
        raise ValueError(f"tolerance must be in (0, 1) (a relative error), got {tolerance!r}")
    for t, (actual, guess) in enumerate(zip(history.metric("w1"), integral_prediction(history, target_prob))):
        if guess > 0 and abs(actual - guess) > tolerance * guess:
            return t - 1
    return None


def run_seeds(schedule: Schedule, eta_max: float, num_steps: int, seeds: Sequence[int], **toy: object) -> list[History]:
    """The same experiment over several label draws (one run per seed)."""
    if len(seeds) < 1:
        raise ValueError(f"seeds must hold at least one seed, got {seeds!r}")
    return [train_softmax_toy(schedule, eta_max, num_steps, seed=seed, **toy) for seed in seeds]


def settled_step(history: History, excess: float) -> int | None:
    """First t after which the excess loss stays below ``excess`` to the end (None if it ends above)."""
    values = history.metric("excess_loss")
    if values[-1] >= excess:
        return None
    t = len(values) - 1
    while t > 0 and values[t - 1] < excess:
        t -= 1
    return t


def _last_quarter(values: list[float]) -> list[float]:
    return values[-max(1, (len(values) - 1) // 4):]


def late_excess(history: History) -> float:
    """Mean excess loss over the last quarter of training."""
    values = _last_quarter(history.metric("excess_loss"))
    return sum(values) / len(values)


def late_jitter(history: History) -> float:
    """Mean |change of w1 - w2| per update over the last quarter of training."""
    gap = [a - b for a, b in zip(history.metric("w1"), history.metric("w2"))]
    start = max(1, int(len(gap) * 0.75))
    moves = [abs(gap[t] - gap[t - 1]) for t in range(start, len(gap))]
    return sum(moves) / len(moves)


@dataclass(frozen=True)
class ScheduleStats:
    """One schedule over its seeds: late excess loss, settling step (of the seeds that settle), jitter, final rate."""

    late_excess: Spread
    settled: Spread | None
    never_settled: int
    jitter: Spread
    final_lr: float


def schedule_stats(runs: Mapping[str, Sequence[History]], excess: float = 0.01) -> dict[str, ScheduleStats]:
    out = {}
    for name, group in runs.items():
        settled = [s for s in (settled_step(h, excess) for h in group) if s is not None]
        out[name] = ScheduleStats(
            late_excess=spread(late_excess(h) for h in group),
            settled=spread(settled) if settled else None,
            never_settled=len(group) - len(settled),
            jitter=spread(late_jitter(h) for h in group),
            final_lr=group[0].lr[-1],
        )
    return out


@dataclass(frozen=True)
class PairedDifference:
    """Per seed, a - b: its mean and standard error, and in how many seeds a < b."""

    difference: Spread
    a_lower: int


def paired_difference(a: Sequence[History], b: Sequence[History], measure: Callable[[History], float] = late_excess) -> PairedDifference:
    """Compare two schedules seed by seed (they saw the same mini-batches), not only on average."""
    if len(a) != len(b):
        raise ValueError(f"a and b must hold runs of the same seeds, got {len(a)} and {len(b)} runs")
    pairs = [(measure(x), measure(y)) for x, y in zip(a, b)]
    return PairedDifference(spread(x - y for x, y in pairs), sum(x < y for x, y in pairs))


# ---------------------------------------------------------------------------------------------- lesson 02


@dataclass(frozen=True)
class ClippingStats:
    final_loss: float
    largest_step: float
    steps_to_target: int | None
    diverged: bool
    norm_lost: float


def clipping_stats(history: History, target: float = 1e-3, blown_up: float = 1e6) -> ClippingStats:
    """Final loss, largest update, first step with loss < ``target``, divergence, and the norm clipping removed."""
    reached = next((t for t, loss in enumerate(history.loss) if loss < target), None)
    diverged = any(not math.isfinite(v) or v > blown_up for v in history.loss) or any(history.skipped)
    lost = sum(norm_lost(g, c) for g, c in zip(history.grad_norm, history.threshold) if math.isfinite(g))
    return ClippingStats(history.loss[-1], max(history.metric("update_norm")), reached, diverged, lost)


def layer_clipping(max_norm: float, seed: int = 0) -> dict[str, dict[str, float]]:
    """Global vs per-layer clipping of the same gradients of :func:`~course_lib.models.toy.body_and_head`.

    Per layer: its norm before clipping, after global clipping and after
    per-layer clipping, and the two factors.
    """
    layers = {"body": r"^0\.", "head": r"^1\."}

    def norms(model):
        return {name: value.item() for name, value in LayerGradNorms(model.named_parameters(), layers)().items()}

    raw = norms(body_and_head(seed))
    model = body_and_head(seed)
    clip_grad_norm_(model.parameters(), max_norm)
    after_global = norms(model)
    model = body_and_head(seed)
    clip_grad_norm_per_layer_({"body": model[0].parameters(), "head": model[1].parameters()}, max_norm)
    after_layer = norms(model)
    return {
        name: {
            "raw": raw[name],
            "after_global": after_global[name],
            "factor_global": after_global[name] / raw[name],
            "after_per_layer": after_layer[name],
            "factor_per_layer": after_layer[name] / raw[name],
        }
        for name in layers
    }


INITS = ("normal", "uniform", "he")


def value_ranges(depth: int = 16, width: int = 128, seed: int = 0) -> dict[tuple[str, bool], dict[str, float]]:
    """How initialization and LayerNorm keep |activations| and |g| in range, in a deep ReLU network.

    For each weight initialization (N(0, 1); PyTorch's default for ``Linear``,
    U(-1/sqrt(n), 1/sqrt(n)); He's N(0, 2/n)) with and without a LayerNorm
    after every linear layer: the RMS of the network's output on a batch of
    standard normal inputs, and the gradient norm of the first layer's weights
    for the loss mean(output^2).  Float32, so a norm can overflow to inf.
    """
    check_int("depth", depth, 1, unit="layers")
    check_int("width", width, 2, unit="units per layer")
    out = {}
    for init in INITS:
        for norm in (False, True):
            generator = torch.Generator().manual_seed(seed)
            layers = []
            for _ in range(depth):
                linear = torch.nn.Linear(width, width)
                with torch.no_grad():
                    if init == "normal":
                        linear.weight.normal_(0.0, 1.0, generator=generator)
                    elif init == "he":
                        linear.weight.normal_(0.0, math.sqrt(2.0 / width), generator=generator)
                    else:
                        linear.weight.uniform_(-1 / math.sqrt(width), 1 / math.sqrt(width), generator=generator)
                    linear.bias.zero_()
                layers += [linear, torch.nn.LayerNorm(width)] if norm else [linear]
                layers.append(torch.nn.ReLU())
            model = torch.nn.Sequential(*layers)
            output = model(torch.randn(64, width, generator=generator))
            output.pow(2).mean().backward()
            out[(init, norm)] = {
                "output_rms": output.detach().pow(2).mean().sqrt().item(),
                "first_grad_norm": model[0].weight.grad.norm().item(),
            }
    return out
