"""The toy models of lessons 01 and 02, trained through the course's one loop.

Lesson 01: the two-weight softmax model.  Two logits ``w = (w1, w2)``; the
target is class 1, so training should make ``w1 > w2``.  Each step draws a
mini-batch of labels: class 1 with probability ``target_prob`` (``1.0`` is
the noiseless toy).  The loss is the mean cross-entropy ``-log softmax(w)[y]``
over the batch, minimised with plain SGD.  With ``target_prob = q`` the best
reachable expected loss is the entropy ``H(q)``, reached at
``w1 - w2 = log(q / (1 - q))``.

Lesson 02: the quadratic ``L(w) = sum w_i^2`` and a small "pretrained body +
new head" whose gradients the clipping lesson compares.

Both return the loop's :class:`~course_lib.engine.training.History`.  The softmax
toy also records ``w1``, ``w2`` and ``excess_loss`` (expected loss minus
H(q)); their entry ``t`` is the state after ``t`` updates, from ``t = 0``
(the start, recorded at step -1) to ``t = num_steps``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from course_lib.engine._checks import check_between, check_int, check_number, check_type, shown
from course_lib.engine.callbacks import WeightChange
from course_lib.engine.schedules import Schedule, ScheduledLR, check_eta_max
from course_lib.engine.training import Callback, History, TrainState, train

__all__ = [
    "expected_loss",
    "best_loss",
    "SoftmaxToy",
    "train_softmax_toy",
    "add_excess_loss",
    "QuadraticToy",
    "train_quadratic",
    "body_and_head",
]


def expected_loss(w1: float, w2: float, target_prob: float) -> float:
    """Expected cross-entropy over the label distribution: logsumexp(w) - (q w1 + (1-q) w2)."""
    w1 = check_number("w1", w1, "a finite number (a logit)", math.isfinite)
    w2 = check_number("w2", w2, "a finite number (a logit)", math.isfinite)
    target_prob = _check_probability(target_prob)
    lse = max(w1, w2) + math.log1p(math.exp(-abs(w1 - w2)))
    return lse - (target_prob * w1 + (1.0 - target_prob) * w2)


def _check_probability(target_prob: float) -> float:
    return check_between("target_prob", target_prob, 0.0, 1.0, "the probability of class 1")


def best_loss(target_prob: float) -> float:
    """H(q): the lowest expected loss any weights can reach."""
    q = _check_probability(target_prob)
    return 0.0 if q in (0.0, 1.0) else -(q * math.log(q) + (1 - q) * math.log(1 - q))


class SoftmaxToy(torch.nn.Module):
    """Lesson 01's model: two logits, starting at (0, 0)."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(2))

    @staticmethod
    def loss(model: "SoftmaxToy", labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model.w.expand(len(labels), 2), labels)


class _RecordWeights(Callback):
    """Records w1 and w2: the start (at step -1) and after every update."""

    def on_train_begin(self, state: TrainState) -> None:
        w1, w2 = state.model.w.tolist()
        state.history.add("w1", -1, w1)
        state.history.add("w2", -1, w2)

    def on_step_end(self, state: TrainState) -> None:
        state.log(["w1", "w2"], state.model.w.detach().clone())


def train_softmax_toy(
    schedule: Schedule,
    eta_max: float,
    num_steps: int,
    *,
    target_prob: float = 1.0,
    batch_size: int = 8,
    seed: int = 0,
) -> History:
    """Train the toy with SGD for ``num_steps`` updates, on the CPU, through :func:`~course_lib.engine.training.train`.

    The labels come from a generator seeded with ``seed``, so two schedules
    run with the same seed see exactly the same mini-batches.
    """
    check_eta_max(eta_max)
    check_number("target_prob", target_prob, "in (0.5, 1] so that w1 > w2 is the goal", lambda q: 0.5 < q <= 1.0)
    check_int("num_steps", num_steps, 1)
    check_int("batch_size", batch_size, 1, unit="examples")
    check_int("seed", seed, 0, unit="seed units")
    generator = torch.Generator().manual_seed(seed)
    labels = (torch.rand(num_steps, batch_size, generator=generator) >= target_prob).long()

    model = SoftmaxToy()
    optimizer = torch.optim.SGD(model.parameters(), lr=eta_max)
    history = train(
        model, optimizer, lambda step: labels[step], SoftmaxToy.loss, num_steps,
        scheduler=ScheduledLR(optimizer, schedule), callbacks=[_RecordWeights()], device="cpu", log_every=100,
    )
    return add_excess_loss(history, target_prob)


def add_excess_loss(history: History, target_prob: float) -> History:
    """Record ``excess_loss`` = expected loss - H(q) beside each recorded (w1, w2); returns the history.

    ``history`` must hold ``w1`` and ``w2`` (a softmax toy's run) and no
    ``excess_loss`` yet: a second call would append a second copy of it.
    """
    check_type("history", history, History, "a History from train_softmax_toy (or plain_history)")
    floor = best_loss(target_prob)
    missing = [name for name in ("w1", "w2") if name not in history.metrics]
    if missing:
        raise ValueError(f"history must hold the toy's weights w1 and w2 (a History from train_softmax_toy), "
                         f"but it has no {' or '.join(missing)}; it holds {sorted(history.metrics)}")
    if "excess_loss" in history.metrics:
        raise ValueError("history already holds excess_loss: add_excess_loss was called on it before")
    for step, w1, w2 in zip(history.metric_steps("w1"), history.metric("w1"), history.metric("w2")):
        history.add("excess_loss", step, expected_loss(w1, w2, target_prob) - floor)
    return history


class QuadraticToy(torch.nn.Module):
    """Lesson 02's toy: L(w) = sum_i w_i^2, gradient 2w.  SGD multiplies w by (1 - 2 eta):
    it converges for eta < 1 and diverges, with a gradient growing like |1 - 2 eta|^t, for eta > 1."""

    def __init__(self, start: tuple[float, ...] = (1.0, -2.0)):
        super().__init__()
        if not isinstance(start, (tuple, list)):
            raise TypeError(f"start must be a tuple of numbers (the starting weights), got {shown(start)}")
        if not start:
            raise ValueError("start must hold at least one weight, got ()")
        start = [check_number(f"start[{i}]", v, "a finite number", math.isfinite) for i, v in enumerate(start)]
        self.w = torch.nn.Parameter(torch.tensor([float(v) for v in start]))

    @staticmethod
    def loss(model: "QuadraticToy", batch: object = None) -> torch.Tensor:
        return (model.w**2).sum()


def train_quadratic(
    eta_max: float, num_steps: int, *, clip=None, schedule: Schedule | None = None,
    callbacks: list[Callback] | tuple[Callback, ...] = (),
) -> History:
    """SGD on :class:`QuadraticToy` through the course's training loop, on the CPU.

    Records the update sizes (``update_norm``) and whatever ``callbacks``
    record; non-finite gradients are skipped and recorded instead of
    raising, so a diverging run can be measured to the end.
    """
    check_eta_max(eta_max)
    check_int("num_steps", num_steps, 1)
    if isinstance(callbacks, Callback) or not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"callbacks must be a list of Callback objects, got {shown(callbacks)}")
    model = QuadraticToy()
    optimizer = torch.optim.SGD(model.parameters(), lr=eta_max)
    scheduler = ScheduledLR(optimizer, schedule) if schedule is not None else None
    return train(
        model, optimizer, lambda step: None, QuadraticToy.loss, num_steps, scheduler=scheduler, clip=clip,
        callbacks=[WeightChange(model.named_parameters()), *callbacks], on_nonfinite="skip", device="cpu",
        log_every=100,
    )


def body_and_head(seed: int = 0) -> torch.nn.Sequential:
    """A small "body + new classifier head" with the gradients of one batch computed.

    The body has random weights (no pretraining here: lesson 03 shows the
    same effect on a real pretrained BERT).  It ends in LayerNorm, so its
    outputs have norm about sqrt(width), and the head starts small (std 0.02,
    as in BERT): the head's gradient then dominates, as in fine-tuning.
    """
    check_int("seed", seed, 0, unit="seed units")
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
