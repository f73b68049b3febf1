"""course_lib.lessons.plain: lesson 01's toy in plain PyTorch gives exactly what course_lib's loop gives."""

import pytest
import torch
import transformers

from course_lib.lessons.lr_schedules import late_excess
from course_lib.lessons.plain import plain_history, train_toy_plain, warmup_cosine
from course_lib.engine.schedules import cosine_with_warmup
from course_lib.models.toy import train_softmax_toy


def lambda_lr(warmup, total):
    return lambda optimizer: torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(warmup, total))


def hugging_face(warmup, total):
    return lambda optimizer: transformers.get_cosine_schedule_with_warmup(optimizer, warmup, total)


@pytest.mark.parametrize("make", [lambda_lr, hugging_face], ids=["LambdaLR", "transformers"])
@pytest.mark.parametrize("warmup,total,target_prob,seed", [(15, 300, 0.9, 0), (0, 40, 1.0, 0), (7, 60, 0.75, 3)])
def test_plain_loop_gives_exactly_course_lib_rates_and_weights(make, warmup, total, target_prob, seed):
    course = train_softmax_toy(cosine_with_warmup(warmup, total), 0.5, total, target_prob=target_prob, seed=seed)
    rates, weights = train_toy_plain(make(warmup, total), 0.5, total, target_prob=target_prob, seed=seed)
    assert rates == course.lr  # every step, bit for bit
    assert weights == [list(pair) for pair in zip(course.metric("w1"), course.metric("w2"))]
    plain = plain_history(rates, weights, target_prob)
    assert plain.metric("excess_loss") == course.metric("excess_loss")
    assert plain.metric_steps("w1") == course.metric_steps("w1")
    assert late_excess(plain) == late_excess(course)


def test_warmup_cosine_is_course_lib_schedule():
    schedule = cosine_with_warmup(12, 90)
    assert [warmup_cosine(12, 90)(t) for t in range(120)] == [schedule(t) for t in range(120)]


def test_scheduler_stepped_once_per_epoch_stays_in_warmup():
    """A warm-up of 15 updates, the scheduler stepped every 30 updates: 10 epochs never leave it."""
    rates, _ = train_toy_plain(lambda_lr(15, 300), 1.0, 300, target_prob=0.9, scheduler_every=30)
    assert rates[:30] == [0.0] * 30
    assert max(rates) == rates[-1] == pytest.approx(9 / 15)
    assert sorted(set(rates)) == [pytest.approx(k / 15) for k in range(10)]


def test_plain_history_checks_lengths():
    with pytest.raises(ValueError, match="one entry more"):
        plain_history([0.1, 0.1], [[0.0, 0.0], [0.1, -0.1]])
