"""Lesson 01's toy in plain PyTorch: the loop a practitioner writes, with no course_lib in it.

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

Lesson 01 shows these two functions as they are (a literalinclude), so they
carry no comments: the lesson explains them in the reader's language.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from course_lib.models.toy import add_excess_loss
from course_lib.engine.training import History

__all__ = ["warmup_cosine", "train_toy_plain", "plain_history"]


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
    if len(weights) != len(rates) + 1:
        raise ValueError(
            f"weights must hold one entry more than rates (the start, then one per update), got {len(weights)} and {len(rates)}"
        )
    history = History(step=list(range(len(rates))), lr=list(rates))
    for step, (w1, w2) in enumerate(weights, start=-1):
        history.add("w1", step, w1)
        history.add("w2", step, w2)
    return add_excess_loss(history, target_prob)
