"""Freezing and unfreezing parameters (lessons 03 and 04).

A frozen parameter has ``requires_grad = False``: it gets no gradient, so
clipping ignores it, and the optimizer, even one built from all parameters,
leaves it untouched (AdamW skips parameters whose ``.grad`` is None: no
update, no weight decay, no state).  Build the optimizer from
:func:`param_groups`: by default it holds the trainable parameters only; a
run that unfreezes mid-way (``course_lib.engine.callbacks.UnfreezeAt``) builds
it with ``include_frozen=True``, and the same optimizer trains them, in the
right weight-decay group, once they are unfrozen.

Parameters are chosen by name pattern (``re.search``), by module type
(``torch.nn.LayerNorm``), or by layer index (the ``N`` in ``encoder.layer.N.``
or ``h.N.``).  A choice that matches nothing is an error, not a silent no-op.
"""

from __future__ import annotations

import math
import re
from typing import Iterable

import torch

from course_lib.engine._checks import check_int, check_number, check_type, shown

__all__ = ["select", "set_trainable", "freeze", "unfreeze", "trainable_ratio", "param_groups"]

_LAYER = r"(?:^|\.)(?:layer|layers|h|blocks)\.({})\."


def select(
    model: torch.nn.Module,
    pattern: str | None = None,
    *,
    module_type: type | tuple[type, ...] | None = None,
    layers: Iterable[int] | None = None,
) -> list[str]:
    """Names of the parameters chosen by a name ``pattern``, a ``module_type`` and/or ``layers`` (all must hold)."""
    check_type("model", model, torch.nn.Module, "a torch.nn.Module")
    if pattern is None and module_type is None and layers is None:
        raise ValueError("select needs a pattern, a module_type or layers: say which parameters to choose")
    names = [name for name, _ in model.named_parameters()]
    if pattern is not None:
        check_type("pattern", pattern, str, "a regular expression (str) over parameter names")
        try:
            regex = re.compile(pattern)
        except re.error as error:
            raise ValueError(f"pattern {pattern!r} is not a valid regular expression: {error}") from None
        names = [name for name in names if regex.search(name)]
    if module_type is not None:
        types = module_type if isinstance(module_type, tuple) else (module_type,)
        if not all(isinstance(t, type) and issubclass(t, torch.nn.Module) for t in types):
            raise TypeError(f"module_type must be a torch.nn.Module class (e.g. torch.nn.LayerNorm), got {shown(module_type)}")
        owned = {
            f"{prefix}.{name}" if prefix else name
            for prefix, module in model.named_modules() if isinstance(module, types)
            for name, _ in module.named_parameters(recurse=False)
        }
        names = [name for name in names if name in owned]
    if layers is not None:
        if isinstance(layers, (str, bytes)) or not isinstance(layers, Iterable):
            raise TypeError(f"layers must be a non-empty list of layer indices (ints >= 0), got {shown(layers)}")
        indices = list(layers)
        if not indices:
            raise ValueError("layers must be a non-empty list of layer indices (ints >= 0), got an empty one")
        for k, i in enumerate(indices):
            check_int(f"layers[{k}]", i, 0, unit="layers from the first")
        regex = re.compile(_LAYER.format("|".join(map(str, indices))))
        names = [name for name in names if regex.search(name)]
    if not names:
        some = ", ".join(name for name, _ in list(model.named_parameters())[:4])
        raise ValueError(
            f"no parameter matches pattern={pattern!r}, module_type={getattr(module_type, '__name__', module_type)}, "
            f"layers={layers!r} (names look like: {some}, ...)"
        )
    return names


def set_trainable(model: torch.nn.Module, pattern: str | None, trainable: bool, **choice) -> list[str]:
    """Set ``requires_grad`` of the chosen parameters (see :func:`select`); return their names."""
    check_type("trainable", trainable, bool, "True or False")
    names = select(model, pattern, **choice)
    params = dict(model.named_parameters())
    for name in names:
        params[name].requires_grad_(trainable)
    return names


def freeze(model: torch.nn.Module, pattern: str | None = None, **choice) -> list[str]:
    """Freeze the chosen parameters: ``freeze(model, r"embeddings|attention")``, ``freeze(model, layers=[0, 1])``."""
    return set_trainable(model, pattern, False, **choice)


def unfreeze(model: torch.nn.Module, pattern: str | None = None, **choice) -> list[str]:
    """Unfreeze the chosen parameters."""
    return set_trainable(model, pattern, True, **choice)


def trainable_ratio(model: torch.nn.Module) -> float:
    """R = |trainable parameters| / |all parameters|, counted in numbers, not tensors."""
    check_type("model", model, torch.nn.Module, "a torch.nn.Module")
    total = sum(p.numel() for p in model.parameters())
    if total == 0:
        raise ValueError("model has no parameters")
    return sum(p.numel() for p in model.parameters() if p.requires_grad) / total


def param_groups(model: torch.nn.Module, weight_decay: float, *, include_frozen: bool = False) -> list[dict]:
    """Optimizer groups: matrices with ``weight_decay``, biases and norms without; frozen parameters left out unless asked.

    Decaying a LayerNorm gain or a bias pulls it towards 0, which is not a
    regularisation anyone wants.  With ``include_frozen=True`` frozen
    parameters join their groups too, for a run that unfreezes them later
    (``UnfreezeAt``): while frozen they get no gradient, and AdamW skips a
    parameter whose ``.grad`` is None (no update, no decay, no state), so the
    run is the same as without them until they are unfrozen.
    """
    check_type("model", model, torch.nn.Module, "a torch.nn.Module")
    check_number("weight_decay", weight_decay, ">= 0 and finite", lambda v: 0 <= v < math.inf)
    check_type("include_frozen", include_frozen, bool, "True or False")
    norms = (torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.modules.batchnorm._BatchNorm)
    no_decay_ids = {
        id(p) for module in model.modules() if isinstance(module, norms)
        for p in module.parameters(recurse=False)
    }
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not (p.requires_grad or include_frozen):
            continue
        (no_decay if p.ndim < 2 or id(p) in no_decay_ids or name.endswith("bias") else decay).append(p)
    if not decay and not no_decay:
        raise ValueError("model has no parameters" if include_frozen else
                         "model has no trainable parameter: unfreeze some before building the optimizer, or pass "
                         "include_frozen=True for a run that unfreezes them later (UnfreezeAt)")
    return [g for g in ({"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}) if g["params"]]
