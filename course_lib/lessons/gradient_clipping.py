"""Lesson 02's experiments (notebooks/*/02_gradient_clipping): clipping on the toys, global against per-layer, value ranges.

The reader-facing tables are :mod:`course_lib.show.tables`'.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from course_lib.engine._checks import check_int, check_number, check_type
from course_lib.engine.clipping import LayerGradNorms, clip_grad_norm_, clip_grad_norm_per_layer_, norm_lost
from course_lib.engine.training import History
from course_lib.models.toy import body_and_head

__all__ = ["ClippingStats", "clipping_stats", "layer_clipping", "INITS", "value_ranges"]


@dataclass(frozen=True)
class ClippingStats:
    final_loss: float
    largest_step: float
    steps_to_target: int | None
    diverged: bool
    norm_lost: float


def clipping_stats(history: History, target: float = 1e-3, blown_up: float = 1e6) -> ClippingStats:
    """Final loss, largest update, first step with loss < ``target``, divergence, and the norm clipping removed."""
    check_type("history", history, History, "a History (what train returns)")
    check_number("target", target, "a finite loss > 0", lambda v: 0 < v < math.inf)
    check_number("blown_up", blown_up, "a finite loss > 0 (above it a run counts as diverged)", lambda v: 0 < v < math.inf)
    if target >= blown_up:
        raise ValueError(f"target ({target}) must be below blown_up ({blown_up}): a run cannot reach a loss it counts as diverged")
    if not history.loss:
        raise ValueError("history holds no step: clipping_stats needs a run of at least one step")
    if not history.metrics.get("update_norm", {}).get("value"):
        raise ValueError(f"history recorded no 'update_norm' (recorded: {sorted(history.metrics)}): train with the "
                         "WeightChange callback, as train_quadratic does")
    reached = next((t for t, loss in enumerate(history.loss) if loss < target), None)
    diverged = any(not math.isfinite(v) or v > blown_up for v in history.loss) or any(history.skipped)
    lost = sum(norm_lost(g, c) for g, c in zip(history.grad_norm, history.threshold) if math.isfinite(g))
    return ClippingStats(history.loss[-1], max(history.metric("update_norm")), reached, diverged, lost)


def layer_clipping(max_norm: float, seed: int = 0) -> dict[str, dict[str, float]]:
    """Global vs per-layer clipping of the same gradients of :func:`~course_lib.models.toy.body_and_head`.

    Per layer: its norm before clipping, after global clipping and after
    per-layer clipping, and the two factors.
    """
    check_int("seed", seed, 0, unit="seed units")
    layers = {"body": r"^0\.", "head": r"^1\."}

    def norms(model):
        return {name: value.item() for name, value in LayerGradNorms(model.named_parameters(), layers)().items()}

    raw = norms(body_and_head(seed))
    model = body_and_head(seed)
    clip_grad_norm_(model.parameters(), max_norm)
    after_global = norms(model)
    model = body_and_head(seed)
    clip_grad_norm_per_layer_({"body": model[0].parameters(), "head": model[1].parameters()}, max_norm)
    after_layer = norms(model)
    return {
        name: {
            "raw": raw[name],
            "after_global": after_global[name],
            "factor_global": after_global[name] / raw[name],
            "after_per_layer": after_layer[name],
            "factor_per_layer": after_layer[name] / raw[name],
        }
        for name in layers
    }


INITS = ("normal", "uniform", "he")


def value_ranges(depth: int = 16, width: int = 128, seed: int = 0) -> dict[tuple[str, bool], dict[str, float]]:
    """How initialization and LayerNorm keep |activations| and |g| in range, in a deep ReLU network.

    For each weight initialization (N(0, 1); PyTorch's default for ``Linear``,
    U(-1/sqrt(n), 1/sqrt(n)); He's N(0, 2/n)) with and without a LayerNorm
    after every linear layer: the RMS of the network's output on a batch of
    standard normal inputs, and the gradient norm of the first layer's weights
    for the loss mean(output^2).  Float32, so a norm can overflow to inf.
    """
    check_int("depth", depth, 1, unit="layers")
    check_int("width", width, 2, unit="units per layer")
    check_int("seed", seed, 0, unit="seed units")
    out = {}
    for init in INITS:
        for norm in (False, True):
            generator = torch.Generator().manual_seed(seed)
            layers = []
            for _ in range(depth):
                linear = torch.nn.Linear(width, width)
                with torch.no_grad():
                    if init == "normal":
                        linear.weight.normal_(0.0, 1.0, generator=generator)
                    elif init == "he":
                        linear.weight.normal_(0.0, math.sqrt(2.0 / width), generator=generator)
                    else:
                        linear.weight.uniform_(-1 / math.sqrt(width), 1 / math.sqrt(width), generator=generator)
                    linear.bias.zero_()
                layers += [linear, torch.nn.LayerNorm(width)] if norm else [linear]
                layers.append(torch.nn.ReLU())
            model = torch.nn.Sequential(*layers)
            output = model(torch.randn(64, width, generator=generator))
            output.pow(2).mean().backward()
            out[(init, norm)] = {
                "output_rms": output.detach().pow(2).mean().sqrt().item(),
                "first_grad_norm": model[0].weight.grad.norm().item(),
            }
    return out
