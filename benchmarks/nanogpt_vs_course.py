"""The course's GPT-2 (124M) training step against nanoGPT's, side by side in one process on one GPU.

    git clone https://github.com/karpathy/nanoGPT /tmp/nanoGPT      # brought for the run, never committed
    python benchmarks/nanogpt_vs_course.py --nanogpt /tmp/nanoGPT    # writes course_lib/lessons/results/lesson05_nanogpt.json

Four parts (``--parts``, default all; each part's results go into the same file):

* ``comparison``: nanoGPT's model (``model.py`` of the checkout: GPT-2 124M,
  block 1,024, vocabulary 50,304, no biases, compiled, bf16 autocast, fused
  AdamW) in its two loops, ``train.py``'s (clipping at 1.0, a host read every
  10 steps) and ``bench.py``'s (a ``loss.item()`` every step), against the
  course's step (:mod:`course_lib.models.fast_step`, run by
  :func:`course_lib.engine.training.train` with its loss and gradient-norm records
  and the ``Throughput`` probe, ``log_every=10``), at each micro-batch of
  ``--micro-batches``, one optimizer step per micro-batch (same tokens per
  step for all).  Synthetic tokens from pinned memory for all.
* ``ablation``: the course's step with one option removed at a time
  (:data:`course_lib.models.fast_step.ABLATIONS`), at ``--ablation-batch``.
* ``profile``: where the fast step's GPU time goes, by kind of kernel (PyTorch's profiler), and its idle time.
* ``loss``: the fast step and the plain fp32 step trained on real text from the
  same weights (:func:`course_lib.lessons.optimization_options.loss_curves`).

Timing: every contender is built and warmed up (compiled) first, then
``--rounds`` rounds run each contender for ``--steps`` optimizer steps in
turn, the order turning each round (:func:`course_lib.engine.timing.interleaved`,
CUDA events).  Printed:
median ms/step with the lowest and highest round, tokens/s, peak memory (its
own, measured while it warmed up), MFU (:mod:`course_lib.engine.timing`) and the
ratio to the fastest nanoGPT loop at the same micro-batch.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import torch

from course_lib.engine.callbacks import Throughput
from course_lib.engine.data import pick_device
from course_lib.engine.files import check_writable, write_safely
from course_lib.engine.timing import PeakMemory, Timing, interleaved, loop_steps, mfu, peak_flops, synchronize
from course_lib.lessons import stored
from course_lib.lessons.optimization_options import loss_curves
from course_lib.models.fast_step import ABLATIONS, FAST, FIRST_ROUND, StepOptions, build, synthetic_batches, unavailable
from course_lib.models.gpt import GPTConfig, flops_per_token

OUT = stored.path("05", "nanogpt")
SIZES = {  # n_layer, n_head, n_embd, block_size; "tiny" only checks that the script runs (on a CPU too)
    "gpt2": dict(n_layer=12, n_head=12, n_embd=768, block_size=1024),
    "tiny": dict(n_layer=2, n_head=2, n_embd=64, block_size=64),
}


class Contender:
    """One way to train: ``run(n)`` does ``n`` optimizer steps without waiting for the GPU."""

    def __init__(self, name: str, group: str, micro_batch: int, tokens_per_step: int, flops_per_token: float, run):
        self.name, self.group, self.micro_batch = name, group, micro_batch
        self.tokens_per_step, self.flops_per_token, self.run = tokens_per_step, flops_per_token, run
        self.samples: list[float] = []
        self.peak_mb: float | None = None
        self.error: str | None = None


def load_nanogpt(path: Path):
    """nanoGPT's ``model.py`` from a checkout, imported as a module of its own."""
    spec = importlib.util.spec_from_file_location("nanogpt_model", path / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def nanogpt(module, micro_batch: int, loop: str, device: torch.device, size: dict) -> Contender:
    """nanoGPT's model and optimizer as its train.py sets them up, and one of its two loops."""
    torch.manual_seed(1337)
    config = module.GPTConfig(dropout=0.0, bias=False, **size)  # vocabulary 50,304, nanoGPT's default
    model = module.GPT(config).to(device)
    optimizer = model.configure_optimizers(weight_decay=0.1, learning_rate=6e-4, betas=(0.9, 0.95), device_type=device.type)
    model = torch.compile(model, dynamic=False)
    ctx = torch.autocast(device.type, dtype=torch.bfloat16)
    scaler = torch.amp.GradScaler(device.type, enabled=False)  # train.py: enabled only for float16
    blocks = synthetic_batches(50257, micro_batch, size["block_size"], pinned=device.type == "cuda")
    pin = (lambda t: t.pin_memory()) if device.type == "cuda" else (lambda t: t)
    pool = [(pin(b[:, :-1].contiguous()), pin(b[:, 1:].contiguous())) for b in map(blocks, range(8))]
    state = {"m": 0, "iter": 0}

    def get_batch():  # train.py's: pinned host tensors, non-blocking copies
        x, y = pool[state["m"] % len(pool)]
        state["m"] += 1
        return x.to(device, non_blocking=True), y.to(device, non_blocking=True)

    def get_lr(it, warmup=2000, decay=600000, lr=6e-4, min_lr=6e-5):  # train.py's schedule
        if it < warmup:
            return lr * (it + 1) / (warmup + 1)
        ratio = (it - warmup) / (decay - warmup)
        return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr - min_lr)

    def run_train(n: int) -> None:  # train.py's inner loop, gradient_accumulation_steps = 1, log_interval = 10
        X, Y = get_batch()
        for _ in range(n):
            lr = get_lr(state["iter"])
            for group in optimizer.param_groups:
                group["lr"] = lr
            with ctx:
                logits, loss = model(X, Y)
            X, Y = get_batch()
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            if state["iter"] % 10 == 0:
                loss.item()
            state["iter"] += 1

    def run_bench(n: int) -> None:  # bench.py's loop
        X, Y = get_batch()
        for _ in range(n):
            with ctx:
                logits, loss = model(X, Y)
            X, Y = get_batch()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss.item()

    flops = flops_per_token(GPTConfig(vocab_size=50304, bias=False, **size))
    return Contender(f"nanogpt_{loop}", "nanoGPT", micro_batch, micro_batch * size["block_size"], flops,
                     run_train if loop == "train" else run_bench)


def course(options: StepOptions, device: torch.device, name: str, group: str = "course", probe: bool = True) -> Contender:
    """The course's step, run by the course's loop with its records and (unless ``probe=False``) the Throughput probe.

    A step this machine cannot run as asked (an optional kernel missing) is refused, not timed under its name.
    """
    if missing := unavailable(options, device):
        raise RuntimeError("; ".join(missing.values()))
    built = build(options, device)
    probes = [Throughput(flops_per_token=built.flops_per_token, peak_flops=built.peak_flops)] if probe else []
    run = loop_steps(built.model, built.optimizer, built.data, built.loss_fn, device=device, callbacks=probes,
                     **built.train_kwargs())
    return Contender(name, group, options.micro_batch, options.tokens_per_step, built.flops_per_token, run)


def measure(makers, device: torch.device, *, warmup: int, steps: int, rounds: int, progress=print) -> list[Contender]:
    """Build and warm up each contender (its own peak memory), then time them in interleaved rounds."""
    contenders, cuda = [], device.type == "cuda"
    for make in makers:
        began = time.perf_counter()
        if cuda:
            torch.cuda.empty_cache()
        peak = PeakMemory(device, above_now=True)
        try:
            contender = make()
            contender.run(warmup)
            synchronize(device)
            contender.peak_mb = peak.mb
        except Exception as error:  # a backend missing on this GPU: reported, not fatal
            name = getattr(make, "label", "?")
            progress(f"  {name}: failed: {type(error).__name__}: {str(error).splitlines()[0][:200]}")
            contender = Contender(name, "failed", 0, 0, 0.0, None)
            contender.error = f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
        contenders.append(contender)
        progress(f"  built and warmed up {contender.name} (micro-batch {contender.micro_batch}) in {time.perf_counter() - began:.0f} s")
    built = {i: c for i, c in enumerate(contenders) if c.run is not None}
    seconds = interleaved({i: (lambda c=c: c.run(steps)) for i, c in built.items()}, rounds, device)
    for i, contender in built.items():
        contender.samples = [s / steps for s in seconds[i]]
    return contenders


def summary(contender: Contender, peak: float | None) -> dict:
    if contender.run is None:
        return {"name": contender.name, "error": contender.error}
    timing = Timing.of(contender.samples)
    tokens_per_s = contender.tokens_per_step / timing.median
    return {
        "name": contender.name, "group": contender.group, "micro_batch": contender.micro_batch,
        "tokens_per_step": contender.tokens_per_step, "ms_per_step": 1e3 * timing.median, "ms_low": 1e3 * timing.low,
        "ms_high": 1e3 * timing.high, "rounds": len(contender.samples), "tokens_per_s": tokens_per_s,
        "tokens_per_s_low": contender.tokens_per_step / timing.high, "tokens_per_s_high": contender.tokens_per_step / timing.low,
        "peak_memory_mb": contender.peak_mb, "mfu": mfu(tokens_per_s, contender.flops_per_token, peak),
    }


def labelled(label: str, make):
    make.label = label
    return make


def comparison(args, device, nano) -> dict:
    makers = []
    for b in args.micro_batches:
        makers.append(labelled(f"nanoGPT train.py @{b}", lambda b=b: nanogpt(nano, b, "train", device, args.size)))
        makers.append(labelled(f"nanoGPT bench.py @{b}", lambda b=b: nanogpt(nano, b, "bench", device, args.size)))
        makers.append(labelled(f"course @{b}", lambda b=b: course(dataclasses.replace(args.fast, micro_batch=b), device, "course")))
    rows = [summary(c, peak_flops(device, "bf16"))
            for c in measure(makers, device, warmup=args.warmup, steps=args.steps, rounds=args.rounds)]
    for row in rows:
        same = [r for r in rows if r.get("group") == "nanoGPT" and r.get("micro_batch") == row.get("micro_batch")]
        if same and "tokens_per_s" in row:
            row["vs_nanogpt"] = row["tokens_per_s"] / max(r["tokens_per_s"] for r in same)
    return {"rows": rows, "steps": args.steps, "rounds": args.rounds, "warmup": args.warmup}


def changed(options: StepOptions, change: dict) -> StepOptions:
    """``options`` with ``change``; a ``"model"`` entry (a GPTConfig, or a dict of its fields from --extra) changes the model's sizes."""
    model = change.get("model", options.model)
    model = dataclasses.replace(options.model, **model) if isinstance(model, dict) else model
    return dataclasses.replace(options, **{**change, "model": model})


def as_json(change: dict) -> dict:
    return {k: dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v for k, v in change.items()}


def ablation(args, device) -> dict:
    base = dataclasses.replace(args.fast, micro_batch=args.ablation_batch)
    changes = {**ABLATIONS, **args.extra} if not args.only_extra else {"fast": {}, **args.extra}
    makers = [labelled(name, lambda name=name, change=change: course(changed(base, change), device, name, "ablation"))
              for name, change in changes.items()]
    if args.probe_cost:  # the fast step without the loop's tokens-per-second probe: what the probe costs
        makers.append(labelled("no_probe", lambda: course(base, device, "no_probe", "ablation", probe=False)))
        changes = {**changes, "no_probe": {}}
    rows = [summary(c, peak_flops(device, "bf16"))
            for c in measure(makers, device, warmup=args.warmup, steps=args.steps, rounds=args.rounds)]
    fast = next(r for r in rows if r["name"] == "fast")
    for row in rows:
        if "tokens_per_s" in row:
            row["vs_fast"] = row["tokens_per_s"] / fast["tokens_per_s"]
    return {"micro_batch": args.ablation_batch, "changes": {name: as_json(change) for name, change in changes.items()}, "rows": rows,
            "steps": args.steps, "rounds": args.rounds}


def profile(args, device) -> dict:
    """Where the fast step's time goes: CUDA time per kernel over a few steps, grouped by kind."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    if device.type != "cuda":
        raise SystemExit("the profile part needs a CUDA GPU")
    contender = course(dataclasses.replace(args.fast, micro_batch=args.ablation_batch), device, "fast")
    contender.run(args.warmup)
    synchronize(device)
    steps = 10
    with torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
        contender.run(steps)
        synchronize(device)
    kinds = {"attention": ("sdpa", "flash", "fmha", "attention", "cudnn::"),
             "optimizer": ("multi_tensor_apply", "adam", "foreach"),  # reduce_kernel: 25 calls, the LayerNorms' weight gradients
             "matmul": ("gemm", "cutlass", "nvjet", "cublas", "xmma", "triton_mm"),
             "cross_entropy": ("log_softmax", "nll_loss", "_cce_", "cce_", "liger", "cross_entropy"),  # fused ones include their matmul
             "copies": ("memcpy", "memset")}
    rows, total = [], 0.0
    for event in prof.key_averages():
        ms = getattr(event, "device_time_total", 0.0) / 1e3 / steps
        if ms <= 0:
            continue
        name = event.key
        kind = next((k for k, words in kinds.items() if any(w in name.lower() for w in words)), "fused_other")
        rows.append({"kernel": name[:90], "kind": kind, "ms_per_step": ms, "calls_per_step": event.count / steps})
        total += ms
    rows.sort(key=lambda r: -r["ms_per_step"])
    by_kind = {}
    for r in rows:
        by_kind[r["kind"]] = by_kind.get(r["kind"], 0.0) + r["ms_per_step"]
    synchronize(device)
    began = time.perf_counter()
    contender.run(steps)
    synchronize(device)
    wall = 1e3 * (time.perf_counter() - began) / steps
    return {"micro_batch": args.ablation_batch, "gpu_ms_per_step": total, "wall_ms_per_step": wall, "by_kind": by_kind,
            "top": rows[:25]}


def table(rows: list[dict], ratio: str) -> str:
    lines = [f"{'contender':38s} {'batch':>5s} {'ms/step':>8s} {'(low-high)':>14s} {'tok/s':>9s} {'MFU':>6s} {'peak GB':>8s} {ratio:>8s}"]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['name']:38s} failed: {r['error']}")
            continue
        lines.append(f"{r['name']:38s} {r['micro_batch']:5d} {r['ms_per_step']:8.2f} {r['ms_low']:6.2f}-{r['ms_high']:<7.2f} "
                     f"{r['tokens_per_s'] / 1e3:8.1f}k {100 * (r['mfu'] or 0):5.1f}% {(r['peak_memory_mb'] or 0) / 1024:8.2f} "
                     f"{r.get(ratio, float('nan')):8.3f}")
    return "\n".join(lines)


def _commit(checkout: Path) -> str | None:
    """The nanoGPT commit measured: the checkout's own git HEAD, or a COMMIT file beside its model.py."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        top = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--show-toplevel", "HEAD"], capture_output=True,
                             text=True).stdout.split()
        if len(top) == 2 and Path(top[0]).resolve() == checkout.resolve():  # not a repository that merely holds it
            return top[1]
    file = checkout / "COMMIT"
    return file.read_text().strip() if file.exists() else None


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nanogpt", type=Path, help="a checkout of github.com/karpathy/nanoGPT (its model.py is imported)")
    parser.add_argument("--parts", default="comparison,profile,ablation,loss")
    parser.add_argument("--micro-batches", default="12,32,48", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--ablation-batch", type=int, default=12)
    parser.add_argument("--steps", type=int, default=40, help="optimizer steps per timed round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--loss-steps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=OUT, help="the results file; parts already in it are kept")
    parser.add_argument("--size", choices=sorted(SIZES), default="gpt2")
    parser.add_argument("--extra", type=json.loads, default={}, help='more ablation rows: {"name": {"field": value}}; model sizes as {"name": {"model": {"n_layer": 6}}}')
    parser.add_argument("--only-extra", action="store_true", help="the ablation runs the fast step and --extra only")
    parser.add_argument("--probe-cost", action="store_true", help="the ablation adds the fast step without the Throughput probe")
    parser.add_argument("--base", choices=("fast", "first-round"), default="fast",
                        help="the step to start from: FAST, or FIRST_ROUND (the step before issue 27's levers, as "
                             "lesson05_levers.json measured them: --parts ablation,profile --only-extra --probe-cost "
                             "--extra with fast_step.LEVERS)")
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    base = FAST if args.base == "fast" else FIRST_ROUND
    args.fast = dataclasses.replace(base, model=dataclasses.replace(base.model, **SIZES[args.size]))
    args.size = SIZES[args.size]
    torch._dynamo.config.cache_size_limit = 64  # every contender is its own compiled graph
    parts = args.parts.split(",")
    if unknown := [part for part in parts if part not in ("comparison", "ablation", "profile", "loss")]:
        parser.error(f"unknown part(s) {unknown}: --parts takes comparison, ablation, profile and loss")
    try:
        check_writable(args.out, "--out")  # before the runs, not after them
    except ValueError as error:
        parser.error(str(error))
    try:
        results = json.loads(args.out.read_text(encoding="utf-8")) if args.out.exists() else {}
    except (ValueError, UnicodeDecodeError) as error:
        parser.error(f"--out {str(args.out)!r} holds no results this command can add to ({error}): move it away or pass another --out")
    results.setdefault("provenance", {})
    nano = None
    if "comparison" in parts:
        if args.nanogpt is None:
            parser.error("--nanogpt PATH is needed for the comparison (git clone https://github.com/karpathy/nanoGPT)")
        nano = load_nanogpt(args.nanogpt)
    commit = _commit(args.nanogpt) if args.nanogpt is not None else None
    for part in parts:
        began = time.perf_counter()
        print(f"== {part}", flush=True)
        if part == "comparison":
            results[part] = comparison(args, device, nano)
            print(table(results[part]["rows"], "vs_nanogpt"))
        elif part == "ablation":
            results[part] = ablation(args, device)
            print(table(results[part]["rows"], "vs_fast"))
        elif part == "profile":
            results[part] = profile(args, device)
            print(json.dumps({k: round(v, 3) for k, v in results[part]["by_kind"].items()}),
                  f"kernels {results[part]['gpu_ms_per_step']:.2f} ms, wall {results[part]['wall_ms_per_step']:.2f} ms per step")
            for r in results[part]["top"]:
                print(f"  {r['ms_per_step']:7.3f} ms {r['calls_per_step']:6.1f}x  {r['kind'][:12]:12s} {r['kernel']}")
        elif part == "loss":
            results[part] = loss_curves(args.loss_steps, fast=args.fast, device=device, progress=print)
            print(json.dumps(results[part]["agreement"]))
        results["provenance"][part] = stored.provenance(
            device, "python benchmarks/nanogpt_vs_course.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            nanogpt_commit=commit, seconds=round(time.perf_counter() - began), step=dataclasses.asdict(args.fast))
        written = write_safely(args.out, lambda f: f.write_text(json.dumps(stored.rounded(results)), encoding="utf-8"))
        print(f"wrote {written} ({part}: {time.perf_counter() - began:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
