"""What a lesson measures or does during a run, as small objects the loop calls (callbacks).

The loop (:func:`course_lib.engine.training.train`) calls each callback at named
moments: ``on_train_begin``, ``on_step_begin``, ``on_after_backward``
(gradients unscaled, not yet clipped), ``on_step_end`` (after the update),
``on_evaluate``, ``on_log`` (every ``log_every`` steps, with host values) and
``on_train_end``.  Measurements record tensors with ``state.log``; they are
read back with the loop's own read every ``log_every`` steps, so a probe adds
no host synchronisation of its own unless it says so (``StepTimer``,
``Evaluate``).

Measuring: :class:`GradNorms` (per layer), :class:`WeightChange` (update
size, per matrix), :class:`StepTimer`, :class:`Throughput` (tokens/s, MFU),
:class:`Evaluate`, :class:`DataChecksum`.  Acting: :class:`UnfreezeAt`.  Showing: :class:`Progress`.

A callback that counts across steps (``Throughput``'s tokens,
``DataChecksum``'s hash chain) returns its count from ``state_dict()``;
checkpoints keep it and a resumed run continues it, as Lightning's
callbacks do.  The others hold nothing from one step to the next.
"""

from __future__ import annotations

import hashlib
import math
import numbers
import time
from typing import Any, Callable, Iterable, Iterator, Mapping

import torch

from course_lib.engine._checks import check_int, check_number, check_type, shown
from course_lib.engine.clipping import _NAMED, LayerGradNorms, _is_named, _listed, global_norm
from course_lib.engine.data import (
    at_least_float32,
    batch_size,
    count_tokens,
    ddp_wrapper,
    first_tensor,
    is_main_process,
    pick_device,
    tensor_digest,
    to_device,
    tokens_of,
)
from course_lib.engine.freezing import select, set_trainable
from course_lib.engine.timing import synchronize
from course_lib.engine.training import Callback, TrainState, autocast

__all__ = [
    "GradNorms",
    "WeightChange",
    "StepTimer",
    "Throughput",
    "Evaluate",
    "UnfreezeAt",
    "Progress",
    "DataChecksum",
]


def _check_tracked(who: str, named: list[tuple[str, torch.Tensor]], model: torch.nn.Module) -> None:
    """ValueError unless every tracked parameter is one of the trained model's (the same tensor, compared by id)."""
    own = {id(p) for p in model.parameters()}
    foreign = [name for name, p in named if id(p) not in own]
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise ValueError(
            f"{who} tracks {foreign[0]!r}{more} (of {len(named)} tracked), not {'parameters' if more else 'a parameter'} of "
            "the model being trained: it would record a model that never trains. Pass the named_parameters() of the "
            "model given to train (or of the bare model inside its DDP or torch.compile wrapper)"
        )


class GradNorms(Callback):
    """Gradient norm per layer before clipping, recorded as ``grad_norm/<layer>`` (one fused norm call).

    ``group_by`` is as in :class:`~course_lib.engine.clipping.LayerGradNorms`: a
    function of the parameter name, or ``{layer: regex}``.  The parameters
    must be the trained model's: others are refused when the run starts.
    """

    def __init__(self, named_parameters, group_by=None):
        self.tracker = LayerGradNorms(named_parameters, group_by)

    def on_train_begin(self, state: TrainState) -> None:
        _check_tracked("GradNorms", list(zip(self.tracker.names, self.tracker.params)), state.model)

    def on_after_backward(self, state: TrainState) -> None:
        layers, norms = self.tracker.measure()
        if layers:
            state.log([f"grad_norm/{layer}" for layer in layers], norms)


class WeightChange(Callback):
    """The size of each update, |theta_{t+1} - theta_t|, as ``update_norm``.

    With ``per_matrix=True`` also the Frobenius norm of each weight matrix's
    change, |W_{t+1} - W_t|_F, as ``weight_change/<name>``.  Costs one copy
    of the trainable parameters per step.  The parameters must be the
    trained model's: others are refused when the run starts.
    """

    def __init__(self, named_parameters, per_matrix: bool = False):
        pairs = _listed("named_parameters", named_parameters, _is_named, _NAMED)
        if not pairs:
            raise ValueError("named_parameters is empty: pass model.named_parameters() (a generator runs once: call it "
                             "again for each probe)")
        check_type("per_matrix", per_matrix, bool, "True or False")
        self.named = pairs
        self.per_matrix = per_matrix
        self._before: list[torch.Tensor] = []
        self._live: list[tuple[str, torch.nn.Parameter]] = []

    def on_train_begin(self, state: TrainState) -> None:
        _check_tracked("WeightChange", self.named, state.model)

    def on_step_begin(self, state: TrainState) -> None:
        self._live = [(name, p) for name, p in self.named if p.requires_grad]
        self._before = [p.detach().clone() for _, p in self._live]

    def on_step_end(self, state: TrainState) -> None:
        if not self._live:
            return
        diffs = torch._foreach_sub([p.detach() for _, p in self._live], self._before)
        state.log("update_norm", global_norm(diffs))
        if self.per_matrix:
            chosen = [(name, d) for (name, p), d in zip(self._live, diffs) if p.ndim >= 2]
            if chosen:
                norms = torch.stack([n.to(diffs[0].device) for n in torch._foreach_norm([d for _, d in chosen])])
                state.log([f"weight_change/{name}" for name, _ in chosen], norms)
        self._before = []


class StepTimer(Callback):
    """Wall time of every step, as ``seconds``.  Synchronises the GPU twice per step: use it to measure, not to train."""

    def on_step_begin(self, state: TrainState) -> None:
        synchronize(state.device)
        self._began = time.perf_counter()

    def on_step_end(self, state: TrainState) -> None:
        synchronize(state.device)
        state.log("seconds", time.perf_counter() - self._began)


class Throughput(Callback):
    """Tokens per second (``tokens_per_s``) over each logging window, and MFU when the FLOPs are known.

    ``tokens`` counts the tokens of a micro-batch (default :func:`count_tokens`,
    from shapes, no synchronisation).  With ``flops_per_token`` (e.g. 6N plus
    attention) and ``peak_flops`` of the device, also ``mfu``: achieved FLOP/s
    over peak.  The window time comes from the loop's own read every
    ``log_every`` steps.  ``total_tokens`` counts every token of the run; a
    run from step 0 starts it at 0 (a reused probe starts afresh), a resumed
    run continues it from the checkpoint.
    """

    def __init__(self, tokens: Callable[[Any], int] = count_tokens, flops_per_token: float | None = None,
                 peak_flops: float | None = None):
        if not callable(tokens):
            raise TypeError(f"tokens must be a function batch -> number of tokens, got {tokens!r}")
        for name, value in (("flops_per_token", flops_per_token), ("peak_flops", peak_flops)):
            if value is not None:
                check_number(name, value, "> 0 (or None)", lambda v: v > 0)
        self.tokens, self.flops_per_token, self.peak_flops = tokens, flops_per_token, peak_flops
        self.total_tokens = 0
        self._count = 0

    def on_train_begin(self, state: TrainState) -> None:
        self._count = 0  # the loop's window clock starts now
        if state.start_step == 0:
            self.total_tokens = 0

    def on_step_begin(self, state: TrainState) -> None:
        tokens = sum(tokens_of(self.tokens, batch) for batch in state.batches)
        self._count += tokens
        self.total_tokens += tokens

    def on_log(self, state: TrainState, logs: dict[str, float]) -> None:
        if state.window_seconds <= 0:
            return
        rate = self._count / state.window_seconds
        state.history.add("tokens_per_s", state.step, rate)
        logs["tokens_per_s"] = rate
        if self.flops_per_token and self.peak_flops:
            mfu = rate * self.flops_per_token / self.peak_flops
            state.history.add("mfu", state.step, mfu)
            logs["mfu"] = mfu
        self._count = 0

    def state_dict(self) -> dict:
        return {"total_tokens": self.total_tokens}

    def load_state_dict(self, state: dict) -> None:
        total = state.get("total_tokens") if isinstance(state, Mapping) else None
        if isinstance(total, bool) or not isinstance(total, int) or total < 0:
            raise ValueError(f"state must be what Throughput.state_dict() returns, {{'total_tokens': an int >= 0}}, got {shown(state)}")
        self.total_tokens = total


@torch.no_grad()
def evaluate(model, data: Iterable, loss_fn, *, metrics=None, device=None, precision: str = "fp32") -> dict[str, float]:
    """``eval_loss`` and ``eval_<name>`` for each of ``metrics(model, batch)``, means over all examples.

    A batch weighs its size; a ``(sum, count)`` loss weighs its count.  Runs in
    eval mode under ``torch.no_grad()`` and the given precision, draws nothing
    from the caller's random state, and reads its results back once.
    """
    check_type("model", model, torch.nn.Module, "a torch.nn.Module")
    if callable(data) or not isinstance(data, Iterable) or isinstance(data, (str, bytes)):
        raise TypeError(f"data must be an iterable of batches (a list or a DataLoader), got {shown(data)}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be a function (model, batch) -> loss, got {shown(loss_fn)}")
    if metrics is not None and not callable(metrics):
        raise TypeError(f"metrics must be a function (model, batch) -> dict of numbers, or None, got {shown(metrics)}")
    device = pick_device(device)
    was_training = model.training
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    weights: dict[str, float | torch.Tensor] = {}
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            for batch in data:
                batch = to_device(batch, device)
                size = batch_size(batch)
                with autocast(device, precision):
                    out = loss_fn(model, batch)
                    _check_eval_loss(out)
                    values = {"loss": (at_least_float32(out[0]).reshape(()), out[1]) if isinstance(out, tuple)
                              else (at_least_float32(out).reshape(()) * size, size)}
                    if metrics is not None:
                        extra = metrics(model, batch)
                        _check_metrics(extra)
                        values.update({k: (torch.as_tensor(v, dtype=torch.float32).to(device).reshape(()) * size, size)
                                       for k, v in extra.items()})
                for key, (total, weight) in values.items():
                    sums[key] = sums.get(key, 0) + total.to(device)
                    weights[key] = weights.get(key, 0) + weight
    finally:
        model.train(was_training)
    if not sums:
        raise ValueError("the evaluation data holds no batch")
    means = torch.stack([sums[k] / weights[k] for k in sums]).tolist()
    return {f"eval_{k}": v for k, v in zip(sums, means)}


def _check_eval_loss(out: object) -> None:
    """What ``loss_fn(model, batch)`` returned: a one-number tensor, or a pair (sum tensor, count); shapes only, no sync."""
    total = out[0] if isinstance(out, tuple) and len(out) == 2 else out
    if isinstance(out, tuple) and len(out) != 2 or not isinstance(total, torch.Tensor):
        raise TypeError(f"loss_fn must return a loss tensor or a pair (sum, count), got {shown(out)}")
    if total.numel() != 1:
        raise ValueError(f"loss_fn must return a single number (a 0-d tensor), got shape {tuple(total.shape)}: "
                         "reduce it with .mean()")


def _check_metrics(extra: object) -> None:
    """What ``metrics(model, batch)`` returned: a dict of names (str, not "loss") to numbers, read without a host sync."""
    if not isinstance(extra, Mapping):
        raise TypeError(f"metrics(model, batch) must return a dict {{name: number}}, got {shown(extra)}")
    for key, value in extra.items():
        if not isinstance(key, str):
            raise TypeError(f"metrics(model, batch) keys must be names (str), recorded as eval_<name>; got {shown(key)}")
        if key == "loss":
            raise ValueError("metrics(model, batch) returned the key 'loss', which would replace eval_loss (the loss_fn's): "
                             "name the metric otherwise")
        if isinstance(value, torch.Tensor):
            number = value.numel() == 1 and not (value.dtype == torch.bool or value.is_complex())
        else:
            number = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if not number:
            raise TypeError(f"metrics(model, batch) values must be numbers (an int, a float or a one-element tensor), "
                            f"got {key!r}: {shown(value)}")


class Evaluate(Callback):
    """:func:`evaluate` every ``every`` steps and after the last, recorded as ``eval_loss`` and ``eval_<name>``.

    ``data`` is an iterable of batches (re-read at each evaluation);
    ``metrics(model, batch)`` may return a dict of extra numbers per batch
    (e.g. ``{"accuracy": ...}``).  One synchronisation per evaluation.
    """

    def __init__(self, data: Iterable, every: int, metrics: Callable[[torch.nn.Module, Any], Mapping] | None = None):
        if callable(data) or not isinstance(data, Iterable):
            raise TypeError(f"data must be an iterable of batches (a list or a DataLoader), got {type(data).__name__}")
        if isinstance(data, Iterator):
            raise TypeError(
                f"data must be re-readable (a list or a DataLoader), got a one-pass {type(data).__name__}: it would be "
                "empty from the second evaluation on. Pass list(...) of it"
            )
        check_int("every", every, 1)
        if metrics is not None and not callable(metrics):
            raise TypeError(f"metrics must be a function (model, batch) -> dict of numbers, or None, got {shown(metrics)}")
        self.data, self.every, self.metrics = data, every, metrics

    def on_step_end(self, state: TrainState) -> None:
        done = state.step + 1
        if done % self.every == 0 or done == state.steps:
            results = evaluate(state.model, self.data, state.loss_fn, metrics=self.metrics, device=state.device,
                               precision=state.precision)
            for key, value in results.items():
                state.history.add(key, state.step, value)
            state.eval_results = results


class UnfreezeAt(Callback):
    """Unfreeze the parameters whose names match ``pattern`` (a regex) at step ``step``.

    The optimizer must hold them from the start: build it from
    ``param_groups(model, weight_decay, include_frozen=True)`` (or from
    ``model.parameters()``).  Before ``step`` they get no gradient, so AdamW
    leaves them alone (no update, no weight decay, no state); from that step
    on they train.  An optimizer that does not hold them is refused when the
    run starts.  A resumed run past ``step`` unfreezes them at the start.

    Not for a ``DistributedDataParallel`` model, which is refused at the start
    of the run: DDP averages over ranks only the parameters that were trainable
    when it was built, so parameters unfrozen later would train on each rank's
    own gradient and the ranks' weights would drift apart.  Train to ``step``,
    unfreeze the bare model, wrap it again and resume from the checkpoint.
    """

    def __init__(self, step: int, pattern: str):
        check_int("step", step, 0, unit="optimizer steps done before unfreezing")
        if not isinstance(pattern, str):
            raise TypeError(f"pattern must be a regular expression (str) over parameter names, got {pattern!r}")
        self.step, self.pattern = step, pattern

    def on_train_begin(self, state: TrainState) -> None:
        if state.steps is not None and self.step >= state.steps:
            raise ValueError(
                f"UnfreezeAt({self.step}, {self.pattern!r}) would never unfreeze: the run has steps={state.steps} "
                f"(0 to {state.steps - 1}). Pass a step below {state.steps}, or train longer"
            )
        if ddp_wrapper(state.model) is not None:
            raise ValueError(
                f"UnfreezeAt({self.step}, {self.pattern!r}) cannot unfreeze inside a DistributedDataParallel model: DDP "
                "averages only the parameters that were trainable when it was built, so the ranks would drift apart. "
                "Train to that step with a checkpoint, unfreeze the bare model (course_lib.engine.freezing.unfreeze), wrap it "
                "again (course_lib.engine.distributed.wrap) and resume"
            )
        held = {id(p) for group in state.optimizer.param_groups for p in group["params"]}
        params = dict(state.model.named_parameters())
        missing = [name for name in select(state.model, self.pattern) if id(params[name]) not in held]
        if missing:
            raise ValueError(
                f"UnfreezeAt({self.step}, {self.pattern!r}) would unfreeze {missing[0]!r} and {len(missing) - 1} more, "
                "which the optimizer does not hold, so they could never train: build the optimizer from "
                "param_groups(model, weight_decay, include_frozen=True) (course_lib.engine.freezing) or from "
                "model.parameters(); frozen parameters get no gradient, so AdamW leaves them untouched until they "
                "are unfrozen"
            )
        if state.start_step > self.step:
            set_trainable(state.model, self.pattern, True)

    def on_step_begin(self, state: TrainState) -> None:
        if state.step == self.step:
            set_trainable(state.model, self.pattern, True)


class Progress(Callback):
    """A progress bar with the loss, the rate and the time left.

    ``tqdm.auto``: a widget in Jupyter and Colab, text lines elsewhere (the
    bar Hugging Face's Trainer uses).  Updated every ``log_every`` steps from
    the values the loop reads anyway; shown only by the main process.  The
    words, the loss's format and the bar's (``bar_format``, tqdm's) are
    arguments, so a page shows them in its own language
    (:func:`course_lib.show.widgets.progress_bar`).
    """

    def __init__(self, description: str = "Training", unit: str = " step", loss: Callable[[float], str] = "loss {:.4f}".format,
                 bar_format: str | None = None):
        check_type("description", description, str, "a string")
        check_type("unit", unit, str, "a string")
        if not callable(loss):
            raise TypeError(f"loss must be a function from the loss to the text shown, got {type(loss).__name__}")
        if bar_format is not None:
            check_type("bar_format", bar_format, str, "a tqdm bar_format string, or None for tqdm's own")
        self.description, self.unit, self.loss, self.bar_format = description, unit, loss, bar_format
        self.bar = None

    def on_train_begin(self, state: TrainState) -> None:
        if not is_main_process():
            return
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=state.steps, initial=state.start_step, desc=self.description, unit=self.unit, dynamic_ncols=True,
            bar_format=self.bar_format,
        )

    def on_log(self, state: TrainState, logs: dict[str, float]) -> None:
        if self.bar is None:
            return
        self.bar.update(state.step + 1 - self.bar.n)
        if "loss" in logs and math.isfinite(logs["loss"]):
            self.bar.set_postfix_str(self.loss(logs["loss"]), refresh=False)

    def on_train_end(self, state: TrainState) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class DataChecksum(Callback):
    """A hash chain over every micro-batch the loop consumed, in order: two runs with equal ``hexdigest()`` saw the same data.

    After each micro-batch, h <- SHA-256(h || its first tensor's dtype, shape and bytes),
    from h = 32 zero bytes.  The 32 bytes of h are its whole state, so a
    resumed run continues the chain from its checkpoint and ends with the
    digest of the uninterrupted run; a run from step 0 starts a new chain.
    Reads each batch to the host once (it is small next to a step); use it to
    prove a comparison fair, not in a run timed to the millisecond.
    """

    def __init__(self):
        self._chain = bytes(32)

    def on_train_begin(self, state: TrainState) -> None:
        if state.start_step == 0:
            self._chain = bytes(32)

    def on_step_begin(self, state: TrainState) -> None:
        for batch in state.batches:
            found = first_tensor(batch)
            if found is not None:
                self._chain = tensor_digest(found, hashlib.sha256(self._chain)).digest()

    def hexdigest(self, digits: int = 12) -> str:
        check_int("digits", digits, 1, 64, unit="hex digits (a SHA-256 has 64)")
        return self._chain.hex()[:digits]

    def state_dict(self) -> dict:
        return {"chain": self._chain.hex()}

    def load_state_dict(self, state: dict) -> None:
        chain = state.get("chain") if isinstance(state, Mapping) else None
        if not (isinstance(chain, str) and len(chain) == 64 and all(c in "0123456789abcdef" for c in chain)):
            raise ValueError(f"state must be what DataChecksum.state_dict() returns, {{'chain': 64 hex digits}}, got {shown(state)}")
        self._chain = bytes.fromhex(chain)
