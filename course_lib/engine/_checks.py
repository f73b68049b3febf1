"""Argument checks shared by course_lib's modules.

Every error names the argument, shows what it got and says what is allowed:
TypeError for a wrong type, ValueError for a wrong value.  A bool is never a
number here, although Python counts ``True`` as the int 1.
"""

from __future__ import annotations

import numbers
from typing import Callable

from torch import Tensor


def shown(value: object) -> str:
    """``repr(value)``, cut to one short line, and its type: ``'1.0' (str)``."""
    text = " ".join(repr(value).split())
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} ({type(value).__name__})"


def check_type(name: str, value: object, types: type | tuple[type, ...], allowed: str) -> None:
    """TypeError unless ``value`` is one of ``types``; ``allowed`` says what to pass."""
    if not isinstance(value, types):
        raise TypeError(f"{name} must be {allowed}, got {shown(value)}")


def check_int(name: str, value: int, minimum: int = 0, maximum: int | None = None, unit: str = "optimizer steps") -> None:
    """An int (not a bool) in ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int (a number of {unit}), got {shown(value)}")
    if value < minimum or (maximum is not None and value > maximum):
        allowed = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be {allowed} {unit}, got {value}")


def check_number(name: str, value: float, allowed: str, ok: Callable[[float], bool]) -> float:
    """A real number (not a bool or a str; a one-element tensor counts) with ``ok(value)`` true.

    ``allowed`` describes the values ``ok`` accepts (``"> 0"``); NaN fails any
    comparison, so ``ok`` rejects it without a special case.  Returns the
    number (the tensor's item for a tensor).
    """
    number = value.item() if isinstance(value, Tensor) and value.numel() == 1 else value
    if isinstance(number, bool) or not isinstance(number, numbers.Real):
        raise TypeError(f"{name} must be a real number (int or float), got {shown(value)}; allowed: {allowed}")
    if not ok(number):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return number


def check_between(name: str, value: float, low: float, high: float, why: str) -> float:
    """A real number in ``[low, high]``; ``why`` explains the range."""
    return check_number(name, value, f"in [{low}, {high}] ({why})", lambda v: low <= v <= high)


def check_choice(name: str, value: object, choices: tuple, why: str = "") -> None:
    """ValueError unless ``value`` is one of ``choices`` (compared with ``==``; a bool is never 0 or 1 here)."""
    if isinstance(value, bool) and not any(isinstance(c, bool) for c in choices) or value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {options}{f' ({why})' if why else ''}, got {shown(value)}")
