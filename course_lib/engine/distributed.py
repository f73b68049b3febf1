"""Data parallelism with ``torch.distributed``: one script for 1 process, N CPU processes (gloo) or N GPUs (NCCL).

``torchrun`` starts one process per rank and tells each its place through
environment variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``).  Each
process holds a full copy of the model, computes the gradient of its share of
the global batch, and ``DistributedDataParallel`` (DDP) averages the
gradients over the processes during the backward pass, so every copy takes
the same optimizer step and the copies stay identical.  The training loop is
the course's one loop (:func:`course_lib.engine.training.train`): given a DDP model
it averages over the ranks once per step, with no flag.

Run as a script, it trains a tiny GPT and writes the final weights::

    python -m course_lib.engine.distributed --out run1                          # one plain process
    torchrun --standalone --nproc_per_node 2 -m course_lib.engine.distributed --out run2   # 2 ranks, same global batch

The two runs end with the same weights, up to float rounding (``tests/test_distributed.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from course_lib.engine._checks import check_int, check_type
from course_lib.engine.checkpoints import unwrap
from course_lib.lessons.corpus import TokenWindows, checksum
from course_lib.engine.freezing import freeze
from course_lib.models.gpt import GPT, GPTConfig, lm_loss
from course_lib.engine.training import train

__all__ = ["setup", "wrap", "cleanup", "global_batch_slice", "main", "launch", "child_environment", "collect", "compare_processes", "TINY_GPT"]

TINY_GPT = GPTConfig(vocab_size=64, block_size=16, n_layer=2, n_head=2, n_embd=32)


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


def wrap(model: torch.nn.Module, device: str | torch.device, find_unused_parameters: bool = False) -> torch.nn.Module:
    """``model`` on ``device``, wrapped in ``DistributedDataParallel`` when more than one process runs; else unchanged.

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
    check_type("device", device, (str, torch.device), "a device such as 'cpu' or 'cuda:0', or a torch.device")
    check_type("find_unused_parameters", find_unused_parameters, bool, "True or False")
    device = torch.device(device)
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


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.engine.distributed",
        description="Train a tiny GPT data-parallel (or in one plain process) and write its final weights.",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for weights, checksums and the run's record")
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps")
    parser.add_argument("--global-batch", type=int, default=8, help="sequences per optimizer step, over all ranks")
    parser.add_argument("--accumulate", type=int, default=1, help="micro-batches per step on each rank")
    parser.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd",
                        help="sgd (default): its step is linear in the gradient, so 1 and N processes agree to float "
                             "rounding; adamw divides by sqrt(v) and magnifies rounding in near-zero gradients")
    parser.add_argument("--lr", type=float, default=0.1, help="fixed learning rate")
    parser.add_argument("--freeze", metavar="PATTERN", help="freeze the parameters whose names match this regex")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and of the data")
    parser.add_argument("--backend", help="torch.distributed backend (default: nccl with CUDA, else gloo)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Train :data:`TINY_GPT` on seeded random tokens; write ``final.pt``, ``initial.pt``, ``run.json`` and one checksum per rank.

    Every rank builds the same initial weights from ``--seed`` (checked;
    DDP would also broadcast rank 0's).  Step ``s`` trains on global batch
    ``s`` of a :class:`~course_lib.lessons.corpus.TokenWindows`, the same on every
    rank and for any number of ranks; each rank takes its slice, cut into
    ``--accumulate`` micro-batches.
    """
    args = _parse(argv)
    check_int("--steps", args.steps, 1)
    check_int("--accumulate", args.accumulate, 1, unit="micro-batches per step")
    check_int("--global-batch", args.global_batch, 1, unit="sequences")
    check_int("--seed", args.seed, 0, unit="seed units")
    rank, world_size, device = setup(args.backend)
    try:
        if args.global_batch % (world_size * args.accumulate):
            raise ValueError(f"--global-batch {args.global_batch} must be a multiple of world size x --accumulate = "
                             f"{world_size} x {args.accumulate}, so that every micro-batch has the same size")
        torch.manual_seed(args.seed)
        model = GPT(TINY_GPT)
        if args.freeze:
            freeze(model, args.freeze)
        initial = {name: t.clone() for name, t in model.state_dict().items()}
        _check_same_on_every_rank(checksum(model), "initial weights")
        phrase = torch.randint(TINY_GPT.vocab_size, (64,), generator=torch.Generator().manual_seed(args.seed))  # repeated: learnable
        windows = TokenWindows(phrase.repeat(64), batch_size=args.global_batch, length=TINY_GPT.block_size, seed=args.seed)

        def micro_batch(m: int) -> torch.Tensor:
            step, part = divmod(m, args.accumulate)
            return global_batch_slice(global_batch_slice(windows(step), rank, world_size), part, args.accumulate)

        ddp = wrap(model, device)
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = (torch.optim.SGD(trainable, lr=args.lr) if args.optimizer == "sgd"
                     else torch.optim.AdamW(trainable, lr=args.lr))
        history = train(ddp, optimizer, micro_batch, lm_loss, args.steps, accumulate=args.accumulate,
                        device=device, log_every=args.steps)

        args.out.mkdir(parents=True, exist_ok=True)
        final = {name: t.detach().cpu() for name, t in unwrap(ddp).state_dict().items()}
        (args.out / f"checksum-rank{rank}.txt").write_text(checksum(final) + "\n")
        if rank == 0:
            torch.save(final, args.out / "final.pt")
            torch.save(initial, args.out / "initial.pt")
            record = {**{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                      "world_size": world_size, "backend": dist.get_backend() if dist.is_initialized() else None,
                      "device": str(device), "loss": history.loss, "checksum": checksum(final)}
            (args.out / "run.json").write_text(json.dumps(record, indent=1) + "\n")
            print(f"{world_size} process(es), {args.steps} steps: loss {history.loss[0]:.4f} -> {history.loss[-1]:.4f}, "
                  f"weights {record['checksum']}")
    finally:
        cleanup()


def _check_same_on_every_rank(value: str, what: str) -> None:
    """Raise on every rank unless ``value`` is the same on all of them."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    values = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    if len(set(values)) > 1:
        raise RuntimeError(f"the {what} differ between ranks ({values}): seed every rank the same way before building the model")


def launch(out: str | Path, processes: int, options: tuple[str, ...] = ()) -> subprocess.Popen:
    """Start this script on CPUs (gloo): one plain process, or ``processes`` ranks under torchrun; returns at once."""
    check_int("processes", processes, 1, unit="processes")
    script = ["-m", "course_lib.engine.distributed", "--out", str(out), "--backend", "gloo", *options]
    if processes > 1:
        script = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes), *script]
    return subprocess.Popen([sys.executable, *script], env=child_environment(OMP_NUM_THREADS="1"), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def child_environment(**extra: str) -> dict[str, str]:
    """This process's environment for a new (torchrun) run: without the rank variables of a run it may be part of,
    with this repository first on ``PYTHONPATH``, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    repository = str(Path(__file__).resolve().parents[2])
    env.update(PYTHONPATH=os.pathsep.join(p for p in (repository, os.environ.get("PYTHONPATH")) if p), **extra)
    return env


def collect(process: subprocess.Popen, out: str | Path, processes: int) -> dict:
    """Wait for a launched run; return what it wrote: final and initial weights, each rank's checksum, the record."""
    output, _ = process.communicate(timeout=300)
    if process.returncode != 0:
        raise RuntimeError(f"the distributed run failed (exit {process.returncode}):\n{output[-2000:]}")
    out = Path(out)
    return {
        "final": torch.load(out / "final.pt", weights_only=True),
        "initial": torch.load(out / "initial.pt", weights_only=True),
        "checksums": [(out / f"checksum-rank{r}.txt").read_text().strip() for r in range(processes)],
        "record": json.loads((out / "run.json").read_text()),
    }


def compare_processes(folder: str | Path, processes: int = 2, steps: int = 10) -> dict:
    """Train the tiny GPT as one process and as ``processes`` ranks with the same global batch; compare the results.

    Returns each rank's weight checksum, the largest difference between the
    two runs' final weights, and how far the weights moved.
    """
    folder = Path(folder)
    runs = {n: (folder / f"{n}-process", launch(folder / f"{n}-process", n, ("--steps", str(steps)))) for n in (1, processes)}
    one, many = (collect(p, out, n) for n, (out, p) in runs.items())
    difference = max((one["final"][k] - many["final"][k]).abs().max().item() for k in one["final"])
    moved = max((one["final"][k] - one["initial"][k]).abs().max().item() for k in one["final"])
    return {"checksums": many["checksums"], "max_difference": difference, "largest_change": moved,
            "loss": [one["record"]["loss"][0], one["record"]["loss"][-1]]}


if __name__ == "__main__":
    main()
