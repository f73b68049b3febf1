"""Gradient clipping (lesson 02).

Clipping by the global L2 norm rescales every gradient by the same factor:

    |g| = sqrt(sum over all parameter tensors of |g_i|^2)
    g  <-  g * c / max(|g|, c)

so afterwards ``|g| = min(|g|, c)``: it equals ``c`` only when the raw norm
exceeded ``c``, and the direction of ``g`` never changes.  This is
``torch.nn.utils.clip_grad_norm_`` (which writes the factor as
``min(1, c / (|g| + 1e-6))``), with one difference on purpose: a non-finite
norm raises a clear error by default instead of silently writing NaN into
the gradients.

Also here, for contrast and measurement: clipping each element by value,
clipping each layer by its own norm, per-layer gradient norms computed with
one fused ``torch._foreach_norm`` call, the norm lost to clipping, and
thresholds that change with the step (delayed clipping).  As in torch, the
functions that change gradients in place end in ``_``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping

import torch
from torch import Tensor

from course_lib.engine._checks import check_int, check_number, check_type, shown

__all__ = [
    "global_norm",
    "global_grad_norm",
    "clip_grad_norm_",
    "clip_in_step_",
    "divides_by_grad_scale",
    "clip_grad_value_",
    "clip_grad_norm_per_layer_",
    "clip_factor",
    "norm_lost",
    "delayed",
    "threshold_at",
    "LayerGradNorms",
    "by_module",
]

Threshold = float | Callable[[int], float] | None


_PARAMETERS = "an iterable of tensors: pass model.parameters() (not model.named_parameters(), not the model)"
_NAMED = "an iterable of (name, tensor) pairs: pass model.named_parameters() (not model.parameters(), not the model)"


def _listed(name: str, values: Iterable, item_ok: Callable[[object], bool], allowed: str) -> list:
    """The items of ``values`` as a list, each checked by ``item_ok``; a model, a tensor or a str is refused.

    An iterator (``model.parameters()`` is a generator) that yields nothing is
    refused too: it is almost always one already used up by an earlier call,
    which would otherwise clip or measure nothing, silently.  An empty list
    or tuple (a model without parameters) is accepted.
    """
    if isinstance(values, (torch.nn.Module, Tensor, str)) or not isinstance(values, Iterable):
        raise TypeError(f"{name} must be {allowed}, got {shown(values)}")
    items = list(values)
    if not items and isinstance(values, Iterator):
        raise ValueError(
            f"{name} is an iterator that yields nothing ({type(values).__name__}): a generator such as "
            "model.parameters() runs once, so a second use sees nothing. Call model.parameters() again for each call "
            "(or pass a list; an empty list is accepted)"
        )
    for item in items:
        if not item_ok(item):
            raise TypeError(f"{name} must be {allowed}, got an item {shown(item)}")
    return items


def _tensors(name: str, parameters: Iterable[Tensor] | Tensor) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        return [parameters]
    return _listed(name, parameters, lambda item: isinstance(item, Tensor), _PARAMETERS)


def _is_named(item: object) -> bool:
    return isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str) and isinstance(item[1], Tensor)


def _grads(parameters: Iterable[torch.nn.Parameter] | Tensor) -> list[Tensor]:
    return [p.grad for p in _tensors("parameters", parameters) if p.grad is not None]


def _check_threshold(name: str, value: float) -> None:
    check_number(name, value, "> 0 (use math.inf for no clipping)", lambda v: v > 0)


def _check_norm(value: float) -> None:
    check_number("norm", value, ">= 0 (a gradient norm |g|)", lambda v: v >= 0)


def global_norm(tensors: list[Tensor]) -> Tensor:
    """sqrt(sum_i |t_i|^2) over a list of tensors, with one fused norm call (a 0-d tensor).

    Half-precision tensors (fp16, bf16) are measured in float32: the norm of
    finite fp16 gradients easily passes fp16's largest number (65504), and
    an overflowed inf would read as "a gradient holds NaN or inf".
    """
    tensors = _tensors("tensors", tensors)
    if not tensors:
        return torch.tensor(0.0)
    dtypes = {t.dtype for t in tensors}
    for dtype in dtypes:
        if not (dtype.is_floating_point or dtype.is_complex):
            raise TypeError(f"tensors must hold floating-point numbers (gradients, weights), got a tensor of {dtype}")
    device = tensors[0].device
    if torch.float16 in dtypes or torch.bfloat16 in dtypes:
        norms = [torch.linalg.vector_norm(t, dtype=torch.float32 if t.dtype in (torch.float16, torch.bfloat16) else None)
                 for t in tensors]
    else:
        norms = torch._foreach_norm(tensors)
    return torch.linalg.vector_norm(torch.stack([n.to(device) for n in norms]))


def global_grad_norm(parameters: Iterable[torch.nn.Parameter] | Tensor) -> Tensor:
    """The global norm of the gradients of every parameter that has one."""
    return global_norm(_grads(parameters))


def clip_factor(norm: float, max_norm: float) -> float:
    """c / max(|g|, c): 1 when no clipping happens, below 1 when it does."""
    _check_norm(norm)
    _check_threshold("max_norm", max_norm)
    return 1.0 if math.isinf(max_norm) else max_norm / max(norm, max_norm)


def norm_lost(norm: float, max_norm: float) -> float:
    """|g| - |g_clipped| = max(0, |g| - c): how much gradient norm clipping removed."""
    _check_norm(norm)
    _check_threshold("max_norm", max_norm)
    return max(0.0, norm - max_norm)


@torch.no_grad()
def clip_grad_norm_(
    parameters: Iterable[torch.nn.Parameter] | Tensor,
    max_norm: float,
    *,
    error_if_nonfinite: bool = True,
) -> Tensor:
    """Scale all gradients by c / max(|g|, c); return the global norm |g| before clipping.

    ``max_norm = math.inf`` only measures the norm.  Parameters without a
    gradient (frozen, unused) are skipped.  If the norm is NaN or inf, the
    gradients are left untouched and, with ``error_if_nonfinite=True``
    (default), a ``FloatingPointError`` is raised; with ``False`` the
    non-finite norm is returned and the caller must skip the update (the
    training loop does, and records it).  The finiteness check costs one
    host synchronisation per call on a GPU; torch's default skips both.
    """
    _check_threshold("max_norm", max_norm)
    check_type("error_if_nonfinite", error_if_nonfinite, bool, "True or False")
    grads = _grads(parameters)
    total = global_norm(grads)
    if error_if_nonfinite and not torch.isfinite(total):
        raise FloatingPointError(
            f"the global gradient norm is {total.item()}: some gradient holds NaN or inf. "
            "Lower the learning rate, clip earlier, or pass error_if_nonfinite=False to skip such steps."
        )
    if grads and not math.isinf(max_norm):
        # a non-finite norm leaves the gradients untouched (factor 1), decided on the device: no host read
        factor = torch.where(torch.isfinite(total), max_norm / torch.clamp(total, min=max_norm), 1.0)
        torch._foreach_mul_(grads, factor.to(grads[0].device))
    return total


def divides_by_grad_scale(optimizer: torch.optim.Optimizer) -> bool:
    """Whether ``optimizer``'s step divides the gradients by an ``optimizer.grad_scale`` tensor: the fused ones do."""
    return bool(getattr(optimizer, "_step_supports_amp_scaling", False) and optimizer.defaults.get("fused"))


@torch.no_grad()
def clip_in_step_(parameters: Iterable[torch.nn.Parameter] | Tensor, max_norm: float, optimizer: torch.optim.Optimizer) -> Tensor:
    """Clip by the global norm inside ``optimizer``'s next step; return the norm |g| before clipping.

    The same update as :func:`clip_grad_norm_` then ``optimizer.step()``, with
    one pass over the gradients fewer: the divisor max(|g|, c) / c is handed
    to a fused optimizer as its ``grad_scale`` (the divisor GradScaler hands
    it to unscale fp16 gradients), and its one kernel divides each gradient
    while it updates, writing the clipped gradient back.  A non-finite norm
    gives the divisor 1 (the caller skips that step).  The caller steps, then
    removes ``optimizer.grad_scale``, as the training loop does.  With fp16,
    call ``scaler.unscale_(optimizer)`` first and then ``optimizer.step()``:
    ``scaler.step`` would replace the divisor with its own.
    """
    _check_threshold("max_norm", max_norm)
    if not divides_by_grad_scale(optimizer):
        raise ValueError(f"optimizer must be a fused one (e.g. torch.optim.AdamW(..., fused=True)), whose step takes a "
                         f"grad_scale divisor, got {shown(optimizer)}; clip with clip_grad_norm_ instead")
    grads = _grads(parameters)
    total = global_norm(grads)
    if grads and not math.isinf(max_norm):
        divisor = torch.where(torch.isfinite(total), torch.clamp(total, min=max_norm) / max_norm, 1.0)
        optimizer.grad_scale = divisor.to(device=grads[0].device, dtype=torch.float32)
    return total


@torch.no_grad()
def clip_grad_value_(parameters: Iterable[torch.nn.Parameter] | Tensor, clip_value: float, *,
                     error_if_nonfinite: bool = True) -> Tensor:
    """Clamp every gradient element to [-v, v]; return the global norm before clipping.

    Unlike clipping by norm, this changes the direction of the gradient.  A
    NaN or inf gradient is not clamped into a finite one that looks fine: as in
    :func:`clip_grad_norm_`, it raises (``error_if_nonfinite=True``) or, with
    ``False``, the gradients are left as they are and the norm shows it.
    """
    _check_threshold("clip_value", clip_value)
    check_type("error_if_nonfinite", error_if_nonfinite, bool, "True or False")
    grads = _grads(parameters)
    total = global_norm(grads)
    finite = bool(torch.isfinite(total))  # one host read: this clip is not the training loop's
    if error_if_nonfinite and not finite:
        raise FloatingPointError(
            f"the global gradient norm is {total.item()}: some gradient holds NaN or inf, which clamping would hide. "
            "Lower the learning rate, or pass error_if_nonfinite=False and skip such steps."
        )
    if grads and finite and not math.isinf(clip_value):
        torch._foreach_clamp_min_(grads, -clip_value)
        torch._foreach_clamp_max_(grads, clip_value)
    return total


@torch.no_grad()
def clip_grad_norm_per_layer_(
    layers: Mapping[str, Iterable[torch.nn.Parameter]], max_norm: float, *, error_if_nonfinite: bool = True
) -> dict[str, Tensor]:
    """Clip each layer's gradient to norm <= c on its own; return each layer's norm before clipping."""
    check_type("layers", layers, Mapping, "a mapping {layer name: parameters}, e.g. {'body': model[0].parameters()} "
               "(for one global threshold use clip_grad_norm_)")
    _check_threshold("max_norm", max_norm)
    if not layers:
        raise ValueError("layers is empty ({}): nothing would be clipped; pass {layer name: parameters}, e.g. "
                         "{'body': model[0].parameters(), 'head': model[1].parameters()}")
    return {
        name: clip_grad_norm_(_tensors(f"layers[{name!r}]", params), max_norm, error_if_nonfinite=error_if_nonfinite)
        for name, params in layers.items()
    }


def delayed(max_norm: float, start_step: int) -> Callable[[int], float]:
    """Delayed clipping: c(t) = inf for t < start_step, then max_norm."""
    _check_threshold("max_norm", max_norm)
    check_int("start_step", start_step)
    return _Delayed(max_norm, start_step)


class _Delayed:
    def __init__(self, max_norm: float, start_step: int):
        self.max_norm, self.start_step = max_norm, start_step

    def __call__(self, step: int) -> float:
        return math.inf if step < self.start_step else self.max_norm

    def __repr__(self) -> str:
        return f"delayed(max_norm={self.max_norm}, start_step={self.start_step})"


def threshold_at(clip: Threshold, step: int) -> float:
    """The clipping threshold at ``step``: None -> inf, a number, or a callable of the step."""
    check_int("step", step)
    if clip is None:
        return math.inf
    if callable(clip):
        value = clip(step)
        _check_threshold("the clipping threshold", value)
        return value
    _check_threshold("clip", clip)
    return float(clip)


def by_module(name: str) -> str:
    """Group a parameter with its module: 'encoder.0.linear.weight' -> 'encoder.0.linear'."""
    check_type("name", name, str, "a parameter name such as 'encoder.0.linear.weight'")
    return name.rsplit(".", 1)[0] if "." in name else name


def _compile(layer: str, pattern: str) -> re.Pattern:
    check_type("a key of group_by", layer, str, "a layer name (a str) mapped to a regular expression")
    check_type(f"group_by[{layer!r}]", pattern, (str, re.Pattern), "a regular expression (a str) searched in parameter names")
    try:
        return re.compile(pattern)
    except re.error as error:
        raise ValueError(f"group_by[{layer!r}] = {pattern!r} is not a valid regular expression: {error}") from None


class LayerGradNorms:
    """Gradient norm per layer, computed with one fused norm call per step.

    ``group_by`` maps a parameter name to its layer: a function
    (default :func:`by_module`), or a dict ``{layer: regex}`` where the first
    matching pattern wins and unmatched parameters form the layer ``"other"``.
    :meth:`measure` returns the names of the layers that have gradients and
    one tensor of their norms, on the parameters' device, without a host
    synchronisation; calling the tracker gives the same as a dict.
    """

    def __init__(
        self,
        named_parameters: Iterable[tuple[str, torch.nn.Parameter]],
        group_by: Callable[[str], str] | Mapping[str, str] | None = None,
    ):
        named = _listed("named_parameters", named_parameters, _is_named, _NAMED)
        if not named:
            raise ValueError(
                "named_parameters is empty: pass model.named_parameters() (a generator runs once: call it again "
                "for each tracker)"
            )
        patterns = group_by if isinstance(group_by, Mapping) else None
        if group_by is None:
            group_by = by_module
        elif patterns is not None:
            compiled = [(layer, _compile(layer, pattern)) for layer, pattern in patterns.items()]
            group_by = lambda name: next((layer for layer, rx in compiled if rx.search(name)), "other")
        elif not callable(group_by):
            raise TypeError(
                "group_by must be a function of the parameter name (such as by_module) or a dict {layer: regex}, "
                f"got {shown(group_by)}"
            )
        self.names: list[str] = [name for name, _ in named]
        self.params: list[torch.nn.Parameter] = [param for _, param in named]
        layer_of = [group_by(name) for name, _ in named]
        for name, layer in zip((name for name, _ in named), layer_of):
            if not isinstance(layer, str):
                raise TypeError(f"group_by(name) must return the name of the parameter's layer (a str), got {shown(layer)} "
                                f"for {name!r}")
        self.layers = list(dict.fromkeys(layer_of))
        for layer in patterns or ():
            if layer not in self.layers:
                names = [name for name, _ in named]
                raise ValueError(
                    f"group_by[{layer!r}] = {patterns[layer]!r} matches no parameter name (or only ones an earlier "
                    f"pattern takes); the names are {names[:6]}{'...' if len(names) > 6 else ''}"
                )
        position = {layer: i for i, layer in enumerate(self.layers)}
        self._layer_index = [position[layer] for layer in layer_of]
        self._plan: tuple = ((), None, [], None)

    def _index(self, present: tuple[int, ...], device: torch.device) -> tuple[Tensor, list[int]]:
        """Which layer each present gradient adds to; rebuilt only when the set of gradients changes."""
        if self._plan[0] != present or self._plan[3] != device:
            ids = [self._layer_index[i] for i in present]
            seen = sorted(set(ids))
            compact = {layer: k for k, layer in enumerate(seen)}
            index = torch.tensor([compact[layer] for layer in ids], device=device)
            self._plan = (present, index, seen, device)
        return self._plan[1], self._plan[2]

    @torch.no_grad()
    def measure(self) -> tuple[list[str], Tensor]:
        present = tuple(i for i, p in enumerate(self.params) if p.grad is not None)
        if not present:
            return [], torch.zeros(0)
        grads = [self.params[i].grad for i in present]
        device = grads[0].device
        squares = torch.stack([n.to(device) for n in torch._foreach_norm(grads)]).float() ** 2
        index, seen = self._index(present, device)
        per_layer = torch.zeros(len(seen), device=device).index_add_(0, index, squares).sqrt()
        return [self.layers[i] for i in seen], per_layer

    def __call__(self) -> dict[str, Tensor]:
        names, norms = self.measure()
        return dict(zip(names, norms))
