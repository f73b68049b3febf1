"""The course's training loop (lesson 02 onwards), written to be read top to bottom.

One step, in the order the lessons teach:

1. forward: ``loss = loss_fn(model, batch)``
2. backward: ``loss.backward()``
3. record the gradient norms (global, and per layer if a tracker is given)
4. clip (threshold ``c(t)``: a number, ``None`` for none, or a callable of the step)
5. update: ``optimizer.step()``
6. advance the schedule: ``scheduler.step()``

If the gradient norm is not finite and ``on_nonfinite="skip"``, steps 5-6 are
skipped and recorded: the schedule advances only with real updates, as in
transformers' Trainer.

Steps 1-2 live in :func:`forward_backward`, the one place the
optimization-options lesson changes (gradient accumulation over micro-batches,
mixed-precision autocast).  Everything the plots need is recorded in a
:class:`History`.  Checkpoints hold the model, optimizer, scheduler, step,
history and random-number states, so a resumed run continues exactly.
"""

from __future__ import annotations

import math
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from .clipping import LayerGradNorms, Threshold, clip_factor, clip_grad_norm, global_norm, threshold_at

__all__ = ["History", "train", "forward_backward", "pick_device", "save_checkpoint", "load_checkpoint"]

Batch = Any
LossFn = Callable[[torch.nn.Module, Batch], torch.Tensor]


@dataclass
class History:
    """Per-step records of a run; entry ``i`` belongs to step ``step[i]``.

    ``lr`` is the rate of the first parameter group; ``grad_norm`` and
    ``layer_norms`` are measured before clipping.
    """

    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    threshold: list[float] = field(default_factory=list)
    clip_factor: list[float] = field(default_factory=list)
    update_norm: list[float] = field(default_factory=list)
    skipped: list[bool] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    layer_norms: dict[str, list[float]] = field(default_factory=dict)

    @property
    def clipped_norm(self) -> list[float]:
        """|g| after clipping: min(|g|, c)."""
        return [min(norm, c) for norm, c in zip(self.grad_norm, self.threshold)]

    def state_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_state_dict(cls, state: dict) -> "History":
        return cls(**state)


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else CUDA if available, else Apple's MPS, else the CPU."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def to_device(batch: Batch, device: torch.device) -> Batch:
    """Move every tensor in a (nested) batch to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(item, device) for item in batch)
    if isinstance(batch, dict):
        return {key: to_device(value, device) for key, value in batch.items()}
    return batch


def forward_backward(model: torch.nn.Module, batch: Batch, loss_fn: LossFn) -> torch.Tensor:
    """Steps 1-2: the loss of one batch and its gradients.  Returns the loss (detached)."""
    loss = loss_fn(model, batch)
    loss.backward()
    return loss.detach()


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]), "python_version": random.getstate()[0]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((state["python_version"], tuple(state["python"]), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, *, model, optimizer, scheduler, step: int, history: History) -> None:
    """Everything a run needs to continue exactly after ``step`` completed steps."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "step": step,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "history": history.state_dict(),
        "rng": _rng_state(),
    }
    torch.save(state, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)


def load_checkpoint(path: str | Path, *, model, optimizer, scheduler=None) -> tuple[int, History]:
    """Restore a checkpoint into existing objects; return (completed steps, history)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        if state["scheduler"] is None:
            raise ValueError(f"{path} was saved without a scheduler")
        scheduler.load_state_dict(state["scheduler"])
    _set_rng_state(state["rng"])
    return state["step"], History.from_state_dict(state["history"])


class _Progress:
    """A progress bar in Jupyter/Colab; plain lines (about ten per run) anywhere else."""

    def __init__(self, total: int, start: int, enabled: bool):
        self.total, self.enabled, self.bar = total, enabled, None
        self.every = max(1, total // 10)
        if enabled and _in_notebook():
            import ipywidgets as widgets

            self.bar = widgets.IntProgress(value=start, min=0, max=total, description=f"{start}/{total}")
            _show(self.bar)

    def update(self, step: int, loss: float, lr: float, seconds: float) -> None:
        if not self.enabled:
            return
        done = step + 1
        if self.bar is not None:
            self.bar.value = done
            self.bar.description = f"{done}/{self.total}"
        elif done % self.every == 0 or done == self.total:
            print(
                f"step {done:>6}/{self.total}  loss {loss:.4g}  lr {lr:.3g}  {seconds * 1e3:.1f} ms/step",
                file=sys.stderr,
                flush=True,
            )


class _QuietWidget:
    """Displays a widget with a fixed plain-text form, so nbval sees the same output every run."""

    def __init__(self, widget):
        self.widget = widget

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs) or {}
        bundle["text/plain"] = "progress bar"
        return bundle


def _show(widget) -> None:
    from IPython.display import display

    # ipywidgets 8 builds its display from _repr_mimebundle_; 7 (older Colab) only has _ipython_display_.
    display(_QuietWidget(widget) if hasattr(widget, "_repr_mimebundle_") else widget)


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython") and sys.modules["IPython"].get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def train(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Callable[[int], Batch],
    loss_fn: LossFn,
    steps: int,
    *,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    clip: Threshold = None,
    track: LayerGradNorms | None = None,
    record_update: bool = False,
    on_nonfinite: str = "error",
    device: str | torch.device | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 0,
    resume: bool = False,
    progress: bool | None = None,
) -> History:
    """Train for ``steps`` optimizer steps and return the :class:`History`.

    ``batches(step)`` returns the batch of a step: a pure function of the step
    makes a resumed run see the same data.  ``clip`` is the threshold ``c(t)``.
    ``record_update`` also records |theta_{t+1} - theta_t| (one extra copy of
    the parameters).  ``on_nonfinite``: ``"error"`` raises on a NaN/inf
    gradient norm, ``"skip"`` skips that update and records it.  With
    ``checkpoint`` and ``checkpoint_every=k`` a checkpoint is written every
    k steps and at the end; ``resume=True`` continues from it if it exists.
    ``progress``: a bar in Jupyter/Colab, plain lines elsewhere; ``None`` shows
    it for runs of 500 steps or more.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if on_nonfinite not in ("error", "skip"):
        raise ValueError(f"on_nonfinite must be 'error' or 'skip', got {on_nonfinite!r}")
    if checkpoint_every < 0 or (checkpoint_every and checkpoint is None):
        raise ValueError("checkpoint_every needs a checkpoint path and must be >= 0")
    device = pick_device(device)
    model.to(device)
    params = list(model.parameters())  # frozen ones have no gradient and are skipped; unfreezing needs no rebuild

    start, history = 0, History()
    if resume and checkpoint is not None and Path(checkpoint).exists():
        start, history = load_checkpoint(checkpoint, model=model, optimizer=optimizer, scheduler=scheduler)
    bar = _Progress(steps, start, steps >= 500 if progress is None else progress)

    model.train()
    for step in range(start, steps):
        began = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        optimizer.zero_grad(set_to_none=True)
        loss = forward_backward(model, to_device(batches(step), device), loss_fn)

        layers, layer_norms = track.measure() if track is not None else ([], None)
        threshold = threshold_at(clip, step)
        norm = clip_grad_norm(params, threshold, error_if_nonfinite=on_nonfinite == "error")
        norm_value = norm.item()

        skipped = not math.isfinite(norm_value)
        trained = [p for p in params if p.requires_grad] if record_update else []
        before = [p.detach().clone() for p in trained]
        if not skipped:
            optimizer.step()
            if scheduler is not None:
                scheduler.step()

        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - began
        history.step.append(step)
        history.loss.append(loss.item())
        history.lr.append(lr)
        history.grad_norm.append(norm_value)
        history.threshold.append(threshold)
        history.clip_factor.append(clip_factor(norm_value, threshold) if not skipped else 0.0)
        history.skipped.append(skipped)
        history.seconds.append(seconds)
        if record_update:
            history.update_norm.append(global_norm(torch._foreach_sub([p.detach() for p in trained], before)).item())
        if layers:
            for layer, value in zip(layers, layer_norms.tolist()):
                history.layer_norms.setdefault(layer, []).append(value)
        bar.update(step, history.loss[-1], lr, seconds)

        done = step + 1
        if checkpoint is not None and checkpoint_every and (done % checkpoint_every == 0 or done == steps):
            save_checkpoint(checkpoint, model=model, optimizer=optimizer, scheduler=scheduler, step=done, history=history)
    return history
