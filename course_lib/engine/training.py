"""The course's training loop (every lesson from 01 on), written to be read top to bottom.

One optimizer step, in the order the lessons teach:

1. forward: ``loss = loss_fn(model, batch)``, under autocast for bf16/fp16,
   over ``accumulate`` micro-batches;
2. backward: ``loss.backward()`` (scaled for fp16, then unscaled);
3. record the global gradient norm (callbacks may measure more here);
4. clip with the threshold ``c(t)`` of this step;
5. update: ``optimizer.step()``, unless the loss or the gradient is not finite;
6. advance the schedule: ``scheduler.step()``, only after a real update.

What a lesson needs *during* a run plugs in through callbacks
(:mod:`course_lib.engine.callbacks`): small objects with named moments, as in
Hugging Face's ``TrainerCallback``.  The loop itself has no flags for them.

Data parallelism needs no flag either: give the loop a model wrapped by
:func:`course_lib.engine.distributed.wrap` (``DistributedDataParallel``) and, on
each rank, that rank's share of every batch.

What trains is the model's.  The loop zeroes, clips, counts in the norm,
checks and checkpoints ``model.parameters()``, and DDP averages only those;
so an optimizer that holds a tensor outside the model (a learnable
temperature kept in the loss, say) is refused at the start: make it an
attribute of the model (``model.temperature = nn.Parameter(...)``).

Set up once, then stepped: :func:`train` is :func:`start` (argument checks,
device, GradScaler, resume, ``on_train_begin``), one ``run.advance(n)`` (the
loop), then ``run.finish()``.  A benchmark keeps the :class:`Run` and times its
``advance`` calls, so the setup is not in its numbers.

Host reads.  Records stay on the device and are read back together every
``log_every`` steps, as in nanoGPT.  Step 5 needs to know "are the loss and
the gradient norm finite?"  An optimizer that can skip its own update on the
device (a fused one, ``fused=True``: its kernel takes a ``found_inf`` flag,
as ``torch.amp.GradScaler`` uses it) is handed the flag and the loop reads
nothing per step; a non-finite step is then found at the next read-back
(up to ``log_every`` steps later) and raised there, naming the step: its own
update was skipped on the device, the steps after it were taken, and the
schedule went on.  Otherwise, and whenever a skipped step must be known at
once (``on_nonfinite="skip"``, fp16's GradScaler: a skip must not advance
the schedule), the loop reads that one flag every step.
Nothing else synchronises unless a callback asks for it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.distributed as dist

from course_lib.engine._checks import check_choice, check_int, check_type, shown
from course_lib.engine.checkpoints import load_checkpoint, optimizer_settings, save_checkpoint
from course_lib.engine.clipping import Threshold, clip_factor, clip_grad_norm_, clip_in_step_, divides_by_grad_scale, threshold_at
from course_lib.engine.data import (
    MicroBatches,
    check_resumable_order,
    ddp_wrapper,
    first_tensor,
    is_main_process,
    pick_device,
    to_device,
)
from course_lib.engine.files import check_path, check_writable

__all__ = ["History", "TrainState", "Callback", "train", "start", "Run", "forward_backward", "autocast", "weight_dtype", "PRECISIONS"]

Batch = Any
LossFn = Callable[[torch.nn.Module, Batch], "torch.Tensor | tuple[torch.Tensor, Any]"]
PRECISIONS = ("fp32", "bf16", "fp16", "fp64")


# ----------------------------------------------------------------------------------------------
# Records
# ----------------------------------------------------------------------------------------------


@dataclass
class History:
    """What a run recorded.  Entry ``i`` of the per-step lists belongs to step ``step[i]``.

    Step ``t`` (0-based) is the ``t+1``-th optimizer update: ``loss[i]`` is the
    loss of that step's batch *before* its update, ``lr[i]`` the rate the
    update used, ``grad_norm[i]`` the global gradient norm before clipping.
    ``metrics`` holds what callbacks recorded, each as ``{"step": [...],
    "value": [...]}``; a value recorded after the update of step ``t``
    describes the weights after ``t + 1`` updates.
    """

    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    threshold: list[float] = field(default_factory=list)
    skipped: list[bool] = field(default_factory=list)
    metrics: dict[str, dict[str, list]] = field(default_factory=dict)

    @property
    def clip_factor(self) -> list[float]:
        """c / max(|g|, c) per step: 1 when nothing was clipped; 0 for a skipped step."""
        return [0.0 if skipped else clip_factor(g, c) for g, c, skipped in zip(self.grad_norm, self.threshold, self.skipped)]

    @property
    def clipped_norm(self) -> list[float]:
        """|g| after clipping: min(|g|, c)."""
        return [min(norm, c) for norm, c in zip(self.grad_norm, self.threshold)]

    def metric(self, name: str) -> list[float]:
        """The values a callback recorded under ``name``."""
        return self._series(name)["value"]

    def metric_steps(self, name: str) -> list[int]:
        """The steps at which ``name`` was recorded."""
        return self._series(name)["step"]

    def metric_names(self, prefix: str = "") -> list[str]:
        return [name for name in self.metrics if name.startswith(prefix)]

    def _series(self, name: str) -> dict[str, list]:
        if name not in self.metrics:
            raise KeyError(f"no metric named {name!r} was recorded; recorded: {sorted(self.metrics)}")
        return self.metrics[name]

    def add(self, name: str, step: int, value: float) -> None:
        series = self.metrics.setdefault(name, {"step": [], "value": []})
        series["step"].append(step)
        series["value"].append(value)

    def state_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_state_dict(cls, state: dict) -> "History":
        names = [f.name for f in dataclasses.fields(cls)]
        if not isinstance(state, dict) or set(state) - set(names):
            raise ValueError(f"state must be a History's state dict (keys among {names}), got {shown(state)}")
        return cls(**state)


@dataclass
class TrainState:
    """What callbacks see and may change.  Tensors here live on the device; reading them syncs."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    loss_fn: LossFn
    device: torch.device
    steps: int | None  # the run's length; None for a run of open length (see start)
    precision: str
    history: History
    step: int = 0
    start_step: int = 0
    batches: list = field(default_factory=list)
    loss: torch.Tensor | None = None
    grad_norm: torch.Tensor | None = None
    threshold: float = math.inf
    skipped: bool = False
    eval_results: dict[str, Any] | None = None
    window_seconds: float = 0.0
    window_steps: int = 0
    should_stop: bool = False
    _pending: list = field(default_factory=list)
    _rows: list = field(default_factory=list)
    _window_start: float = 0.0

    def log(self, name: str | Sequence[str], value: "torch.Tensor | float") -> None:
        """Record ``value`` for this step without reading it back now.

        ``name`` may be a list of names for a 1-D tensor of as many values
        (one fused record, e.g. a norm per layer).
        """
        names = [name] if isinstance(name, str) else list(name)
        size = value.numel() if isinstance(value, torch.Tensor) else 1
        if size != len(names):
            raise ValueError(f"state.log got {len(names)} name(s) for {size} value(s): give one name per value")
        self._pending.append((names, self.step, value))

    def read_back(self) -> dict[str, float]:
        """Move this window's records into the history with one host read; return them for ``on_log``."""
        tensors = [torch.as_tensor(v).reshape(-1).float().to(self.device) for _, _, v in self._pending]
        flat = torch.cat(tensors).tolist() if tensors else []
        now = time.perf_counter()
        self.window_seconds, self.window_steps, self._window_start = now - self._window_start, len(self._rows), now
        history = self.history
        for step, lr, threshold, skipped in self._rows:
            history.step.append(step)
            history.lr.append(lr)
            history.threshold.append(threshold)
            history.skipped.append(skipped)
        logs, values = {}, iter(flat)
        for names, step, _ in self._pending:
            for name in names:
                logs[name] = value = next(values)
                if name in ("loss", "grad_norm"):
                    getattr(history, name).append(value)
                else:
                    history.add(name, step, value)
        if self.window_steps:
            logs["seconds_per_step"] = self.window_seconds / self.window_steps
            history.add("seconds_per_step", self.step, logs["seconds_per_step"])
        self._pending.clear()
        self._rows.clear()
        return logs


class Callback:
    """Named moments of the loop; override the ones you need.  See :mod:`course_lib.engine.callbacks`."""

    def on_train_begin(self, state: TrainState) -> None: ...
    def on_step_begin(self, state: TrainState) -> None: ...
    def on_after_backward(self, state: TrainState) -> None: ...  # unscaled gradients, before clipping
    def on_step_end(self, state: TrainState) -> None: ...  # after the update (or the skip)
    def on_evaluate(self, state: TrainState) -> None: ...  # state.eval_results was just filled
    def on_log(self, state: TrainState, logs: dict[str, float]) -> None: ...  # host values, every log_every
    def on_train_end(self, state: TrainState) -> None: ...
    def state_dict(self) -> dict: return {}  # what a callback that counts across steps keeps in checkpoints
    def load_state_dict(self, state: dict) -> None: ...  # restored before on_train_begin of a resumed run


# ----------------------------------------------------------------------------------------------
# Steps 1-2: forward and backward
# ----------------------------------------------------------------------------------------------


def autocast(device: torch.device, precision: str):
    """The autocast context of a precision: bf16 or fp16 autocast, a no-op for fp32 and fp64."""
    check_choice("precision", precision, PRECISIONS)
    if not isinstance(device, torch.device):
        device = pick_device(device)
    if precision in ("fp32", "fp64"):
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def weight_dtype(precision: str) -> torch.dtype:
    """The dtype a model's weights have under ``precision``: float64 for ``"fp64"``, else float32 (autocast keeps fp32 weights).

    ``"fp64"`` is what the lessons' live CPU runs use: every CPU, vector width
    and thread count then prints the same digits (float32 sums in another order
    differ in the last bit, and a few hundred training steps amplify that).
    """
    check_choice("precision", precision, PRECISIONS)
    return torch.float64 if precision == "fp64" else torch.float32


def forward_backward(
    model: torch.nn.Module,
    micro_batches: Sequence[Batch],
    loss_fn: LossFn,
    *,
    precision: str = "fp32",
    scaler: "torch.amp.GradScaler | None" = None,
) -> torch.Tensor:
    """Steps 1-2 over the micro-batches of one optimizer step; returns the step's loss (detached).

    ``loss_fn`` returns a mean loss, or a pair ``(sum of losses, count)``.
    Means are averaged (each micro-batch weighs the same).  With pairs the
    gradient is that of ``total sum / total count``, exactly the gradient of
    one large batch even when micro-batches hold different numbers of tokens.

    Under ``DistributedDataParallel`` each rank passes its own share of the
    global batch, and DDP averages the gradients over the ranks.  It does so
    once per step, in the last micro-batch's backward: the earlier ones run
    under ``model.no_sync()`` and only accumulate locally.  When every rank's
    share holds as many examples, the average over ranks of the ranks' mean-loss
    gradients is the gradient of the mean loss over the whole global batch.
    Pairs are divided by the ranks' mean count after that average (one more
    all-reduce, of the count), so they give the mean over every rank's
    tokens even when the ranks hold different numbers of them.  The returned
    loss is the same on every rank (the mean over ranks, or over all tokens
    for pairs), so every rank records the same loss and makes the same
    decision to update or to skip.
    """
    check_type("model", model, torch.nn.Module, "a torch.nn.Module")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be a function (model, batch) -> loss, got {shown(loss_fn)}")
    if not isinstance(micro_batches, list) or not micro_batches:
        raise TypeError(f"micro_batches must be a non-empty list of batches, one per micro-batch (a tuple would read as "
                        f"the parts of one batch), got {shown(micro_batches)}")
    device = next(model.parameters()).device
    ddp = ddp_wrapper(model)
    sums, counts, means = [], [], []
    for i, batch in enumerate(micro_batches):
        if precision == "fp64":
            _check_float64(batch)
        sync = ddp is None or i == len(micro_batches) - 1  # DDP: gradients stay local until the last backward
        with contextlib.nullcontext() if sync else ddp.no_sync():  # around forward and backward, as DDP requires
            with autocast(device, precision):
                out = loss_fn(model, batch)
            if isinstance(out, tuple):
                if len(out) != 2:
                    raise ValueError(f"loss_fn must return a loss tensor or a pair (sum, count), got a tuple of {len(out)}")
                total, count = out
                _check_loss_tensor(total)
                _check_count(count)
                sums.append(total.detach().float())
                counts.append(count)
                loss_to_backward = total
            else:
                _check_loss_tensor(out)
                means.append(out.detach().float())
                loss_to_backward = out / len(micro_batches)
            if sums and means:
                raise ValueError("loss_fn returned a mean for some micro-batches and a (sum, count) pair for others")
            (scaler.scale(loss_to_backward) if scaler is not None else loss_to_backward).backward()
    if means:
        loss = torch.stack(means).mean()
    else:
        count = sum(counts)
        total = torch.stack(sums).sum()
        if ddp is not None:  # DDP averaged the sums' gradients over the ranks: divide by the ranks' mean count
            total, count = _mean_over_ranks(torch.stack([total, torch.as_tensor(count, dtype=torch.float32, device=device)]),
                                            ddp.process_group)  # one all-reduce for both; a rank may hold no token
        if isinstance(count, (int, float)) and count <= 0 or (  # a CPU tensor is read without a GPU wait
                isinstance(count, torch.Tensor) and count.device.type == "cpu" and not bool(count.sum() > 0)):
            raise ValueError(f"loss_fn's counts add up to {count}: the micro-batches hold nothing to average over")
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        if grads:  # a Python number divides without a host-to-device copy
            torch._foreach_div_(grads, float(count) if isinstance(count, (int, float)) else count.to(device, torch.float32))
        return total / count  # the same on every rank: the mean over every rank's values
    return loss if ddp is None else _mean_over_ranks(loss, ddp.process_group)


def _mean_over_ranks(value: torch.Tensor, group) -> torch.Tensor:
    """The mean of ``value`` over the ranks of ``group`` (a sum, then a division: gloo has no average)."""
    value = value.clone()
    dist.all_reduce(value, group=group)
    return value / dist.get_world_size(group)


def _check_count(count) -> None:
    """A micro-batch's count is a number or a tensor (one micro-batch may count 0, e.g. all its labels masked: the step's sum is checked)."""
    if isinstance(count, bool) or not isinstance(count, (int, float, torch.Tensor)):
        raise TypeError(f"loss_fn's count (the second of its pair (sum, count)) must be a number or a tensor, got {shown(count)}")


def _check_float64(batch) -> None:
    """Under precision='fp64' a float batch must be float64 too (torch's own error says only that dtypes differ)."""
    found = first_tensor(batch)
    if found is not None and found.is_floating_point() and found.dtype != torch.float64:
        raise ValueError(f"precision='fp64' trains float64 weights, but the batch holds {found.dtype} inputs: "
                         "make the data float64 too (e.g. built under course_lib.engine.data.default_dtype(torch.float64))")


def _check_loss_tensor(loss) -> None:
    if not isinstance(loss, torch.Tensor):
        raise TypeError(f"loss_fn must return a torch.Tensor (or a pair (sum, count)), got {type(loss).__name__}")
    if loss.numel() != 1:
        raise ValueError(f"loss_fn must return a single number (a 0-d tensor), got shape {tuple(loss.shape)}: reduce it with .mean()")
    if not loss.requires_grad:
        raise ValueError(
            "loss_fn returned a tensor that does not require grad: it was computed without the model's "
            "trainable parameters (all frozen? under torch.no_grad()?)"
        )


# ----------------------------------------------------------------------------------------------
# The loop: set up once (start), then steps, then the end (finish)
# ----------------------------------------------------------------------------------------------


def train(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    data,
    loss_fn: LossFn,
    steps: int,
    *,
    scheduler=None,
    clip: Threshold = None,
    callbacks: Iterable[Callback] = (),
    accumulate: int = 1,
    precision: str = "fp32",
    on_nonfinite: str = "error",
    device: str | torch.device | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 0,
    resume: bool = False,
    log_every: int = 10,
    clip_in_step: bool = False,
) -> History:
    """Train for ``steps`` optimizer steps and return the :class:`History`.

    ``data``: ``data(m)`` returns micro-batch ``m`` (a pure function of ``m``
    makes a resumed run see the same data), or a DataLoader / iterable.  Each
    step uses ``accumulate`` micro-batches.  ``clip`` is the threshold ``c(t)``:
    a number, a function of the step, or None.  ``precision``: ``"fp32"``,
    ``"bf16"`` (autocast) or ``"fp16"`` (autocast with a ``GradScaler``, whose
    skipped steps are recorded and do not advance the schedule), or ``"fp64"``
    (no autocast; the model must have been built in float64, see :func:`weight_dtype`).
    ``on_nonfinite``: a NaN/inf loss or gradient norm raises (``"error"``) or
    skips that update and is recorded (``"skip"``); with a fused optimizer,
    ``"error"`` is raised at the next read-back (see the module's "Host reads").  With ``checkpoint`` a
    checkpoint is written every ``checkpoint_every`` steps and at the end
    (rank 0 only); ``resume=True`` continues from it when it exists.
    ``clip_in_step=True`` clips inside a fused optimizer's step
    (:func:`~course_lib.engine.clipping.clip_in_step_`): the same update, one
    pass over the gradients fewer.

    A ``DistributedDataParallel`` model trains data-parallel: each rank's
    ``data`` gives that rank's share of the batch (equal shares: see
    :func:`forward_backward`), gradients and the recorded loss are averaged
    over the ranks, and the device defaults to the one the model was wrapped on.

    ``train`` is :func:`start`, one :meth:`Run.advance` call to the run's end,
    then :meth:`Run.finish`.
    """
    check_int("steps", steps, 1)  # start() also takes None (a run of open length); train's run has one
    run = start(model, optimizer, data, loss_fn, steps, scheduler=scheduler, clip=clip, callbacks=callbacks,
                accumulate=accumulate, precision=precision, on_nonfinite=on_nonfinite, device=device,
                checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume, log_every=log_every,
                clip_in_step=clip_in_step)
    run.advance(steps - run.done)
    return run.finish()


def start(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    data,
    loss_fn: LossFn,
    steps: int | None = None,
    *,
    scheduler=None,
    clip: Threshold = None,
    callbacks: Iterable[Callback] = (),
    accumulate: int = 1,
    precision: str = "fp32",
    on_nonfinite: str = "error",
    device: str | torch.device | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 0,
    resume: bool = False,
    log_every: int = 10,
    clip_in_step: bool = False,
) -> Run:
    """Set a run up once and return it: train it with ``run.advance(n)``, as often as needed, and end it with ``run.finish()``.

    What a run does once happens here, as in the setup of Hugging Face's
    ``Trainer`` before its loop: the arguments are checked, the model moves to
    its device, fp16's ``GradScaler`` is made, a checkpoint is resumed, the
    model is put in training mode and the callbacks' ``on_train_begin`` is
    called.  ``steps`` is the run's length when it has one (``Evaluate`` and
    ``Progress`` use it, and a resumed checkpoint must not be past it); None
    leaves it open, for a runner that a benchmark steps on.  The other
    arguments are :func:`train`'s.
    """
    callbacks = _check_arguments(model, optimizer, data, loss_fn, steps, scheduler, clip, accumulate, precision,
                                 on_nonfinite, checkpoint, checkpoint_every, resume, log_every, callbacks)
    check_type("clip_in_step", clip_in_step, bool, "True or False")
    if clip_in_step and not divides_by_grad_scale(optimizer):
        raise ValueError(f"clip_in_step=True needs a fused optimizer (e.g. torch.optim.AdamW(..., fused=True)), whose step "
                         f"divides the gradients by a grad_scale, got {type(optimizer).__name__} with "
                         f"fused={optimizer.defaults.get('fused')}: pass clip_in_step=False")
    if device is None and ddp_wrapper(model) is not None:
        device = next(model.parameters()).device  # DDP cannot follow its module to another device
    device = pick_device(device)
    model.to(device)
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None

    done, history = 0, History()
    settings = optimizer_settings(optimizer)  # before a resume or a step changes them: see optimizer_settings
    if resume and Path(checkpoint).exists():
        done, saved = load_checkpoint(checkpoint, model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler,
                                      clip=clip, accumulate=accumulate, callbacks=callbacks, precision=precision,
                                      settings=settings)
        history = History.from_state_dict(saved)
        if steps is not None and done > steps:
            raise ValueError(
                f"checkpoint {str(checkpoint)!r} holds {done} completed steps, more than steps={steps}: "
                f"ask for at least {done} steps, or start a new run"
            )
    state = TrainState(model, optimizer, scheduler, loss_fn, device, steps, precision, history, step=done, start_step=done)
    run = Run(state, callbacks, MicroBatches(data, done * accumulate), scaler, clip=clip, accumulate=accumulate,
              on_nonfinite=on_nonfinite, checkpoint=checkpoint, checkpoint_every=checkpoint_every, log_every=log_every,
              settings=settings, clip_in_step=clip_in_step)
    model.train()
    run._each("on_train_begin")
    return run


class Run:
    """A run that :func:`start` set up: ``advance(n)`` trains ``n`` more optimizer steps, ``finish()`` ends it.

    Each ``advance`` call goes on where the last one stopped: the weights, the
    optimizer and its schedule, the GradScaler, the history and the position
    in the data carry over, and nothing of the setup is done again.  So a
    timing of ``run.advance(n)`` measures the steps alone, and ``advance(3)``
    then ``advance(4)`` trains exactly as ``advance(7)`` does.
    """

    def __init__(self, state: TrainState, callbacks: list[Callback], micro: MicroBatches, scaler, *, clip: Threshold,
                 accumulate: int, on_nonfinite: str, checkpoint, checkpoint_every: int, log_every: int, settings: str,
                 clip_in_step: bool = False):
        self.clip_in_step = clip_in_step
        self.state, self.callbacks, self.micro, self.scaler, self.settings = state, callbacks, micro, scaler, settings
        self.clip, self.accumulate, self.on_nonfinite, self.log_every = clip, accumulate, on_nonfinite, log_every
        self.checkpoint, self.checkpoint_every = checkpoint, checkpoint_every
        self.params = list(state.model.parameters())  # frozen ones get no gradient and are skipped; unfreezing needs no rebuild
        self.on_device = (on_nonfinite == "error" and scaler is None
                          and getattr(state.optimizer, "_step_supports_amp_scaling", False))
        self.done = state.start_step  # optimizer steps completed
        self.finished = False

    @property
    def history(self) -> History:
        return self.state.history

    def _each(self, moment: str, *args) -> None:
        for callback in self.callbacks:
            getattr(callback, moment)(self.state, *args)

    def advance(self, n: int) -> History:
        """Train ``n`` more optimizer steps and return the history.

        The records are read back every ``log_every`` steps and at the end of
        the call, so the history is complete when it returns; with a
        checkpoint, one is also written at the end of the call.  A callback
        that sets ``state.should_stop`` ends the call after that step, and
        later calls train nothing.
        """
        check_int("n", n, 0)
        if self.finished:
            raise RuntimeError("this run was finished (run.finish()): start a new one to train on")
        state = self.state
        if state.steps is not None and self.done + n > state.steps:
            raise ValueError(f"{n} more steps would take the run past its length, steps={state.steps} ({self.done} done)")
        model, optimizer, scheduler, history = state.model, state.optimizer, state.scheduler, state.history
        if state.should_stop:  # a callback ended the run
            return history
        scaler, params, on_device, checkpoint = self.scaler, self.params, self.on_device, self.checkpoint
        until = self.done + n
        state._window_start = time.perf_counter()
        for step in range(self.done, until):
            state.step, state.skipped, state.eval_results = step, False, None
            state.batches = [to_device(self.micro.next(), state.device) for _ in range(self.accumulate)]
            self._each("on_step_begin")
            _check_rates(optimizer, step)
            lr = float(optimizer.param_groups[0]["lr"])

            # 1-2. forward and backward over the micro-batches; fp16 gradients are unscaled before anyone reads them
            model.zero_grad(set_to_none=True)  # every parameter, not only the optimizer's: no stale gradient is ever clipped
            state.loss = forward_backward(model, state.batches, state.loss_fn, precision=state.precision, scaler=scaler)
            if scaler is not None:
                scaler.unscale_(optimizer)
            self._each("on_after_backward")

            # 3-4. measure the global gradient norm and clip to the threshold c(t)
            state.threshold = threshold_at(self.clip, step)
            if self.clip_in_step:  # the factor goes into the fused optimizer's step: one pass over the gradients fewer
                state.grad_norm = clip_in_step_(params, state.threshold, optimizer)
            else:
                state.grad_norm = clip_grad_norm_(params, state.threshold, error_if_nonfinite=False)

            # 5-6. update and advance the schedule, unless the loss or the gradient is not finite
            finite = torch.isfinite(state.loss) & torch.isfinite(state.grad_norm)
            try:
                if on_device:  # the optimizer skips a non-finite step itself; found at the next read-back
                    _step_unless(optimizer, ~finite)
                    if scheduler is not None:
                        scheduler.step()
                elif bool(finite):  # the one host read per step
                    optimizer.step()
                    if scheduler is not None:
                        scheduler.step()
                else:
                    state.skipped = True
                    _explain_nonfinite(state, self.on_nonfinite, scaler, params)
            finally:
                optimizer.__dict__.pop("grad_scale", None)  # clip_in_step_'s divisor is for this step only
            if scaler is not None:
                scaler.update()

            # record on the device; read back every log_every steps, at the end of the call (and before a checkpoint)
            state._rows.append((step, lr, state.threshold, state.skipped))
            state.log("loss", state.loss)
            state.log("grad_norm", state.grad_norm)
            self._each("on_step_end")
            if state.eval_results is not None:
                self._each("on_evaluate")
            self.done = done = step + 1
            last = done == until or state.should_stop
            if done % self.log_every == 0 or last or (checkpoint is not None and done % self.checkpoint_every == 0):
                logs = state.read_back()
                if on_device:
                    _raise_if_nonfinite(history, state.window_steps, state.step, params)
                self._each("on_log", logs)
            if checkpoint is not None and (done % self.checkpoint_every == 0 or last) and is_main_process():
                save_checkpoint(checkpoint, model=model, optimizer=optimizer, scheduler=scheduler, step=done,
                                history=history.state_dict(), scaler=scaler, clip=self.clip, accumulate=self.accumulate,
                                callbacks=self.callbacks, precision=state.precision, settings=self.settings)
            if state.should_stop:
                break
        return history

    def finish(self) -> History:
        """End the run: check that the weights are finite, call the callbacks' ``on_train_end``; return the history."""
        if self.finished:
            raise RuntimeError("this run was already finished")
        self.finished = True
        _check_weights_finite(self.params, self.state.step)
        self._each("on_train_end")
        return self.state.history


def _step_unless(optimizer: torch.optim.Optimizer, skip: torch.Tensor) -> None:
    """``optimizer.step()``, skipped on the device where ``skip`` is true: a fused optimizer takes the flag as GradScaler passes it."""
    optimizer.found_inf = skip.float()
    try:
        optimizer.step()
    finally:
        del optimizer.found_inf


def _raise_if_nonfinite(history: History, rows: int, step: int, params) -> None:
    """After a read-back, where the optimizer skips on the device: raise for the window's first non-finite step, if any."""
    window = zip(history.step[-rows:], history.loss[-rows:], history.grad_norm[-rows:]) if rows else ()
    for s, loss, norm in window:
        if not (math.isfinite(loss) and math.isfinite(norm)):
            _check_weights_finite(params, s - 1 if not math.isfinite(loss) else step)  # an update that wrote NaN is named
            what = f"loss is {loss}" if not math.isfinite(loss) else f"global gradient norm is {norm}"
            raise FloatingPointError(
                f"at step {s} the {what} (found at the read-back after step {step}; the optimizer skipped that "
                "step's update on the device and took the later ones). Lower the learning rate, clip, "
                "check the data, or pass on_nonfinite='skip' to skip such steps and record them"
            )


def _explain_nonfinite(state: TrainState, on_nonfinite: str, scaler, params) -> None:
    """A step whose loss or gradient is not finite: tell why, or let it be skipped."""
    loss_finite = bool(torch.isfinite(state.loss))
    if loss_finite and scaler is not None:
        return  # fp16 overflow in the gradients: the GradScaler lowers its scale; the step is skipped and recorded
    if not loss_finite:
        _check_weights_finite(params, state.step - 1)
    if on_nonfinite == "error":
        what = f"loss is {state.loss.item()}" if not loss_finite else f"global gradient norm is {state.grad_norm.item()}"
        raise FloatingPointError(
            f"at step {state.step} the {what}. Lower the learning rate, clip, check the data, "
            "or pass on_nonfinite='skip' to skip such steps and record them"
        )


def _check_weights_finite(params, step: int) -> None:
    """Non-finite weights are never left silently: raise, naming the update that wrote them."""
    trained = [p.detach() for p in params if p.requires_grad]
    if trained and not bool(torch.isfinite(torch.stack([n.to(trained[0].device) for n in torch._foreach_norm(trained)])).all()):
        raise FloatingPointError(
            f"the update of step {step} wrote NaN or inf into the weights (the gradient was finite: the "
            "optimizer's step produced it, e.g. an infinite learning rate or a zero eps). Lower the rate"
        )


# ----------------------------------------------------------------------------------------------
# Argument checks
# ----------------------------------------------------------------------------------------------


def _check_arguments(model, optimizer, data, loss_fn, steps, scheduler, clip, accumulate, precision,
                     on_nonfinite, checkpoint, checkpoint_every, resume, log_every, callbacks) -> list:
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    if isinstance(data, Mapping):
        raise TypeError("data must be a function of the batch index, a DataLoader or a list of batches, got a "
                        f"{type(data).__name__}, which iterates over its keys: pass [batch, ...] or lambda m: batch")
    if not (callable(data) or isinstance(data, Iterable)) or isinstance(data, (str, bytes, torch.Tensor)):
        raise TypeError(
            f"data must be a function of the batch index, a DataLoader or an iterable of batches, got {type(data).__name__}"
        )
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be a function (model, batch) -> loss, got {loss_fn!r}")
    if steps is not None:
        check_int("steps", steps, 1)
    if isinstance(scheduler, torch.optim.Optimizer):
        raise TypeError("scheduler is an optimizer (each step would update the weights twice): pass the learning-rate "
                        "scheduler built on it, e.g. ScheduledLR(optimizer, cosine_with_warmup(...)), or None")
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        raise TypeError("scheduler is a ReduceLROnPlateau, which steps on a metric the loop does not have: step it in a "
                        "callback's on_evaluate (scheduler.step(state.eval_results['eval_loss'])) and pass scheduler=None")
    if scheduler is not None and not hasattr(scheduler, "step"):
        raise TypeError(f"scheduler must be a torch LR scheduler (with .step()) or None, got {type(scheduler).__name__}")
    if scheduler is not None and getattr(scheduler, "optimizer", optimizer) is not optimizer:
        raise ValueError("scheduler was built for another optimizer than the one passed: build it on this optimizer")
    if callable(clip):
        try:
            clip(0)
        except TypeError as error:
            raise TypeError(f"clip must be a number, None or a function of the step t -> threshold; clip(0) failed: {error}") from None
    threshold_at(clip, 0)  # checked once here, with the argument's name
    check_int("accumulate", accumulate, 1, unit="micro-batches per optimizer step")
    if weight_dtype(precision) == torch.float64 and any(p.is_floating_point() and p.dtype != torch.float64
                                                         for p in model.parameters()):
        raise ValueError("precision='fp64' needs a model whose weights are float64: build it under "
                         "torch.set_default_dtype(torch.float64) (or call model.double()) before creating the optimizer")
    check_choice("on_nonfinite", on_nonfinite, ("error", "skip"))
    check_int("checkpoint_every", checkpoint_every, 0)
    if checkpoint is not None:
        check_path(checkpoint, "checkpoint")
    if checkpoint_every and checkpoint is None:
        raise ValueError(f"checkpoint_every={checkpoint_every} needs a checkpoint path: pass checkpoint='run.pt'")
    if checkpoint is not None and not checkpoint_every:
        raise ValueError(
            "checkpoint is given but checkpoint_every=0, so nothing would ever be written: pass checkpoint_every=k "
            "(a checkpoint every k steps and at the end)"
        )
    check_type("resume", resume, bool, "True or False")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs a checkpoint path to resume from: pass checkpoint=...")
    if checkpoint is not None:
        _check_checkpoint_place(checkpoint, resume, data)
    check_int("log_every", log_every, 1)
    if isinstance(callbacks, Callback) or not isinstance(callbacks, Iterable):
        raise TypeError(f"callbacks must be a list of Callback objects, got {callbacks!r}")
    callbacks = list(callbacks)
    for callback in callbacks:
        if not isinstance(callback, Callback):
            raise TypeError(f"callbacks must hold Callback objects (course_lib.engine.callbacks), got {callback!r}")
    named = list(model.named_parameters())
    if not any(p.requires_grad for _, p in named) and not callbacks:
        raise ValueError("model has no trainable parameter (every requires_grad is False): unfreeze some before training")
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    if not any(id(p) in held for _, p in named):
        raise ValueError(
            "optimizer holds none of the model's parameters, so nothing would train: build it from "
            "model.parameters() (after moving the model to its device, or before: torch moves them in place)"
        )
    mine = {id(p) for _, p in named}
    outside = [p for group in optimizer.param_groups for p in group["params"] if id(p) not in mine]
    if outside:
        raise ValueError(
            f"optimizer holds {len(outside)} parameter(s) that are not the model's (e.g. one of shape "
            f"{tuple(outside[0].shape)}): the loop zeroes, clips, checks and checkpoints the model's parameters, and "
            "DDP averages only those, so these would keep stale gradients and be lost on resume. Make every trained "
            "tensor part of the model (e.g. model.temperature = torch.nn.Parameter(...), or one nn.Module holding "
            "the model and the loss's parameters) and build the optimizer from model.parameters()"
        )
    missing = [name for name, p in named if p.requires_grad and id(p) not in held]
    if missing:
        raise ValueError(
            f"{len(missing)} trainable parameter(s) are not in the optimizer (e.g. {missing[0]!r}): they would get "
            "gradients that count in the clipped norm but never move. Freeze them, or build the optimizer from them too"
        )
    return callbacks


def _check_checkpoint_place(checkpoint, resume: bool, data) -> None:
    """Before any step: the checkpoint can be written, would not overwrite another run, and the data's order can be replayed."""
    if is_main_process():
        check_writable(checkpoint, "checkpoint")
    if not resume and Path(checkpoint).exists():
        raise ValueError(
            f"checkpoint {str(checkpoint)!r} already holds a run, and resume=False would overwrite it: pass resume=True "
            "to continue it, another path for a new run, or delete the file to start this one afresh"
        )
    check_resumable_order(data)


def _check_rates(optimizer, step: int) -> None:
    for i, group in enumerate(optimizer.param_groups):
        lr = group["lr"]
        if isinstance(lr, float | int) and not (math.isfinite(lr) and lr >= 0):
            raise ValueError(
                f"the learning rate of parameter group {i} is {lr} at step {step}: it must be finite and >= 0 "
                "(check the optimizer's lr and the schedule)"
            )
