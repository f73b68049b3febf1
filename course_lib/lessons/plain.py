"""The lessons' reference loops in plain PyTorch: the loops a practitioner writes, with no course_lib in them.

Lesson 01's toy:

:func:`train_toy_plain` trains the same two-logit model as
:func:`course_lib.models.toy.train_softmax_toy`, on the same mini-batches, with an
SGD optimizer, a scheduler built by ``make_scheduler(optimizer)`` (a
``torch.optim.lr_scheduler.LambdaLR`` over :func:`warmup_cosine`, or
transformers' ``get_cosine_schedule_with_warmup``, which returns one) and the
order PyTorch and transformers use: ``optimizer.step()``, then
``scheduler.step()``.  It returns the rate each update used and the weights
``(w1, w2)`` after 0, 1, ..., ``num_steps`` updates.  With the same schedule
it gives exactly the rates and weights of course_lib's loop at every step
(``tests/test_plain.py``).

``scheduler_every`` is how many updates pass between two calls of
``scheduler.step()``: 1, the convention of the course and of transformers;
the number of updates per epoch reproduces a loop that steps the scheduler
once per epoch, the mistake lesson 01 measures.

Lesson 02's quadratic: :func:`train_quadratic_plain` gives
:func:`course_lib.models.toy.train_quadratic`'s numbers where the norm is
finite (``tests/test_toy.py``).

Lessons 01 and 02 show these functions as they are, with
:func:`course_lib.show.source.show_source` (which renders in Colab, Jupyter and
on the site), so :func:`warmup_cosine` and :func:`train_toy_plain` carry no
comments: the lesson explains them in the reader's language.
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F

from course_lib.engine._checks import check_number, shown
from course_lib.engine.training import History
from course_lib.models.toy import add_excess_loss

__all__ = ["warmup_cosine", "train_toy_plain", "plain_history", "train_quadratic_plain"]


def warmup_cosine(num_warmup_steps, num_training_steps):
    def lr_lambda(t):
        if t < num_warmup_steps:
            return t / max(1, num_warmup_steps)
        progress = (t - num_warmup_steps) / max(1, num_training_steps - num_warmup_steps)
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
    return lr_lambda


def train_toy_plain(make_scheduler, eta_max, num_steps, *, target_prob=1.0, batch_size=8, seed=0, scheduler_every=1):
    generator = torch.Generator().manual_seed(seed)
    labels = (torch.rand(num_steps, batch_size, generator=generator) >= target_prob).long()
    w = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.SGD([w], lr=eta_max)
    scheduler = make_scheduler(optimizer)
    rates, weights = [], [w.tolist()]
    for step in range(num_steps):
        rates.append(optimizer.param_groups[0]["lr"])
        loss = F.cross_entropy(w.expand(batch_size, 2), labels[step])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if (step + 1) % scheduler_every == 0:
            scheduler.step()
        weights.append(w.tolist())
    return rates, weights


def plain_history(rates: list[float], weights: list[list[float]], target_prob: float = 1.0) -> History:
    """The result of :func:`train_toy_plain` as the :class:`~course_lib.engine.training.History` that
    :func:`~course_lib.models.toy.train_softmax_toy` returns, so that course_lib's measurements apply to it."""
    real = lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool)
    if not isinstance(rates, (list, tuple)) or not all(real(r) for r in rates):
        raise TypeError(f"rates must be the list of learning rates train_toy_plain returns, got {shown(rates)}")
    if not isinstance(weights, (list, tuple)) or not all(
            isinstance(w, (list, tuple)) and len(w) == 2 and all(real(x) for x in w) for w in weights):
        raise TypeError(f"weights must be the list of weights (w1, w2) train_toy_plain returns, got {shown(weights)}")
    check_number("target_prob", target_prob, "in (0.5, 1] so that w1 > w2 is the goal", lambda q: 0.5 < q <= 1.0)
    if len(weights) != len(rates) + 1:
        raise ValueError(
            f"weights must hold one entry more than rates (the start, then one per update), got {len(weights)} and {len(rates)}"
        )
    history = History(step=list(range(len(rates))), lr=list(rates))
    for step, (w1, w2) in enumerate(weights, start=-1):
        history.add("w1", step, w1)
        history.add("w2", step, w2)
    return add_excess_loss(history, target_prob)


def train_quadratic_plain(eta_max, num_steps, max_norm=math.inf, decay_steps=None):
    """Lesson 02's quadratic with PyTorch alone: the loop a practitioner writes.

    SGD at peak rate ``eta_max``; clipping by global norm with
    ``torch.nn.utils.clip_grad_norm_`` (``max_norm=inf`` only measures the
    norm); with ``decay_steps``, the rate decays linearly to 0 over that
    many optimizer steps through ``LambdaLR``.  Returns, per step, the loss,
    the norm before clipping and the weights before the update.  Where the
    norm is finite it gives :func:`train_quadratic`'s numbers (the tests
    check it); the course's loop in addition skips a step whose norm is
    ``inf``, where ``clip_grad_norm_`` writes NaN into the gradients.
    """
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    optimizer = torch.optim.SGD([w], lr=eta_max)
    decay = (lambda t: max(0.0, (decay_steps - t) / decay_steps)) if decay_steps else (lambda t: 1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, decay)
    losses, norms, weights = [], [], []
    for step in range(num_steps):
        optimizer.zero_grad()
        loss = (w**2).sum()
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_([w], max_norm)  # the norm before clipping
        losses.append(loss.item())
        norms.append(norm.item())
        weights.append(w.tolist())
        optimizer.step()  # first the update with this step's rate,
        scheduler.step()  # then the rate of the next step
    return losses, norms, weights
