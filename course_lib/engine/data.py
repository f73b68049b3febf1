"""Devices, processes and batches for the training loop.

``to_device`` moves any batch a lesson uses (tensors, dicts, Hugging Face's
``BatchEncoding``, namedtuples, dataclasses); ``make_loader`` builds a
DataLoader whose order a resumed run can replay; under ``torchrun`` the
device and the data shard come from the environment variables it sets, and
``ddp_wrapper`` tells the loop whether a model is data-parallel
(:mod:`course_lib.engine.distributed`).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from typing import Any, Callable

import torch

from course_lib.engine._checks import check_int, check_type, shown

__all__ = ["pick_device", "default_dtype", "at_least_float32", "is_main_process", "ddp_wrapper", "to_device", "make_loader", "MicroBatches", "check_resumable_order",
           "first_tensor", "count_tokens", "tokens_of", "batch_size",
           "tensor_digest", "checksum"]

Batch = Any
_END = object()
EMPTY = "data is empty (a loader or iterable with no batches): nothing to train on"


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype):
    """Create floating tensors and modules in ``dtype`` inside the block (``torch.set_default_dtype``, restored after).

    A model meant to train in float64 is built in float64, not built in float32
    and converted: its random initial weights are then drawn in float64 too,
    which every CPU draws alike (float32 ``normal_`` has a vector path that
    differs from the scalar one in the last bit).
    """
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def at_least_float32(tensor: torch.Tensor) -> torch.Tensor:
    """bf16 and fp16 to float32 (a softmax or a sum of losses needs it); float32 and float64 unchanged."""
    check_type("tensor", tensor, torch.Tensor, "a torch.Tensor")
    return tensor.to(torch.promote_types(tensor.dtype, torch.float32))


def is_main_process() -> bool:
    """True except in processes of rank > 0 under ``torchrun`` (they write no checkpoint, no progress)."""
    return int(os.environ.get("RANK", "0")) == 0


def ddp_wrapper(model: torch.nn.Module) -> "torch.nn.parallel.DistributedDataParallel | None":
    """The ``DistributedDataParallel`` wrapper that ``model`` is (also under ``torch.compile``), or None for a plain model."""
    model = getattr(model, "_orig_mod", model)
    return model if isinstance(model, torch.nn.parallel.DistributedDataParallel) else None


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given; else ``cuda:$LOCAL_RANK`` under torchrun, CUDA, Apple's MPS, or the CPU."""
    if device is None:
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if not isinstance(device, (str, torch.device)) or isinstance(device, bool):
        raise TypeError(f"device must be a string such as 'cpu' or 'cuda', a torch.device or None, got {device!r}")
    try:
        device = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"device {device!r} is not a device torch knows ({error})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} but this machine has no CUDA GPU: pass device='cpu' or None (auto)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"device={str(device)!r} but only {torch.cuda.device_count()} CUDA device(s) exist")
    if device.type == "mps" and not _mps_available():
        raise ValueError("device='mps' but Apple's MPS is not available here: pass device='cpu' or None (auto)")
    return device


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def to_device(batch: Batch, device: torch.device) -> Batch:
    """Move every tensor of a (nested) batch to ``device``, keeping the container types.

    Handles tensors, Mappings (dicts, Hugging Face's ``BatchEncoding``, which
    is a ``UserDict``), namedtuples, tuples and lists, dataclasses, and any
    other object with a ``.to(device)`` method.  Copies are non-blocking: on
    CUDA they overlap with computation when the tensors are in pinned memory.
    """
    if not isinstance(device, torch.device):
        device = pick_device(device)  # a name such as "cuda": checked once, with a clear message
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        moved = {key: to_device(value, device) for key, value in batch.items()}
        if type(batch) is dict:
            return moved
        out = _copy(batch)
        if out is None:
            return moved
        for key, value in moved.items():
            out[key] = value
        return out
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(to_device(item, device) for item in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(item, device) for item in batch)
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        changes = {f.name: to_device(getattr(batch, f.name), device) for f in dataclasses.fields(batch) if f.init}
        return dataclasses.replace(batch, **changes)
    if hasattr(batch, "to") and callable(batch.to) and not isinstance(batch, torch.nn.Module):
        return batch.to(device)
    return batch


def _copy(mapping: Mapping):
    try:
        return copy.copy(mapping)
    except Exception:
        return None


def make_loader(
    dataset,
    batch_size: int,
    *,
    shuffle: bool = True,
    seed: int = 0,
    device: str | torch.device | None = None,
    collate_fn: Callable | None = None,
    drop_last: bool = False,
    num_workers: int = 0,
) -> torch.utils.data.DataLoader:
    """A DataLoader whose order is a pure function of (``seed``, epoch), so a resumed run sees the same batches.

    Shuffling uses ``DistributedSampler`` (one replica outside torchrun), which
    the loop steps with ``set_epoch``; under torchrun each process reads its
    own shard.  Memory is pinned when the target device is CUDA.
    """
    from torch.utils.data import DataLoader
    from torch.utils.data.distributed import DistributedSampler

    if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")) or isinstance(dataset, (str, bytes)):
        raise TypeError(f"dataset must be a map-style dataset (with __len__ and __getitem__, e.g. a TensorDataset), got {shown(dataset)}")
    check_int("batch_size", batch_size, 1, unit="examples")
    check_int("seed", seed, 0, unit="seed units (it fixes the shuffling order)")
    check_type("shuffle", shuffle, bool, "True or False")
    check_type("drop_last", drop_last, bool, "True or False")
    check_int("num_workers", num_workers, 0, unit="worker processes")
    if collate_fn is not None and not callable(collate_fn):
        raise TypeError(f"collate_fn must be a function list of examples -> batch, or None, got {shown(collate_fn)}")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last)
    pin = pick_device(device).type == "cuda"
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, collate_fn=collate_fn,
        drop_last=drop_last, pin_memory=pin, num_workers=num_workers,
    )


class MicroBatches:
    """Micro-batch ``m`` of the run, from ``data(m)`` or from an iterable (epochs restart it).

    A resumed run skips ahead to the same position: the epoch is set on the
    loader's sampler when it has ``set_epoch``, then the batches before the
    position are drawn and dropped.  An epoch's iterator is opened when its
    first batch is asked for, as in the uninterrupted run; reopening one that
    the run had opened before its checkpoint leaves the restored random state
    untouched (a DataLoader draws a seed from it when it opens).
    """

    def __init__(self, data, start: int):
        if not (callable(data) or isinstance(data, Iterable)) or isinstance(data, (str, bytes, torch.Tensor)):
            raise TypeError(f"data must be a function of the batch index, a DataLoader or an iterable of batches, "
                            f"got {shown(data)}")
        check_int("start", start, 0, unit="micro-batches already consumed")
        self.data, self.position = data, start
        self.callable = callable(data) and not isinstance(data, Iterable)
        if self.callable:
            return
        try:
            self.length = len(data)
        except TypeError:  # no __len__, or a DataLoader over an IterableDataset that has none
            self.length = None
        if self.length == 0:
            raise ValueError(EMPTY)
        if start:
            check_resumable_order(data)
        self.epoch, self.iterator = -1, None
        done_in_epoch = start % self.length if self.length else start
        if done_in_epoch:
            with torch.random.fork_rng(devices=[]):
                self.epoch = start // self.length if self.length else 0
                self.iterator = self._open(self.epoch)
                for _ in range(done_in_epoch):
                    if next(self.iterator, _END) is _END:
                        raise self._ran_out()
        elif self.length:
            self.epoch = start // self.length - 1

    def _open(self, epoch: int):
        for holder in (self.data, getattr(self.data, "sampler", None), getattr(getattr(self.data, "batch_sampler", None), "sampler", None)):
            if holder is not None and hasattr(holder, "set_epoch"):
                holder.set_epoch(epoch)
                break
        return iter(self.data)

    def _ran_out(self) -> ValueError:
        return ValueError(
            f"data ran out after {self.position} batches; the run needs steps x accumulate batches: "
            "pass a longer iterable, a DataLoader (restarted every epoch) or a function of the batch index"
        )

    def _next_raw(self):
        if self.iterator is not None:
            try:
                return next(self.iterator)
            except StopIteration:
                if self.length is None:  # a one-pass iterable: no next epoch
                    raise self._ran_out() from None
        self.epoch += 1
        self.iterator = self._open(self.epoch)
        try:
            return next(self.iterator)
        except StopIteration:
            raise ValueError(EMPTY) from None

    def next(self):
        batch = self.data(self.position) if self.callable else self._next_raw()
        self.position += 1
        return batch


def check_resumable_order(data) -> None:
    """Refuse a DataLoader whose order a resumed run cannot replay (``shuffle=True``): checkpoints over it could never be used."""
    from torch.utils.data import RandomSampler, SubsetRandomSampler, WeightedRandomSampler

    samplers = [getattr(data, "sampler", None), getattr(getattr(data, "batch_sampler", None), "sampler", None)]
    unreplayable = [s for s in samplers if isinstance(s, (RandomSampler, SubsetRandomSampler, WeightedRandomSampler))]
    if unreplayable:
        raise ValueError(
            f"data is a DataLoader with shuffle=True or another random sampler ({type(unreplayable[0]).__name__}), whose order "
            "cannot be replayed on resume: "
            "build it with course_lib.engine.data.make_loader(dataset, batch_size, seed=...) or pass a function of "
            "the batch index"
        )


def first_tensor(batch: Any, prefer: str | None = None) -> torch.Tensor | None:
    """The tensor ``batch[prefer]`` if the batch is a mapping that has it, else the first tensor found, depth first."""
    if prefer is not None:
        check_type("prefer", prefer, str, "a key of the batch (str) or None")
    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, Mapping):
        if prefer in batch:
            return batch[prefer]
        batch = list(batch.values())
    for item in batch if isinstance(batch, (list, tuple)) else ():
        found = first_tensor(item, prefer)
        if found is not None:
            return found
    return None


def count_tokens(batch: Any) -> int:
    """Tokens a micro-batch trains on, from shapes (no synchronisation).

    A batch that is one 2-D integer tensor is read as language-model blocks
    of shape (B, T + 1), as ``lm_loss`` reads them: inputs ``[:, :-1]``,
    targets ``[:, 1:]``, so B·T predictions are counted.  Otherwise: the
    elements of ``input_ids`` if the batch is a mapping that has it, else of
    the first tensor found (inputs come first in an ``(x, y)`` pair).
    """
    if isinstance(batch, torch.Tensor) and batch.ndim == 2 and not (batch.is_floating_point() or batch.is_complex()
                                                                    or batch.dtype == torch.bool):
        return batch.shape[0] * max(0, batch.shape[1] - 1)
    found = first_tensor(batch, "input_ids")
    if found is None:
        raise TypeError(f"batch holds no tensor to count tokens in, got {shown(batch)}: pass tokens=... a function batch -> count")
    return found.numel()


def tokens_of(tokens: Callable[[Any], int], batch: Any) -> int:
    """``tokens(batch)``, checked: a counter such as :func:`count_tokens` must return an int >= 0, not a rate or a text."""
    counted = tokens(batch)
    if isinstance(counted, bool) or not isinstance(counted, int):
        raise TypeError(f"tokens(batch) must return an int >= 0 (the tokens the micro-batch trains on), got {shown(counted)}")
    if counted < 0:
        raise ValueError(f"tokens(batch) must return an int >= 0 (the tokens the micro-batch trains on), got {counted}")
    return counted


def batch_size(batch: Any) -> int:
    """Examples in a batch: the first dimension of the first tensor found (from shapes, no synchronisation)."""
    found = first_tensor(batch)
    if found is None:
        raise TypeError(f"batch holds no tensor whose first dimension counts examples, got {shown(batch)}")
    return found.shape[0] if found.ndim else 1


def tensor_digest(tensor: torch.Tensor, into=None, name: str | None = None):
    """Feed a tensor's dtype, shape and bytes (after ``name``, if given) into a SHA-256 (``into``, or a new one); return it.

    The one way course_lib fingerprints tensors: weights (:func:`checksum`),
    the batches a run consumed (``DataChecksum``), a tensor in a schedule.
    """
    check_type("tensor", tensor, torch.Tensor, "a torch.Tensor")
    if into is not None and not callable(getattr(into, "update", None)):
        raise TypeError(f"into must be a hashlib hash (such as hashlib.sha256()) or None, got {shown(into)}")
    if name is not None:
        check_type("name", name, str, "a str (fed before the tensor) or None")
    digest = into if into is not None else hashlib.sha256()
    tensor = tensor.detach().cpu().contiguous()
    header = [str(tensor.dtype), list(tensor.shape)]
    digest.update(json.dumps(header if name is None else [name, *header]).encode())
    digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest


def checksum(value) -> str:
    """The first 12 hex digits of a SHA-256 over tensors (a model's state, or a list of batches), bit for bit."""
    if isinstance(value, torch.nn.Module):
        value = value.state_dict()
    if isinstance(value, torch.Tensor) or not isinstance(value, (dict, list, tuple)):
        raise TypeError(f"value must be a model, a state dict or a list of tensors, got {shown(value)}")
    items = sorted(value.items()) if isinstance(value, dict) else list(enumerate(value))
    digest = hashlib.sha256()
    for key, tensor in items:
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"value[{key!r}] must be a tensor (a model, a state dict or a list of tensors), got {shown(tensor)}")
        tensor_digest(tensor, digest, str(key))
    return digest.hexdigest()[:12]
