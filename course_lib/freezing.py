"""Freezing and unfreezing parameters by name (lessons 03 and 04).

A frozen parameter has ``requires_grad = False``: it gets no gradient, so
clipping ignores it and the optimizer (built from all parameters) leaves it
untouched.  Unfreezing mid-run needs no new optimizer.
"""

from __future__ import annotations

import re

import torch

__all__ = ["set_trainable", "freeze", "unfreeze", "trainable_ratio"]


def set_trainable(model: torch.nn.Module, pattern: str, trainable: bool) -> list[str]:
    """Set ``requires_grad`` of every parameter whose name matches ``pattern`` (``re.search``).

    Returns the names changed.  A pattern that matches no parameter is an
    error, not a silent no-op.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be a regular expression (str) over parameter names, got {pattern!r}")
    try:
        regex = re.compile(pattern)
    except re.error as error:
        raise ValueError(f"pattern {pattern!r} is not a valid regular expression: {error}") from None
    names = [name for name, p in model.named_parameters() if regex.search(name)]
    if not names:
        some = ", ".join(name for name, _ in list(model.named_parameters())[:5])
        raise ValueError(f"pattern {pattern!r} matches no parameter name (names look like: {some}, ...)")
    params = dict(model.named_parameters())
    for name in names:
        params[name].requires_grad_(trainable)
    return names


def freeze(model: torch.nn.Module, pattern: str) -> list[str]:
    """Freeze the parameters whose names match ``pattern``."""
    return set_trainable(model, pattern, False)


def unfreeze(model: torch.nn.Module, pattern: str) -> list[str]:
    """Unfreeze the parameters whose names match ``pattern``."""
    return set_trainable(model, pattern, True)


def trainable_ratio(model: torch.nn.Module) -> float:
    """R = |trainable parameters| / |all parameters|, counted in numbers, not tensors."""
    total = sum(p.numel() for p in model.parameters())
    if total == 0:
        raise ValueError("model has no parameters")
    return sum(p.numel() for p in model.parameters() if p.requires_grad) / total
