"""Lesson 05's common mistakes, each measured: small CPU experiments that return plain numbers.

Five mistakes that fill the issue trackers of nanoGPT, transformers,
accelerate and PyTorch, each with the experiment that shows what it costs:

1. :func:`accumulation_normalisation`: gradient accumulation over
   micro-batches of unequal token counts, the mean of the micro-batches' mean
   losses against the sum of the token losses over the total token count;
2. :func:`accumulation_under_ddp`: accumulation under
   ``DistributedDataParallel`` with and without ``model.no_sync()``, counted
   in all-reduces on 2 CPU processes (gloo);
3. :func:`schedule_step_counting`: a learning-rate schedule stepped per
   micro-batch, or declared in micro-batches, against one stepped per
   optimizer step;
4. :func:`fp16_underflow`, :func:`grad_scaler_steps`,
   :func:`clip_before_unscale`: fp16's range, what ``GradScaler`` does, and
   clipping before ``scaler.unscale_``;
5. :func:`mfu_against_peaks`: MFU against the right peak, nanoGPT's A100
   constant and a "with sparsity" peak.

Everything but (2) runs in one process, in about a second or less each (on
one idle CPU core); (2) starts two processes with
:func:`course_lib.lessons.data_parallel.launch` (about 4 s on two cores).  The
experiments that print digits train in float64, so every CPU prints the same.

Run as a script (``python -m course_lib.lessons.training_mistakes --out DIR``,
under torchrun), it is one rank of experiment (2).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
from pathlib import Path

import torch

from course_lib.engine._checks import check_int, check_number, check_type, shown
from course_lib.engine.data import default_dtype
from course_lib.engine.distributed import child_error, cleanup, setup, wrap
from course_lib.engine.files import write_safely
from course_lib.engine.schedules import cosine_with_warmup
from course_lib.engine.timing import mfu, peak_for_name
from course_lib.engine.training import forward_backward
from course_lib.lessons import data_parallel
from course_lib.models.fast_step import FAST
from course_lib.models.gpt import GPT, GPTConfig, flops_per_token, lm_loss

__all__ = [
    "NANOGPT_PEAK",
    "SPARSITY",
    "FLOOR_TOLERANCE",
    "TOKEN_GPT",
    "masked_token_losses",
    "accumulation_normalisation",
    "accumulation_under_ddp",
    "schedule_step_counting",
    "fp16_underflow",
    "grad_scaler_steps",
    "clip_before_unscale",
    "mfu_against_peaks",
    "main",
]

NANOGPT_PEAK = 312e12  # nanoGPT's estimate_mfu: "A100 GPU bfloat16 peak flops is 312 TFLOPS", whatever the GPU
SPARSITY = 2  # data sheets' "with sparsity" peaks are twice the dense ones (2:4 structured sparsity, unused in training)
TOKEN_GPT = GPTConfig(vocab_size=64, block_size=16, n_layer=1, n_head=2, n_embd=16)  # experiment (1)'s model
_FP16_GPT = GPTConfig(vocab_size=256, block_size=32, n_layer=2, n_head=2, n_embd=64)  # experiment (4)'s model


def _relative(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """|a - b| / |b| over all tensors together (the global L2 norm)."""
    difference = math.sqrt(sum(float((x - y).pow(2).sum()) for x, y in zip(a, b)))
    return difference / math.sqrt(sum(float(y.pow(2).sum()) for y in b))


def _gradients(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.grad.detach().clone() for p in model.parameters()]


# ---------------------------------------------------------------------------------------------- (1) the loss of accumulation


def masked_token_losses(model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Next-token cross-entropy of every position of a padded batch ``(tokens (B, T + 1), mask (B, T))``, 0 where masked."""
    tokens, mask = batch
    logits = model(tokens[:, :-1])
    losses = torch.nn.functional.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten(), reduction="none")
    return losses.view_as(mask) * mask


def _padded_batches(lengths: tuple[tuple[int, ...], ...], seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One padded micro-batch per row of ``lengths``: sequences of the given numbers of target tokens, padded to T."""
    generator = torch.Generator().manual_seed(seed)
    T = TOKEN_GPT.block_size
    batches = []
    for row in lengths:
        tokens = torch.randint(TOKEN_GPT.vocab_size, (len(row), T + 1), generator=generator)
        mask = (torch.arange(T) < torch.tensor(row)[:, None]).to(torch.float64)
        batches.append((tokens, mask))
    return batches


def accumulation_normalisation(lengths: tuple[tuple[int, ...], ...] = ((16, 14), (3, 2)), seed: int = 0) -> dict:
    """Accumulate the gradient of one batch over micro-batches of unequal token counts, two ways; compare with the whole batch.

    ``lengths[i]`` lists the real (unpadded) target tokens of micro-batch
    ``i``'s sequences.  The whole batch's loss is the mean over all its real
    tokens, sum(token losses) / N.  Accumulated as the mean of the
    micro-batches' mean losses, each micro-batch weighs 1/k, so a token of
    micro-batch i weighs N / (k n_i) times its share; accumulated as
    sum(token losses of micro-batch i) / N, the sum of the k backward passes
    is the whole batch's gradient.  The course's loop
    (:func:`course_lib.engine.training.forward_backward`) is measured too: a
    ``loss_fn`` that returns a mean gives the mean of means; one that returns
    the pair (sum, count) gives the token mean.

    Returns the token counts, each micro-batch's token weight, both losses
    and the relative difference |g - g_batch| / |g_batch| of each
    accumulated gradient (float64 throughout).
    """
    check_type("lengths", lengths, (tuple, list), "a tuple of micro-batches, each a tuple of sequence lengths in tokens")
    if len(lengths) < 2:
        raise ValueError(f"lengths must hold at least 2 micro-batches, got {shown(lengths)}")
    for i, row in enumerate(lengths):
        check_type(f"lengths[{i}]", row, (tuple, list), "a tuple of sequence lengths in tokens")
        if not row:
            raise ValueError(f"lengths[{i}] is empty: a micro-batch holds at least one sequence")
        for j, n in enumerate(row):
            check_int(f"lengths[{i}][{j}]", n, 1, TOKEN_GPT.block_size, unit="tokens")
    check_int("seed", seed, 0, unit="seed units")
    with default_dtype(torch.float64), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT(TOKEN_GPT)
    batches = _padded_batches(tuple(tuple(row) for row in lengths), seed)
    counts = [int(mask.sum()) for _, mask in batches]
    total, k = sum(counts), len(batches)

    def accumulate(loss_of) -> list[torch.Tensor]:
        model.zero_grad(set_to_none=True)
        for batch in batches:
            loss_of(masked_token_losses(model, batch), batch).backward()
        return _gradients(model)

    whole = (torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches]))  # every micro-batch is padded to T
    model.zero_grad(set_to_none=True)
    batch_loss = masked_token_losses(model, whole).sum() / total
    batch_loss.backward()
    reference = _gradients(model)
    mean_of_means = accumulate(lambda losses, batch: losses.sum() / batch[1].sum() / k)
    token_mean = accumulate(lambda losses, batch: losses.sum() / total)
    with torch.no_grad():
        means = [float(masked_token_losses(model, b).sum() / b[1].sum()) for b in batches]

    def loop(loss_fn) -> list[torch.Tensor]:
        model.zero_grad(set_to_none=True)
        forward_backward(model, batches, loss_fn, precision="fp64")
        return _gradients(model)

    loop_means = loop(lambda m, b: masked_token_losses(m, b).sum() / b[1].sum())
    loop_pairs = loop(lambda m, b: (masked_token_losses(m, b).sum(), b[1].sum()))
    return {
        "tokens": counts,
        "weights": [total / (k * n) for n in counts],
        "loss_token_mean": float(batch_loss.detach()),
        "loss_mean_of_means": sum(means) / k,
        "mean_of_means": _relative(mean_of_means, reference),
        "token_mean": _relative(token_mean, reference),
        "loop_means": _relative(loop_means, reference),
        "loop_pairs": _relative(loop_pairs, reference),
    }


# ---------------------------------------------------------------------------------------------- (2) accumulation under DDP


def _ddp_batches(rank: int, accumulate: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Rank ``rank``'s micro-batches, (inputs, targets) of a small regression, drawn from ``seed`` and the rank."""
    generator = torch.Generator().manual_seed(1000 * seed + rank)
    return [(torch.randn(4, 8, generator=generator, dtype=torch.float64),
             torch.randn(4, 2, generator=generator, dtype=torch.float64)) for _ in range(accumulate)]


def _ddp_model(seed: int) -> torch.nn.Module:
    with default_dtype(torch.float64), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))


def _mse(model: torch.nn.Module, batch) -> torch.Tensor:
    x, y = batch
    return torch.nn.functional.mse_loss(model(x), y)


def _sse(model: torch.nn.Module, batch) -> tuple[torch.Tensor, int]:
    """The pair (sum of squared errors, number of numbers): the loop's form for batches of unequal size."""
    x, y = batch
    return torch.nn.functional.mse_loss(model(x), y, reduction="sum"), y.numel()


def _unequal(batches: list, rank: int) -> list:
    """The rank's micro-batches cut to unequal sizes (rank 0 keeps 4 rows, rank 1 keeps 1, ...): unequal counts per rank."""
    rows = max(1, 4 - 3 * rank)
    return [(x[:rows], y[:rows]) for x, y in batches]


def _rank_main(out: Path, accumulate: int, seed: int) -> None:
    """One rank of :func:`accumulation_under_ddp`: three accumulations, each counted in all-reduces; writes its record."""
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

    rank, world_size, device = setup("gloo")
    try:
        model = _ddp_model(seed)
        ddp = wrap(model, device)
        calls = {"n": 0}

        def counting_hook(state, bucket):
            calls["n"] += 1
            return allreduce_hook(None, bucket)

        ddp.register_comm_hook(None, counting_hook)
        batches = _ddp_batches(rank, accumulate, seed)
        results = {}
        for way in ("no_sync", "every_step", "course_loop"):
            model.zero_grad(set_to_none=True)
            calls["n"] = 0
            if way == "course_loop":
                forward_backward(ddp, batches, _mse, precision="fp64")
            else:
                for i, batch in enumerate(batches):
                    local = way == "no_sync" and i < len(batches) - 1
                    with ddp.no_sync() if local else contextlib.nullcontext():
                        (_mse(ddp, batch) / len(batches)).backward()
            results[way] = {"allreduces": calls["n"], "gradient": [p.grad.tolist() for p in model.parameters()]}
        all_batches = [b for r in range(world_size) for b in _ddp_batches(r, accumulate, seed)]  # every rank's data, here
        model.zero_grad(set_to_none=True)
        (sum(_mse(model, b) for b in all_batches) / len(all_batches)).backward()
        results["one_process"] = {"gradient": [p.grad.tolist() for p in model.parameters()]}
        # Unequal sizes on the ranks: the loop with (sum, count) pairs against one process's mean over every number.
        model.zero_grad(set_to_none=True)
        loss = forward_backward(ddp, _unequal(batches, rank), _sse, precision="fp64")
        results["course_loop_pairs"] = {"gradient": [p.grad.tolist() for p in model.parameters()], "loss": float(loss)}
        unequal = [b for r in range(world_size) for b in _unequal(_ddp_batches(r, accumulate, seed), r)]
        model.zero_grad(set_to_none=True)
        total, count = map(sum, zip(*(_sse(model, b) for b in unequal)))
        (total / count).backward()
        results["one_process_pairs"] = {"gradient": [p.grad.tolist() for p in model.parameters()], "loss": float(total / count)}
        record = {"rank": rank, "world_size": world_size, "accumulate": accumulate, "results": results}
        write_safely(out / f"ddp-rank{rank}.json", lambda file: file.write_text(json.dumps(record), encoding="utf-8"),
                     f"rank {rank}'s record")
    finally:
        cleanup()


def main(argv: list[str] | None = None) -> None:
    """The script of :func:`accumulation_under_ddp`, one rank of it (``torchrun ... -m course_lib.lessons.training_mistakes``)."""
    parser = argparse.ArgumentParser(prog="python -m course_lib.lessons.training_mistakes",
                                     description="Count DDP's all-reduces with and without no_sync (one rank).")
    parser.add_argument("--out", type=Path, required=True, help="folder for each rank's record")
    parser.add_argument("--backend", default="gloo", help="torch.distributed backend (gloo: CPU processes)")
    parser.add_argument("--accumulate", type=int, default=4, help="micro-batches per optimizer step")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the data")
    args = parser.parse_args(argv)
    check_int("--accumulate", args.accumulate, 1, unit="micro-batches per step")
    check_int("--seed", args.seed, 0, unit="seed units")
    if args.backend != "gloo":
        raise ValueError(f"--backend must be gloo (the experiment runs CPU processes), got {args.backend!r}")
    _rank_main(args.out, args.accumulate, args.seed)


def accumulation_under_ddp(folder: str | os.PathLike, accumulate: int = 4, processes: int = 2, seed: int = 0) -> dict:
    """Accumulate ``accumulate`` micro-batches on ``processes`` CPU ranks (gloo, torchrun) three ways; count the all-reduces.

    Each rank holds a small float64 network under ``DistributedDataParallel``
    with a communication hook that counts DDP's all-reduces.  The ways: the
    plain idiom with ``model.no_sync()`` around every micro-batch but the
    last; the same without ``no_sync`` (DDP all-reduces in every backward);
    the course's :func:`course_lib.engine.training.forward_backward`.  Returns
    the all-reduces per optimizer step of each way (rank 0's; every rank
    counts the same), the largest difference between the ways' gradients and
    the gradient one process computes from every rank's data, and whether
    the ranks ended with equal gradients.  ``unequal_pairs_difference``: the
    course's loop with ``(sum, count)`` pairs on ranks holding unequal
    numbers of values, against one process's mean over all of them (the
    gradient's largest difference; ``unequal_pairs_loss_difference``: the
    loss's, which the loop records in float32).
    """
    check_type("folder", folder, (str, os.PathLike), "a folder's path (a str or a Path)")
    check_int("accumulate", accumulate, 1, unit="micro-batches per optimizer step")
    check_int("processes", processes, 2, unit="processes")
    check_int("seed", seed, 0, unit="seed units")
    out = Path(folder)
    process = data_parallel.launch(out, processes, ("--accumulate", str(accumulate), "--seed", str(seed)),
                                   module="course_lib.lessons.training_mistakes")
    output, _ = process.communicate(timeout=300)
    if process.returncode != 0:
        raise RuntimeError(f"the distributed run failed (exit {process.returncode}):\n{child_error(output or '')}")
    ranks = [json.loads((out / f"ddp-rank{r}.json").read_text(encoding="utf-8"))["results"] for r in range(processes)]
    as_tensors = lambda rank, way: [torch.tensor(g, dtype=torch.float64) for g in ranks[rank][way]["gradient"]]
    reference = as_tensors(0, "one_process")
    ways = ("no_sync", "every_step", "course_loop")
    difference = {way: max(float((a - b).abs().max()) for a, b in zip(as_tensors(0, way), reference)) for way in ways}
    same_on_ranks = all(ranks[r][way]["gradient"] == ranks[0][way]["gradient"] for r in range(processes) for way in ways)
    counts = {way: ranks[0][way]["allreduces"] for way in ways}
    if any(ranks[r][way]["allreduces"] != counts[way] for r in range(processes) for way in ways):
        raise RuntimeError(f"the ranks counted different numbers of all-reduces: {[{w: r[w]['allreduces'] for w in ways} for r in ranks]}")
    pairs = max(float((a - b).abs().max()) for a, b in zip(as_tensors(0, "course_loop_pairs"), as_tensors(0, "one_process_pairs")))
    pairs_loss = abs(ranks[0]["course_loop_pairs"]["loss"] - ranks[0]["one_process_pairs"]["loss"])
    return {"accumulate": accumulate, "processes": processes, "allreduces": counts, "max_difference": difference,
            "same_on_ranks": same_on_ranks, "unequal_pairs_difference": pairs, "unequal_pairs_loss_difference": pairs_loss}


# ---------------------------------------------------------------------------------------------- (3) counting the schedule's steps


FLOOR_TOLERANCE = 1e-3  # "at its floor": within 0.1 % of the peak rate above the floor


def _shape(factors: list[float], floor: float) -> dict:
    """Where a curve of rate multipliers peaks (its warm-up ends), first comes within FLOOR_TOLERANCE of its floor after
    that, the highest it climbs back to after that, and where it ends."""
    peak = next((t for t in range(len(factors) - 1) if factors[t + 1] < factors[t]), len(factors) - 1)
    at_floor = next((t for t in range(peak, len(factors)) if factors[t] <= floor + FLOOR_TOLERANCE), None)
    after = factors[at_floor:] if at_floor is not None else []
    return {"warmup_end": peak, "floor_step": at_floor, "final": factors[-1], "max_after_floor": max(after, default=None),
            "factors": factors}


def schedule_step_counting(optimizer_steps: int = 1000, accumulate: int = 4, processes: int = 2, warmup_fraction: float = 0.05,
                           min_lr_ratio: float = 0.1) -> dict:
    """Warm-up + cosine (floor ``min_lr_ratio``) over a run of ``optimizer_steps`` optimizer steps, counted three ways.

    ``right``: declared in optimizer steps, ``scheduler.step()`` once per
    optimizer step.  ``per_micro_batch``: declared right, but stepped after
    every micro-batch, so optimizer step s uses the rate of schedule step
    s·k (k = ``accumulate``).  ``samples_as_steps``: the run's length counted
    as samples / micro-batch (k·P times too many, P = ``processes``), the
    warm-up a fraction of that, stepped per optimizer step.  Pure
    arithmetic with :func:`course_lib.engine.schedules.cosine_with_warmup`.

    Returns, for each way, the optimizer step at which the warm-up ends (the
    rate's first peak), the first step after it at which the rate is at its
    floor (within :data:`FLOOR_TOLERANCE`; None if never), the multiplier at
    the last step, the highest multiplier after the floor, and every step's
    multiplier.
    """
    check_int("optimizer_steps", optimizer_steps, 2)
    check_int("accumulate", accumulate, 1, unit="micro-batches per optimizer step")
    check_int("processes", processes, 1, unit="processes")
    check_number("warmup_fraction", warmup_fraction, "in (0, 1) (the share of the run spent warming up)", lambda v: 0 < v < 1)
    check_number("min_lr_ratio", min_lr_ratio, "in [0, 1) (the floor, as a share of the peak)", lambda v: 0 <= v < 1)
    declared = optimizer_steps * accumulate * processes

    def schedule(steps):
        return cosine_with_warmup(max(1, round(warmup_fraction * steps)), steps, min_lr_ratio=min_lr_ratio)

    right, long = schedule(optimizer_steps), schedule(declared)
    ways = {
        "right": [right(t) for t in range(optimizer_steps)],
        "per_micro_batch": [right(t * accumulate) for t in range(optimizer_steps)],
        "samples_as_steps": [long(t) for t in range(optimizer_steps)],
    }
    return {"optimizer_steps": optimizer_steps, "accumulate": accumulate, "processes": processes, "declared": declared,
            "floor": min_lr_ratio, **{name: _shape(factors, min_lr_ratio) for name, factors in ways.items()}}


# ---------------------------------------------------------------------------------------------- (4) fp16


def _fp16_gradient(model: torch.nn.Module, batch: torch.Tensor, shrink: float, scale: float) -> list[torch.Tensor]:
    """The gradient of loss / ``shrink`` through an fp16 autocast forward and backward with the loss scaled by ``scale``, unscaled."""
    model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.float16):
        loss = lm_loss(model, batch)
    (loss / shrink * scale).backward()
    return [p.grad.detach().to(torch.float64) / scale for p in model.parameters()]


def fp16_underflow(shrinks: tuple[int, ...] = (1, 64, 1024), scale: float = 2.0**16, seed: int = 0) -> dict:
    """How much of a real gradient fp16 loses, without and with loss scaling (an fp16 autocast backward on the CPU).

    A small GPT's gradient of loss / s is computed through a forward and
    backward under ``torch.autocast("cpu", torch.float16)`` (fp32 weights,
    fp16 activations and activation gradients, as on a GPU), and in float64
    as the reference.  Dividing the loss by s stands for a mean over s
    times more tokens: every token's gradient shrinks by s, as in larger
    batches and later in training.  fp16's normal range ends at 2⁻¹⁴ ≈
    6.1e-5 and its smallest number is 2⁻²⁴ ≈ 6e-8: smaller gradient
    entries lose digits, then become 0.  Returns, for each s: the share of
    the reference's non-zero entries that came out 0 and the relative error
    of the gradient, without scaling and with the loss multiplied by
    ``scale`` before the backward (GradScaler's default 2¹⁶), then divided.
    """
    check_type("shrinks", shrinks, (tuple, list), "a tuple of loss divisors s >= 1")
    if not shrinks:
        raise ValueError("shrinks is empty: give at least one loss divisor, e.g. (1, 64)")
    for i, s in enumerate(shrinks):
        check_int(f"shrinks[{i}]", s, 1, unit="(a divisor of the loss)")
    check_number("scale", scale, "a finite number >= 1 (the loss scale)", lambda v: 1 <= v < math.inf)
    check_int("seed", seed, 0, unit="seed units")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT(_FP16_GPT)
    batch = torch.randint(_FP16_GPT.vocab_size, (16, _FP16_GPT.block_size + 1), generator=torch.Generator().manual_seed(seed + 1))
    with default_dtype(torch.float64):
        reference_model = GPT(_FP16_GPT)
    reference_model.load_state_dict({k: v.to(torch.float64) for k, v in model.state_dict().items()})
    lm_loss(reference_model, batch).backward()
    reference = _gradients(reference_model)
    nonzero = sum(int((g != 0).sum()) for g in reference)
    rows = []
    for s in shrinks:
        row = {"shrink": s}
        for name, factor in (("unscaled", 1.0), ("scaled", scale)):
            grads = _fp16_gradient(model, batch, s, factor)
            lost = sum(int(((g == 0) & (r != 0)).sum()) for g, r in zip(grads, reference))
            row[f"lost_{name}"] = lost / nonzero
            row[f"error_{name}"] = _relative([g * s for g in grads], reference)
            row[f"finite_{name}"] = all(bool(torch.isfinite(g).all()) for g in grads)
        rows.append(row)
    return {"rows": rows, "scale": scale, "entries": nonzero,
            "smallest_reference": min(float(g[g != 0].abs().min()) for g in reference if (g != 0).any())}


def grad_scaler_steps(steps: int = 8, init_scale: float = 2.0**24, growth_interval: int = 2, seed: int = 0) -> list[dict]:
    """``torch.amp.GradScaler`` at work: an fp16 autocast training on the CPU that starts with a loss scale far too high.

    Each step: ``scaler.scale(loss).backward()``, ``scaler.step(optimizer)``
    (which unscales, and skips the update when a gradient is inf or NaN),
    ``scaler.update()`` (halves the scale after a skip, doubles it after
    ``growth_interval`` steps without one).  A scaled gradient above fp16's
    largest number, 65,504, becomes inf.  Returns per step: the scale used,
    whether the gradients were finite, and whether the weights moved.
    """
    check_int("steps", steps, 1)
    check_number("init_scale", init_scale, "a finite number > 0", lambda v: 0 < v < math.inf)
    check_int("growth_interval", growth_interval, 1)
    check_int("seed", seed, 0, unit="seed units")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.GELU(), torch.nn.Linear(64, 10))
        x, y = torch.randn(64, 32), torch.randint(10, (64,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=init_scale, growth_interval=growth_interval)
    records = []
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.float16):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        scale = scaler.get_scale()
        scaler.scale(loss).backward()
        finite = all(bool(torch.isfinite(p.grad).all()) for p in model.parameters())
        before = [p.detach().clone() for p in model.parameters()]
        scaler.step(optimizer)
        scaler.update()
        moved = any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
        records.append({"scale": scale, "finite": finite, "moved": moved})
    return records


def clip_before_unscale(scale: float = 2.0**16, max_norm: float = 1.0, lr: float = 0.1, seed: int = 0) -> dict:
    """One SGD step with ``GradScaler`` and clipping, in the right order and with the clipping before ``unscale_``.

    Right: ``scaler.scale(loss).backward(); scaler.unscale_(optimizer);
    clip_grad_norm_(params, max_norm); scaler.step(optimizer)``.  Wrong:
    ``clip_grad_norm_`` on the still-scaled gradients (norm ``scale`` × |g|),
    then ``scaler.step``, which unscales what was clipped: the update's norm
    becomes lr · max_norm / scale instead of lr · min(|g|, max_norm).  A small
    float64 network; returns the raw gradient norm, both updates' norms and
    their ratio.
    """
    check_number("scale", scale, "a finite number >= 1 (the loss scale)", lambda v: 1 <= v < math.inf)
    check_number("max_norm", max_norm, "a finite number > 0", lambda v: 0 < v < math.inf)
    check_number("lr", lr, "a finite number > 0", lambda v: 0 < v < math.inf)
    check_int("seed", seed, 0, unit="seed units")
    updates, norms = {}, {}
    for order in ("right", "wrong"):
        model = _ddp_model(seed)
        x, y = _ddp_batches(0, 1, seed)[0]
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        scaler = torch.amp.GradScaler("cpu", init_scale=scale)
        before = [p.detach().clone() for p in model.parameters()]
        scaler.scale(_mse(model, (x, y))).backward()
        if order == "right":
            scaler.unscale_(optimizer)
        norms[order] = float(torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm))
        scaler.step(optimizer)
        scaler.update()
        updates[order] = math.sqrt(sum(float((p.detach() - b).pow(2).sum()) for p, b in zip(model.parameters(), before)))
    return {"grad_norm": norms["right"], "seen_norm_wrong": norms["wrong"], "update_right": updates["right"],
            "update_wrong": updates["wrong"], "ratio": updates["wrong"] / updates["right"], "scale": scale, "max_norm": max_norm}


# ---------------------------------------------------------------------------------------------- (5) MFU against which peak


def mfu_against_peaks(results: dict | None = None, micro_batch: int = 12) -> dict:
    """MFU of the stored course step on its GPU against three peaks: the GPU's dense bf16 peak, nanoGPT's A100 constant, a sparse peak.

    ``results`` is :func:`course_lib.lessons.optimization_options.load_benchmark`'s
    (loaded when None); the course row at ``micro_batch`` gives tokens/s,
    and :func:`course_lib.models.gpt.flops_per_token` of the fast step's
    GPT-2 the FLOPs per token.  nanoGPT's ``estimate_mfu`` divides by 312
    TFLOP/s, the A100's dense bf16 peak, on any GPU; data sheets also print
    peaks "with sparsity", twice the dense ones, which training does not use.
    """
    if results is None:
        from course_lib.lessons.optimization_options import load_benchmark

        results = load_benchmark()
    check_type("results", results, dict, "the stored benchmark, load_benchmark()'s result")
    check_int("micro_batch", micro_batch, 1, unit="sequences")
    rows = [r for r in results.get("comparison", {}).get("rows", []) if r.get("group") == "course" and r.get("micro_batch") == micro_batch]
    if not rows:
        raise ValueError(f"micro_batch={micro_batch}: results holds no course row at that micro-batch; "
                         f"pass one of {sorted({r.get('micro_batch') for r in results.get('comparison', {}).get('rows', [])})}")
    row = rows[0]
    device = results["provenance"]["comparison"]["device"]
    dense = peak_for_name(device, "bf16")
    if dense is None:
        raise ValueError(f"results were measured on {device!r}, whose peak is not in course_lib.engine.timing.PEAK_FLOPS")
    per_token = flops_per_token(FAST.gpt())
    tokens_per_s = row["tokens_per_s"]
    return {"device": device, "tokens_per_s": tokens_per_s, "flops_per_token": per_token, "ms_per_step": row["ms_per_step"],
            "peak_dense": dense, "peak_nanogpt": NANOGPT_PEAK, "peak_sparse": SPARSITY * dense,
            "mfu_dense": mfu(tokens_per_s, per_token, dense), "mfu_nanogpt": mfu(tokens_per_s, per_token, NANOGPT_PEAK),
            "mfu_sparse": mfu(tokens_per_s, per_token, SPARSITY * dense), "stored_mfu": row.get("mfu")}


if __name__ == "__main__":
    main()
