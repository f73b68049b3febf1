"""Data parallelism of the course's fast GPT-2 step: tokens/s on 1 and N GPUs, the loss curves, resuming on 1 GPU.

    python benchmarks/ddp_scaling.py --gpus 2          # one host, 2 GPUs: writes course_lib/lessons/results/lesson05_ddp.json
    python benchmarks/ddp_scaling.py --gpus 2 --size tiny --backend gloo --out /tmp/ddp.json   # CPU processes

Every run is ``torchrun --standalone`` over this script in worker mode, with
NVLink multicast off (``NCCL_NVLS_ENABLE=0``, ``TORCH_SYMM_MEM_DISABLE_MULTICAST=1``,
``NVSHMEM_DISABLE_NVLS=1``).  The model, optimizer and loss are
:data:`course_lib.models.fast_step.FAST`'s, wrapped by :func:`course_lib.engine.distributed.wrap`
and trained by the one loop.

* ``speed``: 1 process, then N, the same micro-batch per GPU on synthetic
  tokens; rounds of ``--steps`` steps between barriers; the global tokens/s
  and the scaling efficiency tokens/s(N) / (N x tokens/s(1)).
* ``curves``: the same global batch of real text (lesson 04's reviews) on 1
  process and on N, ``--curve-steps`` steps from the same weights; then the
  N-process checkpoint resumed for as many steps on N processes and on 1.
  Compared with :func:`course_lib.engine.stats.curve_agreement`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist

from course_lib.engine.distributed import child_environment, cleanup, global_batch_slice, setup, wrap
from course_lib.engine.files import check_writable, write_safely
from course_lib.engine.stats import curve_agreement
from course_lib.engine.timing import PeakMemory, Timing, loop_steps, synchronize
from course_lib.engine.training import train
from course_lib.lessons import stored
from course_lib.models.fast_step import FAST, StepOptions, build, synthetic_batches

OUT = stored.path("05", "ddp")
SIZES = {  # (changes to the model's sizes, changes to the other options)
    "gpt2": ({}, {}),
    "tiny": (dict(n_layer=2, n_head=2, n_embd=64, block_size=64, vocab_size=512), dict(compile=False, cuda_graphs=False)),
}
NO_MULTICAST = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}


def _options(args, micro_batch: int) -> StepOptions:
    model, options = SIZES[args.size]
    changes = dict(options, micro_batch=micro_batch, model=dataclasses.replace(FAST.model, **model))
    if args.no_cuda_graphs:
        changes["cuda_graphs"] = False
    return dataclasses.replace(FAST, **changes)


def _barrier(device) -> None:
    synchronize(device)
    if dist.is_initialized():
        dist.barrier()


def speed(args, rank: int, world: int, device) -> dict:
    """Global tokens/s of the fast step, each rank on its own synthetic tokens."""
    options = _options(args, args.micro_batch)
    peak = PeakMemory(device)  # the run's whole need: the model, the optimizer's state, the step
    built = build(options, device, data=synthetic_batches(min(50257, options.model.vocab_size), options.micro_batch, options.model.block_size,
                                                       pinned=device.type == "cuda", seed=rank))
    run = loop_steps(wrap(built.model, device), built.optimizer, built.data, built.loss_fn, device=device,
                     **built.train_kwargs())
    run(args.warmup)
    samples = []
    for _ in range(args.rounds):
        _barrier(device)
        began = time.perf_counter()
        run(args.steps)
        _barrier(device)
        samples.append((time.perf_counter() - began) / args.steps)
    timing = Timing.of(samples)
    tokens = world * options.tokens_per_step
    return {"world_size": world, "micro_batch": options.micro_batch, "ms_per_step": 1e3 * timing.median,
            "ms_low": 1e3 * timing.low, "ms_high": 1e3 * timing.high, "tokens_per_s": tokens / timing.median,
            "peak_memory_mb": peak.mb}


def curve(args, rank: int, world: int, device) -> dict:
    """Train on the same global batches of real text (each rank its slice); checkpoint at the end, or resume from one."""
    from course_lib.lessons.corpus import TokenWindows, encode_texts, pretraining_texts

    options = _options(args, args.global_batch // world)
    _, ids = encode_texts(pretraining_texts(), min(8192, options.model.vocab_size))
    windows = TokenWindows(ids, args.global_batch, options.model.block_size, 0)
    built = build(options, device, data=lambda m: global_batch_slice(windows(m), rank, world),
                  schedule_steps=2 * args.curve_steps, warmup_steps=max(1, args.curve_steps // 10))
    model = wrap(built.model, device)
    history = train(model, built.optimizer, built.data, built.loss_fn, args.until, device=device, checkpoint=args.checkpoint,
                    checkpoint_every=args.until, resume=True, **built.train_kwargs())
    return {"world_size": world, "global_batch": args.global_batch, "loss": history.loss, "step": history.step}


def worker(args) -> None:
    rank, world, device = setup(args.backend)
    try:
        result = (speed if args.worker == "speed" else curve)(args, rank, world, device)
        if rank == 0:
            args.result.write_text(json.dumps(result), encoding="utf-8")
    finally:
        cleanup()


def _torchrun(args, processes: int, options: list[str]) -> dict:
    """One run of this script's worker under torchrun; returns rank 0's result."""
    with tempfile.TemporaryDirectory() as folder:
        result = Path(folder) / "result.json"
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
                   str(Path(__file__).resolve()), "--result", str(result), "--size", args.size, *options]
        if args.backend:
            command += ["--backend", args.backend]
        if args.no_cuda_graphs:
            command.append("--no-cuda-graphs")
        env = child_environment(**NO_MULTICAST, **({"OMP_NUM_THREADS": "1"} if args.backend == "gloo" else {}))
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"torchrun with {processes} process(es) failed:\n{(done.stdout + done.stderr)[-3000:]}")
        return json.loads(result.read_text(encoding="utf-8"))


def driver(args) -> dict:
    n = args.gpus
    common = ["--steps", str(args.steps), "--rounds", str(args.rounds), "--warmup", str(args.warmup)]
    results = {"gpus": n}
    if "speed" in args.parts:
        runs = [_torchrun(args, k, ["--worker", "speed", "--micro-batch", str(args.micro_batch), *common]) for k in sorted({1, n})]
        one, many = runs[0], runs[-1]
        results["speed"] = {"runs": runs, "efficiency": many["tokens_per_s"] / (n * one["tokens_per_s"])}
        print(f"tokens/s: 1 process {one['tokens_per_s']:.0f}, {n} processes {many['tokens_per_s']:.0f}; "
              f"efficiency {100 * results['speed']['efficiency']:.1f} %", flush=True)
    if "curves" in args.parts:
        with tempfile.TemporaryDirectory() as folder:
            ckpt = {k: str(Path(folder) / f"{k}.pt") for k in ("one", "many", "many_on_one")}
            k, g = args.curve_steps, str(args.global_batch)
            one = _torchrun(args, 1, ["--worker", "curve", "--global-batch", g, "--until", str(k), "--checkpoint", ckpt["one"]])
            many = _torchrun(args, n, ["--worker", "curve", "--global-batch", g, "--until", str(k), "--checkpoint", ckpt["many"]])
            shutil.copy(ckpt["many"], ckpt["many_on_one"])
            go_on = _torchrun(args, n, ["--worker", "curve", "--global-batch", g, "--until", str(2 * k), "--checkpoint", ckpt["many"]])
            moved = _torchrun(args, 1, ["--worker", "curve", "--global-batch", g, "--until", str(2 * k),
                                        "--checkpoint", ckpt["many_on_one"]])
        results["curves"] = {
            "steps": k, "global_batch": args.global_batch, "one": one["loss"], "many": many["loss"],
            "resumed_many": go_on["loss"][k:], "resumed_one": moved["loss"][k:],
            "agreement": curve_agreement(one["loss"], many["loss"], window=min(20, k)),
            "resume_agreement": curve_agreement(go_on["loss"][k:], moved["loss"][k:], window=min(20, k)),
        }
        print(f"loss curves, 1 vs {n} processes: {json.dumps(results['curves']['agreement'])}\n"
              f"resumed on {n} vs on 1: {json.dumps(results['curves']['resume_agreement'])}", flush=True)
    return results


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gpus", type=int, default=2, help="processes of the larger run (GPUs, or CPU processes with gloo)")
    parser.add_argument("--parts", default="speed,curves")
    parser.add_argument("--size", choices=sorted(SIZES), default="gpt2")
    parser.add_argument("--backend", default=None, help="nccl (default with CUDA) or gloo")
    parser.add_argument("--micro-batch", type=int, default=12, help="sequences per GPU per step (speed)")
    parser.add_argument("--global-batch", type=int, default=24, help="sequences per step over all processes (curves)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--curve-steps", type=int, default=100, help="steps before the checkpoint, and as many after it")
    parser.add_argument("--no-cuda-graphs", action="store_true")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--worker", choices=("speed", "curve"), help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--until", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    if args.gpus < 1 or args.global_batch % args.gpus:
        parser.error(f"--gpus must be >= 1 and divide --global-batch ({args.global_batch})")
    if unknown := set(args.parts.split(",")) - {"speed", "curves"}:
        parser.error(f"--parts must name speed and/or curves, got {sorted(unknown)}")
    try:
        check_writable(args.out, "--out")  # before the runs, not after them
    except ValueError as error:
        parser.error(str(error))
    began = time.perf_counter()
    results = driver(args)
    device = torch.device("cuda" if args.backend != "gloo" and torch.cuda.is_available() else "cpu")
    results["provenance"] = stored.provenance(
        device, "python benchmarks/ddp_scaling.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        gpus_visible=torch.cuda.device_count(), seconds=round(time.perf_counter() - began), step=dataclasses.asdict(FAST),
        environment=NO_MULTICAST)
    written = write_safely(args.out, lambda f: f.write_text(json.dumps(stored.rounded(results)), encoding="utf-8"))
    print(f"wrote {written}")


if __name__ == "__main__":
    main()
