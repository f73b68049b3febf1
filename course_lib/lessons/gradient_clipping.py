"""Lesson 02's experiments (notebooks/*/02_gradient_clipping): clipping on the toys, global against per-layer, value ranges.

The reader-facing tables are :mod:`course_lib.show.tables`'.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from course_lib.engine._checks import check_choice, check_int, check_number, check_type, shown
from course_lib.engine.clipping import LayerGradNorms, clip_grad_norm_, clip_grad_norm_per_layer_, norm_lost
from course_lib.engine.schedules import linear_with_warmup
from course_lib.engine.stats import Spread, spread
from course_lib.engine.training import History
from course_lib.lessons.finetuning_bert import part_norm
from course_lib.models.toy import body_and_head, train_quadratic

__all__ = ["ClippingStats", "clipping_stats", "SETUPS", "steps_to_target_by_rate", "start_norms", "layer_clipping", "INITS",
           "value_ranges"]


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


SETUPS = ("no_clip", "clip_only", "schedule_only", "clip_and_schedule")


def steps_to_target_by_rate(
    etas, num_steps: int = 100, max_norm: float = 1.0, target: float = 1e-3
) -> dict[float, dict[str, int | None]]:
    """Where clipping speeds the quadratic up and where it slows it down: steps to ``loss < target`` at each peak rate.

    For each rate in ``etas``, the four setups of :data:`SETUPS` (SGD at a
    constant rate; clipping at ``max_norm``; a linear decay of the rate to 0
    over ``num_steps``; both), trained with
    :func:`~course_lib.models.toy.train_quadratic`.  ``None``: the target was
    not reached within ``num_steps``.
    """
    if not isinstance(etas, (tuple, list)) or not etas:
        raise TypeError(f"etas must be a non-empty tuple of peak learning rates, e.g. (0.25, 1.5), got {shown(etas)}")
    for i, eta in enumerate(etas):
        check_number(f"etas[{i}]", eta, "a finite learning rate > 0", lambda v: 0 < v < math.inf)
    check_int("num_steps", num_steps, 1)
    check_number("max_norm", max_norm, "a finite clipping threshold > 0", lambda v: 0 < v < math.inf)
    check_number("target", target, "a finite loss > 0", lambda v: 0 < v < math.inf)
    decay = linear_with_warmup(0, num_steps)
    out = {}
    for eta in etas:
        runs = {
            "no_clip": train_quadratic(eta, num_steps),
            "clip_only": train_quadratic(eta, num_steps, clip=max_norm),
            "schedule_only": train_quadratic(eta, num_steps, schedule=decay),
            "clip_and_schedule": train_quadratic(eta, num_steps, clip=max_norm, schedule=decay),
        }
        out[eta] = {name: clipping_stats(history, target).steps_to_target for name, history in runs.items()}
    return out


def start_norms(results: dict, variant: str = "frozen") -> dict[str, Spread]:
    """Which part carries the gradient at step 0 of lesson 03's stored fine-tuning runs, over their seeds.

    ``results`` is what :func:`course_lib.lessons.finetuning_bert.load_results`
    returns.  Per run of ``variant``, at step 0: the global norm (``total``),
    the classifier head's, the pooler's and the MLP layers' norms (the six
    layers together), the norm of every other trainable part together
    (``rest`` = sqrt(total² - head² - pooler² - mlp²): in the notes' recipe
    the LayerNorms), and the share of the squared global norm each of the four
    carries (``head_share``, ``pooler_share``, ``mlp_share``, ``rest_share``;
    they add up to 1).
    """
    check_type("results", results, dict, "the stored results of lesson 03 (finetuning_bert.load_results())")
    runs = results.get("runs")
    if not isinstance(runs, list):
        raise ValueError(f"results holds no list 'runs' (keys: {sorted(results)}): pass finetuning_bert.load_results()")
    check_choice("variant", variant, tuple(dict.fromkeys(r.get("variant") for r in runs if isinstance(r, dict))),
                 "the variants stored in results")
    rows = []
    for r in runs:
        if r["variant"] != variant:
            continue
        total = r["grad_norm"][0]
        head, pooler, mlp = (part_norm(r, part)[0] for part in ("classifier", "pooler", "mlp"))
        rest = math.sqrt(max(0.0, total**2 - head**2 - pooler**2 - mlp**2))
        norms = {"total": total, "head": head, "pooler": pooler, "mlp": mlp, "rest": rest}
        rows.append({**norms, **{f"{part}_share": (norms[part] / total) ** 2 for part in ("head", "pooler", "mlp", "rest")}})
    return {key: spread([row[key] for row in rows]) for key in rows[0]}


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
