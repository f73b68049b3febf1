"""Checkpoints from which a run resumes exactly, and refuses to resume the wrong run.

A checkpoint holds the model (without the ``module.`` / ``_orig_mod.``
prefixes of DDP and ``torch.compile``), the optimizer, the scheduler, the
fp16 GradScaler, the step, the history, the random-number states, the
callbacks' states, a fingerprint of what made it (model shapes,
optimizer type and settings, schedule, clipping threshold, micro-batches per
step, precision), and a SHA-256 of all that, checked on load
(:mod:`course_lib.engine.files`): a damaged file is refused, naming it,
instead of resuming slightly different weights.  Loading checks everything
first, then restores all or nothing.  It loads with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import collections
import copy
import hashlib
import json
import random
from pathlib import Path

import torch

from course_lib.engine._checks import check_int, check_type, shown
from course_lib.engine.clipping import threshold_at
from course_lib.engine.files import check_path, load_verified, save_verified
from course_lib.engine.schedules import schedule_fingerprint

__all__ = ["save_checkpoint", "load_checkpoint", "fingerprint", "optimizer_settings", "unwrap", "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = 4  # 3: clip, accumulate, the callbacks' states; 4: a SHA-256, the optimizer's settings, the precision


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The bare model inside DDP (``.module``) and ``torch.compile`` (``._orig_mod``) wrappers."""
    check_type("model", model, torch.nn.Module, "a torch.nn.Module")
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)):
            model = model.module
        else:
            return model


def optimizer_settings(optimizer: torch.optim.Optimizer) -> str:
    """Each parameter group's hyperparameters and base rate (``initial_lr`` when a scheduler set one), as text.

    Taken when a run starts (:func:`course_lib.engine.training.start`): a
    schedule such as OneCycleLR moves ``betas`` or ``momentum`` during the
    run, and ReduceLROnPlateau lowers ``lr``, so the settings a run was
    started with are what a resumed run must be started with again.
    """
    check_type("optimizer", optimizer, torch.optim.Optimizer, "a torch.optim.Optimizer")
    return repr([{key: value for key, value in sorted(group.items()) if key not in ("params", "lr", "initial_lr")}
                 | {"base_lr": group.get("initial_lr", group["lr"])} for group in optimizer.param_groups])


def fingerprint(model, optimizer, scheduler, *, clip=None, accumulate: int = 1, precision: str | None = None,
                settings: str | None = None) -> dict:
    """What a checkpoint was made with: model shapes, optimizer and its settings, schedule, clip, micro-batches per step, precision.

    ``settings`` (:func:`optimizer_settings` when the run started; the
    optimizer's now if None): ``load_state_dict`` would silently replace new
    ones by the saved.  ``precision`` None (a checkpoint handled by hand) is
    not compared.
    """
    check_int("accumulate", accumulate, 1, unit="micro-batches per optimizer step")
    if not callable(clip):
        threshold_at(clip, 0)  # a number > 0 or None, as train takes it
    shapes = ";".join(f"{name}:{tuple(t.shape)}" for name, t in unwrap(model).state_dict().items())
    schedule = getattr(scheduler, "schedule", None)
    return {
        "model": hashlib.sha256(shapes.encode()).hexdigest()[:16],
        "parameters": sum(t.numel() for t in unwrap(model).state_dict().values()),
        "optimizer": type(optimizer).__name__,
        "scheduler": None if scheduler is None else type(scheduler).__name__,
        "schedule": None if schedule is None else schedule_fingerprint(schedule),
        "clip": schedule_fingerprint(clip) if callable(clip) else None if clip is None else repr(float(clip)),
        "accumulate": accumulate,
        "settings": optimizer_settings(optimizer) if settings is None else settings,
        "precision": precision,
    }


def _check_objects(path, model, optimizer, scheduler, scaler) -> None:
    """The arguments of save_checkpoint and load_checkpoint, before anything is read or written."""
    check_path(path)
    check_type("model", model, torch.nn.Module, "a torch.nn.Module")
    check_type("optimizer", optimizer, torch.optim.Optimizer, "a torch.optim.Optimizer")
    for name, value in (("scheduler", scheduler), ("scaler", scaler)):
        if value is not None and not (hasattr(value, "state_dict") and hasattr(value, "load_state_dict")):
            raise TypeError(f"{name} must have state_dict() and load_state_dict() (a torch {name}), or be None, got {shown(value)}")
    if scheduler is not None and getattr(scheduler, "optimizer", optimizer) is not optimizer:
        raise ValueError("scheduler was built for another optimizer than the one passed: build it on this optimizer")
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    if not any(id(p) in held for p in unwrap(model).parameters()):
        raise ValueError("optimizer holds none of the model's parameters: pass the optimizer built from this model")


def _plain(value, where: str) -> None:
    """TypeError unless ``value`` is plain data (what a history holds): dicts, lists, strings, numbers, None."""
    if isinstance(value, dict):
        for key, item in value.items():
            _plain(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _plain(item, f"{where}[{i}]")
    elif not isinstance(value, (str, int, float, bool, type(None))):
        raise TypeError(f"{where} must hold plain data (numbers, strings, lists, dicts), got {shown(value)}")


_LAYOUT = {"format": int, "fingerprint": dict, "step": int, "model": dict, "optimizer": dict, "scheduler": (dict, type(None)),
           "scaler": (dict, type(None)), "history": dict, "rng": dict, "callbacks": dict}


def _check_layout(path: Path, state: dict) -> None:
    """Every part a checkpoint of this format holds, with its type: checked before anything is restored."""
    wrong = [key for key, kind in _LAYOUT.items() if not isinstance(state.get(key), kind)]
    wrong += [f"fingerprint[{key!r}]" for key in (*dict(_FINGERPRINTED), "parameters") if key not in state["fingerprint"]]
    wrong += [f"rng[{key!r}]" for key in ("torch", "python", "python_version") if key not in state["rng"]]
    if wrong or state["step"] < 0:
        raise ValueError(f"checkpoint {str(path)!r} is incomplete or malformed ({', '.join(wrong) or 'a negative step'}): it "
                         "was not written by save_checkpoint. Delete it to start afresh, or pass another path")


def _keyed(callbacks) -> dict:
    """The callbacks keyed by class name and rank among the callbacks of that class: ``Throughput[0]``."""
    keyed, seen = {}, collections.Counter()
    for callback in callbacks:
        name = type(callback).__qualname__
        keyed[f"{name}[{seen[name]}]"] = callback
        seen[name] += 1
    return keyed


def _callback_states(callbacks) -> dict:
    """The states of the callbacks that keep one (a non-empty ``state_dict()``), by :func:`_keyed` key."""
    return {key: state for key, callback in _keyed(callbacks).items() if (state := callback.state_dict())}


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


def save_checkpoint(path, *, model, optimizer, scheduler, step: int, history: dict, scaler=None, clip=None,
                    accumulate: int = 1, callbacks=(), precision: str | None = None, settings: str | None = None) -> None:
    """Everything a run needs to continue exactly after ``step`` completed steps (wrapper prefixes removed).

    ``clip``, ``accumulate``, ``precision`` and ``settings`` join the fingerprint; ``callbacks`` that keep
    state (a non-empty ``state_dict()``) have it saved.
    """
    _check_objects(path, model, optimizer, scheduler, scaler)
    check_int("step", step, 0, unit="completed optimizer steps")
    check_type("history", history, dict, "the history's state dict (History.state_dict())")
    try:
        json.dumps(history)  # one fast call; the walk below only names what is not plain data
    except (TypeError, ValueError):
        _plain(history, "history")
    state = {
        "format": CHECKPOINT_FORMAT,
        "fingerprint": fingerprint(model, optimizer, scheduler, clip=clip, accumulate=accumulate, precision=precision,
                                   settings=settings),
        "step": step,
        "model": unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "history": history,
        "rng": _rng_state(),
        "callbacks": _callback_states(callbacks),
    }
    save_verified(state, path, "the checkpoint")


_FINGERPRINTED = (
    ("model", "model (parameter names and shapes)"), ("optimizer", "optimizer type"), ("scheduler", "scheduler"),
    ("schedule", "schedule"), ("clip", "clipping threshold (clip)"), ("accumulate", "accumulate (micro-batches per step)"),
    ("settings", "set of optimizer settings (base learning rate, weight decay, betas...; the checkpoint's would replace them)"),
    ("precision", "precision"),
)


def load_checkpoint(path, *, model, optimizer, scheduler=None, scaler=None, clip=None, accumulate: int = 1,
                    callbacks=(), precision: str | None = None, settings: str | None = None) -> tuple[int, dict]:
    """Restore a checkpoint into existing objects and callbacks; return (completed steps, the history's state dict).

    Refuses, with a message and before changing anything, a file that is not
    a readable, undamaged course checkpoint of this format, objects that do not
    belong together, a checkpoint made with another model, optimizer or
    optimizer settings, schedule, clipping threshold, ``accumulate`` or
    precision, and callbacks that do not match the saved callbacks' states (by
    class name and rank among the callbacks of that class).  A failure while
    restoring puts everything back as it was.
    """
    _check_objects(path, model, optimizer, scheduler, scaler)
    path = Path(path)
    state = load_verified(path, "checkpoint")
    if not isinstance(state.get("fingerprint"), dict) or not isinstance(state.get("format"), int):
        raise ValueError(f"checkpoint {str(path)!r} is not a course_lib checkpoint (format {CHECKPOINT_FORMAT})")
    if state["format"] != CHECKPOINT_FORMAT:
        raise ValueError(
            f"checkpoint {str(path)!r} has format {state['format']}, written by another version of course_lib; this "
            f"one reads format {CHECKPOINT_FORMAT} (format 4 added a SHA-256 of the contents, format 3 the "
            "clipping threshold, accumulate and the callbacks' states), so the run cannot continue exactly. Start a "
            "new run: delete the file, or pass another checkpoint path"
        )
    _check_layout(path, state)
    saved = state["fingerprint"]
    now = fingerprint(model, optimizer, scheduler, clip=clip, accumulate=accumulate, precision=precision, settings=settings)
    for key, what in _FINGERPRINTED:
        if key == "precision" and None in (saved[key], now[key]):
            continue
        if saved[key] != now[key]:
            if key == "scheduler" and now[key] is None:
                raise ValueError(
                    f"checkpoint {str(path)!r} was saved with a scheduler ({saved['scheduler']}, {saved['schedule']}) "
                    "but none was passed: pass scheduler= built as before, or the rate would stay frozen"
                )
            detail = f"saved {saved[key]!r}, now {now[key]!r}"
            if key == "model":
                detail = f"saved {saved['parameters']} numbers, now {now['parameters']} (or other names/shapes)"
            raise ValueError(
                f"checkpoint {str(path)!r} was made with another {what}: {detail}. Resume with the same setup, "
                "or start a new run with another checkpoint path"
            )
    keyed = _keyed(callbacks)
    stored = state["callbacks"]
    fresh = set(_callback_states(callbacks))
    if set(stored) - set(keyed) or fresh - set(stored):
        raise ValueError(
            f"checkpoint {str(path)!r} holds the states of the callbacks {sorted(stored)}, but this run passes "
            f"callbacks that keep state {sorted(fresh | (set(stored) & set(keyed)))}: pass the callbacks the run was "
            "saved with (same classes; several of one class in the same order), or their counts would not continue"
        )
    undo = _snapshot(model, optimizer, scheduler, scaler, keyed.values())
    try:
        unwrap(model).load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state["scaler"] is not None:
            scaler.load_state_dict(state["scaler"])
        for key, callback_state in stored.items():
            keyed[key].load_state_dict(callback_state)
        _set_rng_state(state["rng"])
    except Exception as error:
        undo()
        raise ValueError(
            f"checkpoint {str(path)!r} could not be restored ({type(error).__name__}: {' '.join(str(error).split())[:200]}); "
            "the model, optimizer, scheduler, callbacks and random state were left as they were"
        ) from error
    return state["step"], state["history"]


def _snapshot(model, optimizer, scheduler, scaler, callbacks):
    """A copy of everything load_checkpoint changes; calling the returned function puts it all back."""
    bare = unwrap(model)
    weights = {name: tensor.detach().to("cpu", copy=True) for name, tensor in bare.state_dict().items()}
    states = [(obj, copy.deepcopy(obj.state_dict())) for obj in (optimizer, scheduler, scaler, *callbacks) if obj is not None]
    rng = _rng_state()

    def undo() -> None:
        bare.load_state_dict(weights)
        for obj, state in states:
            obj.load_state_dict(state)
        _set_rng_state(rng)

    return undo
