"""Lesson 05's data-parallel script: a tiny GPT trained by 1 process, N CPU processes (gloo) or N GPUs (NCCL).

Run as a script, it trains the tiny GPT and writes the final weights::

    python -m course_lib.lessons.data_parallel --out run1                          # one plain process
    torchrun --standalone --nproc_per_node 2 -m course_lib.lessons.data_parallel --out run2   # 2 ranks, same global batch

The two runs end with the same weights, up to float rounding
(``tests/test_distributed.py``).  The data-parallel pieces are the engine's
(:mod:`course_lib.engine.distributed`); the loop is the course's one loop.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from course_lib.engine._checks import check_choice, check_int, check_number, check_type, shown
from course_lib.engine.checkpoints import unwrap
from course_lib.engine.data import checksum
from course_lib.engine.distributed import (
    check_same_on_every_rank,
    child_environment,
    child_error,
    cleanup,
    global_batch_slice,
    setup,
    wrap,
)
from course_lib.engine.files import check_writable, write_safely
from course_lib.engine.freezing import freeze
from course_lib.engine.training import train
from course_lib.lessons.corpus import TokenWindows
from course_lib.models.gpt import GPT, GPTConfig, lm_loss

__all__ = ["TINY_GPT", "main", "launch", "collect", "compare_processes"]

TINY_GPT = GPTConfig(vocab_size=64, block_size=16, n_layer=2, n_head=2, n_embd=32)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.lessons.data_parallel",
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
    check_number("--lr", args.lr, "> 0 and finite", lambda v: 0 < v < math.inf)
    check_writable(args.out / "final.pt", "--out")  # before any training: a run must not end unable to write its weights
    rank, world_size, device = setup(args.backend)
    try:
        if args.global_batch % (world_size * args.accumulate):
            raise ValueError(f"--global-batch {args.global_batch} must be a multiple of world size x --accumulate = "
                             f"{world_size} x {args.accumulate}, so that every micro-batch has the same size")
        torch.manual_seed(args.seed)
        model = GPT(TINY_GPT)
        if args.freeze:
            freeze(model, args.freeze)
            if not any(p.requires_grad for p in model.parameters()):
                raise ValueError(f"--freeze {args.freeze!r} matches every parameter: nothing would train")
        initial = {name: t.clone() for name, t in model.state_dict().items()}
        check_same_on_every_rank(checksum(model), "initial weights")
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

        final = {name: t.detach().cpu() for name, t in unwrap(ddp).state_dict().items()}
        _write_text(args.out / f"checksum-rank{rank}.txt", checksum(final) + "\n", f"rank {rank}'s checksum")
        if rank == 0:
            write_safely(args.out / "final.pt", lambda file: torch.save(final, file), "the final weights")
            write_safely(args.out / "initial.pt", lambda file: torch.save(initial, file), "the initial weights")
            record = {**{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                      "world_size": world_size, "backend": dist.get_backend() if dist.is_initialized() else None,
                      "device": str(device), "loss": history.loss, "checksum": checksum(final)}
            _write_text(args.out / "run.json", json.dumps(record, indent=1) + "\n", "the run's record")
            print(f"{world_size} process(es), {args.steps} steps: loss {history.loss[0]:.4f} -> {history.loss[-1]:.4f}, "
                  f"weights {record['checksum']}")
    finally:
        cleanup()


def _write_text(path: Path, content: str, what: str) -> None:
    write_safely(path, lambda file: file.write_text(content, encoding="utf-8"), what)


def launch(out: str | Path, processes: int, options: tuple[str, ...] = (), *,
           module: str = "course_lib.lessons.data_parallel") -> subprocess.Popen:
    """Start this script on CPUs (gloo): one plain process, or ``processes`` ranks under torchrun; returns at once.

    ``out`` is checked here, before any process starts: a place that cannot be
    written fails at once, not after the training.  ``module`` is the script
    run as ``python -m module --out OUT --backend gloo OPTIONS``: this one by
    default; lesson 05's :mod:`course_lib.lessons.training_mistakes` starts its
    ``no_sync`` measurement the same way.
    """
    check_type("out", out, (str, os.PathLike), "a folder's path (a str or a Path)")
    check_int("processes", processes, 1, unit="processes")
    if not isinstance(options, (list, tuple)) or not all(isinstance(o, str) for o in options):
        raise TypeError(f"options must be a tuple of command-line strings such as ('--steps', '10'), got {shown(options)}")
    check_choice("module", module, ("course_lib.lessons.data_parallel", "course_lib.lessons.training_mistakes"),
                 "the course's scripts that run under torchrun")
    check_writable(Path(out) / "final.pt", "out")
    script = ["-m", module, "--out", str(out), "--backend", "gloo", *options]
    if processes > 1:
        script = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes), *script]
    return subprocess.Popen([sys.executable, *script], env=child_environment(OMP_NUM_THREADS="1"), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def collect(process: subprocess.Popen, out: str | Path, processes: int) -> dict:
    """Wait for a launched run; return what it wrote: final and initial weights, each rank's checksum, the record.

    If the run failed, the RuntimeError carries the error its own code raised
    (each rank's traceback and message), not only torchrun's report.
    """
    check_type("process", process, subprocess.Popen, "the process that launch() returned")
    check_int("processes", processes, 1, unit="processes")
    output, _ = process.communicate(timeout=300)
    if process.returncode != 0:
        raise RuntimeError(f"the distributed run failed (exit {process.returncode}):\n{child_error(output or '')}")
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
    check_type("folder", folder, (str, os.PathLike), "a folder's path (a str or a Path)")
    check_int("processes", processes, 2, unit="processes (the run to compare with one process)")
    check_int("steps", steps, 1)
    folder = Path(folder)
    runs = {n: (folder / f"{n}-process", launch(folder / f"{n}-process", n, ("--steps", str(steps)))) for n in (1, processes)}
    one, many = (collect(p, out, n) for n, (out, p) in runs.items())
    difference = max((one["final"][k] - many["final"][k]).abs().max().item() for k in one["final"])
    moved = max((one["final"][k] - one["initial"][k]).abs().max().item() for k in one["final"])
    return {"checksums": many["checksums"], "max_difference": difference, "largest_change": moved,
            "loss": [one["record"]["loss"][0], one["record"]["loss"][-1]]}


if __name__ == "__main__":
    main()
