"""The toy models of lessons 01 and 02, and the measurements the lessons report.

Lesson 01: the two-weight softmax model.

Two logits ``w = (w1, w2)``; the target is class 1, so training should make
``w1 > w2``.  Each step draws a mini-batch of labels: class 1 with
probability ``target_prob`` (``1.0`` is the noiseless toy of the notes).
The loss is the mean cross-entropy ``-log softmax(w)[y]`` over the batch,
minimised with plain SGD, the rate set by a :class:`~course_lib.schedules.Schedule`.

With ``target_prob = q`` the best reachable expected loss is the entropy
``H(q) = -q log q - (1 - q) log(1 - q)``, reached at ``w1 - w2 = log(q / (1 - q))``.

Lesson 02: the quadratic L(w) = sum w_i^2 trained through the course's loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .clipping import LayerGradNorms, clip_grad_norm, clip_grad_norm_per_layer, norm_lost
from .i18n import number, significant, text
from .report import Table
from .schedules import Schedule, ScheduledLR
from .training import History, train

__all__ = [
    "ToyRun",
    "train_softmax_toy",
    "expected_loss",
    "best_loss",
    "accumulated_rate",
    "integral_prediction",
    "integral_law_table",
    "integral_law_holds_until",
    "run_seeds",
    "settled_step",
    "late_excess",
    "compare_schedules",
    "QuadraticToy",
    "train_quadratic",
    "compare_clipping",
    "body_and_head",
    "compare_layer_clipping",
]


def expected_loss(w1: float, w2: float, target_prob: float) -> float:
    """Expected cross-entropy over the label distribution: logsumexp(w) - (q w1 + (1-q) w2)."""
    lse = max(w1, w2) + math.log1p(math.exp(-abs(w1 - w2)))
    return lse - (target_prob * w1 + (1.0 - target_prob) * w2)


def best_loss(target_prob: float) -> float:
    """H(q): the lowest expected loss any weights can reach."""
    q = target_prob
    return 0.0 if q in (0.0, 1.0) else -(q * math.log(q) + (1 - q) * math.log(1 - q))


@dataclass
class ToyRun:
    """Per-step history of one toy run; index t is the state after t updates."""

    lr: list[float] = field(default_factory=list)
    w1: list[float] = field(default_factory=list)
    w2: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    target_prob: float = 1.0

    @property
    def excess_loss(self) -> list[float]:
        """Expected loss minus the best reachable one, H(q)."""
        floor = best_loss(self.target_prob)
        return [value - floor for value in self.loss]

    def steps_to(self, excess: float) -> int | None:
        """First step at which the excess loss is below ``excess`` (None if never)."""
        return next((t for t, e in enumerate(self.excess_loss) if e < excess), None)

    def late_jitter(self, fraction: float = 0.25) -> float:
        """Mean |change of w1 - w2| per step over the last ``fraction`` of the run."""
        gap = [a - b for a, b in zip(self.w1, self.w2)]
        start = max(1, int(len(gap) * (1 - fraction)))
        moves = [abs(gap[t] - gap[t - 1]) for t in range(start, len(gap))]
        return sum(moves) / len(moves)


def train_softmax_toy(
    schedule: Schedule,
    eta_max: float,
    num_steps: int,
    *,
    target_prob: float = 1.0,
    batch_size: int = 8,
    seed: int = 0,
) -> ToyRun:
    """Train the toy with SGD for ``num_steps`` updates; weights start at (0, 0).

    The labels come from a generator seeded with ``seed``, so two schedules
    run with the same seed see exactly the same mini-batches.
    """
    if not 0.5 < target_prob <= 1.0:
        raise ValueError(f"target_prob must be in (0.5, 1] so that w1 > w2 is the goal, got {target_prob}")
    if num_steps < 1 or batch_size < 1:
        raise ValueError(f"num_steps and batch_size must be >= 1, got {num_steps} and {batch_size}")
    generator = torch.Generator().manual_seed(seed)
    labels = (torch.rand(num_steps, batch_size, generator=generator) >= target_prob).long()

    w = torch.zeros(2, requires_grad=True)
    optimizer = torch.optim.SGD([w], lr=eta_max)
    scheduler = ScheduledLR(optimizer, schedule)
    run = ToyRun(target_prob=target_prob)

    def record() -> None:
        w1, w2 = w.tolist()
        run.w1.append(w1)
        run.w2.append(w2)
        run.loss.append(expected_loss(w1, w2, target_prob))

    record()
    for t in range(num_steps):
        run.lr.append(optimizer.param_groups[0]["lr"])
        loss = F.cross_entropy(w.expand(batch_size, 2), labels[t])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        record()
    return run


def accumulated_rate(run: ToyRun) -> list[float]:
    """tau(t) = eta_0 + ... + eta_{t-1}: the "time" that gradient flow sees."""
    out, total = [0.0], 0.0
    for rate in run.lr:
        total += rate
        out.append(total)
    return out


def integral_prediction(run: ToyRun) -> list[float]:
    """w1(t) predicted by "weights grow like the integral of the rate".

    At the start p = (1/2, 1/2), so the expected gradient of w1 is
    -(q - 1/2); if it stayed constant, w1(t) = (q - 1/2) * tau(t).
    """
    return [(run.target_prob - 0.5) * tau for tau in accumulated_rate(run)]


def integral_law_holds_until(run: ToyRun, tolerance: float = 0.1) -> int | None:
    """Last step t at which w1(t) is within ``tolerance`` (relative) of the prediction.

    None if the law holds for the whole run.
    """
    predicted = integral_prediction(run)
    for t, (actual, guess) in enumerate(zip(run.w1, predicted)):
        if guess > 0 and abs(actual - guess) > tolerance * guess:
            return t - 1
    return None


def integral_law_table(runs: dict[str, ToyRun], lang: str, tolerance: float = 0.1) -> Table:
    """Per schedule: where the constant-gradient law stops holding, and where the run ends."""
    rows = []
    for name, run in runs.items():
        until = integral_law_holds_until(run, tolerance)
        rows.append(
            (
                name,
                text("never", lang) if until is None else str(until),
                "-" if until is None else number(run.w1[until], lang, 3),
                number(accumulated_rate(run)[-1], lang, 2),
                number(run.w1[-1], lang, 3),
            )
        )
    header = tuple(text(key, lang) for key in ("schedule", "law_holds", "w1_break", "tau_end", "w1_end"))
    return Table(header, tuple(rows))


def run_seeds(schedule: Schedule, eta_max: float, num_steps: int, seeds: range, **toy: object) -> list[ToyRun]:
    """The same experiment over several label draws (one run per seed)."""
    return [train_softmax_toy(schedule, eta_max, num_steps, seed=seed, **toy) for seed in seeds]


def settled_step(run: ToyRun, excess: float) -> int | None:
    """First step after which the excess loss stays below ``excess`` to the end (None if it ends above)."""
    values = run.excess_loss
    if values[-1] >= excess:
        return None
    t = len(values) - 1
    while t > 0 and values[t - 1] < excess:
        t -= 1
    return t


def late_excess(group: list[ToyRun]) -> float:
    """Mean excess loss over the last quarter of training, averaged over the runs (seeds)."""
    quarter = max(1, len(group[0].lr) // 4)
    return sum(sum(r.excess_loss[-quarter:]) / quarter for r in group) / len(group)


def compare_schedules(runs: dict[str, list[ToyRun]], lang: str, excess: float = 0.01) -> Table:
    """The lesson's measured table: one row per schedule, averaged over seeds."""
    rows = []
    for name, group in runs.items():
        late = late_excess(group)
        settled = [settled_step(r, excess) for r in group]
        settled_cell = (
            text("never", lang)
            if any(s is None for s in settled)
            else number(sum(settled) / len(settled), lang, 1)
        )
        jitter = sum(r.late_jitter() for r in group) / len(group)
        rows.append(
            (
                name,
                number(late * 1e3, lang, 2),
                settled_cell,
                number(jitter, lang, 4),
                number(group[0].lr[-1], lang, 4),
            )
        )
    header = tuple(text(key, lang) for key in ("schedule", "late_excess", "settled", "jitter", "final_lr"))
    return Table(header, tuple(rows))


class QuadraticToy(torch.nn.Module):
    """Lesson 02's toy: L(w) = sum_i w_i^2, gradient 2w.  SGD multiplies w by (1 - 2 eta):
    it converges for eta < 1 and diverges, with a gradient growing like |1 - 2 eta|^t, for eta > 1."""

    def __init__(self, start: tuple[float, ...] = (1.0, -2.0)):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(start))

    @staticmethod
    def loss(model: "QuadraticToy", batch: object = None) -> torch.Tensor:
        return (model.w**2).sum()


def train_quadratic(eta_max: float, num_steps: int, *, clip=None, schedule: Schedule | None = None) -> History:
    """SGD on :class:`QuadraticToy` through the course's training loop, on the CPU.

    Records the update sizes; non-finite gradients are skipped and recorded
    instead of raising, so a diverging run can be measured to the end.
    """
    model = QuadraticToy()
    optimizer = torch.optim.SGD(model.parameters(), lr=eta_max)
    scheduler = ScheduledLR(optimizer, schedule) if schedule is not None else None
    return train(
        model, optimizer, lambda step: None, QuadraticToy.loss, num_steps,
        scheduler=scheduler, clip=clip, record_update=True, on_nonfinite="skip", device="cpu", progress=False,
    )


def compare_clipping(runs: dict[str, History], lang: str, target: float = 1e-3, blown_up: float = 1e6) -> Table:
    """Lesson 02's measured table: final loss, largest step, steps to the target, divergence."""
    rows = []
    for name, history in runs.items():
        final = history.loss[-1]
        reached = next((t for t, loss in enumerate(history.loss) if loss < target), None)
        diverged = any(not math.isfinite(loss) or loss > blown_up for loss in history.loss) or any(history.skipped)
        lost = sum(norm_lost(g, c) for g, c in zip(history.grad_norm, history.threshold) if math.isfinite(g))
        rows.append(
            (
                name,
                significant(final, lang),
                significant(max(history.update_norm), lang),
                text("never", lang) if reached is None else str(reached),
                text("yes", lang) if diverged else text("no", lang),
                number(lost, lang, 2),
            )
        )
    header = tuple(text(key, lang) for key in ("run", "final_loss", "largest_step", "steps_to_target", "diverged", "norm_lost"))
    return Table(header, tuple(rows))


def body_and_head(seed: int = 0) -> torch.nn.Sequential:
    """A small "pretrained body + new classifier head", with the gradients of one batch computed.

    The body ends in LayerNorm, so its outputs have norm about sqrt(width),
    and the head starts small (std 0.02, as in BERT): the head's gradient
    then dominates, as in the fine-tuning lessons.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # seed the initialisation without touching the caller's RNG
        torch.manual_seed(seed)
        body = torch.nn.Sequential(
            torch.nn.Linear(16, 32), torch.nn.LayerNorm(32), torch.nn.Linear(32, 32), torch.nn.LayerNorm(32)
        )
        head = torch.nn.Linear(32, 4)
        torch.nn.init.normal_(head.weight, std=0.02)
        torch.nn.init.zeros_(head.bias)
    model = torch.nn.Sequential(body, head)
    x = torch.randn(32, 16, generator=generator)
    y = torch.randint(0, 4, (32,), generator=generator)
    F.cross_entropy(model(x), y).backward()
    return model


def compare_layer_clipping(max_norm: float, lang: str, seed: int = 0) -> Table:
    """Global vs per-layer clipping of the same gradients of :func:`body_and_head`."""
    layers = {"body": r"^0\.", "head": r"^1\."}

    def norms(model):
        return {name: value.item() for name, value in LayerGradNorms(model.named_parameters(), layers)().items()}

    raw = norms(body_and_head(seed))
    model = body_and_head(seed)
    clip_grad_norm(model.parameters(), max_norm)
    after_global = norms(model)
    model = body_and_head(seed)
    clip_grad_norm_per_layer({"body": model[0].parameters(), "head": model[1].parameters()}, max_norm)
    after_layer = norms(model)
    rows = tuple(
        (
            name,
            number(raw[name], lang, 3),
            number(after_global[name], lang, 3),
            number(after_global[name] / raw[name], lang, 3),
            number(after_layer[name], lang, 3),
            number(after_layer[name] / raw[name], lang, 3),
        )
        for name in layers
    )
    header = tuple(
        text(key, lang)
        for key in ("layer", "layer_raw", "after_global", "factor_global", "after_per_layer", "factor_per_layer")
    )
    return Table(header, rows)
