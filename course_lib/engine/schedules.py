"""Learning-rate schedules (lesson 01).

A schedule is a pure function of the optimizer step ``t`` that returns a
*multiplier* in ``[0, 1]``; the learning rate of a parameter group is its
peak rate ``eta_max`` (the ``lr`` the optimizer was built with) times that
multiplier.  The numbers match Hugging Face transformers'
``get_linear_schedule_with_warmup`` and ``get_cosine_schedule_with_warmup``
(including ``min_lr_rate``) at every step.

Conventions, shared with transformers and ``torch.optim.lr_scheduler``:

* ``t`` counts optimizer updates already taken.  The rate used by update
  number ``t + 1`` is ``eta_max * schedule(t)``; call ``scheduler.step()``
  *after* ``optimizer.step()``.
* With warm-up, ``schedule(0) == 0``: the first update uses rate 0.  SGD's
  weights do not move; Adam still counts the step and takes its gradient into
  both moments (lesson 01 shows it).  The peak ``schedule(T_warm) == 1`` is
  reached after ``T_warm`` updates.
* Units are optimizer steps, never epochs.
* Past ``num_training_steps`` linear decay stays at its floor, while the
  cosine formula keeps going (with ``num_cycles=0.5`` it rises again), as in
  transformers; nanoGPT's ``get_lr`` and Stanford CS336's schedule hold the
  floor instead, which ``schedule(min(t, T))`` reproduces.  Declare at least
  as many schedule steps as you train.

Pieces compose: ``Warmup(T_warm, then=CosineDecay(T - T_warm))`` is the usual
warm-up + cosine schedule; ``cosine_with_warmup`` builds exactly that.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import types
from dataclasses import dataclass

import torch
from torch.optim.lr_scheduler import LRScheduler

from course_lib.engine._checks import check_between, check_number, check_type
from course_lib.engine._checks import check_int as _check_int
from course_lib.engine.data import tensor_digest

__all__ = [
    "Schedule",
    "Constant",
    "LinearDecay",
    "CosineDecay",
    "Warmup",
    "constant_with_warmup",
    "linear_with_warmup",
    "cosine_with_warmup",
    "check_eta_max",
    "ScheduledLR",
    "schedule_fingerprint",
]


_FINGERPRINT = "schedule_fingerprint"  # the key under which ScheduledLR.state_dict() records its schedule


def _check_ratio(value: float) -> None:
    check_between("min_lr_ratio", value, 0, 1, "eta_min = min_lr_ratio * eta_max, so eta_min may not exceed eta_max")


def check_eta_max(value: float) -> None:
    """A peak learning rate: a finite number > 0."""
    check_number("eta_max", value, "> 0 and finite (the peak learning rate)", lambda v: 0 < v < math.inf)


def schedule_fingerprint(schedule) -> str:
    """What a schedule is, as a string that equal schedules share and that holds no memory address.

    ScheduledLR's state and checkpoints compare it to refuse continuing another
    schedule.  A dataclass (the course's schedules) is written as its repr
    would be, ``Warmup(num_warmup_steps=3, then=Constant())``; any other object
    as its class name and public attributes, ``Halving(every=3)``; a function
    as its name, a digest of its code and the values it closes over (the
    digest follows Python's bytecode, so another Python version refuses a
    checkpoint of a lambda-built run).  Also takes any function of the step,
    such as a clipping threshold ``c(t)``.
    """
    if not callable(schedule):
        raise TypeError(f"schedule must be a Schedule or a function of the step, got {type(schedule).__name__}")
    return _describe(schedule)


def _describe(value, path: frozenset = frozenset()) -> str:
    """``value`` as text without memory addresses: numbers and strings as repr, objects by class name and attributes.

    A function is its name, a digest of its code (so a changed body or
    constant is seen), its closure's values and its defaults; a
    ``functools.partial`` its function and arguments; a bound method its
    object and name; a tensor its shape, dtype and a digest of its values.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    if id(value) in path:
        return "..."  # an object that holds itself
    path = path | {id(value)}
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_describe(v, path) for v in value) + ("," if isinstance(value, tuple) and len(value) == 1 else "")
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_describe(k, path)}: {_describe(v, path)}" for k, v in value.items()) + "}"
    if isinstance(value, torch.Tensor):
        return f"Tensor({list(value.shape)}, {value.dtype}, {tensor_digest(value).hexdigest()[:12]})"
    if isinstance(value, functools.partial):
        return _call("partial", {"func": value.func, "args": value.args, "keywords": value.keywords}, path)
    if isinstance(value, types.MethodType):
        return f"{_describe(value.__self__, path)}.{_describe(value.__func__, path)}"
    if isinstance(value, types.FunctionType):
        code = value.__code__
        named = dict(zip(code.co_freevars, (cell.cell_contents for cell in value.__closure__ or ())))
        if value.__defaults__:
            named.update(zip(code.co_varnames[: code.co_argcount][-len(value.__defaults__):], value.__defaults__))
        return _call(f"{value.__qualname__}#{_code_digest(code)}", named, path)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value) if f.repr}
        return _call(type(value).__qualname__, fields, path)
    if hasattr(value, "__dict__"):
        return _call(type(value).__qualname__, {k: v for k, v in sorted(vars(value).items()) if not k.startswith("_")}, path)
    slots = [name for cls in type(value).__mro__ for name in getattr(cls, "__slots__", ()) if hasattr(value, name)]
    return _call(type(value).__qualname__, {name: getattr(value, name) for name in slots}, path)


def _code_digest(code: types.CodeType) -> str:
    """12 hex digits over a function's bytecode, names and constants (nested functions' code included), not its address."""
    digest = hashlib.sha256()

    def add(c: types.CodeType) -> None:
        digest.update(c.co_code + repr(c.co_names).encode())
        for const in c.co_consts:
            add(const) if isinstance(const, types.CodeType) else digest.update(repr(const).encode())

    add(code)
    return digest.hexdigest()[:12]


def _call(name: str, arguments: dict, path: frozenset) -> str:
    return f"{name}({', '.join(f'{k}={_describe(v, path)}' for k, v in arguments.items())})"


def _checked_step(factor):
    """``factor(self, step)`` that first checks ``step`` (an int >= 0), as ``schedule(step)`` does."""

    @functools.wraps(factor)
    def checked(self, step: int) -> float:
        _check_int("step", step)
        return factor(self, step)

    return checked


class Schedule:
    """Base class: ``schedule(t)`` is the rate multiplier after ``t`` updates.

    A subclass defines ``factor(step)``; it is wrapped so that a step that is
    not an int >= 0 is refused there too (``LinearDecay(10).factor(-1)``
    would otherwise extrapolate past the peak).
    """

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "factor" in cls.__dict__:
            cls.factor = _checked_step(cls.__dict__["factor"])

    def factor(self, step: int) -> float:
        raise NotImplementedError

    def __call__(self, step: int) -> float:
        return self.factor(step)

    def lr_at(self, step: int, eta_max: float) -> float:
        """The learning rate after ``step`` updates for a peak rate ``eta_max``."""
        check_eta_max(eta_max)
        return eta_max * self(step)

    def lrs(self, num_steps: int, eta_max: float) -> list[float]:
        """The rates used by updates 1..num_steps, for plotting."""
        _check_int("num_steps", num_steps)
        check_eta_max(eta_max)
        return [self.lr_at(t, eta_max) for t in range(num_steps)]


@dataclass(frozen=True)
class Constant(Schedule):
    """eta_t = eta_max."""

    def factor(self, step: int) -> float:
        return 1.0


@dataclass(frozen=True)
class LinearDecay(Schedule):
    """eta_t = eta_min + (eta_max - eta_min) * max(0, 1 - t / T), T = num_steps.

    ``min_lr_ratio = eta_min / eta_max``.  The floor is held after ``T``.
    """

    num_steps: int
    min_lr_ratio: float = 0.0

    def __post_init__(self) -> None:
        _check_int("num_steps", self.num_steps)
        _check_ratio(self.min_lr_ratio)

    def factor(self, step: int) -> float:
        remaining = max(0.0, (self.num_steps - step) / max(1, self.num_steps))
        return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * remaining


@dataclass(frozen=True)
class CosineDecay(Schedule):
    """eta_t = eta_min + (eta_max - eta_min) * (1 + cos(2 pi C t / T)) / 2.

    ``C = num_cycles``: 0.5 is the usual half cosine from eta_max down to
    eta_min at ``t = T``; ``C = 1`` goes down and back up, and so on (the
    notes' formula, and transformers' ``num_cycles``).
    """

    num_steps: int
    num_cycles: float = 0.5
    min_lr_ratio: float = 0.0

    def __post_init__(self) -> None:
        _check_int("num_steps", self.num_steps)
        check_number("num_cycles (C)", self.num_cycles, "a finite number > 0", lambda v: 0 < v < math.inf)
        _check_ratio(self.min_lr_ratio)

    def factor(self, step: int) -> float:
        progress = step / max(1, self.num_steps)
        wave = 0.5 * (1.0 + math.cos(2.0 * math.pi * self.num_cycles * progress))
        return max(0.0, self.min_lr_ratio + (1.0 - self.min_lr_ratio) * wave)


@dataclass(frozen=True)
class Warmup(Schedule):
    """eta_t = eta_max * t / T_warm for t < T_warm, then ``then`` restarted at 0."""

    num_warmup_steps: int
    then: Schedule = Constant()

    def __post_init__(self) -> None:
        _check_int("num_warmup_steps", self.num_warmup_steps)
        check_type("then", self.then, Schedule, "a Schedule (the schedule that follows the warm-up), e.g. CosineDecay(T)")

    def factor(self, step: int) -> float:
        if step < self.num_warmup_steps:
            return step / max(1, self.num_warmup_steps)
        return self.then.factor(step - self.num_warmup_steps)


def _decay_steps(num_warmup_steps: int, num_training_steps: int) -> int:
    _check_int("num_warmup_steps", num_warmup_steps)
    _check_int("num_training_steps", num_training_steps, minimum=1)
    if num_warmup_steps > num_training_steps:
        raise ValueError(
            f"num_warmup_steps ({num_warmup_steps}) must be <= num_training_steps "
            f"({num_training_steps}): the warm-up cannot be longer than the schedule"
        )
    return num_training_steps - num_warmup_steps


def constant_with_warmup(num_warmup_steps: int) -> Schedule:
    """transformers' ``get_constant_schedule_with_warmup``."""
    return Warmup(num_warmup_steps, Constant())


def linear_with_warmup(
    num_warmup_steps: int, num_training_steps: int, min_lr_ratio: float = 0.0
) -> Schedule:
    """transformers' ``get_linear_schedule_with_warmup`` (plus an optional floor).

    ``num_training_steps`` is the length of the *schedule*: declare more
    steps than you train (e.g. 450 for 300) and the rate never reaches 0.
    """
    decay = _decay_steps(num_warmup_steps, num_training_steps)
    return Warmup(num_warmup_steps, LinearDecay(decay, min_lr_ratio))


def cosine_with_warmup(
    num_warmup_steps: int,
    num_training_steps: int,
    num_cycles: float = 0.5,
    min_lr_ratio: float = 0.0,
) -> Schedule:
    """transformers' ``get_cosine_schedule_with_warmup`` (``min_lr_rate`` = ``min_lr_ratio``)."""
    decay = _decay_steps(num_warmup_steps, num_training_steps)
    return Warmup(num_warmup_steps, CosineDecay(decay, num_cycles, min_lr_ratio))


class ScheduledLR(LRScheduler):
    """A ``torch.optim.lr_scheduler.LRScheduler`` driven by a :class:`Schedule`.

    Every parameter group gets ``its initial lr * schedule(t)``.  Call
    ``step()`` after ``optimizer.step()``.  ``state_dict()`` holds the
    position (``last_epoch``), the base rates and the schedule's
    :func:`schedule_fingerprint` (a string, not the schedule itself, so it
    loads with ``torch.load(weights_only=True)``); build the scheduler with
    an equal schedule, load the state, and the rate sequence continues
    exactly where it stopped.  Loading the state of another schedule, or of another torch
    scheduler, raises a ValueError.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, schedule: Schedule, last_epoch: int = -1):
        check_type("optimizer", optimizer, torch.optim.Optimizer, "a torch.optim.Optimizer: ScheduledLR(optimizer, schedule)")
        check_type("schedule", schedule, Schedule, "a course_lib.engine.schedules.Schedule, e.g. cosine_with_warmup(10, 100)")
        _check_int("last_epoch", last_epoch, minimum=-1)
        if last_epoch != -1 and any("initial_lr" not in group for group in optimizer.param_groups):
            raise ValueError(
                f"last_epoch={last_epoch} resumes a schedule, but the optimizer's param groups have no 'initial_lr' (they "
                "were never scheduled): to resume, build ScheduledLR(optimizer, schedule) with the default last_epoch=-1, "
                "then load_state_dict(the saved scheduler state)"
            )
        self.schedule = schedule
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return self._get_closed_form_lr()

    def _get_closed_form_lr(self) -> list[float]:
        factor = self.schedule(self.last_epoch)
        return [base_lr * factor for base_lr in self.base_lrs]

    def state_dict(self) -> dict:
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "schedule")}
        state[_FINGERPRINT] = schedule_fingerprint(self.schedule)
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        check_type("state_dict", state_dict, dict, "the dict returned by ScheduledLR.state_dict()")
        if _FINGERPRINT not in state_dict:
            raise ValueError(
                f"state_dict is not the state of a ScheduledLR (it has no {_FINGERPRINT!r}; its keys are "
                f"{list(state_dict)}): it was saved by another scheduler, so it cannot continue this schedule"
            )
        saved, mine = state_dict[_FINGERPRINT], schedule_fingerprint(self.schedule)
        if saved != mine:
            raise ValueError(
                f"state_dict was saved by a ScheduledLR over {saved}, but this ScheduledLR runs {mine}: "
                "build the scheduler with the schedule that was saved, then load its state"
            )
        super().load_state_dict({k: v for k, v in state_dict.items() if k != _FINGERPRINT})
