"""Data parallelism with ``torch.distributed``: one script for 1 process, N CPU processes (gloo) or N GPUs (NCCL).

``torchrun`` starts one process per rank and tells each its place through
environment variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``).  Each
process holds a full copy of the model, computes the gradient of its share of
the global batch, and ``DistributedDataParallel`` (DDP) averages the
gradients over the processes during the backward pass, so every copy takes
the same optimizer step and the copies stay identical.  The training loop is
the course's one loop (:func:`course_lib.engine.training.train`): given a DDP model
it averages over the ranks once per step, with no flag.

Lesson 05's script :mod:`course_lib.lessons.data_parallel` trains a tiny GPT
with these pieces, as one process or under ``torchrun``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from course_lib.engine._checks import check_choice, check_int, check_type
from course_lib.engine.data import pick_device

__all__ = ["setup", "wrap", "cleanup", "global_batch_slice", "check_same_on_every_rank", "child_environment", "child_error"]


def setup(backend: str | None = None) -> tuple[int, int, torch.device]:
    """Join the process group that ``torchrun`` set up; return ``(rank, world_size, device)``.

    The backend is ``"nccl"`` when CUDA is available, else ``"gloo"``, unless
    given.  The device follows it: ``cuda:LOCAL_RANK`` (made the current CUDA
    device) for NCCL, the CPU otherwise, so ``backend="gloo"`` runs CPU
    processes on a GPU machine too.  Outside ``torchrun`` (no ``RANK`` in the
    environment) it returns ``(0, 1, device)`` without a process group, so the
    same script runs as one plain process.
    """
    if backend is not None:
        check_type("backend", backend, str, "a torch.distributed backend name such as 'gloo' or 'nccl', or None")
        if not backend:
            raise ValueError("backend must be a torch.distributed backend name such as 'gloo' or 'nccl', or None, got ''")
        if dist.is_available():  # a plain process never builds a group: an unknown name would pass unnoticed there
            check_choice("backend", backend.lower(), tuple(b for b in dist.Backend.backend_list if b not in ("undefined", "fake")),
                         "torch.distributed's backends")
    if backend == "nccl" and not torch.cuda.is_available():
        raise ValueError("backend='nccl' needs CUDA GPUs and this machine has none: pass backend='gloo' or None (auto)")
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if "RANK" not in os.environ:
        return 0, 1, torch.device("cuda", 0) if backend == "nccl" else torch.device("cpu")
    rank, world_size, local_rank = (_env_int(name) for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    if not 0 <= rank < world_size or not 0 <= local_rank < world_size:
        raise ValueError(f"torchrun's environment is inconsistent: RANK={rank}, WORLD_SIZE={world_size}, LOCAL_RANK={local_rank}")
    if not dist.is_available():
        raise RuntimeError("this build of PyTorch has no torch.distributed: install a build with it, or run one plain process")
    device = torch.device("cpu")
    if backend == "nccl":
        if local_rank >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} CUDA device(s) exist: "
                             "start at most that many processes per node (torchrun --nproc_per_node)")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend)  # env:// : MASTER_ADDR, MASTER_PORT, RANK and WORLD_SIZE from torchrun
    return rank, world_size, device


def _env_int(name: str) -> int:
    value = os.environ.get(name)
    if value is None:
        raise ValueError(f"RANK is set but {name} is not: start the script with torchrun, which sets both")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an int (torchrun sets it), got {value!r}") from None


def wrap(model: torch.nn.Module, device: str | torch.device | None, find_unused_parameters: bool = False) -> torch.nn.Module:
    """``model`` on ``device``, wrapped in ``DistributedDataParallel`` when more than one process runs; else unchanged.

    ``device`` as :func:`course_lib.engine.data.pick_device` takes it (None:
    ``cuda:$LOCAL_RANK`` under torchrun, else the best one here).

    Build the optimizer from the bare model's parameters (the same tensors
    DDP trains) and save ``course_lib.engine.checkpoints.unwrap(model)``.

    Frozen parameters: DDP registers only the parameters that require a
    gradient when it is built, so parameters frozen *before* wrapping
    (``course_lib.engine.freezing.freeze``) are simply left out of the gradient
    averaging; freezing does not need ``find_unused_parameters``.  Set it
    only when a *trainable* parameter may get no gradient in some step (a
    branch of the model not taken, a head not used by this batch): without
    it DDP waits for that gradient and fails at the next step; with it, DDP
    walks the autograd graph after every forward pass to find such
    parameters, which costs time.  Unfreezing mid-run is not seen by a DDP
    already built: its parameters would train on each rank's own gradient
    and the ranks would drift apart (``course_lib.engine.callbacks.UnfreezeAt``
    refuses a DDP model).  Unfreeze the bare model and wrap it again.
    """
    check_type("model", model, torch.nn.Module, "a torch.nn.Module")
    if isinstance(model, DistributedDataParallel):
        raise TypeError("model is already wrapped in DistributedDataParallel: wrap the bare model (unwrap(model))")
    check_type("device", device, (str, torch.device, type(None)), "a device such as 'cpu' or 'cuda:0', a torch.device or None (auto)")
    check_type("find_unused_parameters", find_unused_parameters, bool, "True or False")
    device = pick_device(device)  # an unknown name, or CUDA where there is none: a ValueError naming device
    model.to(device)
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return model
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError("model has no trainable parameter (every requires_grad is False): DDP has nothing to average")
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=find_unused_parameters)


def cleanup() -> None:
    """Leave the process group, if one was joined (safe to call in a plain process)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def global_batch_slice(batch: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Rank ``rank``'s equal share of a global batch: rows ``[rank * n, (rank + 1) * n)`` with ``n = len(batch) / world_size``.

    Equal shares make DDP's average over ranks equal to the mean over the
    global batch (see :func:`course_lib.engine.training.forward_backward`).
    """
    check_type("batch", batch, torch.Tensor, "a tensor whose first dimension is the batch")
    if batch.ndim == 0:
        raise ValueError("batch must have a batch dimension (dim 0), got a 0-d tensor")
    check_int("world_size", world_size, 1, unit="processes")
    check_int("rank", rank, 0, world_size - 1, unit="process index")
    if len(batch) % world_size:
        raise ValueError(f"a global batch of {len(batch)} does not split evenly over world_size={world_size} processes: "
                         f"make it a multiple of {world_size}")
    n = len(batch) // world_size
    return batch[rank * n: (rank + 1) * n]


def check_same_on_every_rank(value: str, what: str) -> None:
    """Raise on every rank unless ``value`` is the same on all of them."""
    check_type("value", value, str, "a string (e.g. a checksum)")
    check_type("what", what, str, "a string that names what is compared")
    if not (dist.is_available() and dist.is_initialized()):
        return
    values = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    if len(set(values)) > 1:
        raise RuntimeError(f"the {what} differ between ranks ({values}): seed every rank the same way before building the model")


def child_environment(**extra: str) -> dict[str, str]:
    """This process's environment for a new (torchrun) run: without the rank variables of a run it may be part of,
    with this repository first on ``PYTHONPATH``, plus ``extra``."""
    for name, value in extra.items():
        check_type(name, value, str, "a string (the value of an environment variable)")
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    repository = str(Path(__file__).resolve().parents[2])
    env.update(PYTHONPATH=os.pathsep.join(p for p in (repository, os.environ.get("PYTHONPATH")) if p), **extra)
    return env


_RANK_PREFIX = re.compile(r"^\[(?:default)?(?:rank)?(\d+)\]:\s?")  # torchrun's "[rank0]: " (or --tee's "[default0]:") before a worker's line
_LOG_LINE = re.compile(r"^[EWI]\d{4} \d\d:\d\d:\d\d")  # torchrun's own log lines ("E1205 12:44:02.027000 ... failed (exitcode: 1)")


def child_error(output: str, limit: int = 4000) -> str:
    """The error a launched run's own code raised, found in its output (``python`` or ``torchrun``, stderr included).

    torchrun prints each worker's traceback (with its rank, when the worker
    imported torch) before its own report (``ChildFailedError`` and a table
    of exit codes), so the last lines of its output never hold the message
    the worker raised.  This returns the workers' tracebacks whole, messages
    included, without torchrun's (ranks that raised the same error are named
    together); where there is no traceback, the output's last ``limit``
    characters, which then hold what there is (a signal, a crash).
    """
    check_type("output", output, str, "the text a launched process printed (stdout and stderr)")
    check_int("limit", limit, 1, unit="characters")
    ranks: dict[int | None, list[str]] = {}
    for line in output.splitlines():
        match = _RANK_PREFIX.match(line)
        if match or not _LOG_LINE.match(line):
            ranks.setdefault(int(match[1]) if match else None, []).append(line[match.end():] if match else line)
    errors: dict[str, list[str]] = {}
    for rank in sorted(ranks, key=lambda rank: -1 if rank is None else rank):
        lines = ranks[rank]
        starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")]
        tracebacks = ["\n".join(lines[a:b]).strip() for a, b in zip(starts, [*starts[1:], len(lines)])]
        own = "\n".join(t for t in tracebacks if "ChildFailedError" not in t)  # not torchrun's report
        if own:
            errors.setdefault(own, []).append("" if rank is None else f"rank {rank}")
    if not errors:
        return output[-limit:].strip()
    parts = [f"{', '.join(names)}:\n{error}" if any(names) else error for error, names in errors.items()]
    text = "\n".join(parts)
    return text if len(text) <= limit else "...\n" + text[-limit:]
