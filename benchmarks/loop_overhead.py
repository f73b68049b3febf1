"""Overhead of the course's training loop against a minimal plain PyTorch loop.

    python benchmarks/loop_overhead.py [--device cuda] [--sizes 10M 100M] [--rounds 7] [--steps 30]

Trains the same decoder-only transformer on the same token batches three ways:

* ``plain``: forward, backward, ``torch.nn.utils.clip_grad_norm_``, ``optimizer.step()``;
* ``course``: the course's loop (one run set up once by ``course_lib.engine.timing.loop_steps``, then stepped)
  with clipping and ``log_every=10``;
* ``course+probes``: the same with per-layer gradient norms (``GradNorms``) recorded.

Each round runs every variant for ``--steps`` steps, in alternating order,
timed with a synchronisation at both ends; the first round is a warm-up and is
dropped.  Prints the median ms/step over the rounds, the spread (min-max) and
the ratio to the plain loop.  On CUDA both loops use bf16 autocast.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
import torch.nn.functional as F

from course_lib.engine.callbacks import GradNorms
from course_lib.engine.data import pick_device
from course_lib.engine.timing import Timing, loop_steps, synchronize

SIZES = {  # width, layers, heads, vocabulary
    "10M": (256, 8, 4, 8192),
    "100M": (768, 12, 12, 16384),
}


class TinyLM(torch.nn.Module):
    """Token embedding, pre-norm causal transformer layers, tied output projection."""

    def __init__(self, width: int, layers: int, heads: int, vocab: int, length: int):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, width)
        self.position = torch.nn.Parameter(torch.zeros(length, width))
        layer = torch.nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, batch_first=True, norm_first=True)
        self.blocks = torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = torch.nn.LayerNorm(width)
        self.register_buffer("mask", torch.nn.Transformer.generate_square_subsequent_mask(length), persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embed(tokens) + self.position[: tokens.shape[1]]
        h = self.blocks(h, mask=self.mask[: tokens.shape[1], : tokens.shape[1]], is_causal=True)
        return self.norm(h) @ self.embed.weight.T


def lm_loss(model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
    logits = model(batch[:, :-1])
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))


def plain_loop(model, optimizer, batches, device, precision):
    """``run(n)``: ``n`` more steps of the plain loop, the data going on where the last call stopped (as ``loop_steps``)."""
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else torch.autocast(device.type, enabled=False)
    done = 0

    def run(n: int) -> None:
        nonlocal done
        for step in range(done, done + n):
            batch = batches(step).to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            with autocast:
                loss = lm_loss(model, batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        done += n

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds, after one warm-up round")
    parser.add_argument("--steps", type=int, default=30, help="steps per variant per round")
    parser.add_argument("--batch", type=int, default=None, help="sequences per batch (default 32 on CUDA, 4 on the CPU)")
    parser.add_argument("--length", type=int, default=128)
    args = parser.parse_args()
    device = pick_device(args.device)
    precision = "bf16" if device.type == "cuda" else "fp32"
    batch_size = args.batch or (32 if device.type == "cuda" else 4)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    print(f"device: {name}; torch {torch.__version__}; precision {precision}; batch {batch_size}x{args.length} tokens; "
          f"{args.rounds} rounds of {args.steps} steps per variant (+1 warm-up round)")

    for size in args.sizes:
        width, layers, heads, vocab = SIZES[size]
        generator = torch.Generator().manual_seed(0)
        data = torch.randint(vocab, (16, batch_size, args.length + 1), generator=generator).to(device)
        batches = lambda step: data[step % len(data)]

        def build():
            torch.manual_seed(0)
            model = TinyLM(width, layers, heads, vocab, args.length).to(device)
            return model, torch.optim.AdamW(model.parameters(), lr=1e-4)

        runners = {}
        for variant in ("plain", "course", "course+probes"):
            model, optimizer = build()
            if variant == "plain":
                runners[variant] = plain_loop(model, optimizer, batches, device, precision)
            else:
                probes = [GradNorms(model.named_parameters())] if variant == "course+probes" else []
                runners[variant] = loop_steps(model, optimizer, batches, lm_loss, clip=1.0, callbacks=probes,
                                              precision=precision, device=device, log_every=10)
        n_params = sum(p.numel() for p in build()[0].parameters())

        times: dict[str, list[float]] = {v: [] for v in runners}
        for round_ in range(args.rounds + 1):
            order = list(runners) if round_ % 2 == 0 else list(reversed(runners))
            for variant in order:
                synchronize(device)
                began = time.perf_counter()
                runners[variant](args.steps)
                synchronize(device)
                if round_:
                    times[variant].append((time.perf_counter() - began) / args.steps * 1e3)

        timings = {variant: Timing.of(values) for variant, values in times.items()}
        base = timings["plain"].median
        print(f"\n{size} model: {n_params / 1e6:.1f} M parameters ({layers} layers, width {width})")
        print(f"  {'variant':15s} {'median ms/step':>15s} {'min-max':>19s} {'vs plain':>9s}")
        for variant, t in timings.items():
            print(f"  {variant:15s} {t.median:15.2f} {t.low:9.2f}-{t.high:<9.2f} {t.median / base:9.3f}")


if __name__ == "__main__":
    main()
