"""course_lib.engine.schedules: values, conventions, torch and transformers agreement, resume, errors."""

import math
import pickle

import pytest
import torch
import transformers
from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, LinearLR

from course_lib.engine.schedules import (
    Constant,
    CosineDecay,
    LinearDecay,
    Schedule,
    ScheduledLR,
    Warmup,
    constant_with_warmup,
    cosine_with_warmup,
    linear_with_warmup,
    schedule_fingerprint,
)



def optimizer_with_groups(*lrs):
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in lrs]
    return torch.optim.SGD(groups)


def scheduler_rates(optimizer, scheduler, steps):
    """The rate of every group at every step, flattened: [g0 step0, g1 step0, g0 step1, ...]."""
    out = []
    for _ in range(steps):
        out.extend(group["lr"] for group in optimizer.param_groups)
        optimizer.step()
        scheduler.step()
    return out


# transformers' own test pins these rates for lr=10, warm-up 2, 10 training steps (tolerance 1e-2).
HF_PINNED = {
    "constant_warmup4": (constant_with_warmup(4), [0.0, 2.5, 5.0, 7.5, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0]),
    "linear": (linear_with_warmup(2, 10), [0.0, 5.0, 10.0, 8.75, 7.5, 6.25, 5.0, 3.75, 2.5, 1.25]),
    "cosine": (cosine_with_warmup(2, 10), [0.0, 5.0, 10.0, 9.61, 8.53, 6.91, 5.0, 3.08, 1.46, 0.38]),
}


@pytest.mark.parametrize("name", HF_PINNED)
def test_values_pinned_by_transformers_tests(name):
    schedule, expected = HF_PINNED[name]
    assert schedule.lrs(10, eta_max=10.0) == pytest.approx(expected, abs=1e-2)


HF_CASES = [
    ("linear", dict(num_warmup_steps=0, num_training_steps=50), {}),
    ("linear", dict(num_warmup_steps=7, num_training_steps=50), {}),
    ("linear", dict(num_warmup_steps=15, num_training_steps=450), {}),
    ("cosine", dict(num_warmup_steps=0, num_training_steps=50), dict(num_cycles=0.5)),
    ("cosine", dict(num_warmup_steps=10, num_training_steps=60), dict(num_cycles=0.5)),
    ("cosine", dict(num_warmup_steps=5, num_training_steps=40), dict(num_cycles=2.0)),
    ("cosine", dict(num_warmup_steps=5, num_training_steps=40), dict(num_cycles=0.75)),
    ("cosine_min", dict(num_warmup_steps=5, num_training_steps=40), dict(num_cycles=0.5, min_lr_rate=0.1)),
    ("cosine_min", dict(num_warmup_steps=0, num_training_steps=30), dict(num_cycles=1.5, min_lr_rate=0.25)),
    ("constant", dict(num_warmup_steps=6), {}),
    ("constant", dict(num_warmup_steps=0), {}),
]


def ours(kind, steps, extra):
    if kind == "linear":
        return linear_with_warmup(**steps)
    if kind == "cosine":
        return cosine_with_warmup(**steps, **extra)
    if kind == "cosine_min":
        return cosine_with_warmup(**steps, num_cycles=extra["num_cycles"], min_lr_ratio=extra["min_lr_rate"])
    return constant_with_warmup(**steps)


def theirs(kind, optimizer, steps, extra):
    if kind == "linear":
        return transformers.get_linear_schedule_with_warmup(optimizer, **steps)
    if kind == "cosine":
        return transformers.get_cosine_schedule_with_warmup(optimizer, **steps, **extra)
    if kind == "cosine_min":
        return transformers.get_cosine_with_min_lr_schedule_with_warmup(optimizer, **steps, **extra)
    return transformers.get_constant_schedule_with_warmup(optimizer, **steps)


@pytest.mark.parametrize("kind,steps,extra", HF_CASES)
def test_same_rate_as_transformers_at_every_step(kind, steps, extra):
    """Every step, two param groups, and 20 steps past the end of the schedule."""
    horizon = steps.get("num_training_steps", 30) + 20
    opt_ours, opt_theirs = optimizer_with_groups(0.3, 0.01), optimizer_with_groups(0.3, 0.01)
    expected = scheduler_rates(opt_theirs, theirs(kind, opt_theirs, steps, extra), horizon)
    got = scheduler_rates(opt_ours, ScheduledLR(opt_ours, ours(kind, steps, extra)), horizon)
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_cosine_matches_torch_cosine_annealing_with_eta_min():
    eta_max, eta_min, T = 0.5, 0.05, 40
    opt_torch, opt_ours = optimizer_with_groups(eta_max), optimizer_with_groups(eta_max)
    expected = scheduler_rates(opt_torch, CosineAnnealingLR(opt_torch, T_max=T, eta_min=eta_min), T + 1)
    got = scheduler_rates(opt_ours, ScheduledLR(opt_ours, CosineDecay(T, 0.5, eta_min / eta_max)), T + 1)
    assert got == pytest.approx(expected, rel=1e-9)


def test_linear_matches_torch_linear_lr():
    T = 25
    opt_torch, opt_ours = optimizer_with_groups(0.2), optimizer_with_groups(0.2)
    expected = scheduler_rates(opt_torch, LinearLR(opt_torch, 1.0, 0.0, total_iters=T), T + 5)
    got = scheduler_rates(opt_ours, ScheduledLR(opt_ours, LinearDecay(T)), T + 5)
    assert got == pytest.approx(expected, abs=1e-12)


def test_schedule_is_a_valid_lambda_lr_function():
    schedule = cosine_with_warmup(3, 20)
    opt_lambda, opt_ours = optimizer_with_groups(1.0), optimizer_with_groups(1.0)
    expected = scheduler_rates(opt_lambda, LambdaLR(opt_lambda, schedule), 25)
    assert scheduler_rates(opt_ours, ScheduledLR(opt_ours, schedule), 25) == expected


def test_conventions_zero_at_start_peak_after_warmup():
    for schedule in (linear_with_warmup(10, 100), cosine_with_warmup(10, 100), constant_with_warmup(10)):
        assert schedule(0) == 0.0
        assert schedule(10) == 1.0
        assert max(schedule(t) for t in range(100)) == 1.0
        assert all(schedule(t) < 1.0 for t in range(10))


def test_no_warmup_starts_at_peak_and_ends_at_floor():
    assert cosine_with_warmup(0, 50)(0) == 1.0
    assert cosine_with_warmup(0, 50)(50) == pytest.approx(0.0, abs=1e-15)
    assert cosine_with_warmup(0, 50, min_lr_ratio=0.2)(50) == pytest.approx(0.2)
    assert linear_with_warmup(0, 50, min_lr_ratio=0.2)(50) == pytest.approx(0.2)
    assert linear_with_warmup(0, 50, min_lr_ratio=0.2)(80) == pytest.approx(0.2)


def test_monotonic_shapes():
    warm = [linear_with_warmup(20, 100)(t) for t in range(21)]
    assert all(a < b for a, b in zip(warm, warm[1:]))
    for schedule in (linear_with_warmup(20, 100), cosine_with_warmup(20, 100, min_lr_ratio=0.1)):
        decay = [schedule(t) for t in range(20, 101)]
        assert all(a > b for a, b in zip(decay, decay[1:]))
    assert all(0.0 <= cosine_with_warmup(5, 60, num_cycles=3)(t) <= 1.0 for t in range(200))


def test_cosine_cycles_return_to_peak():
    schedule = CosineDecay(40, num_cycles=2)
    assert [schedule(t) for t in (0, 10, 20, 30, 40)] == pytest.approx([1, 0, 1, 0, 1], abs=1e-12)


def test_declared_steps_keep_rate_above_zero():
    schedule = linear_with_warmup(15, 450)
    assert min(schedule(t) for t in range(15, 300)) == pytest.approx((450 - 299) / 435)
    assert linear_with_warmup(15, 300)(300) == 0.0


def test_composition_equals_builder():
    assert Warmup(4, LinearDecay(16)) == linear_with_warmup(4, 20)
    assert Warmup(4, CosineDecay(16, 0.5, 0.1)) == cosine_with_warmup(4, 20, min_lr_ratio=0.1)
    assert Warmup(3) == constant_with_warmup(3)


def test_lr_at_scales_peak():
    assert cosine_with_warmup(2, 10).lr_at(2, eta_max=3e-4) == pytest.approx(3e-4)
    assert Constant().lrs(3, 0.1) == [0.1, 0.1, 0.1]


def test_resume_from_state_dict_gives_same_sequence(tmp_path):
    schedule = cosine_with_warmup(5, 30, num_cycles=1.5, min_lr_ratio=0.05)

    def fresh():
        optimizer = optimizer_with_groups(0.1, 0.02, 1.0)
        return optimizer, ScheduledLR(optimizer, schedule)

    optimizer, scheduler = fresh()
    reference = scheduler_rates(optimizer, scheduler, 30)

    optimizer, scheduler = fresh()
    head = scheduler_rates(optimizer, scheduler, 11)
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, tmp_path / "ckpt.pt")
    state = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    optimizer, scheduler = fresh()
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    assert head + scheduler_rates(optimizer, scheduler, 19) == reference
    assert scheduler.last_epoch == 30


def test_last_epoch_construction_matches_stepping():
    """torch's resume convention: built with last_epoch=k, the scheduler sets the rate a fresh one has after k+1 steps."""
    schedule = linear_with_warmup(4, 20)
    stepped = optimizer_with_groups(0.5, 0.1)
    scheduler = ScheduledLR(stepped, schedule)
    for _ in range(7):
        stepped.step()
        scheduler.step()
    built = optimizer_with_groups(0.5, 0.1)
    for group in built.param_groups:
        group["initial_lr"] = group["lr"]
    ScheduledLR(built, schedule, last_epoch=6)
    assert [g["lr"] for g in built.param_groups] == [g["lr"] for g in stepped.param_groups]
    assert built.param_groups[0]["lr"] == pytest.approx(0.5 * schedule(7))


def test_schedules_pickle():
    schedule = cosine_with_warmup(3, 30, num_cycles=2, min_lr_ratio=0.1)
    assert pickle.loads(pickle.dumps(schedule)) == schedule


@pytest.mark.parametrize(
    "build,match",
    [
        (lambda: linear_with_warmup(-1, 10), r"num_warmup_steps must be >= 0"),
        (lambda: linear_with_warmup(0, 0), r"num_training_steps must be >= 1"),
        (lambda: cosine_with_warmup(20, 10), r"num_warmup_steps \(20\) must be <= num_training_steps \(10\)"),
        (lambda: cosine_with_warmup(2, 10, num_cycles=0), r"num_cycles \(C\) must be a finite number > 0"),
        (lambda: cosine_with_warmup(2, 10, num_cycles=-1.0), r"num_cycles"),
        (lambda: cosine_with_warmup(2, 10, num_cycles=math.inf), r"num_cycles"),
        (lambda: cosine_with_warmup(2, 10, min_lr_ratio=1.5), r"eta_min may not exceed eta_max"),
        (lambda: linear_with_warmup(2, 10, min_lr_ratio=-0.1), r"min_lr_ratio must be in \[0, 1\]"),
        (lambda: CosineDecay(-5), r"num_steps must be >= 0"),
        (lambda: Constant()(-1), r"step must be >= 0"),
        (lambda: Constant().lr_at(3, eta_max=0.0), r"eta_max must be > 0"),
    ],
)
def test_bad_arguments_raise_value_error(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_non_integer_steps_raise_type_error():
    with pytest.raises(TypeError, match="num_warmup_steps must be an int"):
        linear_with_warmup(2.5, 10)
    with pytest.raises(TypeError, match="schedule must be"):
        ScheduledLR(optimizer_with_groups(0.1), lambda t: 1.0)


def test_base_class_is_abstract():
    with pytest.raises(NotImplementedError):
        Schedule()(0)


class Halving(Schedule):
    """A schedule with a plain __init__: its default repr holds a memory address."""

    def __init__(self, every, floor=0.0):
        self.every, self.floor = every, floor
        self._calls = 0  # private: not part of what the schedule is

    def factor(self, step):
        return max(self.floor, 0.5 ** (step // self.every))


def test_fingerprint_names_parameters_not_addresses():
    assert schedule_fingerprint(cosine_with_warmup(3, 40)) == repr(cosine_with_warmup(3, 40))
    assert schedule_fingerprint(Halving(3)) == schedule_fingerprint(Halving(3)) == "Halving(every=3, floor=0.0)"
    assert schedule_fingerprint(Halving(3)) != schedule_fingerprint(Halving(4))
    assert schedule_fingerprint(Warmup(2, Halving(3))) == "Warmup(num_warmup_steps=2, then=Halving(every=3, floor=0.0))"

    def threshold(start):
        return lambda step: math.inf if step < start else 1.0

    assert schedule_fingerprint(threshold(5)) == schedule_fingerprint(threshold(5)) != schedule_fingerprint(threshold(6))
    assert "0x" not in schedule_fingerprint(threshold(5))
    with pytest.raises(TypeError, match="schedule must be a Schedule or a function of the step"):
        schedule_fingerprint(0.5)


def test_scheduler_state_of_a_plain_schedule_class_loads_into_an_equal_one():
    optimizer = optimizer_with_groups(0.1)
    state = ScheduledLR(optimizer, Halving(3)).state_dict()
    ScheduledLR(optimizer_with_groups(0.1), Halving(3)).load_state_dict(state)
    with pytest.raises(ValueError, match=r"over Halving\(every=3, floor=0.0\), but this ScheduledLR runs Halving\(every=2"):
        ScheduledLR(optimizer_with_groups(0.1), Halving(2)).load_state_dict(state)


class _Threshold:
    def __init__(self, value):
        self.value = value

    def at(self, step):
        return self.value


def test_fingerprint_tells_apart_partials_methods_tensors_and_lambda_bodies():
    """Values a run can be built from that hold their parameters out of sight: each difference shows in the fingerprint."""
    import functools

    pairs = [
        (functools.partial(min, 1.0), functools.partial(min, 2.0)),
        (_Threshold(1.0).at, _Threshold(2.0).at),
        (Halving(torch.tensor([3.0])), Halving(torch.tensor([4.0]))),
        (lambda step: 0.5 ** step, lambda step: 0.25 ** step),
    ]
    for a, b in pairs:
        fa, fb = schedule_fingerprint(a), schedule_fingerprint(b)
        assert fa != fb and "0x" not in fa + fb, (fa, fb)
    assert schedule_fingerprint(functools.partial(min, 1.0)) == schedule_fingerprint(functools.partial(min, 1.0))
    assert schedule_fingerprint(_Threshold(1.0).at) == schedule_fingerprint(_Threshold(1.0).at)
    assert schedule_fingerprint(Halving(torch.tensor([3.0]))) == schedule_fingerprint(Halving(torch.tensor([3.0])))


def test_factor_checks_the_step_in_every_schedule_and_keeps_its_values():
    """``factor`` is public: a step below 0 or not an int is refused there as in ``schedule(step)``, also in a user's subclass."""

    class Halving(Schedule):
        def factor(self, step):
            return 0.5**step

    schedule = Warmup(2, Halving())
    assert [schedule.factor(t) for t in range(5)] == [schedule(t) for t in range(5)] == [0.0, 0.5, 1.0, 0.5, 0.25]
    assert LinearDecay(10).factor(10) == 0.0 and LinearDecay(10).factor(15) == 0.0
    for bad, error in ((-1, ValueError), (1.5, TypeError), (True, TypeError)):
        with pytest.raises(error, match="step must be"):
            schedule.factor(bad)
        with pytest.raises(error, match="step must be"):
            Halving().factor(bad)


def test_last_epoch_resumes_an_optimizer_that_was_scheduled_before():
    """torch's meaning of last_epoch stays valid where the param groups hold 'initial_lr'; a fresh optimizer is refused."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    first = ScheduledLR(optimizer, LinearDecay(10))
    for _ in range(3):
        optimizer.step()
        first.step()
    again = ScheduledLR(optimizer, LinearDecay(10), last_epoch=3)
    assert again.last_epoch == 4 and again.get_last_lr() == pytest.approx([0.1 * LinearDecay(10)(4)])
    with pytest.raises(ValueError, match="last_epoch=0 resumes a schedule"):
        ScheduledLR(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1), Constant(), last_epoch=0)
