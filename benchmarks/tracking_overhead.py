"""Cost of per-layer gradient-norm tracking in the course's training loop.

    python benchmarks/tracking_overhead.py [--device cuda] [--steps 60] [--layers 6]

Trains the same small transformer encoder, with the same data, three ways:
without per-layer tracking, with ``course_lib.engine.callbacks.GradNorms`` (one
fused ``torch._foreach_norm`` call per step, read back with the loop's own
read every ``log_every`` steps), and with a naive tracker that calls
``.norm()`` on every parameter tensor and reads each value back.  Each step is
timed by ``StepTimer`` (a synchronisation before and after it).  Prints
the median time per step of each and the ratios to the untracked loop.  The
variants run in alternating order, several rounds, to spread drift evenly.
"""

from __future__ import annotations

import argparse
import re
import statistics

import torch

from course_lib.engine.callbacks import GradNorms, StepTimer
from course_lib.engine.clipping import LayerGradNorms
from course_lib.engine.data import pick_device
from course_lib.engine.training import Callback, train


class NaiveLayerNorms(Callback):
    """The slow way, for contrast: one norm kernel and one host read per parameter tensor."""

    def __init__(self, named_parameters):
        self.named = [(re.sub(r"\.(weight|bias|in_proj_weight|in_proj_bias)$", "", n), p) for n, p in named_parameters]

    def on_after_backward(self, state):
        squares: dict[str, float] = {}
        for layer, param in self.named:
            if param.grad is not None:
                squares[layer] = squares.get(layer, 0.0) + param.grad.norm().item() ** 2
        state.log([f"grad_norm/{layer}" for layer in squares], torch.tensor([value**0.5 for value in squares.values()]))


def make_model(layers: int, width: int) -> torch.nn.Module:
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(width, nhead=8, dim_feedforward=4 * width, batch_first=True, dropout=0.0)
    return torch.nn.Sequential(torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False), torch.nn.Linear(width, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    device = pick_device(args.device)

    generator = torch.Generator().manual_seed(0)
    data = torch.randn(args.steps, args.batch, 64, args.width, generator=generator)
    batches = lambda step: data[step]
    loss_fn = lambda model, x: model(x).pow(2).mean()

    def timed(kind: str) -> float:
        model = make_model(args.layers, args.width).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        probes = {
            "none": [],
            "fused": [GradNorms(model.named_parameters())],
            "naive": [NaiveLayerNorms(model.named_parameters())],
        }[kind]
        history = train(model, optimizer, batches, loss_fn, args.steps, clip=1.0, callbacks=[StepTimer(), *probes], device=device)
        return statistics.median(history.metric("seconds")[5:]) * 1e3

    n_params = sum(p.numel() for p in make_model(args.layers, args.width).parameters())
    n_tensors = len(list(make_model(args.layers, args.width).parameters()))
    n_layers = len(LayerGradNorms(make_model(args.layers, args.width).named_parameters()).layers)
    print(f"device {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else 'CPU'}), torch {torch.__version__}")
    print(f"model: {n_params / 1e6:.2f} M parameters in {n_tensors} tensors, {n_layers} tracked layers; "
          f"{args.steps} steps of batch {args.batch}x64 tokens, {args.rounds} rounds")
    results: dict[str, list[float]] = {"none": [], "fused": [], "naive": []}
    for round_ in range(args.rounds):
        order = list(results) if round_ % 2 == 0 else list(reversed(results))
        for kind in order:
            results[kind].append(timed(kind))
    base = statistics.median(results["none"])
    for kind, label in (("none", "no per-layer tracking"), ("fused", "LayerGradNorms (fused)"), ("naive", "naive .norm().item() loop")):
        value = statistics.median(results[kind])
        print(f"{label:28s} {value:8.3f} ms/step   x{value / base:.3f}   (rounds: {', '.join(f'{v:.3f}' for v in results[kind])})")


if __name__ == "__main__":
    main()
