"""Lesson 01's experiments (notebooks/*/01_lr_schedules): the softmax toy under different schedules, as numbers.

Convention for the softmax toy: ``t`` counts updates done, so ``w1[t]`` is
the weight after ``t`` updates and ``tau[t] = eta_0 + ... + eta_{t-1}``.
Comparisons over seeds return a :class:`~course_lib.engine.stats.Spread`
(mean, standard error of the mean, number of seeds), so every ranking the
lesson states can be checked against its uncertainty; the reader-facing
tables are :mod:`course_lib.show.tables`'.

Warm-up where it matters: :func:`train_tiny_gpt` trains lesson 05's tiny GPT
with AdamW at a chosen peak rate, with or without a linear warm-up, through
the course's one loop, in float64 so that every CPU prints the same digits;
:func:`late_loss` summarises a run.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import torch

from course_lib.engine._checks import check_int, check_number, check_type, shown
from course_lib.engine.data import default_dtype
from course_lib.engine.schedules import Schedule, ScheduledLR, check_eta_max, cosine_with_warmup
from course_lib.engine.stats import Spread, spread
from course_lib.engine.training import History, train
from course_lib.lessons.corpus import TokenWindows
from course_lib.lessons.data_parallel import TINY_GPT
from course_lib.lessons.finetuning_bert import check_seeds
from course_lib.models.gpt import GPT, lm_loss
from course_lib.models.toy import train_softmax_toy

__all__ = [
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
    "GPT_STEPS",
    "GPT_SEEDS",
    "tiny_gpt",
    "phrase_batches",
    "train_tiny_gpt",
    "late_loss",
    "one_thread",
]


def _check_history(history, name: str = "history") -> None:
    check_type(name, history, History, "a History (what train_softmax_toy or train returns)")


def _check_target(target_prob) -> None:
    check_number("target_prob", target_prob, "in (0.5, 1] (the label's probability, as in train_softmax_toy)",
                 lambda q: 0.5 < q <= 1)


def _check_excess(excess) -> None:
    check_number("excess", excess, "a finite excess loss > 0", lambda v: 0 < v < math.inf)


def _check_runs(runs, name: str = "runs") -> None:
    """A non-empty mapping {name: [History, ...]}, every group holding at least one run."""
    check_type(name, runs, Mapping, "a dict {schedule name: list of Histories (one per seed)}")
    if not runs:
        raise ValueError(f"{name} is empty: give at least one schedule's runs")
    for key, group in runs.items():
        if isinstance(group, History) or not isinstance(group, (list, tuple)):
            raise TypeError(f"{name}[{key!r}] must be a list of Histories (one per seed), got {shown(group)}")
        if not group:
            raise ValueError(f"{name}[{key!r}] holds no run: give at least one seed's History")
        for i, history in enumerate(group):
            _check_history(history, f"{name}[{key!r}][{i}]")


def accumulated_rate(history: History) -> list[float]:
    """tau[t] = eta_0 + ... + eta_{t-1}, for t = 0 .. number of updates: the "time" gradient flow sees."""
    _check_history(history)
    if not history.lr:
        raise ValueError("history is empty: it recorded no update (train it with train_softmax_toy)")
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
    _check_target(target_prob)
    return [(target_prob - 0.5) * tau for tau in accumulated_rate(history)]


def integral_law_holds_until(history: History, tolerance: float = 0.1, target_prob: float = 1.0) -> int | None:
    """Last t at which w1[t] is within ``tolerance`` (relative) of the prediction; None if always."""
    check_number("tolerance", tolerance, "in (0, 1) (a relative error)", lambda v: 0 < v < 1)
    _check_history(history)
    _check_target(target_prob)
    for t, (actual, guess) in enumerate(zip(_recorded(history, "w1"), integral_prediction(history, target_prob))):
        if guess > 0 and abs(actual - guess) > tolerance * guess:
            return t - 1
    return None


def run_seeds(schedule: Schedule, eta_max: float, num_steps: int, seeds: Sequence[int], **toy: object) -> list[History]:
    """The same experiment over several label draws (one run per seed)."""
    check_type("seeds", seeds, (list, tuple, range), "a list of seeds (ints)")
    if len(seeds) < 1:
        raise ValueError(f"seeds must hold at least one seed, got {seeds!r}")
    check_seeds("seeds", tuple(seeds))
    return [train_softmax_toy(schedule, eta_max, num_steps, seed=seed, **toy) for seed in seeds]


def settled_step(history: History, excess: float) -> int | None:
    """First t after which the excess loss stays below ``excess`` to the end (None if it ends above)."""
    _check_history(history)
    _check_excess(excess)
    values = _recorded(history, "excess_loss")
    if values[-1] >= excess:
        return None
    t = len(values) - 1
    while t > 0 and values[t - 1] < excess:
        t -= 1
    return t


def _recorded(history: History, name: str) -> list[float]:
    """The values of ``name``, at least one: a summary of no step means nothing."""
    if name not in history.metric_names():
        raise ValueError(f"history recorded no {name!r} (it recorded {sorted(history.metrics)}): pass a run of the softmax toy "
                         "(train it with train_softmax_toy)")
    values = history.metric(name)
    if not values:
        raise ValueError(f"history recorded no value of {name!r}: train at least one step")
    return values


def _last_quarter(values: list[float]) -> list[float]:
    return values[-max(1, (len(values) - 1) // 4):]


def late_excess(history: History) -> float:
    """Mean excess loss over the last quarter of training."""
    _check_history(history)
    values = _last_quarter(_recorded(history, "excess_loss"))
    return sum(values) / len(values)


def late_jitter(history: History) -> float:
    """Mean |change of w1 - w2| per update over the last quarter of training."""
    _check_history(history)
    gap = [a - b for a, b in zip(_recorded(history, "w1"), _recorded(history, "w2"))]
    if len(gap) < 2:
        raise ValueError("history recorded w1 and w2 once: the jitter needs at least one update (train at least one step)")
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
    """:class:`ScheduleStats` of each schedule's runs (``runs``: {name: one History per seed})."""
    _check_runs(runs)
    _check_excess(excess)
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
    for name, group in (("a", a), ("b", b)):
        if isinstance(group, History) or not isinstance(group, (list, tuple)):
            raise TypeError(f"{name} must be a list of Histories (one per seed), got {shown(group)}")
    if not callable(measure):
        raise TypeError(f"measure must be a function History -> number (e.g. late_excess), got {shown(measure)}")
    if len(a) != len(b):
        raise ValueError(f"a and b must hold runs of the same seeds, got {len(a)} and {len(b)} runs")
    if not a:
        raise ValueError("a and b hold no run: give one History per seed in each")
    pairs = [(measure(x), measure(y)) for x, y in zip(a, b)]
    return PairedDifference(spread(x - y for x, y in pairs), sum(x < y for x, y in pairs))


# ------------------------------------------------------------------------------------------------ warm-up on a tiny GPT

GPT_STEPS = 120  # optimizer steps of one run of the tiny GPT
GPT_SEEDS = range(5)  # each seed: its own initial weights, phrase and batch order, shared by the runs compared
LATE_STEPS = 20  # late_loss averages the last 20 of the 120 steps: one batch's loss is noisy


@contextlib.contextmanager
def one_thread():
    """Run the block on one CPU thread, then restore the thread count.

    The tiny GPT's matrices are too small to share out: a second thread only
    waits for the first, and on a busy 2-core machine a run took 9 times
    longer on two threads than on one.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def tiny_gpt(seed: int) -> GPT:
    """Lesson 05's tiny GPT (:data:`~course_lib.lessons.data_parallel.TINY_GPT`), its weights drawn from ``seed``.

    Built in float64, not converted to it: then every CPU, vector width and
    thread count trains it to the same printed digits (at rates where training
    is stable).  The global random state is left as it was.
    """
    check_int("seed", seed, 0, unit="seed units")
    with torch.random.fork_rng(devices=[]), default_dtype(torch.float64):
        torch.manual_seed(seed)
        return GPT(TINY_GPT)


def phrase_batches(seed: int, batch_size: int = 8) -> TokenWindows:
    """Batch ``m``: ``batch_size`` windows of 17 tokens from a random phrase of 64 tokens repeated 32 times.

    Lesson 05's data: nothing to download, learnable (the next token follows
    from the ones before it), and a pure function of ``seed`` and ``m``.
    """
    check_int("seed", seed, 0, unit="seed units")
    phrase = torch.randint(TINY_GPT.vocab_size, (64,), generator=torch.Generator().manual_seed(seed))
    return TokenWindows(phrase.repeat(32), batch_size=batch_size, length=TINY_GPT.block_size, seed=seed)


def train_tiny_gpt(eta_max: float, num_warmup_steps: int, seed: int, steps: int = GPT_STEPS) -> History:
    """The tiny GPT trained by AdamW at peak rate ``eta_max``: a linear warm-up, then a half cosine to 0 at ``steps``.

    ``num_warmup_steps=0`` starts at the peak.  Runs of one ``seed`` share
    their initial weights and batches, so they differ only by the schedule.
    """
    check_eta_max(eta_max)
    model = tiny_gpt(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=eta_max)
    scheduler = ScheduledLR(optimizer, cosine_with_warmup(num_warmup_steps, steps))
    with one_thread():
        return train(model, optimizer, phrase_batches(seed), lm_loss, steps, scheduler=scheduler, precision="fp64",
                     log_every=steps)


def late_loss(history: History, last: int = LATE_STEPS) -> float:
    """Mean training loss over the last ``last`` steps of a run (all of them if it is shorter)."""
    _check_history(history)
    check_int("last", last, 1, unit="steps")
    if not history.loss:
        raise ValueError("history recorded no loss: train at least one step")
    values = history.loss[-last:]
    return sum(values) / len(values)
