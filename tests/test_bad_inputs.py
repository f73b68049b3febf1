"""A clear error for every bad input.

One table of cases per module: ``pytest.param(call, error type, text that must appear in the message,
id=...)``; the text names the argument.  Every table is listed in ``TABLES`` at the bottom and
checked by one test; a new module's table is one more list and one more entry there.  Below the
tables, the edge values that must keep working.
"""

import dataclasses
import importlib.util
import math
import os
import re
import tempfile
from pathlib import Path

import matplotlib
import pytest
import torch
from torch.optim.lr_scheduler import StepLR

from course_lib.engine.clipping import (
    LayerGradNorms,
    by_module,
    clip_factor,
    clip_grad_norm_,
    clip_grad_norm_per_layer_,
    clip_grad_value_,
    delayed,
    global_grad_norm,
    global_norm,
    norm_lost,
    threshold_at,
)
from course_lib.i18n import check_language, count, number, number_list, significant, text
from course_lib.show.plotting import (
    plot_clip_directions,
    plot_clipping_runs,
    plot_excess_loss,
    plot_attention_lengths,
    plot_integral_law,
    plot_rates,
)
from course_lib.show.tables import compare_clipping, measured_table
from course_lib.show.report import Table
from course_lib.lessons import pretraining
from course_lib.lessons import data_parallel, finetuning_bert, online, plain, sentiment, targeted_freezing_gpt
from course_lib.lessons.corpus import TextTokenizer, characteristic_tokens, encode_texts
from course_lib.engine.distributed import child_environment, child_error
from course_lib.engine.distributed import setup as distributed_setup
from course_lib.show import exercises, plotting, source
from course_lib.lessons.corpus import TokenWindows, finetuning_text, held_out_blocks, split_held_out, token_share, train_tokenizer
from course_lib.models.fast_step import FAST, build, synthetic_batches
from course_lib.models.gpt import (GPT, MLP, Block, CausalSelfAttention, GPTConfig, flops_per_token, from_hf, generate, lm_loss,
                                   naive_attention, parameter_count, to_hf)
from course_lib.engine.schedules import (
    Constant,
    CosineDecay,
    LinearDecay,
    Schedule,
    ScheduledLR,
    Warmup,
    constant_with_warmup,
    cosine_with_warmup,
    linear_with_warmup,
)
from course_lib.show.widgets import progress_bar
from course_lib.engine.callbacks import DataChecksum, Evaluate, GradNorms, Progress, Throughput, UnfreezeAt, WeightChange
from course_lib.engine.checkpoints import fingerprint, load_checkpoint, save_checkpoint, unwrap
from course_lib.engine.files import check_writable, content_digest, load_verified, save_verified, write_safely
from course_lib.engine.data import at_least_float32, batch_size, checksum, count_tokens, first_tensor, make_loader, pick_device, to_device
from course_lib.show.exercises import check_clip_coefficient, check_mfu, check_optimizer_groups, check_warmup_cosine
from course_lib.engine.stats import spread
from course_lib.lessons.lr_schedules import integral_law_holds_until, paired_difference
from course_lib.engine.freezing import freeze, param_groups, trainable_ratio
from course_lib.models.toy import (QuadraticToy, add_excess_loss, best_loss, body_and_head, expected_loss, train_quadratic,
                                   train_softmax_toy)
from course_lib.engine.training import Callback, History, autocast, forward_backward, train
from course_lib.show.widgets import ScheduleExplorer, explorer_figure, figure_png

matplotlib.use("Agg")


def model_with_grads() -> torch.nn.Module:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    model(torch.randn(5, 3)).sum().backward()
    return model


def optimizer(lr: float = 0.1) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def scheduler_state(schedule: Schedule) -> dict:
    return ScheduledLR(optimizer(), schedule).state_dict()


MODEL = model_with_grads()

SCHEDULES = [
    pytest.param(lambda: linear_with_warmup(True, 10), TypeError, "num_warmup_steps must be an int", id="warmup-steps-bool"),
    pytest.param(lambda: linear_with_warmup(2, 10.0), TypeError, "num_training_steps must be an int", id="training-steps-float"),
    pytest.param(lambda: cosine_with_warmup("2", 10), TypeError, "num_warmup_steps must be an int", id="warmup-steps-str"),
    pytest.param(lambda: Warmup(2.5), TypeError, "num_warmup_steps must be an int", id="Warmup-float"),
    pytest.param(lambda: Warmup(2, then=lambda t: 1.0), TypeError, "then must be a Schedule", id="Warmup-then-function"),
    pytest.param(lambda: constant_with_warmup(-1), ValueError, "num_warmup_steps must be >= 0", id="constant-negative"),
    pytest.param(lambda: LinearDecay(None), TypeError, "num_steps must be an int", id="LinearDecay-None"),
    pytest.param(lambda: LinearDecay(10, min_lr_ratio="0.1"), TypeError, "min_lr_ratio must be a real number", id="ratio-str"),
    pytest.param(lambda: LinearDecay(10, min_lr_ratio=True), TypeError, "min_lr_ratio must be a real number", id="ratio-bool"),
    pytest.param(lambda: cosine_with_warmup(2, 10, min_lr_ratio=math.nan), ValueError, "min_lr_ratio must be in [0, 1]", id="ratio-nan"),
    pytest.param(lambda: cosine_with_warmup(2, 10, num_cycles=True), TypeError, "num_cycles (C) must be a real number", id="cycles-bool"),
    pytest.param(lambda: CosineDecay(10, num_cycles="1"), TypeError, "num_cycles (C) must be a real number", id="cycles-str"),
    pytest.param(lambda: CosineDecay(10, num_cycles=math.nan), ValueError, "num_cycles (C) must be a finite number > 0", id="cycles-nan"),
    pytest.param(lambda: Constant()(2.0), TypeError, "step must be an int", id="step-float"),
    pytest.param(lambda: Constant().lr_at(0, math.nan), ValueError, "eta_max must be > 0", id="eta-max-nan"),
    pytest.param(lambda: Constant().lr_at(0, math.inf), ValueError, "eta_max must be > 0 and finite", id="eta-max-inf"),
    pytest.param(lambda: Constant().lr_at(0, "3e-4"), TypeError, "eta_max must be a real number", id="eta-max-str"),
    pytest.param(lambda: Constant().lrs(0, True), TypeError, "eta_max must be a real number", id="lrs-eta-max-bool"),
    pytest.param(lambda: Constant().lrs(-1, 0.1), ValueError, "num_steps must be >= 0", id="lrs-negative"),
    pytest.param(lambda: ScheduledLR(Constant(), optimizer()), TypeError, "optimizer must be a torch.optim.Optimizer", id="ScheduledLR-swapped"),
    pytest.param(lambda: ScheduledLR(torch.nn.Linear(1, 1), Constant()), TypeError, "optimizer must be", id="ScheduledLR-model"),
    pytest.param(lambda: ScheduledLR(optimizer(), Constant(), last_epoch=2.5), TypeError, "last_epoch must be an int", id="last-epoch-float"),
    pytest.param(lambda: ScheduledLR(optimizer(), Constant(), last_epoch=-2), ValueError, "last_epoch must be >= -1", id="last-epoch-negative"),
    pytest.param(
        lambda: ScheduledLR(optimizer(), Constant()).load_state_dict(StepLR(optimizer(), step_size=3).state_dict()),
        ValueError, "state_dict is not the state of a ScheduledLR", id="load-StepLR-state",
    ),
    pytest.param(
        lambda: ScheduledLR(optimizer(), linear_with_warmup(2, 10)).load_state_dict(scheduler_state(linear_with_warmup(2, 20))),
        ValueError, "state_dict was saved by a ScheduledLR over Warmup(num_warmup_steps=2, then=LinearDecay(num_steps=18",
        id="load-other-schedule",
    ),
    pytest.param(
        lambda: ScheduledLR(optimizer(), Constant()).load_state_dict("checkpoint.pt"),
        TypeError, "state_dict must be the dict returned by ScheduledLR.state_dict()", id="load-path",
    ),
]

CLIPPING = [
    pytest.param(lambda: clip_grad_norm_(MODEL.parameters(), "1.0"), TypeError, "max_norm must be a real number", id="max-norm-str"),
    pytest.param(lambda: clip_grad_norm_(MODEL.parameters(), True), TypeError, "max_norm must be a real number", id="max-norm-bool"),
    pytest.param(lambda: clip_grad_norm_(MODEL.parameters(), None), TypeError, "max_norm must be a real number", id="max-norm-None"),
    pytest.param(lambda: clip_grad_norm_(MODEL.parameters(), -math.inf), ValueError, "max_norm must be > 0", id="max-norm-minus-inf"),
    pytest.param(lambda: clip_grad_norm_(MODEL, 1.0), TypeError, "parameters must be an iterable of tensors", id="norm-of-model"),
    pytest.param(lambda: clip_grad_norm_(MODEL.named_parameters(), 1.0), TypeError, "pass model.parameters()", id="norm-of-named"),
    pytest.param(
        lambda: clip_grad_norm_(MODEL.parameters(), 1.0, error_if_nonfinite="skip"),
        TypeError, "error_if_nonfinite must be True or False", id="error-if-nonfinite-str",
    ),
    pytest.param(lambda: clip_grad_value_(MODEL.parameters(), True), TypeError, "clip_value must be a real number", id="clip-value-bool"),
    pytest.param(lambda: clip_grad_value_(MODEL.parameters(), "0.5"), TypeError, "clip_value must be a real number", id="clip-value-str"),
    pytest.param(lambda: global_grad_norm(None), TypeError, "parameters must be an iterable of tensors", id="global-grad-norm-None"),
    pytest.param(lambda: global_norm([1.0, 2.0]), TypeError, "tensors must be an iterable of tensors", id="global-norm-floats"),
    pytest.param(
        lambda: clip_grad_norm_per_layer_(list(MODEL.parameters()), 1.0),
        TypeError, "layers must be a mapping {layer name: parameters}", id="per-layer-list",
    ),
    pytest.param(
        lambda: clip_grad_norm_per_layer_({"first": MODEL[0].named_parameters()}, 1.0),
        TypeError, "layers['first'] must be an iterable of tensors", id="per-layer-named",
    ),
    pytest.param(lambda: clip_grad_norm_per_layer_({}, 0.0), ValueError, "max_norm must be > 0", id="per-layer-zero"),
    pytest.param(lambda: clip_factor(-1.0, 1.0), ValueError, "norm must be >= 0", id="clip-factor-negative"),
    pytest.param(lambda: clip_factor(math.nan, 1.0), ValueError, "norm must be >= 0", id="clip-factor-nan"),
    pytest.param(lambda: clip_factor(2.0, 0.0), ValueError, "max_norm must be > 0", id="clip-factor-zero-threshold"),
    pytest.param(lambda: norm_lost(math.nan, 1.0), ValueError, "norm must be >= 0", id="norm-lost-nan"),
    pytest.param(lambda: norm_lost("3", 1.0), TypeError, "norm must be a real number", id="norm-lost-str"),
    pytest.param(lambda: norm_lost(3.0, -1.0), ValueError, "max_norm must be > 0", id="norm-lost-negative-threshold"),
    pytest.param(lambda: threshold_at(True, 0), TypeError, "clip must be a real number", id="threshold-bool"),
    pytest.param(lambda: threshold_at("1.0", 0), TypeError, "clip must be a real number", id="threshold-str"),
    pytest.param(lambda: threshold_at(1.0, 2.5), TypeError, "step must be an int", id="threshold-step-float"),
    pytest.param(lambda: threshold_at(lambda t: "1", 0), TypeError, "clipping threshold must be a real number", id="threshold-function-str"),
    pytest.param(lambda: delayed(True, 3), TypeError, "max_norm must be a real number", id="delayed-bool"),
    pytest.param(lambda: delayed(1.0, 2.5), TypeError, "start_step must be an int", id="delayed-start-float"),
    pytest.param(lambda: by_module(0), TypeError, "name must be a parameter name", id="by-module-int"),
    pytest.param(lambda: LayerGradNorms(MODEL.parameters()), TypeError, "pass model.named_parameters()", id="tracker-parameters"),
    pytest.param(lambda: LayerGradNorms(MODEL), TypeError, "named_parameters must be an iterable of (name, tensor) pairs", id="tracker-model"),
    pytest.param(lambda: LayerGradNorms([]), ValueError, "named_parameters is empty", id="tracker-empty"),
    pytest.param(
        lambda: LayerGradNorms(MODEL.named_parameters(), {"first": "[0"}),
        ValueError, "group_by['first'] = '[0' is not a valid regular expression", id="tracker-bad-regex",
    ),
    pytest.param(
        lambda: LayerGradNorms(MODEL.named_parameters(), {"first": r"^0\.", "head": r"^3\."}),
        ValueError, "group_by['head'] = '^3\\\\.' matches no parameter name", id="tracker-pattern-matches-nothing",
    ),
    pytest.param(
        lambda: LayerGradNorms(MODEL.named_parameters(), {"all": ".", "first": r"^0\."}),
        ValueError, "group_by['first']", id="tracker-pattern-shadowed",
    ),
    pytest.param(lambda: LayerGradNorms(MODEL.named_parameters(), {"first": 0}), TypeError, "group_by['first'] must be a regular expression", id="tracker-pattern-int"),
    pytest.param(lambda: LayerGradNorms(MODEL.named_parameters(), "weight"), TypeError, "group_by must be a function", id="tracker-group-by-str"),
]

I18N = [
    pytest.param(lambda: count(1.5, "en"), TypeError, "value must be an int", id="count-float"),
    pytest.param(lambda: count(3, "fr"), ValueError, "fr", id="count-language"),
    pytest.param(lambda: check_language("fr"), ValueError, "lang must be one of 'vi', 'en', got 'fr'", id="lang-unknown"),
    pytest.param(lambda: check_language(None), TypeError, "lang must be one of", id="lang-None"),
    pytest.param(lambda: text("stpe", "en"), KeyError, "no course string named 'stpe'; did you mean 'step'", id="text-unknown-key"),
    pytest.param(lambda: text("cosine", "vi"), KeyError, "text('cosine') needs the field 'cycles'", id="text-missing-field"),
    pytest.param(lambda: text(3, "en"), TypeError, "key must be the name of a course string", id="text-key-int"),
    pytest.param(lambda: number("1.5", "en"), TypeError, "value must be a real number", id="number-str"),
    pytest.param(lambda: number(None, "vi"), TypeError, "value must be a real number", id="number-None"),
    pytest.param(lambda: number(1.5, "en", -1), ValueError, "digits must be >= 0", id="number-digits-negative"),
    pytest.param(lambda: number(1.5, "en", 2.0), TypeError, "digits must be an int", id="number-digits-float"),
    pytest.param(lambda: significant(True, "en"), TypeError, "value must be a real number", id="significant-bool"),
    pytest.param(lambda: significant(1.5, "en", 0), ValueError, "digits must be >= 1 significant digits", id="significant-zero-digits"),
    pytest.param(lambda: significant(1.5, "EN"), ValueError, "lang must be one of", id="significant-lang"),
]

REPORT = [
    pytest.param(lambda: Table(("a", "b"), (("1", 0.5),)), TypeError, "rows[0][1] (column 'b') must be a str", id="table-float-cell"),
    pytest.param(lambda: Table(("a", 2), ()), TypeError, "header[1] must be a str", id="table-int-header"),
    pytest.param(lambda: Table("ab", ()), TypeError, "header must be a tuple of str cells", id="table-header-str"),
    pytest.param(lambda: Table(("a",), ("x",)), TypeError, "rows[0] must be a tuple of str cells", id="table-row-str"),
    pytest.param(lambda: Table(("a",), (("1", "2"),)), ValueError, "rows[0] = ('1', '2') has 2 cells", id="table-row-length"),
    pytest.param(lambda: Table((), ()), ValueError, "header is empty", id="table-no-columns"),
]

PLOTTING = [
    pytest.param(lambda: plot_rates({"a": [0.1]}, "de"), ValueError, "lang must be one of", id="rates-lang"),
    pytest.param(lambda: plot_rates({}, "en"), ValueError, "curves is empty", id="rates-empty"),
    pytest.param(lambda: plot_rates([[0.1, 0.2]], "en"), TypeError, "curves must be a dict", id="rates-list"),
    pytest.param(lambda: plot_rates({"cos": Constant()}, "en"), TypeError, "curves['cos'] must be a list of learning rates", id="rates-schedule"),
    pytest.param(lambda: plot_rates({"a": [0.1]}, "en", ax="left"), TypeError, "ax must be a matplotlib Axes", id="rates-ax-str"),
    pytest.param(lambda: plot_integral_law({}, "en"), ValueError, "runs is empty", id="integral-law-empty"),
    pytest.param(lambda: plot_excess_loss({"a": [1.0]}, "en"), TypeError, "runs['a'] must be a History from train_softmax_toy", id="excess-loss-list"),
    pytest.param(lambda: plot_clip_directions((3.0, 1.0, 2.0), 1.0, "en"), ValueError, "gradient must hold two numbers", id="directions-3d"),
    pytest.param(lambda: plot_clip_directions((3.0, math.nan), 1.0, "en"), ValueError, "gradient[1] must be finite", id="directions-nan"),
    pytest.param(lambda: plot_clip_directions((3.0, 1.0), math.inf, "en"), ValueError, "max_norm must be > 0 and finite", id="directions-inf"),
    pytest.param(lambda: plot_clip_directions((3.0, 1.0), 1.0, "xx"), ValueError, "lang must be one of", id="directions-lang"),
    pytest.param(lambda: plot_clipping_runs({}, "en", []), ValueError, "runs is empty", id="clipping-runs-empty"),
    pytest.param(lambda: plot_clipping_runs({"a": History()}, "en", "a"), TypeError, "show_norms must be a list of run names", id="show-norms-str"),
    pytest.param(lambda: plot_clipping_runs({"a": History()}, "en", ["b"]), ValueError, "show_norms names 'b'", id="show-norms-unknown"),
    pytest.param(lambda: plot_clipping_runs({"a": History()}, "en", []), ValueError, "show_norms is empty", id="show-norms-empty"),
    pytest.param(lambda: plot_rates({"a": []}, "en"), ValueError, "curves['a'] is empty", id="rates-empty-curve"),
    pytest.param(lambda: plot_rates({"a": ["0.1", "0.2"]}, "en"), TypeError, "curves['a'] must be a list of learning rates", id="rates-strings"),
    pytest.param(lambda: plotting.plot_finetune_norms({"grad_norm": [1.0]}, 1.0, "en"), ValueError, "run lacks 'grad_norm_parts'",
                 id="finetune-norms-missing"),
    pytest.param(lambda: plotting.plot_finetune_norms(_NORMS, 0, "en"), ValueError, "clip must be > 0", id="finetune-norms-clip"),
    pytest.param(lambda: plotting.plot_gpt_losses([{**_GPT_RUN, "variant": "frozen"}], "en"), ValueError,
                 "runs[0]['variant'] must be one of 'full', 'targeted', 'reversed'", id="gpt-losses-variant"),
    pytest.param(lambda: plotting.plot_gpt_losses(_GPT_RUN, "en"), TypeError, "runs must be a list of results", id="gpt-losses-one-run"),
    pytest.param(lambda: plotting.plot_loss_scatter({"eval_steps": [], "eval_loss": []}, _GPT_RUN, "en"), ValueError,
                 "a['eval_loss'] is empty", id="scatter-empty"),
    pytest.param(lambda: plotting.plot_weight_changes({"weight_change": {}}, {"weight_change": {"w": [1.0]}}, "en"), ValueError,
                 "run a recorded no weight change of 'w'", id="weight-changes-missing"),
    pytest.param(lambda: plotting.plot_attention_lengths([{"fused_ms": 1.0}], "en"), ValueError, "rows[0] lacks 'length'",
                 id="attention-lengths-row"),
    pytest.param(lambda: plotting.plot_loss_curves([1.0] * 30, [1.0] * 30, "en", window=0), ValueError, "window must be >= 1",
                 id="loss-curves-window"),
    pytest.param(lambda: plotting.plot_loss_curves("1234", "1234", "en"), TypeError, "plain must be the loss per step",
                 id="loss-curves-str"),
]

WIDGETS = [
    pytest.param(lambda: ScheduleExplorer("fr"), ValueError, "lang must be one of", id="explorer-lang"),
    pytest.param(lambda: explorer_figure(50, 10, 0.5, 0.0, "en"), ValueError, "warmup must be in [0, 10]", id="figure-warmup-long"),
    pytest.param(lambda: explorer_figure(2, 10, "0.5", 0.0, "en"), TypeError, "cycles must be a real number", id="figure-cycles-str"),
    pytest.param(lambda: ScheduleExplorer(None), TypeError, "lang must be one of", id="explorer-lang-None"),
    pytest.param(lambda: ScheduleExplorer("en", total=5000), ValueError, "total must be in [20, 1000]", id="explorer-total"),
    pytest.param(lambda: ScheduleExplorer("en", warmup=400), ValueError, "warmup must be in [0, 300]", id="explorer-warmup"),
    pytest.param(lambda: ScheduleExplorer("en", cycles=0.1), ValueError, "cycles must be in [0.25, 4.0]", id="explorer-cycles"),
    pytest.param(lambda: ScheduleExplorer("en", eta_min=True), TypeError, "eta_min must be a real number", id="explorer-eta-min-bool"),
    pytest.param(lambda: explorer_figure(2, 10, 0.5, 2.0, "en"), ValueError, "eta_min must be in [0.0, 1.0]", id="figure-eta-min"),
    pytest.param(lambda: explorer_figure(2, 10, 0.5, 0.0, "en", eta_max=0), ValueError, "eta_max must be > 0", id="figure-eta-max"),
    pytest.param(lambda: explorer_figure(2.5, 10, 0.5, 0.0, "en"), TypeError, "warmup must be an int", id="figure-warmup-float"),
    pytest.param(lambda: explorer_figure(2, 10, 0.5, 0.0, "fr"), ValueError, "lang must be one of", id="figure-lang"),
    pytest.param(lambda: figure_png(None), TypeError, "fig must be a matplotlib Figure", id="figure-png-None"),
]


# ---------------------------------------------------------------------------------------------- training loop and its pieces


def _setup(seed=0, lr=0.05, schedule=None):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    scheduler = ScheduledLR(optimizer, schedule) if schedule is not None else None
    return model, optimizer, scheduler


def _pair() -> dict:
    """A model and its own optimizer, as keyword arguments."""
    model, optimizer, _ = _setup()
    return {"model": model, "optimizer": optimizer}


def _batch(step):
    g = torch.Generator().manual_seed(step)
    return torch.randn(4, 3, generator=g), torch.randn(4, 1, generator=g)


def _mse(model, batch):
    return torch.nn.functional.mse_loss(model(batch[0]), batch[1])


def _train(steps=2, model_opt=None, **kwargs):
    model, optimizer, scheduler = model_opt or _setup()
    kwargs.setdefault("scheduler", scheduler)
    kwargs.setdefault("device", "cpu")
    return train(model, optimizer, kwargs.pop("data", _batch), kwargs.pop("loss_fn", _mse), steps, **kwargs)


_TMP = Path(tempfile.mkdtemp(prefix="course-bad-inputs-"))


def _checkpoint(name, steps=4, schedule=linear_with_warmup(1, 10), optimizer="SGD", width=4):
    """A real checkpoint written by train(), made once per name."""
    path = _TMP / f"{name}.pt"
    if not path.exists():
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(3, width), torch.nn.ReLU(), torch.nn.Linear(width, 1))
        opt = torch.optim.SGD(model.parameters(), lr=0.05) if optimizer == "SGD" else torch.optim.AdamW(model.parameters())
        sched = ScheduledLR(opt, schedule) if schedule is not None else None
        train(model, opt, _batch, _mse, steps, scheduler=sched, device="cpu", checkpoint=path, checkpoint_every=steps)
    return path


def _broken(name, content: bytes | None):
    """A checkpoint file that is empty, truncated (half a real one) or not a checkpoint at all."""
    path = _TMP / f"{name}.pt"
    if content is None:
        content = _checkpoint("whole").read_bytes()[:1000]
    path.write_bytes(content)
    return path


def _resume(path, model_opt=None, steps=6, schedule="default", **kwargs):
    schedule = linear_with_warmup(1, 10) if schedule == "default" else schedule
    model_opt = model_opt or _setup(schedule=schedule)
    return _train(steps, model_opt, checkpoint=path, checkpoint_every=2, resume=True, **kwargs)


def _older_format(name):
    """A real checkpoint relabelled with the format before this one (3: no SHA-256), its digest made afresh."""
    path = _TMP / f"{name}.pt"
    state = load_verified(_checkpoint("whole"))
    state["format"] = 3
    save_verified(state, path)
    return path


def _frozen():
    model, optimizer, _ = _setup()
    model.requires_grad_(False)
    return model, optimizer, None


def _foreign_optimizer():
    model, _, _ = _setup()
    other = torch.nn.Linear(3, 1)
    return model, torch.optim.SGD(other.parameters(), lr=0.1), None


def _head_only_optimizer(frozen_body=False):
    model, _, _ = _setup()
    if frozen_body:
        model[0].requires_grad_(False)
    return model, torch.optim.SGD(model[2].parameters(), lr=0.1), None


class _LogMismatch(Callback):
    def on_step_end(self, state):
        state.log(["a", "b", "c"], torch.zeros(2))


def _step_lr():
    model, optimizer, _ = _setup()
    return model, optimizer, StepLR(optimizer, step_size=2)


def _other_optimizers_scheduler():
    model, optimizer, _ = _setup()
    other = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
    return model, optimizer, ScheduledLR(other, Constant())


_EMPTY_LOADER = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(0, 3), torch.zeros(0, 1)), batch_size=2)
_NAMED = lambda: _setup()[0].named_parameters()
_PLAIN = lambda: _setup()[0].parameters()

TRAINING = [
    pytest.param(lambda: _train(clip="1.0"), TypeError, "clip must be a real number", id="clip-str"),
    pytest.param(lambda: _train(clip=True), TypeError, "clip must be a real number", id="clip-bool"),
    pytest.param(lambda: _train(clip=0.0), ValueError, "clip must be > 0", id="clip-zero"),
    pytest.param(lambda: _train(steps=True), TypeError, "steps must be an int", id="steps-bool"),
    pytest.param(lambda: _train(steps=2.5), TypeError, "steps must be an int", id="steps-float"),
    pytest.param(lambda: _train(steps=0), ValueError, "steps must be >= 1", id="steps-zero"),
    pytest.param(lambda: _train(checkpoint=_TMP / "x.pt", checkpoint_every=True), TypeError, "checkpoint_every must be an int", id="checkpoint-every-bool"),
    pytest.param(lambda: _train(checkpoint=_TMP / "x.pt", checkpoint_every=2.5), TypeError, "checkpoint_every must be an int", id="checkpoint-every-float"),
    pytest.param(lambda: _train(checkpoint=_TMP / "x.pt"), ValueError, "checkpoint_every=0, so nothing would ever be written", id="checkpoint-never-written"),
    pytest.param(lambda: _train(checkpoint_every=3), ValueError, "checkpoint_every=3 needs a checkpoint path", id="checkpoint-every-no-path"),
    pytest.param(lambda: _train(checkpoint=123, checkpoint_every=1), TypeError, "checkpoint must be a file path", id="checkpoint-int"),
    pytest.param(lambda: _train(resume=True), ValueError, "resume=True needs a checkpoint path", id="resume-no-path"),
    pytest.param(lambda: _train(resume="yes"), TypeError, "resume must be True or False", id="resume-str"),
    pytest.param(lambda: _train(model_opt=_foreign_optimizer()), ValueError, "optimizer holds none of the model's parameters", id="optimizer-foreign"),
    pytest.param(lambda: _train(model_opt=_frozen()), ValueError, "model has no trainable parameter", id="model-all-frozen"),
    pytest.param(lambda: _train(model_opt=_head_only_optimizer()), ValueError, "trainable parameter(s) are not in the optimizer", id="optimizer-misses-trainable"),
    pytest.param(lambda: _train(model_opt=_head_only_optimizer(frozen_body=True), callbacks=[UnfreezeAt(1, r"^0\.")]), ValueError,
                 "which the optimizer does not hold", id="unfreeze-outside-optimizer"),
    pytest.param(lambda: _train(callbacks=[_LogMismatch()]), ValueError, "state.log got 3 name(s) for 2 value(s)", id="log-names-values"),
    pytest.param(lambda: _train(model_opt=_setup(lr=math.inf)), ValueError, "learning rate of parameter group 0 is inf", id="lr-inf"),
    pytest.param(lambda: _train(model_opt=_setup(lr=math.nan)), ValueError, "learning rate of parameter group 0 is nan", id="lr-nan"),
    pytest.param(lambda: _train(loss_fn=lambda m, b: _mse(m, b) + math.nan), FloatingPointError, "loss is nan", id="loss-nan-grads-finite"),
    pytest.param(lambda: _train(loss_fn=lambda m, b: 1.0), TypeError, "loss_fn must return a torch.Tensor", id="loss-float"),
    pytest.param(lambda: _train(loss_fn=lambda m, b: m(b[0])), ValueError, "loss_fn must return a single number", id="loss-vector"),
    pytest.param(lambda: _train(loss_fn=lambda m, b: (_mse(m, b), 1, 2)), ValueError, "loss_fn must return a loss tensor or a pair", id="loss-triple"),
    pytest.param(lambda: _train(loss_fn="mse"), TypeError, "loss_fn must be a function", id="loss-fn-str"),
    pytest.param(lambda: _train(data="batches"), TypeError, "data must be a function of the batch index", id="data-str"),
    pytest.param(lambda: _train(data=_EMPTY_LOADER), ValueError, "data is empty", id="data-empty-loader"),
    pytest.param(lambda: _train(data=iter([])), ValueError, "data is empty", id="data-empty-iterator"),
    pytest.param(lambda: _train(steps=3, data=iter([_batch(0)])), ValueError, "data ran out after 1 batches", id="data-runs-out"),
    pytest.param(lambda: _train(precision="fp8"), ValueError, "precision must be one of", id="precision"),
    pytest.param(lambda: _train(precision="fp64"), ValueError, "precision='fp64' needs a model whose weights are float64", id="precision-fp64-float32-model"),
    pytest.param(lambda: _train(on_nonfinite="ignore"), ValueError, "on_nonfinite must be one of 'error', 'skip'", id="on-nonfinite"),
    pytest.param(lambda: _train(accumulate=0), ValueError, "accumulate must be >= 1", id="accumulate-zero"),
    pytest.param(lambda: _train(log_every=0), ValueError, "log_every must be >= 1", id="log-every-zero"),
    pytest.param(lambda: _train(callbacks=GradNorms(_NAMED())), TypeError, "callbacks must be a list of Callback objects", id="callbacks-single"),
    pytest.param(lambda: _train(callbacks=[print]), TypeError, "callbacks must hold Callback objects", id="callbacks-function"),
    pytest.param(lambda: train("model", torch.optim.SGD([torch.zeros(1, requires_grad=True)]), _batch, _mse, 1), TypeError, "model must be a torch.nn.Module", id="model-str"),
    pytest.param(lambda: train(torch.nn.Linear(3, 1), "sgd", _batch, _mse, 1), TypeError, "optimizer must be a torch.optim.Optimizer", id="optimizer-str"),
    pytest.param(lambda: _train(model_opt=_other_optimizers_scheduler()), ValueError, "scheduler was built for another optimizer", id="scheduler-other-optimizer"),
    pytest.param(lambda: _train(device=3), TypeError, "device must be a string", id="device-int"),
    pytest.param(lambda: _train(device="gpu"), ValueError, "device 'gpu' is not a device torch knows", id="device-unknown"),
    pytest.param(lambda: pick_device("cuda"), ValueError, "device='cuda' but this machine has no CUDA GPU", id="device-cuda-missing",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")),
    pytest.param(lambda: _resume(_checkpoint("no-sched-now"), model_opt=_setup()), ValueError, "was saved with a scheduler", id="resume-without-scheduler"),
    pytest.param(lambda: _resume(_checkpoint("beyond", steps=8), steps=6), ValueError, "holds 8 completed steps, more than steps=6", id="resume-beyond-steps"),
    pytest.param(lambda: _resume(_checkpoint("other-schedule"), schedule=cosine_with_warmup(1, 10)), ValueError, "another schedule", id="resume-other-schedule"),
    pytest.param(lambda: _resume(_checkpoint("step-lr"), model_opt=_step_lr()), ValueError, "another scheduler", id="resume-other-torch-scheduler"),
    pytest.param(lambda: _resume(_checkpoint("other-model", width=5)), ValueError, "another model (parameter names and shapes)", id="resume-other-model"),
    pytest.param(lambda: _resume(_checkpoint("other-optimizer", optimizer="AdamW")), ValueError, "another optimizer type: saved 'AdamW', now 'SGD'", id="resume-other-optimizer"),
    pytest.param(lambda: _resume(_checkpoint("no-clip"), clip=1), ValueError, "another clipping threshold (clip): saved None, now '1.0'",
                 id="resume-other-clip"),
    pytest.param(lambda: _resume(_checkpoint("one-micro-batch"), accumulate=2), ValueError,
                 "another accumulate (micro-batches per step): saved 1, now 2", id="resume-other-accumulate"),
    pytest.param(lambda: _resume(_checkpoint("no-callbacks"), callbacks=[DataChecksum()]), ValueError,
                 "holds the states of the callbacks [], but this run passes callbacks that keep state ['DataChecksum[0]']",
                 id="resume-other-callbacks"),
    pytest.param(lambda: _resume(_older_format("format-3")), ValueError, "has format 3, written by another version of course_lib",
                 id="resume-older-format"),
    pytest.param(lambda: _resume(_broken("empty", b"")), ValueError, "cannot be read", id="checkpoint-empty"),
    pytest.param(lambda: _resume(_broken("truncated", None)), ValueError, "cannot be read", id="checkpoint-truncated"),
    pytest.param(lambda: _resume(_broken("corrupt", b"not a checkpoint at all" * 10)), ValueError, "cannot be read", id="checkpoint-corrupt"),
    pytest.param(lambda: load_checkpoint(_broken("foreign", _torch_bytes({"weights": torch.zeros(2)})), **_pair()),
                 ValueError, "carries no SHA-256 of its contents", id="checkpoint-foreign-dict"),
    pytest.param(lambda: load_checkpoint(save_verified({"weights": torch.zeros(2)}, _TMP / "verified-foreign.pt"), **_pair()), ValueError, "is not a course_lib checkpoint", id="checkpoint-foreign-verified"),
    pytest.param(lambda: GradNorms(_PLAIN()), TypeError, "pass model.named_parameters()", id="grad-norms-parameters"),
    pytest.param(lambda: WeightChange(_PLAIN()), TypeError, "pass model.named_parameters()", id="weight-change-parameters"),
    pytest.param(lambda: Evaluate(_batch, every=2), TypeError, "data must be an iterable of batches", id="evaluate-function"),
    pytest.param(lambda: Evaluate([_batch(0)], every=0), ValueError, "every must be >= 1", id="evaluate-every-zero"),
    pytest.param(lambda: _train(callbacks=[Evaluate([], every=1)]), ValueError, "the evaluation data holds no batch", id="evaluate-empty"),
    pytest.param(lambda: Throughput(flops_per_token=-1), ValueError, "flops_per_token must be > 0", id="throughput-flops"),
    pytest.param(lambda: Throughput(peak_flops="1e15"), TypeError, "peak_flops must be a real number", id="throughput-peak-str"),
    pytest.param(lambda: UnfreezeAt(1.5, "0"), TypeError, "step must be an int", id="unfreeze-step-float"),
    pytest.param(lambda: param_groups(torch.nn.Linear(2, 2), -0.1), ValueError, "weight_decay must be >= 0", id="groups-decay-negative"),
    pytest.param(lambda: param_groups(torch.nn.Linear(2, 2), "0.1"), TypeError, "weight_decay must be a real number", id="groups-decay-str"),
    pytest.param(lambda: UnfreezeAt(1, 0), TypeError, "pattern must be a regular expression", id="unfreeze-pattern-int"),
    pytest.param(lambda: _train(callbacks=[UnfreezeAt(0, "^encoder")]), ValueError, "no parameter matches pattern='^encoder'", id="unfreeze-matches-nothing"),
    pytest.param(lambda: freeze(_setup()[0], "(["), ValueError, "is not a valid regular expression", id="freeze-bad-regex"),
    pytest.param(lambda: freeze(_setup()[0], layers="0"), TypeError, "layers must be a non-empty list", id="freeze-layers-str"),
    pytest.param(lambda: freeze(_setup()[0], layers=[]), ValueError, "layers must be a non-empty list", id="freeze-layers-empty"),
    pytest.param(lambda: freeze(_setup()[0], layers=[0.5]), TypeError, "layers[0] must be an int", id="freeze-layers-float"),
    pytest.param(lambda: freeze(_setup()[0], layers=[-1]), ValueError, "layers[0] must be >= 0", id="freeze-layers-negative"),
    pytest.param(lambda: trainable_ratio(torch.nn.ReLU()), ValueError, "model has no parameters", id="ratio-no-parameters"),
    pytest.param(lambda: progress_bar("fr"), ValueError, "lang must be one of", id="progress-lang"),
    pytest.param(lambda: Progress(loss="loss"), TypeError, "loss must be a function", id="progress-loss"),
    pytest.param(lambda: Progress(description=3), TypeError, "description must be a string", id="progress-description"),
    pytest.param(lambda: make_loader([1, 2, 3], batch_size=0), ValueError, "batch_size must be >= 1", id="loader-batch-size"),
    pytest.param(lambda: make_loader([1, 2, 3], batch_size=2, seed=-1), ValueError, "seed must be >= 0", id="loader-seed"),
    pytest.param(lambda: make_loader([1, 2, 3], batch_size=2, seed=1.5), TypeError, "seed must be an int", id="loader-seed-float"),
    pytest.param(lambda: train_softmax_toy(Constant(), 0.1, 10, target_prob=0.4), ValueError, "target_prob must be in (0.5, 1]", id="toy-target-prob"),
    pytest.param(lambda: train_softmax_toy(Constant(), 0.1, 10, target_prob="0.9"), TypeError, "target_prob must be a real number", id="toy-target-prob-str"),
    pytest.param(lambda: train_softmax_toy(Constant(), 0.1, 0), ValueError, "num_steps must be >= 1", id="toy-steps"),
    pytest.param(lambda: spread([]), ValueError, "spread needs at least one value", id="spread-empty"),
    pytest.param(lambda: paired_difference([History()], []), ValueError, "a and b must hold runs of the same seeds", id="paired-unequal"),
    pytest.param(lambda: integral_law_holds_until(History(), tolerance=10), ValueError, "tolerance must be in (0, 1)", id="law-tolerance"),
    pytest.param(lambda: History().metric("w1"), KeyError, "no metric named 'w1'", id="history-metric"),
]


def _small_gpt():
    return GPT(GPTConfig(vocab_size=97, block_size=16, n_layer=2, n_head=2, n_embd=16))


LANGUAGE_MODEL = [
    pytest.param(lambda: GPTConfig(n_embd=10, n_head=3), ValueError, "n_embd (10) must be a multiple of n_head (3)", id="heads"),
    pytest.param(lambda: GPTConfig(n_layer=0), ValueError, "n_layer must be >= 1", id="layers-zero"),
    pytest.param(lambda: GPTConfig(vocab_size=2.0), TypeError, "vocab_size must be an int", id="vocab-float"),
    pytest.param(lambda: GPTConfig(dropout=1.0), ValueError, "dropout must be a probability", id="dropout"),
    pytest.param(lambda: GPTConfig(dropout="0.1"), TypeError, "dropout must be a real number", id="dropout-str"),
    pytest.param(lambda: GPTConfig(bias="no"), TypeError, "bias must be True or False", id="bias-str"),
    pytest.param(lambda: GPT({"n_layer": 2}), TypeError, "config must be a GPTConfig", id="config-dict"),
    pytest.param(lambda: _small_gpt()(torch.zeros(1, 17, dtype=torch.long)), ValueError, "longer than the model's block_size 16", id="too-long"),
    pytest.param(lambda: generate(_small_gpt(), torch.zeros(1, 1, dtype=torch.long), 0), ValueError, "max_new_tokens must be >= 1", id="no-tokens"),
    pytest.param(lambda: generate(_small_gpt(), torch.zeros(1, 1, dtype=torch.long), 3, temperature=0), ValueError, "temperature must be a finite number > 0", id="temperature-zero"),
    pytest.param(lambda: generate(_small_gpt(), torch.zeros(1, 1, dtype=torch.long), 3, top_k=0), ValueError, "top_k must be >= 1", id="top-k-zero"),
    pytest.param(lambda: generate(_small_gpt(), torch.zeros(3, dtype=torch.long), 3), ValueError, "idx must be a non-empty (batch, time) tensor", id="idx-1d"),
    pytest.param(lambda: generate(_small_gpt(), [[1, 2]], 3), TypeError, "idx must be a (batch, time) tensor", id="idx-list"),
    pytest.param(lambda: TokenWindows(torch.arange(5), 2, 10), ValueError, "ids must be a 1-d tensor longer than length + 1", id="windows-short"),
    pytest.param(lambda: TokenWindows(torch.arange(50), 0, 10), ValueError, "batch_size must be >= 1", id="windows-batch"),
    pytest.param(lambda: split_held_out(torch.arange(50), chunk=100), ValueError, "nothing would be held out", id="split-short"),
    pytest.param(lambda: held_out_blocks(torch.arange(5), 10, 2), ValueError, "do not fill one block of 11", id="blocks-short"),
    pytest.param(lambda: token_share(torch.tensor([]), {1}), ValueError, "token_share needs at least one token", id="share-empty"),
    pytest.param(lambda: train_tokenizer("text", 300), TypeError, "texts must be a non-empty list of strings", id="tokenizer-str"),
    pytest.param(lambda: train_tokenizer(["a b"], 100), ValueError, "vocab_size must be >= 257", id="tokenizer-small"),
    pytest.param(lambda: finetuning_text("web"), ValueError, "source must be one of", id="source"),
    pytest.param(lambda: pretraining.cache_path("cpu"), TypeError, "config must be a PretrainConfig", id="cache-config"),
    pytest.param(lambda: pretraining.PretrainConfig("x", precision="fp128"), ValueError, "precision must be one of", id="pretrain-precision"),
    pytest.param(lambda: pretraining.PretrainConfig("x", model=(2048, 64)), TypeError, "model must be a course_lib.models.gpt.GPTConfig", id="pretrain-model"),
    pytest.param(lambda: pretraining.PretrainConfig("x", lr=0), ValueError, "lr must be > 0", id="pretrain-lr"),
    pytest.param(lambda: pretraining.PretrainConfig("x", clip="1"), TypeError, "clip must be a real number", id="pretrain-clip"),
    pytest.param(lambda: flops_per_token({"n_layer": 12}), TypeError, "config must be a GPTConfig", id="flops-config"),
    pytest.param(lambda: flops_per_token(GPTConfig(), 0), ValueError, "sequence_length must be >= 1", id="flops-length"),
]


EXERCISES = [
    pytest.param(lambda: check_clip_coefficient("clip_coefficient", "en"), TypeError, "fn must be the function you wrote", id="fn-str"),
    pytest.param(lambda: check_mfu(0.4, "vi"), TypeError, "fn must be the function you wrote, as in check_mfu(model_flops_utilization, LANG)",
                 id="fn-result-not-function"),
    pytest.param(lambda: check_warmup_cosine(lambda t, w, n: 0.0, "fr"), ValueError, "lang must be one of 'vi', 'en'", id="lang-unknown"),
    pytest.param(lambda: check_optimizer_groups(lambda model, wd: [], None), TypeError, "lang must be one of", id="lang-None"),
    pytest.param(lambda: exercises.hard_restarts_factor(-5, 100, 1), ValueError, "t must be >= 0", id="restarts-negative-step"),
    pytest.param(lambda: exercises.hard_restarts_factor(10, 100, 0), ValueError, "num_cycles must be >= 1", id="restarts-no-cycle"),
    pytest.param(lambda: exercises.hard_restarts_factor(10, 100, 1.5), TypeError, "num_cycles must be an int", id="restarts-cycles-float"),
    pytest.param(lambda: exercises.Verdict("f", "passed", "ok"), ValueError, "status must be one of 'correct'", id="verdict-status"),
]


# ---------------------------------------------------------------------------------------------- lessons 03-05: data, runs, results


def _tokenizer():
    return encode_texts(["the cat sat on the mat", "the dog sat on the log"] * 4, 260)[0]


def _reviews():
    return [sentiment.Review("good", 1, "a"), sentiment.Review("bad", 0, "b"), sentiment.Review("fine", 1, "c")]


def _encoded(**extra):
    return {"input_ids": torch.zeros(3, 8, dtype=torch.long), "labels": torch.tensor([1, 0, 1]), **extra}


def _blocked():
    """A path under a file: no folder can be made there."""
    (_TMP / "blocker").write_text("a file where a folder should be")
    return _TMP / "blocker" / "run"


def _with_environment(name, value, call):
    saved = os.environ.get(name)
    os.environ[name] = value
    try:
        return call()
    finally:
        os.environ.pop(name) if saved is None else os.environ.__setitem__(name, saved)


_NORMS = {"grad_norm": [2.0, 0.5], "grad_norm_parts": {"mlp.0": [1.0, 0.2], "pooler": [0.3, 0.1], "classifier": [1.5, 0.4]},
          "norm_lost": [1.0, 0.0]}
_GPT_RUN = {"variant": "full", "loss": [2.0, 1.5], "eval_steps": [0, 1], "eval_loss": [2.0, 1.6], "p": [0.1, 0.2],
            "weight_change": {"w": [0.1, 0.2]}}
_BERT = dict(steps=4, declared=6, seeds=(0,))

CORPUS = [
    pytest.param(lambda: TextTokenizer.from_json("not json"), ValueError, "text is not a tokenizer's JSON", id="from-json-garbage"),
    pytest.param(lambda: TextTokenizer.from_json(b"{}"), TypeError, "text must be the JSON string", id="from-json-bytes"),
    pytest.param(lambda: TextTokenizer(None, "bpe"), TypeError, "backend must be a tokenizers.Tokenizer", id="tokenizer-backend"),
    pytest.param(lambda: _tokenizer().decode([1.5, 2.0]), TypeError, "ids must be a list of int token ids", id="decode-floats"),
    pytest.param(lambda: _tokenizer().decode([-1]), ValueError, "ids must be token ids >= 0", id="decode-negative"),
    pytest.param(lambda: _tokenizer().decode(torch.rand(3)), TypeError, "ids must hold integer token ids", id="decode-float-tensor"),
    pytest.param(lambda: encode_texts("the cat", 300), TypeError, "texts must be a non-empty list of strings", id="encode-texts-str"),
    pytest.param(lambda: split_held_out(torch.rand(3000)), TypeError, "ids must hold integer token ids", id="split-floats"),
    pytest.param(lambda: split_held_out(torch.zeros(3000, 2, dtype=torch.long)), ValueError, "ids must be 1-d", id="split-2d"),
    pytest.param(lambda: TokenWindows(torch.rand(100), 2, 10), TypeError, "ids must hold integer token ids", id="windows-floats"),
    pytest.param(lambda: TokenWindows(torch.arange(100), 2, 10)(1.5), TypeError, "m must be an int", id="windows-call-float"),
    pytest.param(lambda: TokenWindows(torch.arange(100), 2, 10)(-1), ValueError, "m must be >= 0", id="windows-call-negative"),
    pytest.param(lambda: held_out_blocks(torch.zeros(10, 10, dtype=torch.long), 3, 2), ValueError, "ids must be 1-d", id="blocks-2d"),
    pytest.param(lambda: characteristic_tokens(torch.tensor([], dtype=torch.long), torch.arange(9), 3), ValueError,
                 "target holds no token", id="characteristic-empty"),
    pytest.param(lambda: token_share(torch.arange(10), {1.5}), TypeError, "S must be a set of int token ids", id="share-float-ids"),
    pytest.param(lambda: token_share(torch.arange(10), None), TypeError, "S must be a set of int token ids", id="share-S-None"),
    pytest.param(lambda: token_share(torch.rand(5), {1}), TypeError, "tokens must hold integer token ids", id="share-float-tokens"),
]

SENTIMENT = [
    pytest.param(lambda: sentiment.Review("good", 5, "a"), ValueError, "label must be one of 0, 1", id="review-label"),
    pytest.param(lambda: sentiment.Review("good", "1", "a"), TypeError, "label must be 1 (positive) or 0", id="review-label-str"),
    pytest.param(lambda: sentiment.Review(None, 1, "a"), TypeError, "text must be the review's text", id="review-text-None"),
    pytest.param(lambda: sentiment.split_by_movie("reviews"), TypeError, "reviews must be a list of Review", id="split-str"),
    pytest.param(lambda: sentiment.split_by_movie([]), ValueError, "reviews is empty", id="split-empty"),
    pytest.param(lambda: sentiment.split_by_movie(_reviews(), (math.nan, 0.5, 0.5)), ValueError, "fractions[0] must be > 0", id="split-nan"),
    pytest.param(lambda: sentiment.split_by_movie(_reviews(), None), TypeError, "fractions must be three numbers", id="split-fractions-None"),
    pytest.param(lambda: sentiment.majority_baseline([1, 0], [1]), TypeError, "train must be a list of Review", id="baseline-ints"),
    pytest.param(lambda: sentiment.encode(["good"], None, 16), TypeError, "reviews must be a list of Review", id="encode-strings"),
    pytest.param(lambda: sentiment.encode(_reviews(), None, 16), TypeError, "tokenizer must be the tokenizer", id="encode-tokenizer"),
    pytest.param(lambda: sentiment.load_classifier(seed="0"), TypeError, "seed must be an int", id="classifier-seed-str"),
    pytest.param(lambda: sentiment.ReviewBatches({"input_ids": torch.zeros(3, 2)}, 2), ValueError, "with 'labels'", id="batches-no-labels"),
    pytest.param(lambda: sentiment.ReviewBatches(_encoded(input_ids=torch.zeros(2, 8)), 2), ValueError,
                 "encoded's tensors must hold one row per review", id="batches-rows"),
    pytest.param(lambda: sentiment.ReviewBatches(_encoded(), 2, seed="0"), TypeError, "seed must be an int", id="batches-seed-str"),
    pytest.param(lambda: sentiment.ReviewBatches(_encoded(), 2)(1.5), TypeError, "m must be an int", id="batches-call-float"),
    pytest.param(lambda: sentiment.ReviewBatches(_encoded(), 2).chunks(0), ValueError, "size must be >= 1", id="chunks-zero"),
]

FINETUNING = [
    pytest.param(lambda: finetuning_bert.load_results("tpu"), ValueError, "name must be one of 'cpu', 'gpu', 'gpu_sgd'", id="load-unknown"),
    pytest.param(lambda: finetuning_bert.Config("x", **{**_BERT, "steps": 0}), ValueError, "steps must be >= 1", id="config-steps"),
    pytest.param(lambda: finetuning_bert.Config("x", **_BERT, variants=("bogus",)), ValueError,
                 "variants[0] must be one of 'frozen', 'full'", id="config-variant"),
    pytest.param(lambda: finetuning_bert.Config("x", **{**_BERT, "seeds": ()}), TypeError, "seeds must be a non-empty tuple",
                 id="config-no-seeds"),
    pytest.param(lambda: finetuning_bert.Config("x", **_BERT, source="web"), ValueError, "source must be one of", id="config-source"),
    pytest.param(lambda: finetuning_bert.Config("x", **_BERT, warmup_fraction=2), ValueError, "warmup_fraction must be in [0.0, 1.0]",
                 id="config-warmup"),
    pytest.param(lambda: finetuning_bert.run("cpu", "frozen", 0), TypeError, "config must be a finetuning_bert.Config", id="run-config-name"),
    pytest.param(lambda: finetuning_bert.summarize({"runs": []}), ValueError, "results must hold a non-empty list of runs", id="summarize-empty"),
    pytest.param(lambda: finetuning_bert.norm_summary({**_NORMS, "grad_norm": [], "clipped_fraction": 0.0}, 1.0), ValueError,
                 "result['grad_norm'] is empty", id="norm-summary-empty"),
    pytest.param(lambda: finetuning_bert.clipping_effect(_NORMS, -1.0), ValueError, "clip must be > 0", id="effect-clip-negative"),
    pytest.param(lambda: finetuning_bert.clipping_effect(_NORMS, 1.0, -5), ValueError, "start must be >= 0", id="effect-start-negative"),
]

TARGETED_FREEZING = [
    pytest.param(lambda: targeted_freezing_gpt.load_results("tpu"), ValueError, "name must be one of 'cpu', 'online-cpu', 'gpu'",
                 id="load-unknown"),
    pytest.param(lambda: targeted_freezing_gpt.Config("x", variants=("none",)), ValueError,
                 "variants[0] must be one of 'full', 'targeted', 'reversed'", id="config-recipe"),
    pytest.param(lambda: targeted_freezing_gpt.Config("x", source="web"), ValueError, "source must be one of", id="config-source"),
    pytest.param(lambda: targeted_freezing_gpt.Config("x", warmup=200), ValueError, "warmup must be in [0, 120]", id="config-warmup"),
    pytest.param(lambda: targeted_freezing_gpt.Config("x", temperature=0), ValueError, "temperature must be a finite number > 0",
                 id="config-temperature"),
    pytest.param(lambda: targeted_freezing_gpt.setup(targeted_freezing_gpt.Config("x", pretrain="tpu")), ValueError,
                 "config.pretrain must be one of 'cpu', 'gpu'", id="setup-pretrain"),
    pytest.param(lambda: targeted_freezing_gpt.setup("cpu", lang="en"), TypeError, "config must be a targeted_freezing_gpt.Config",
                 id="setup-config-name"),
    pytest.param(lambda: targeted_freezing_gpt.prepare("setup", "full"), TypeError, "s must be the Setup", id="prepare-setup"),
    pytest.param(lambda: targeted_freezing_gpt.flop_saving(torch.nn.ReLU()), TypeError, "model must be a course_lib.models.gpt.GPT",
                 id="flop-saving"),
    pytest.param(lambda: targeted_freezing_gpt.curve_gap(_GPT_RUN, {"eval_loss": [2.0]}), ValueError,
                 "a and c must be evaluated equally often", id="curve-gap-lengths"),
    pytest.param(lambda: targeted_freezing_gpt.curve_gap({"eval_loss": []}, {"eval_loss": []}), ValueError, "a['eval_loss'] is empty",
                 id="curve-gap-empty"),
    pytest.param(lambda: targeted_freezing_gpt.weight_change_ratio({"weight_change": {}}, _GPT_RUN), ValueError,
                 "a recorded no weight change of 'w'", id="change-ratio-missing"),
    pytest.param(lambda: targeted_freezing_gpt.p_summary([], _GPT_RUN, _GPT_RUN), ValueError, "p_before is empty", id="p-summary-empty"),
    pytest.param(lambda: targeted_freezing_gpt.summarize({"runs": []}), ValueError, "results must hold a non-empty list of runs",
                 id="summarize-empty"),
    pytest.param(lambda: targeted_freezing_gpt.probe_cost(targeted_freezing_gpt.CONFIGS["cpu"], steps=3), ValueError, "steps must be >= 4",
                 id="probe-cost-steps"),
    pytest.param(lambda: targeted_freezing_gpt.noise_variance("1.0 0.5"), TypeError, "losses must be a list of losses", id="noise-str"),
]

DISTRIBUTED = [
    pytest.param(lambda: distributed_setup("bogus"), ValueError, "backend must be one of 'gloo', 'nccl'", id="setup-backend-unknown"),
    pytest.param(lambda: child_environment(OMP_NUM_THREADS=1), TypeError, "OMP_NUM_THREADS must be a string", id="child-environment-int"),
    pytest.param(lambda: child_error(None), TypeError, "output must be the text a launched process printed", id="child-error-None"),
    pytest.param(lambda: data_parallel.main(["--out", str(_blocked())]), ValueError, "--out", id="main-out-under-a-file"),
    pytest.param(lambda: data_parallel.launch(_blocked(), 2), ValueError, "is a file, not a folder", id="launch-out-under-a-file"),
    pytest.param(lambda: data_parallel.main(["--out", str(_TMP / "dp"), "--lr", "-1"]), ValueError, "--lr must be > 0", id="main-lr"),
    pytest.param(lambda: data_parallel.main(["--out", str(_TMP / "dp"), "--freeze", "."]), ValueError,
                 "--freeze '.' matches every parameter", id="main-freeze-all"),
    pytest.param(lambda: data_parallel.launch(_TMP / "dp", 1, "--steps 3"), TypeError, "options must be a tuple", id="launch-options-str"),
    pytest.param(lambda: data_parallel.compare_processes(_TMP / "dp", 2, 0), ValueError, "steps must be >= 1", id="compare-steps"),
    pytest.param(lambda: data_parallel.collect(None, _TMP / "dp", 1), TypeError, "process must be the process that launch() returned",
                 id="collect-process"),
]

ONLINE = [
    pytest.param(lambda: online.download_text("x", "file:///etc/hostname"), ValueError, "url must be an http:// or https:// address",
                 id="download-file-url"),
    pytest.param(lambda: online.download_text("x", "http://localhost/", timeout=0), ValueError, "timeout must be > 0", id="download-timeout"),
    pytest.param(lambda: online.hub(3), TypeError, "what must be a model's name", id="hub-what-int"),
    pytest.param(lambda: online.unreachable_reason("no network"), TypeError, "error must be an exception", id="reason-str"),
    pytest.param(lambda: _with_environment("HF_HUB_OFFLINE", "offline", online.hub_offline), ValueError,
                 "environment variable HF_HUB_OFFLINE must be 1", id="hub-offline-word"),
]

PLAIN = [
    pytest.param(lambda: plain.plain_history([0.1], [[0.0, 0.0], [0.1, -0.1]], 2.0), ValueError, "target_prob must be in (0.5, 1]",
                 id="history-target-prob"),
    pytest.param(lambda: plain.plain_history("0.1", [[0.0, 0.0]]), TypeError, "rates must be the list of learning rates", id="history-rates-str"),
    pytest.param(lambda: plain.plain_history([0.1], [0.0, 0.1]), TypeError, "weights must be the list of weights (w1, w2)",
                 id="history-weights-flat"),
]


def _outside_parameter():
    model, _, _ = _setup()
    return model, torch.optim.SGD([*model.parameters(), torch.nn.Parameter(torch.ones(()))], lr=0.1), None


_DATASET = torch.utils.data.TensorDataset(torch.zeros(4, 3), torch.zeros(4, 1))

def _malformed(name, change):
    """A real checkpoint with ``change(state)`` applied and its SHA-256 made afresh: it passes the digest, not the layout."""
    state = load_verified(_checkpoint("whole"))
    change(state)
    path = _TMP / f"{name}.pt"
    path.unlink(missing_ok=True)
    save_verified(state, path)
    return path


def _quadratic_run():
    return train_quadratic(0.1, 3)


def _sampled_loader(sampler):
    return torch.utils.data.DataLoader(_DATASET, batch_size=2, sampler=sampler)


def _other_scheduler():
    model, optimizer, _ = _setup()
    other = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=0.1)
    return {"model": model, "optimizer": optimizer, "scheduler": ScheduledLR(other, linear_with_warmup(1, 10))}


def _float32_batch(step):
    return torch.ones(2, 3, dtype=torch.float32), torch.ones(2, 1, dtype=torch.float64)


def _fp64_setup():
    with torch.random.fork_rng():
        model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)).double()
    return model, torch.optim.SGD(model.parameters(), lr=0.1), None


ENGINE = [
    pytest.param(lambda: _train(model_opt=_outside_parameter()), ValueError, "optimizer holds 1 parameter(s) that are not the model's",
                 id="train-parameter-outside-the-model"),
    pytest.param(lambda: _train(checkpoint=_file_in_the_way("ckpt-file") / "run.pt", checkpoint_every=2), ValueError, "checkpoint '", id="train-checkpoint-unwritable"),
    pytest.param(lambda: _train(checkpoint=_TMP, checkpoint_every=2), ValueError, "is a folder", id="train-checkpoint-is-a-folder"),
    pytest.param(lambda: _train(checkpoint=_checkpoint("taken"), checkpoint_every=2), ValueError, "resume=False would overwrite it",
                 id="train-checkpoint-of-another-run"),
    pytest.param(lambda: _train(data=torch.utils.data.DataLoader(_DATASET, batch_size=2, shuffle=True), checkpoint=_TMP / "shuffled.pt",
                                checkpoint_every=2), ValueError, "shuffle=True", id="train-checkpoint-over-a-shuffled-loader"),
    pytest.param(lambda: _train(callbacks=[UnfreezeAt(100, "0")]), ValueError, "UnfreezeAt(100, '0') would never unfreeze: the run has steps=",
                 id="unfreeze-after-the-run"),
    pytest.param(lambda: Evaluate((b for b in [_batch(0)]), every=1), TypeError, "data must be re-readable", id="evaluate-generator"),
    pytest.param(lambda: Evaluate([_batch(0)], every=1, metrics="accuracy"), TypeError, "metrics must be a function", id="evaluate-metrics-str"),
    pytest.param(lambda: _train(callbacks=[Evaluate([_batch(0)], every=1, metrics=lambda m, b: 0.5)]), TypeError,
                 "metrics(model, batch) must return a dict", id="evaluate-metrics-returns-number"),
    pytest.param(lambda: WeightChange(_NAMED(), per_matrix="no"), TypeError, "per_matrix must be True or False", id="weight-change-per-matrix-str"),
    pytest.param(lambda: _train(callbacks=[Throughput(tokens=lambda b: -5)]), ValueError, "tokens(batch) must return an int >= 0",
                 id="throughput-negative-tokens"),
    pytest.param(lambda: _train(callbacks=[Throughput(tokens=lambda b: "5")]), TypeError, "tokens(batch) must return an int >= 0", id="throughput-str-tokens"),
    pytest.param(lambda: make_loader(_DATASET, 2, shuffle="no"), TypeError, "shuffle must be True or False", id="loader-shuffle-str"),
    pytest.param(lambda: make_loader(_DATASET, 2, drop_last=1), TypeError, "drop_last must be True or False", id="loader-drop-last-int"),
    pytest.param(lambda: make_loader(_DATASET, 2, num_workers=-1), ValueError, "num_workers must be >= 0", id="loader-workers-negative"),
    pytest.param(lambda: make_loader([1, 2, 3].__iter__(), 2), TypeError, "dataset must be a map-style dataset", id="loader-iterator-dataset"),
    pytest.param(lambda: make_loader(_DATASET, 2, collate_fn="stack"), TypeError, "collate_fn must be a function", id="loader-collate-str"),
    pytest.param(lambda: count_tokens(["raw text"]), TypeError, "batch holds no tensor to count tokens in", id="count-tokens-of-text"),
    pytest.param(lambda: batch_size(None), TypeError, "batch holds no tensor whose first dimension counts examples", id="batch-size-None"),
    pytest.param(lambda: first_tensor({"x": torch.zeros(2)}, prefer=0), TypeError, "prefer must be a key of the batch", id="first-tensor-prefer-int"),
    pytest.param(lambda: checksum(3), TypeError, "value must be a model, a state dict or a list of tensors", id="checksum-int"),
    pytest.param(lambda: checksum(torch.zeros(3)), TypeError, "value must be a model", id="checksum-bare-tensor"),
    pytest.param(lambda: to_device(torch.zeros(2), "gpu"), ValueError, "device 'gpu' is not a device torch knows", id="to-device-unknown"),
    pytest.param(lambda: at_least_float32([1.0]), TypeError, "tensor must be a torch.Tensor", id="at-least-float32-list"),
    pytest.param(lambda: forward_backward(_setup()[0], _batch(0), _mse), TypeError, "micro_batches must be a non-empty list", id="forward-backward-tuple"),
    pytest.param(lambda: forward_backward(_setup()[0], [], _mse), TypeError, "micro_batches must be a non-empty list", id="forward-backward-empty"),
    pytest.param(lambda: autocast(torch.device("cpu"), "fp8"), ValueError, "precision must be one of 'fp32', 'bf16', 'fp16', 'fp64'", id="autocast-fp8"),
    pytest.param(lambda: param_groups(_setup()[0], math.inf), ValueError, "weight_decay must be >= 0 and finite", id="param-groups-inf"),
    pytest.param(lambda: save_checkpoint(_TMP / "s.pt", **_pair(), scheduler=None, step=-1, history={}),
                 ValueError, "step must be >= 0", id="save-negative-step"),
    pytest.param(lambda: save_checkpoint(_TMP / "s.pt", **_pair(), scheduler=None, step=1, history=[]),
                 TypeError, "history must be the history's state dict", id="save-history-list"),
    pytest.param(lambda: load_checkpoint(_checkpoint("whole"), model="model", optimizer=_setup()[1]), TypeError, "model must be a torch.nn.Module",
                 id="load-model-str"),
    pytest.param(lambda: clip_grad_value_([_nan_grad()], 1.0), FloatingPointError, "some gradient holds NaN or inf, which clamping would hide",
                 id="clip-value-nan"),
    pytest.param(lambda: clip_grad_value_(MODEL.parameters(), 1.0, error_if_nonfinite="no"), TypeError, "error_if_nonfinite must be True or False",
                 id="clip-value-flag-str"),
    pytest.param(lambda: check_writable(_file_in_the_way("out-file") / "r.json", "--out"), ValueError, "--out '", id="check-writable-file-in-the-way"),
    pytest.param(lambda: check_writable(None, "--out"), TypeError, "--out must be a file path", id="check-writable-None"),
    pytest.param(lambda: load_verified(_checkpoint("whole").with_name("missing.pt")), FileNotFoundError, "missing.pt", id="load-verified-missing"),
    pytest.param(lambda: _train(data={"a": _batch(0)}), TypeError, "which iterates over its keys", id="train-data-dict"),
    pytest.param(lambda: _train(loss_fn=lambda m, b: (_mse(m, b), torch.tensor(0))), ValueError, "loss_fn's counts add up to", id="train-count-tensor-zero"),
    pytest.param(lambda: _train(loss_fn=lambda m, b: (_mse(m, b), "2")), TypeError, "loss_fn's count (the second of its pair", id="train-count-str"),
    pytest.param(lambda: _train(loss_fn=lambda m, b: (_mse(m, b), None)), TypeError, "loss_fn's count", id="train-count-None"),
    pytest.param(lambda: _train(clip=lambda: 1.0), TypeError, "clip must be a number, None or a function of the step", id="train-clip-no-step"),
    pytest.param(lambda: _train(model_opt=_fp64_setup(), data=_float32_batch, precision="fp64"), ValueError,
                 "precision='fp64' trains float64 weights, but the batch holds torch.float32 inputs", id="train-fp64-float32-data"),
    pytest.param(lambda: _train(model_opt=(lambda mo: (mo[0], mo[1], mo[1]))(_setup())), TypeError, "scheduler is an optimizer",
                 id="train-scheduler-is-the-optimizer"),
    pytest.param(lambda: _train(data=_sampled_loader(torch.utils.data.SubsetRandomSampler(range(4))), checkpoint=_TMP / "subset.pt",
                                checkpoint_every=2), ValueError, "another random sampler (SubsetRandomSampler)", id="train-checkpoint-subset-sampler"),
    pytest.param(lambda: _train(data=_sampled_loader(torch.utils.data.WeightedRandomSampler([1.0] * 4, 4)), checkpoint=_TMP / "weighted.pt",
                                checkpoint_every=2), ValueError, "(WeightedRandomSampler)", id="train-checkpoint-weighted-sampler"),
    pytest.param(lambda: forward_backward(None, [_batch(0)], _mse), TypeError, "model must be a torch.nn.Module", id="forward-backward-model-None"),
    pytest.param(lambda: forward_backward(_setup()[0], [_batch(0)], None), TypeError, "loss_fn must be a function", id="forward-backward-loss-None"),
    pytest.param(lambda: autocast("tpu", "bf16"), ValueError, "device 'tpu' is not a device torch knows", id="autocast-device-unknown"),
    pytest.param(lambda: History.from_state_dict({"foo": 1}), ValueError, "state must be a History's state dict", id="history-foreign-state"),
    pytest.param(lambda: save_checkpoint(None, **_pair(), scheduler=None, step=1, history={}), TypeError, "path must be a file path",
                 id="save-path-None"),
    pytest.param(lambda: save_checkpoint(_TMP / "s.pt", **_pair(), scheduler=1, step=1, history={}), TypeError,
                 "scheduler must have state_dict() and load_state_dict()", id="save-scheduler-int"),
    pytest.param(lambda: save_checkpoint(_TMP / "s.pt", **_pair(), scheduler=None, step=1, history={"f": lambda: 1}), TypeError,
                 "history['f'] must hold plain data", id="save-history-function"),
    pytest.param(lambda: load_checkpoint(None, **_pair()), TypeError, "path must be a file path", id="load-path-None"),
    pytest.param(lambda: load_checkpoint(_malformed("no-history", lambda s: s.pop("history")), **_pair()), ValueError,
                 "is incomplete or malformed (history)", id="load-no-history"),
    pytest.param(lambda: load_checkpoint(_malformed("short-fingerprint", lambda s: s["fingerprint"].pop("parameters")), **_pair()),
                 ValueError, "is incomplete or malformed (fingerprint['parameters'])", id="load-incomplete-fingerprint"),
    pytest.param(lambda: load_checkpoint(_malformed("negative-step", lambda s: s.update(step=-5)), **_pair()), ValueError,
                 "(a negative step)", id="load-negative-step"),
    pytest.param(lambda: load_checkpoint(_checkpoint("whole"), **_other_scheduler()), ValueError,
                 "scheduler was built for another optimizer", id="load-scheduler-of-another-optimizer"),
    pytest.param(lambda: load_checkpoint(_checkpoint("whole"), model=_setup()[0], optimizer=_setup()[1]), ValueError,
                 "optimizer holds none of the model's parameters", id="load-optimizer-of-another-model"),
    pytest.param(lambda: fingerprint(*_setup(), clip="x"), TypeError, "clip must be a real number", id="fingerprint-clip-str"),
    pytest.param(lambda: fingerprint(*_setup(), clip=math.nan), ValueError, "clip must be > 0", id="fingerprint-clip-nan"),
    pytest.param(lambda: unwrap(None), TypeError, "model must be a torch.nn.Module", id="unwrap-None"),
    pytest.param(lambda: check_writable(str(_TMP) + "/new-folder/", "--out"), ValueError, "--out must name a file", id="check-writable-trailing-slash"),
    pytest.param(lambda: write_safely(_TMP / "w.json", None), TypeError, "write must be a function", id="write-safely-None"),
    pytest.param(lambda: save_verified([1, 2], _TMP / "v.pt"), TypeError, "content must be a dict", id="save-verified-list"),
    pytest.param(lambda: save_verified({"sha256": "x"}, _TMP / "v.pt"), ValueError, "content must not hold the key 'sha256'",
                 id="save-verified-reserved-key"),
    pytest.param(lambda: load_verified(None), TypeError, "path must be a file path", id="load-verified-None"),
    pytest.param(lambda: content_digest({"a": object()}), TypeError, "content_digest takes tensors", id="digest-object"),
    pytest.param(lambda: _train(model_opt=(lambda mo: (mo[0], mo[1], torch.optim.lr_scheduler.ReduceLROnPlateau(mo[1])))(_setup())),
                 TypeError, "scheduler is a ReduceLROnPlateau", id="train-reduce-on-plateau"),
    pytest.param(lambda: _resume(_checkpoint("lr-0.05"), model_opt=_setup(lr=0.5, schedule=linear_with_warmup(1, 10))), ValueError,
                 "another set of optimizer settings (base learning rate", id="resume-another-learning-rate"),
    pytest.param(lambda: _resume(_checkpoint("fp32-then-bf16"), precision="bf16"), ValueError, "another precision: saved 'fp32', now 'bf16'",
                 id="resume-another-precision"),
    pytest.param(lambda: number_list(None, "en"), TypeError, "values must be a list of numbers", id="number-list-None"),
    pytest.param(lambda: compare_clipping({"a": _quadratic_run()}, "en", target=10, blown_up=1), ValueError,
                 "target (10) must be below blown_up (1)", id="compare-clipping-target-above-blown-up"),
    pytest.param(lambda: measured_table([{"b": 1}], [("a", "col_batch", 0)], "en"), ValueError, "no row has the column key 'a'",
                 id="measured-table-misspelled-key"),
    pytest.param(lambda: plot_attention_lengths([{"length": 1}], "en"), ValueError, "rows hold no measurement", id="attention-lengths-nothing-measured"),
]


def _nan_grad():
    weight = torch.nn.Parameter(torch.ones(3))
    weight.grad = torch.tensor([1.0, math.nan, 0.0])
    return weight


# ---------------------------------------------------------------------------------------------- timing, stats, stored results, lessons 01-05's summaries and tables

from course_lib.engine import stats as _stats
from course_lib.engine import timing as _timing
from course_lib.lessons import finetuning_bert as _finetuning_bert
from course_lib.lessons import gradient_clipping as _clipping_lesson
from course_lib.lessons import lr_schedules as _schedules_lesson
from course_lib.lessons import optimization_options as _options
from course_lib.lessons import stored as _stored
from course_lib.show import tables as _tables
from course_lib.models import fast_step as _fast_step


def _speed(**kwargs):
    """train_speed of a tiny regression on the CPU: one timed step."""
    model, optimizer, _ = _setup()
    return _timing.train_speed(model, optimizer, kwargs.pop("data", _batch), _mse, steps=1, warmup=0, rounds=1, device="cpu",
                               **kwargs)


def _load_stored(content: bytes, expected=None):
    """stored.load of a file lesson99_gpu.json that holds ``content``."""
    folder = _TMP / "stored"
    folder.mkdir(exist_ok=True)
    (folder / "lesson99_gpu.json").write_bytes(content)
    before, _stored.DATA = _stored.DATA, folder
    try:
        return _stored.load("99", "gpu", "python -m course_lib.lessons.x --config gpu", expected or {})
    finally:
        _stored.DATA = before


def _store_to(out):
    """The store command (stored.main) with --out ``out``; its run_all must not run when out cannot be written."""
    def run_all(config, device):
        raise AssertionError("run_all ran before --out was checked")

    return _stored.main(["--config", "cpu", "--out", str(out)], lesson="99", description="test", configs=_options.CONFIGS,
                        run_all=run_all)


def _file_in_the_way(name):
    path = _TMP / name
    path.write_text("a file, not a folder")
    return path


def _recorded_once():
    """A History where w1 and w2 were recorded once, before any update."""
    history = History()
    history.add("w1", 0, 0.0)
    history.add("w2", 0, 0.0)
    return history


def _toy_runs(*seeds_per_schedule):
    return {f"s{i}": [train_softmax_toy(Constant(), 0.5, 8, seed=seed) for seed in range(n)] for i, n in enumerate(seeds_per_schedule)}


def _gpu_results(**changes):
    return {**_options.load_results("gpu"), **changes}


TIMING = [
    pytest.param(lambda: _timing.Timing.of([math.nan]), ValueError, "samples[0] must be a finite number of seconds >= 0", id="timing-nan"),
    pytest.param(lambda: _timing.Timing.of([0.1, -1.0]), ValueError, "samples[1] must be a finite number of seconds >= 0", id="timing-negative"),
    pytest.param(lambda: _timing.Timing.of(["0.1"]), TypeError, "samples[0] must be a real number", id="timing-str"),
    pytest.param(lambda: _timing.Timing.of(None), TypeError, "samples must be a list of measured seconds", id="timing-None"),
    pytest.param(lambda: _timing.peak_for_name(None, "bf16"), TypeError, "name must be the GPU's name", id="peak-name-None"),
    pytest.param(lambda: _timing.peak_for_name("NVIDIA H100 80GB HBM3", "fp8"), ValueError, "precision must be one of 'bf16', 'fp16'",
                 id="peak-precision-unknown"),
    pytest.param(lambda: _timing.mfu(math.inf, 1e9, 1e12), ValueError, "tokens_per_s must be > 0 and finite", id="mfu-inf"),
    pytest.param(lambda: _timing.fused_adamw(torch.nn.Linear(2, 2), lr=0.1), TypeError, "params must be model.parameters()", id="adamw-model"),
    pytest.param(lambda: _timing.fused_adamw(torch.nn.Linear(2, 2).parameters(), lr="3e-4"), TypeError, "lr must be a real number",
                 id="adamw-lr-str"),
    pytest.param(lambda: _timing.fused_adamw([], lr=0.1), ValueError, "params is empty", id="adamw-empty"),
    pytest.param(lambda: _timing.synchronize(3), TypeError, "device must be a string", id="synchronize-int"),
    pytest.param(lambda: _speed(precision="fp8"), ValueError, "precision must be one of 'fp32', 'bf16', 'fp16', 'fp64'", id="speed-precision"),
    pytest.param(lambda: _speed(precision="tf32"), ValueError, "precision must be one of", id="speed-precision-tf32"),
    pytest.param(lambda: _speed(flops_per_token=-1), ValueError, "flops_per_token must be None or a finite number > 0", id="speed-flops-negative"),
    pytest.param(lambda: _speed(flops_per_token="1e6"), TypeError, "flops_per_token must be a real number", id="speed-flops-str"),
    pytest.param(lambda: _speed(tokens=12), TypeError, "tokens must be a function", id="speed-tokens-int"),
    pytest.param(lambda: _speed(tokens=lambda batch: -5), ValueError, "tokens(batch) must return an int >= 0", id="speed-tokens-negative"),
    pytest.param(lambda: _speed(tokens=lambda batch: 2.5), TypeError, "tokens(batch) must return an int >= 0", id="speed-tokens-float"),
    pytest.param(lambda: _speed(tokens=lambda batch: 0, flops_per_token=1e6), ValueError, "no token was counted", id="speed-no-tokens"),
]

STATS = [
    pytest.param(lambda: _stats.spread([True, False]), TypeError, "values[0] must be a real number", id="spread-bools"),
    pytest.param(lambda: _stats.spread([1.0, "2"]), TypeError, "values[1] must be a real number", id="spread-str"),
    pytest.param(lambda: _stats.spread(None), TypeError, "values must be a list of numbers", id="spread-None"),
    pytest.param(lambda: _stats.curve_agreement([0.0] * 5, [1.0] * 5, 2), ValueError, "reference[0] must be a finite loss > 0",
                 id="curves-zero-reference"),
    pytest.param(lambda: _stats.curve_agreement([1.0] * 5, [1.0, math.nan, 1.0, 1.0, 1.0], 2), ValueError,
                 "other[1] must be a finite loss >= 0", id="curves-nan"),
    pytest.param(lambda: _stats.curve_agreement("abcde", "abcde", 2), TypeError, "reference must be a list of numbers", id="curves-str"),
]

STORED = [
    pytest.param(lambda: _load_stored(b"{garbage"), ValueError, "lesson99_gpu.json cannot be read as JSON", id="load-garbage"),
    pytest.param(lambda: _load_stored(b""), ValueError, "lesson99_gpu.json cannot be read as JSON", id="load-empty"),
    pytest.param(lambda: _load_stored(b'{"config": {"name": "gpu", "ste'), ValueError, "rewrite it with `python -m course_lib.lessons.x",
                 id="load-truncated"),
    pytest.param(lambda: _load_stored(b"\xff\xfe\x00\x01"), ValueError, "cannot be read as JSON", id="load-not-utf8"),
    pytest.param(lambda: _load_stored(b"[1, 2]"), ValueError, "holds a list, not the dict of results", id="load-list"),
    pytest.param(lambda: _load_stored(b'{"x": 1}', {"config": _options.CONFIGS["cpu"]}), ValueError, "has no 'config'", id="load-no-config"),
    pytest.param(lambda: _load_stored(b'{"config": 3}', {"config": _options.CONFIGS["cpu"]}), ValueError, "made with another configuration",
                 id="load-config-not-dict"),
    pytest.param(lambda: _load_stored(b"{}", {"config": "gpu"}), TypeError, "expected['config'] must be a configuration", id="load-expected-str"),
    pytest.param(lambda: _stored.path(5, "gpu"), TypeError, "lesson must be the lesson's number as two digits", id="path-lesson-int"),
    pytest.param(lambda: _stored.configuration(_options.CONFIGS, "tpu"), ValueError, "name must be one of 'cpu', 'gpu'", id="configuration-unknown"),
    pytest.param(lambda: _stored.require({"a": {}}, ["a", "b"], "x"), ValueError, "results['a'] has no 'b'", id="require-missing"),
    pytest.param(lambda: _stored.as_stored({"name": "gpu"}, {}), TypeError, "config must be a configuration", id="as-stored-dict"),
    pytest.param(lambda: _stored.as_stored(_options.CONFIGS["cpu"], [1]), TypeError, "stored must be the stored configuration", id="as-stored-list"),
    pytest.param(lambda: _store_to(_file_in_the_way("results-file") / "out.json"), ValueError, "--out", id="main-out-under-a-file"),
    pytest.param(lambda: _store_to(_TMP), ValueError, "is a folder", id="main-out-a-folder"),
]

OPTIMIZATION_OPTIONS = [
    pytest.param(lambda: _options.load_results("tpu"), ValueError, "name must be one of 'cpu', 'gpu'", id="load-results-unknown"),
    pytest.param(lambda: _options.Config("x", precisions=("fp32", "fp8")), ValueError, "precisions[1] must be one of 'tf32', 'fp32'",
                 id="config-precision"),
    pytest.param(lambda: _options.Config("x", precisions=()), ValueError, "precisions is empty", id="config-no-precision"),
    pytest.param(lambda: _options.Config("x", compile="no"), TypeError, "compile must be True or False", id="config-compile-str"),
    pytest.param(lambda: _options.Config("x", batch_size=30), ValueError, "batch_size 30 must be a multiple of accumulate 4",
                 id="config-batch-accumulate"),
    pytest.param(lambda: _options.Config("x", accumulate=0), ValueError, "accumulate must be >= 1", id="config-accumulate-zero"),
    pytest.param(lambda: _options.Config("x", tying_seeds=()), ValueError, "tying_seeds is empty", id="config-no-seeds"),
    pytest.param(lambda: _options.Config("x", batch_sizes=(8, -1)), ValueError, "batch_sizes[1] must be >= 1", id="config-batch-negative"),
    pytest.param(lambda: _options.Config("x", steps=2.5), TypeError, "steps must be an int", id="config-steps-float"),
    pytest.param(lambda: _options.Config("x", model={"n_layer": 2}), TypeError, "model must be a course_lib.models.gpt.GPTConfig",
                 id="config-model-dict"),
    pytest.param(lambda: _options.run_all("cpu"), TypeError, "config must be a Config", id="run-all-name"),
    pytest.param(lambda: _options.cost_terms(GPTConfig(), lengths=(1024, -5)), ValueError, "lengths[1] must be >= 1", id="cost-length-negative"),
    pytest.param(lambda: _options.cost_terms(GPTConfig(), lengths=()), ValueError, "lengths is empty", id="cost-no-length"),
    pytest.param(lambda: _options.cost_terms({"n_layer": 12}), TypeError, "config must be a course_lib.models.gpt.GPTConfig", id="cost-config-dict"),
    pytest.param(lambda: _options.contiguity("cpu", 0), ValueError, "n must be >= 1", id="contiguity-zero"),
    pytest.param(lambda: _options.pinned_copies("cpu", -1), ValueError, "megabytes must be >= 1", id="pinned-negative"),
    pytest.param(lambda: _options.headline({"comparison": {"rows": []}, "loss": {"agreement": {}}}), ValueError,
                 "holds 0 nanoGPT row(s) and 0 course row(s)", id="headline-no-rows"),
    pytest.param(lambda: _options.matmul_rate({}), ValueError, "results has no 'profile'", id="matmul-rate-empty"),
    pytest.param(lambda: _options.loss_curves(10, fast="fast"), TypeError, "fast must be a course_lib.models.fast_step.StepOptions",
                 id="loss-curves-fast-str"),
    pytest.param(lambda: _options.loss_curves(10, seed=-1), ValueError, "seed must be >= 0", id="loss-curves-seed"),
]

LESSON_SUMMARIES = [
    pytest.param(lambda: _schedules_lesson.schedule_stats({}), ValueError, "runs is empty", id="schedule-stats-empty"),
    pytest.param(lambda: _schedules_lesson.schedule_stats({"cosine": []}), ValueError, "runs['cosine'] holds no run", id="schedule-stats-no-run"),
    pytest.param(lambda: _schedules_lesson.schedule_stats({"cosine": History()}), TypeError, "runs['cosine'] must be a list of Histories",
                 id="schedule-stats-history"),
    pytest.param(lambda: _schedules_lesson.paired_difference([], []), ValueError, "a and b hold no run", id="paired-empty"),
    pytest.param(lambda: _schedules_lesson.settled_step(History(), "0.01"), TypeError, "excess must be a real number", id="settled-excess-str"),
    pytest.param(lambda: _schedules_lesson.settled_step(History(), -0.01), ValueError, "excess must be a finite excess loss > 0",
                 id="settled-excess-negative"),
    pytest.param(lambda: _schedules_lesson.accumulated_rate([0.1, 0.1]), TypeError, "history must be a History", id="accumulated-list"),
    pytest.param(lambda: _schedules_lesson.integral_prediction(History(), 2.0), ValueError, "target_prob must be in (0.5, 1]",
                 id="prediction-target"),
    pytest.param(lambda: _schedules_lesson.late_jitter(_recorded_once()), ValueError, "the jitter needs at least one update", id="jitter-no-update"),
    pytest.param(lambda: _clipping_lesson.clipping_stats(History()), ValueError, "history holds no step", id="clipping-stats-empty"),
    pytest.param(lambda: _clipping_lesson.clipping_stats(train_softmax_toy(Constant(), 0.5, 3)), ValueError,
                 "history recorded no 'update_norm'", id="clipping-stats-no-update-norm"),
    pytest.param(lambda: _clipping_lesson.clipping_stats(History(), target="1e-3"), TypeError, "target must be a real number",
                 id="clipping-stats-target-str"),
    pytest.param(lambda: _clipping_lesson.clipping_stats(History(), blown_up=-1), ValueError, "blown_up must be a finite loss > 0",
                 id="clipping-stats-blown-up"),
    pytest.param(lambda: _clipping_lesson.layer_clipping(1.0, "0"), TypeError, "seed must be an int", id="layer-clipping-seed-str"),
    pytest.param(lambda: _clipping_lesson.value_ranges(2, 4, 1.5), TypeError, "seed must be an int", id="value-ranges-seed-float"),
]

TABLES_SHOW = [
    pytest.param(lambda: _tables.with_spread(1.5, "en"), TypeError, "value must be a Spread", id="with-spread-float"),
    pytest.param(lambda: _tables.compare_schedules(_toy_runs(1, 2), "en"), ValueError, "as many seeds for every schedule",
                 id="schedules-unequal-seeds"),
    pytest.param(lambda: _tables.compare_schedules({}, "xx"), ValueError, "lang must be one of", id="schedules-lang-first"),
    pytest.param(lambda: _tables.compare_clipping({}, "en"), ValueError, "runs is empty", id="clipping-empty"),
    pytest.param(lambda: _tables.integral_law_table({"cosine": [History()]}, "en"), TypeError, "runs['cosine'] must be a History",
                 id="integral-law-list"),
    pytest.param(lambda: _tables.finetune_table({"runs": []}, "en"), ValueError, "results['runs'] is empty", id="finetune-no-runs"),
    pytest.param(lambda: _tables.finetune_table({}, "en", timing="no"), TypeError, "timing must be True or False", id="finetune-timing-str"),
    pytest.param(lambda: _tables.finetune_table(_finetuning_bert.load_results("gpu"), "en", variants=["freeze"]), ValueError,
                 "variants[0] must be one of", id="finetune-variant-unknown"),
    pytest.param(lambda: _tables.gpt_freezing_table({}, "en"), ValueError, "results has no 'runs'", id="gpt-freezing-no-runs"),
    pytest.param(lambda: _tables.measured_table([{"a": True}], [("a", "col_ms_step", 1)], "en"), TypeError, "rows[0]['a'] must be a number",
                 id="measured-bool"),
    pytest.param(lambda: _tables.measured_table([1.0], [("a", "col_ms_step", 1)], "en"), TypeError, "rows[0] must be a dict", id="measured-row-float"),
    pytest.param(lambda: _tables.measured_table([], [("a", "col_ms_step")], "en"), TypeError, "columns[0] must be a tuple (key, label key, digits)",
                 id="measured-column-short"),
    pytest.param(lambda: _tables.staircase_table({}, "en"), ValueError, "results has no 'rungs'", id="staircase-empty"),
    pytest.param(lambda: _tables.staircase_table({"rungs": []}, "en"), ValueError, "summary['rungs'] is empty", id="staircase-no-rungs"),
    pytest.param(lambda: _tables.alternatives_table({"alternatives": []}, "en"), ValueError, "summary['alternatives'] is empty",
                 id="alternatives-none"),
    pytest.param(lambda: _tables.shapes_table({"shapes": [], "processes": 1}, "en"), ValueError, "summary['shapes'] is empty",
                 id="shapes-none"),
    pytest.param(lambda: _tables.shapes_table({"shapes": [], "processes": 1}, "en", tera=1), TypeError, "tera must be True (TFLOP/s, a GPU) or False",
                 id="shapes-tera-int"),
    pytest.param(lambda: _tables.micro_table(_gpu_results(pinned_copies=None), {"shapes": []}, "en"), ValueError,
                 "results lacks the pinned copies", id="micro-no-pinned"),
    pytest.param(lambda: _tables.zero_table({}, 8, "en"), ValueError, "models is empty", id="zero-no-models"),
    pytest.param(lambda: _tables.zero_table({"m": 10}, 0, "en"), ValueError, "gpus must be >= 1", id="zero-no-gpus"),
    pytest.param(lambda: _options.sharded_memory(0, 8), ValueError, "parameters must be >= 1", id="sharded-no-parameters"),
    pytest.param(lambda: _options.pipeline_bubble(4, 0), ValueError, "micro_batches must be >= 1", id="bubble-no-micro-batches"),
    pytest.param(lambda: _options.token_storage(-1), ValueError, "tokens must be a finite number >= 0", id="token-storage-negative"),
    pytest.param(lambda: _options.staircase_summary([]), TypeError, "results must be the dict that staircase_study()", id="summary-list"),
    pytest.param(lambda: _options.load_staircase("gpu"), ValueError, "name must be one of 'staircase-gpu'", id="load-staircase-gpu"),
    pytest.param(lambda: _options.time_staircase(_options.CONFIGS["cpu"]), TypeError, "config must be a StaircaseConfig",
                 id="time-staircase-config"),
    pytest.param(lambda: _fast_step.staircase(3), TypeError, "top must be a course_lib.models.fast_step.StepOptions", id="staircase-top-int"),
    pytest.param(lambda: _fast_step.padded(0), ValueError, "vocab_size must be >= 1", id="padded-zero"),
    pytest.param(lambda: _timing.elapsed(None), TypeError, "fn must be a function of no arguments", id="elapsed-None"),
    pytest.param(lambda: _timing.interleaved([lambda: None], 2), TypeError, "runs must be a dict", id="interleaved-list"),
    pytest.param(lambda: _timing.interleaved({"a": lambda: None}, 0), ValueError, "rounds must be >= 1", id="interleaved-no-rounds"),
    pytest.param(lambda: _options.tying_summary({}), ValueError, "results has no 'weight_tying'", id="tying-summary-empty"),
    pytest.param(lambda: _options.tying_summary({"weight_tying": {"tied": {"parameters": 1, "eval_loss": [5.0]}}}), ValueError,
                 "holds 1 seed(s)", id="tying-summary-one-seed"),
    pytest.param(lambda: _tables.staircase_key_results({"rungs": []}, {}, {}, "en"), ValueError, "must start with the plain step",
                 id="key-results-no-rungs"),
    pytest.param(lambda: _stored.in_processes("no_colon", _options.CONFIGS["cpu"], None, 1), ValueError, 'target must be "module:function"',
                 id="in-processes-target"),
    pytest.param(lambda: _tables.profile_table({"profile": {"wall_ms_per_step": 0, "gpu_ms_per_step": 1, "by_kind": {"matmul": 1.0}}}, "en"),
                 ValueError, "results['profile']['wall_ms_per_step'] must be a finite time > 0", id="profile-zero-wall"),
    pytest.param(lambda: _tables.benchmark_table({"comparison": {"rows": []}}, "en"), ValueError, "results['comparison']['rows'] is empty",
                 id="benchmark-no-rows"),
    pytest.param(lambda: _tables.freezing_table(3, "en"), TypeError, "model must be a torch.nn.Module", id="freezing-int"),
]


def _hf_gpt2(**changes):
    """A small randomly initialised GPT2LMHeadModel, GPT-2's architecture except for ``changes`` to its config."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=97, n_positions=16, n_embd=16, n_layer=2, n_head=2, bos_token_id=None,
                                      eos_token_id=None, **changes))


def _hf_with_own_lm_head():
    hf = _hf_gpt2()
    hf.lm_head.weight = torch.nn.Parameter(hf.lm_head.weight.detach() + 1.0)  # untied after the fact; the config still says tied
    return hf


def _hf_config_changed_after():
    hf = _hf_gpt2()
    hf.config.vocab_size = 98
    return hf


_HF = pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="needs transformers")


def _hf_case(call, error, text, id):
    return pytest.param(call, error, text, id=id, marks=_HF)


_IDS = torch.tensor([[1, 2, 3]])

MODELS = [
    pytest.param(lambda: _small_gpt()(torch.tensor([[1, 97]])), ValueError, "idx holds token ids from 1 to 97, outside the vocabulary",
                 id="forward-id-past-vocabulary"),
    pytest.param(lambda: _small_gpt()(torch.tensor([[-1, 2]])), ValueError, "ids must be in [0, vocab_size) = [0, 97)", id="forward-id-negative"),
    pytest.param(lambda: _small_gpt()(torch.tensor([1, 2])), ValueError, "idx must be a non-empty (batch, time) tensor", id="forward-1d"),
    pytest.param(lambda: _small_gpt()(torch.zeros(1, 2, 3, dtype=torch.long)), ValueError, "got shape (1, 2, 3)", id="forward-3d"),
    pytest.param(lambda: _small_gpt()({"input_ids": _IDS}), TypeError, "idx must be a (batch, time) tensor of token ids", id="forward-dict"),
    pytest.param(lambda: _small_gpt()(_IDS.float()), TypeError, "idx must hold integer token ids (torch.int64 or torch.int32), got torch.float32",
                 id="forward-float-ids"),
    pytest.param(lambda: _small_gpt()(torch.zeros(1, 0, dtype=torch.long), last_only=True), ValueError, "got shape (1, 0)", id="forward-no-token"),
    pytest.param(lambda: _small_gpt()(_IDS, last_only="no"), TypeError, "last_only must be True or False", id="forward-last-only-str"),
    pytest.param(lambda: lm_loss(_small_gpt(), torch.tensor([[1, 2, 97]])), ValueError, "targets (batch[:, 1:]) hold token ids from 2 to 97",
                 id="loss-target-past-vocabulary"),
    pytest.param(lambda: lm_loss(_small_gpt(), torch.tensor([[1, 2, -100]])), ValueError, "ids must be in [0, vocab_size) = [0, 97)",
                 id="loss-target-ignore-index"),
    pytest.param(lambda: lm_loss(_small_gpt(), torch.tensor([[97, 2, 3]])), ValueError, "idx holds token ids", id="loss-input-past-vocabulary"),
    pytest.param(lambda: lm_loss(_small_gpt(), torch.tensor([1, 2, 3])), ValueError, "batch must be a (batch, T + 1) tensor", id="loss-1d"),
    pytest.param(lambda: lm_loss(_small_gpt(), {"input_ids": _IDS}), TypeError, "batch must be a (batch, T + 1) tensor of token ids", id="loss-dict"),
    pytest.param(lambda: lm_loss(_small_gpt(), torch.tensor([[1]])), ValueError, "T + 1 >= 2", id="loss-one-token"),
    pytest.param(lambda: lm_loss(_small_gpt(), torch.zeros(0, 4, dtype=torch.long)), ValueError, "at least one sequence", id="loss-no-sequence"),
    pytest.param(lambda: lm_loss(_small_gpt(), _IDS.float()), TypeError, "batch must hold int64 token ids", id="loss-float-ids"),
    pytest.param(lambda: lm_loss(_IDS, _small_gpt()), TypeError, "model must be a torch.nn.Module", id="loss-swapped"),
    pytest.param(lambda: generate(_small_gpt(), torch.tensor([[97]]), 3), ValueError, "idx holds token ids from 97 to 97", id="generate-id-past-vocabulary"),
    pytest.param(lambda: generate(_small_gpt(), _IDS.float(), 3), TypeError, "idx must hold integer token ids", id="generate-float-ids"),
    pytest.param(lambda: generate(torch.nn.Linear(2, 2), _IDS, 3), TypeError, "model must be a course_lib.models.gpt.GPT", id="generate-not-gpt"),
    pytest.param(lambda: to_hf(torch.nn.Linear(2, 2)), TypeError, "model must be a course_lib.models.gpt.GPT", id="to-hf-not-gpt"),
    _hf_case(lambda: to_hf(_hf_gpt2()), TypeError, "model must be a course_lib.models.gpt.GPT, got GPT2LMHeadModel", id="to-hf-of-hf"),
    _hf_case(lambda: from_hf(None), TypeError, "hf_model must be a transformers GPT2LMHeadModel", id="from-hf-None"),
    _hf_case(lambda: from_hf(_small_gpt()), TypeError, "hf_model must be a transformers GPT2LMHeadModel", id="from-hf-of-ours"),
    _hf_case(lambda: from_hf(_hf_gpt2().transformer), TypeError, "got GPT2Model", id="from-hf-without-head"),
    _hf_case(lambda: from_hf(_hf_gpt2(layer_norm_epsilon=1e-3)), ValueError,
             "config.layer_norm_epsilon is 0.001, but GPT implements 1e-05", id="from-hf-layer-norm-epsilon"),
    _hf_case(lambda: from_hf(_hf_gpt2(scale_attn_weights=False)), ValueError,
             "config.scale_attn_weights is False, but GPT implements True", id="from-hf-unscaled-attention"),
    _hf_case(lambda: from_hf(_hf_gpt2(scale_attn_by_inverse_layer_idx=True)), ValueError,
             "config.scale_attn_by_inverse_layer_idx is True, but GPT implements False", id="from-hf-inverse-layer-scaling"),
    _hf_case(lambda: from_hf(_hf_gpt2(activation_function="relu")), ValueError,
             "config.activation_function is 'relu', but GPT implements 'gelu_new' or 'gelu_pytorch_tanh'", id="from-hf-relu"),
    _hf_case(lambda: from_hf(_hf_gpt2(activation_function="gelu")), ValueError,
             "config.activation_function is 'gelu'", id="from-hf-exact-gelu"),
    _hf_case(lambda: from_hf(_hf_gpt2(n_inner=32)), ValueError, "config.n_inner is 32, but GPT implements None or 4 * n_embd",
             id="from-hf-mlp-width"),
    _hf_case(lambda: from_hf(_hf_gpt2(add_cross_attention=True)), ValueError, "config.add_cross_attention is True", id="from-hf-cross-attention"),
    _hf_case(lambda: from_hf(_hf_gpt2(tie_word_embeddings=False)), ValueError,
             "config.tie_word_embeddings is False, but GPT implements True", id="from-hf-untied-config"),
    _hf_case(lambda: from_hf(_hf_with_own_lm_head()), ValueError, "lm_head.weight differs from transformer.wte.weight",
             id="from-hf-untied-weights"),
    _hf_case(lambda: from_hf(_hf_config_changed_after()), ValueError,
             "hf_model's transformer.wte.weight has shape (97, 16), but its config describes (98, 16)", id="from-hf-config-disagrees"),
    pytest.param(lambda: parameter_count({"n_layer": 2}), TypeError, "config must be a GPTConfig", id="parameter-count-dict"),
    pytest.param(lambda: CausalSelfAttention({"n_head": 2}), TypeError, "config must be a GPTConfig", id="attention-dict"),
    pytest.param(lambda: MLP(None), TypeError, "config must be a GPTConfig", id="mlp-None"),
    pytest.param(lambda: Block(None), TypeError, "config must be a GPTConfig", id="block-None"),
    pytest.param(lambda: naive_attention(*[torch.zeros(1, 2, 4)] * 3, dropout=2.0), ValueError, "dropout must be a probability in [0, 1)",
                 id="naive-attention-dropout"),
    pytest.param(lambda: naive_attention([1.0], [1.0], [1.0]), TypeError, "q must be a (..., time, head size) tensor", id="naive-attention-list"),
]

_TINY_STEP = dataclasses.replace(FAST, micro_batch=2, compile=False, cuda_graphs=False,
                                 model=dataclasses.replace(FAST.model, block_size=16, n_layer=1, n_head=2, n_embd=16, vocab_size=128))

FAST_STEP = [
    pytest.param(lambda: dataclasses.replace(FAST, micro_batch=True), TypeError, "micro_batch must be an int (a number of sequences per forward pass)",
                 id="micro-batch-bool"),
    pytest.param(lambda: dataclasses.replace(FAST, micro_batch="12"), TypeError, "micro_batch must be an int", id="micro-batch-str"),
    pytest.param(lambda: dataclasses.replace(FAST, accumulate=0), ValueError, "accumulate must be >= 1 micro-batches per optimizer step",
                 id="accumulate-zero"),
    pytest.param(lambda: dataclasses.replace(FAST, log_every=False), TypeError, "log_every must be an int", id="log-every-bool"),
    pytest.param(lambda: dataclasses.replace(FAST, attention_kernel=None), ValueError, "attention_kernel must be one of 'cudnn', 'flash', 'efficient', 'math', 'auto', 'naive'",
                 id="attention-kernel-None"),
    pytest.param(lambda: dataclasses.replace(FAST, attention_kernel="sdpa"), ValueError, "attention_kernel must be one of", id="attention-kernel-sdpa"),
    pytest.param(lambda: dataclasses.replace(FAST, precision="fp64"), ValueError, "precision must be one of 'fp32', 'bf16', 'fp16'", id="precision-fp64"),
    pytest.param(lambda: dataclasses.replace(FAST, precision=None), ValueError, "precision must be one of", id="precision-None"),
    pytest.param(lambda: dataclasses.replace(FAST, compile=0), TypeError, "compile must be True or False, got 0 (int)", id="compile-int"),
    pytest.param(lambda: dataclasses.replace(FAST, tf32="yes"), TypeError, "tf32 must be True or False", id="tf32-str"),
    pytest.param(lambda: dataclasses.replace(FAST, fused_optimizer=None), TypeError, "fused_optimizer must be True or False", id="fused-None"),
    pytest.param(lambda: dataclasses.replace(FAST, clip=math.nan), ValueError, "clip must be > 0", id="clip-nan"),
    pytest.param(lambda: dataclasses.replace(FAST, lr=True), TypeError, "lr must be a real number", id="lr-bool"),
    pytest.param(lambda: dataclasses.replace(FAST, weight_decay=math.nan), ValueError, "weight_decay must be >= 0 and finite", id="weight-decay-nan"),
    pytest.param(lambda: build({"micro_batch": 2}), TypeError, "options must be a course_lib.models.fast_step.StepOptions", id="build-dict"),
    pytest.param(lambda: build(_TINY_STEP, "cpu", seed=-1), ValueError, "seed must be >= 0", id="build-seed-negative"),
    pytest.param(lambda: build(_TINY_STEP, "cpu", seed="0"), TypeError, "seed must be an int", id="build-seed-str"),
    pytest.param(lambda: build(_TINY_STEP, "cpu", data=[torch.zeros(2, 17, dtype=torch.long)]), TypeError,
                 "data must be a function of the micro-batch index", id="build-data-list"),
    pytest.param(lambda: build(_TINY_STEP, "cpu", schedule_steps=0), ValueError, "schedule_steps must be >= 1", id="build-schedule-zero"),
    pytest.param(lambda: build(_TINY_STEP, "cpu", schedule_steps=True), TypeError, "schedule_steps must be an int", id="build-schedule-bool"),
    pytest.param(lambda: build(_TINY_STEP, "cpu", schedule_steps=10, warmup_steps=20), ValueError,
                 "warmup_steps (20) must be <= schedule_steps (10)", id="build-warmup-past-schedule"),
    pytest.param(lambda: synthetic_batches(0, 2, 8, pinned=False), ValueError, "vocab_size must be >= 1", id="synthetic-vocab-zero"),
    pytest.param(lambda: synthetic_batches(10.5, 2, 8, pinned=False), TypeError, "vocab_size must be an int", id="synthetic-vocab-float"),
    pytest.param(lambda: synthetic_batches(10, 0, 8, pinned=False), ValueError, "micro_batch must be >= 1", id="synthetic-micro-batch-zero"),
    pytest.param(lambda: synthetic_batches(10, 2, -1, pinned=False), ValueError, "block_size must be >= 1", id="synthetic-block-negative"),
    pytest.param(lambda: synthetic_batches(10, 2, 8, pinned=False, pool=0), ValueError, "pool must be >= 1", id="synthetic-pool-zero"),
    pytest.param(lambda: synthetic_batches(10, 2, 8, pinned="no"), TypeError, "pinned must be True or False", id="synthetic-pinned-str"),
    pytest.param(lambda: synthetic_batches(10, 2, 8, pinned=False, seed=-1), ValueError, "seed must be >= 0", id="synthetic-seed-negative"),
]


def _toy_history():
    return train_softmax_toy(Constant(), 0.1, 2)


TOY = [
    pytest.param(lambda: expected_loss(math.nan, 0.0, 0.9), ValueError, "w1 must be a finite number", id="expected-loss-nan"),
    pytest.param(lambda: expected_loss(0.0, "1", 0.9), TypeError, "w2 must be a real number", id="expected-loss-str"),
    pytest.param(lambda: expected_loss(True, 0.0, 0.9), TypeError, "w1 must be a real number", id="expected-loss-bool"),
    pytest.param(lambda: expected_loss(1.0, 0.0, 2.0), ValueError, "target_prob must be in [0.0, 1.0]", id="expected-loss-probability"),
    pytest.param(lambda: best_loss(1.5), ValueError, "target_prob must be in [0.0, 1.0]", id="best-loss-above-one"),
    pytest.param(lambda: best_loss(math.nan), ValueError, "target_prob must be in [0.0, 1.0]", id="best-loss-nan"),
    pytest.param(lambda: best_loss("0.9"), TypeError, "target_prob must be a real number", id="best-loss-str"),
    pytest.param(lambda: train_softmax_toy(Constant(), "0.1", 3), TypeError, "eta_max must be a real number", id="softmax-eta-str"),
    pytest.param(lambda: train_softmax_toy(Constant(), -0.1, 3), ValueError, "eta_max must be > 0 and finite", id="softmax-eta-negative"),
    pytest.param(lambda: train_softmax_toy(Constant(), True, 3), TypeError, "eta_max must be a real number", id="softmax-eta-bool"),
    pytest.param(lambda: add_excess_loss([], 0.9), TypeError, "history must be a History", id="excess-list"),
    pytest.param(lambda: add_excess_loss(History(), 0.9), ValueError, "history must hold the toy's weights w1 and w2", id="excess-no-weights"),
    pytest.param(lambda: add_excess_loss(_toy_history(), 1.0), ValueError, "history already holds excess_loss", id="excess-twice"),
    pytest.param(lambda: add_excess_loss(_toy_history(), 3.0), ValueError, "target_prob must be in [0.0, 1.0]", id="excess-probability"),
    pytest.param(lambda: QuadraticToy("ab"), TypeError, "start must be a tuple of numbers", id="quadratic-start-str"),
    pytest.param(lambda: QuadraticToy(()), ValueError, "start must hold at least one weight", id="quadratic-start-empty"),
    pytest.param(lambda: QuadraticToy((1.0, math.nan)), ValueError, "start[1] must be a finite number", id="quadratic-start-nan"),
    pytest.param(lambda: train_quadratic("0.1", 3), TypeError, "eta_max must be a real number", id="quadratic-eta-str"),
    pytest.param(lambda: train_quadratic(True, 3), TypeError, "eta_max must be a real number", id="quadratic-eta-bool"),
    pytest.param(lambda: train_quadratic(0.1, 0), ValueError, "num_steps must be >= 1", id="quadratic-steps-zero"),
    pytest.param(lambda: train_quadratic(0.1, 3, callbacks=None), TypeError, "callbacks must be a list of Callback objects", id="quadratic-callbacks-None"),
    pytest.param(lambda: body_and_head(-1), ValueError, "seed must be >= 0", id="body-seed-negative"),
    pytest.param(lambda: body_and_head("0"), TypeError, "seed must be an int", id="body-seed-str"),
    pytest.param(lambda: body_and_head(True), TypeError, "seed must be an int", id="body-seed-bool"),
]


from course_lib.engine import distributed as _distributed
from course_lib.engine.callbacks import evaluate as _evaluate
from course_lib.engine.data import MicroBatches, tensor_digest
from course_lib.engine.stats import Spread
from course_lib.engine.timing import Timing, fused_adamw


def _with_metrics(metrics):
    """A two-step run evaluated after each step, with ``metrics(model, batch)``."""
    return _train(callbacks=[Evaluate([_batch(100)], 1, metrics=metrics)])


def _tracking(probe, extra=False):
    """A run whose probe tracks the named parameters of another model, or the run's own plus one from elsewhere."""
    model, optimizer, scheduler = _setup()
    named = [*model.named_parameters(), ("extra", torch.nn.Parameter(torch.ones(1)))] if extra else list(_NAMED())
    return _train(model_opt=(model, optimizer, scheduler), callbacks=[probe(named)])


def _used_twice(clip):
    """``clip`` called twice with the same generator of parameters: the second sees it used up."""
    parameters = MODEL.parameters()
    clip(parameters)
    return clip(parameters)


class _Halving(Schedule):
    """A schedule of the user's own, defined by ``factor`` only."""

    def factor(self, step):
        return 0.5**step


_ATTENTION = GPTConfig(vocab_size=97, block_size=8, n_layer=1, n_head=2, n_embd=16)

ENGINE_2 = [
    pytest.param(lambda: _with_metrics(lambda m, b: {"acc": "x"}), TypeError,
                 "metrics(model, batch) values must be numbers (an int, a float or a one-element tensor), got 'acc': 'x' (str)",
                 id="evaluate-metric-str"),
    pytest.param(lambda: _with_metrics(lambda m, b: {"acc": None}), TypeError, "values must be numbers", id="evaluate-metric-None"),
    pytest.param(lambda: _with_metrics(lambda m, b: {"acc": True}), TypeError, "got 'acc': True (bool)", id="evaluate-metric-bool"),
    pytest.param(lambda: _with_metrics(lambda m, b: {"acc": torch.ones(3)}), TypeError, "values must be numbers", id="evaluate-metric-vector"),
    pytest.param(lambda: _with_metrics(lambda m, b: {"acc": torch.tensor(True)}), TypeError, "values must be numbers",
                 id="evaluate-metric-bool-tensor"),
    pytest.param(lambda: _with_metrics(lambda m, b: {1: 0.5}), TypeError, "metrics(model, batch) keys must be names (str)",
                 id="evaluate-metric-int-key"),
    pytest.param(lambda: _with_metrics(lambda m, b: {"loss": 0.5}), ValueError, "returned the key 'loss', which would replace eval_loss",
                 id="evaluate-metric-loss-key"),
    pytest.param(lambda: _evaluate(None, [_batch(0)], _mse), TypeError, "model must be a torch.nn.Module", id="evaluate-model-None"),
    pytest.param(lambda: _evaluate(MODEL, None, _mse), TypeError, "data must be an iterable of batches", id="evaluate-data-None"),
    pytest.param(lambda: _evaluate(MODEL, [_batch(0)], None), TypeError, "loss_fn must be a function", id="evaluate-loss-fn-None"),
    pytest.param(lambda: _evaluate(MODEL, [_batch(0)], _mse, metrics=3), TypeError, "metrics must be a function", id="evaluate-metrics-int"),
    pytest.param(lambda: _evaluate(MODEL, [_batch(0)], lambda m, b: m(b[0])), ValueError,
                 "loss_fn must return a single number (a 0-d tensor), got shape (4, 1)", id="evaluate-loss-vector"),
    pytest.param(lambda: _evaluate(MODEL, [_batch(0)], lambda m, b: "x"), TypeError, "loss_fn must return a loss tensor or a pair",
                 id="evaluate-loss-str"),
    pytest.param(lambda: WeightChange(torch.nn.Linear(2, 1)), TypeError,
                 "named_parameters must be an iterable of (name, tensor) pairs: pass model.named_parameters()", id="weight-change-model"),
    pytest.param(lambda: WeightChange(None), TypeError, "named_parameters must be an iterable of (name, tensor) pairs", id="weight-change-None"),
    pytest.param(lambda: WeightChange([]), ValueError, "named_parameters is empty", id="weight-change-empty"),
    pytest.param(lambda: _tracking(WeightChange), ValueError,
                 "WeightChange tracks '0.weight' and 3 more (of 4 tracked), not parameters of the model being trained",
                 id="weight-change-other-model"),
    pytest.param(lambda: _tracking(GradNorms), ValueError, "GradNorms tracks '0.weight' and 3 more (of 4 tracked)", id="grad-norms-other-model"),
    pytest.param(lambda: _tracking(WeightChange, extra=True), ValueError,
                 "WeightChange tracks 'extra' (of 5 tracked), not a parameter of the model being trained", id="weight-change-one-foreign"),
    pytest.param(lambda: _tracking(GradNorms, extra=True), ValueError, "GradNorms tracks 'extra' (of 5 tracked)", id="grad-norms-one-foreign"),
    pytest.param(lambda: DataChecksum().hexdigest(0), ValueError, "digits must be in [1, 64]", id="checksum-digits-zero"),
    pytest.param(lambda: DataChecksum().hexdigest("12"), TypeError, "digits must be an int", id="checksum-digits-str"),
    pytest.param(lambda: DataChecksum().load_state_dict({"chain": "zz"}), ValueError, "state must be what DataChecksum.state_dict() returns",
                 id="checksum-state-not-hex"),
    pytest.param(lambda: Throughput().load_state_dict({}), ValueError, "state must be what Throughput.state_dict() returns",
                 id="throughput-state-empty"),
    pytest.param(lambda: ScheduledLR(optimizer(), Constant(), last_epoch=3), ValueError,
                 "last_epoch=3 resumes a schedule, but the optimizer's param groups have no 'initial_lr'", id="scheduler-last-epoch-fresh"),
    pytest.param(lambda: LinearDecay(10).factor(-1), ValueError, "step must be >= 0", id="factor-negative"),
    pytest.param(lambda: LinearDecay(10).factor(1.5), TypeError, "step must be an int", id="factor-float"),
    pytest.param(lambda: Warmup(3, CosineDecay(10)).factor(True), TypeError, "step must be an int", id="factor-bool"),
    pytest.param(lambda: Constant().factor(-1), ValueError, "step must be >= 0", id="factor-constant-negative"),
    pytest.param(lambda: _Halving().factor(-2), ValueError, "step must be >= 0", id="factor-own-subclass"),
    pytest.param(lambda: _used_twice(lambda p: clip_grad_norm_(p, 1.0)), ValueError,
                 "parameters is an iterator that yields nothing (generator)", id="clip-used-up-generator"),
    pytest.param(lambda: _used_twice(lambda p: clip_grad_value_(p, 1.0)), ValueError, "parameters is an iterator that yields nothing",
                 id="clip-value-used-up-generator"),
    pytest.param(lambda: _used_twice(global_grad_norm), ValueError, "parameters is an iterator that yields nothing", id="norm-used-up-generator"),
    pytest.param(lambda: clip_grad_norm_(iter([]), 1.0), ValueError, "parameters is an iterator that yields nothing (list_iterator)",
                 id="clip-empty-iterator"),
    pytest.param(lambda: clip_grad_norm_per_layer_({}, 1.0), ValueError, "layers is empty", id="per-layer-empty"),
    pytest.param(lambda: clip_grad_norm_per_layer_({"body": iter([])}, 1.0), ValueError, "layers['body'] is an iterator that yields nothing",
                 id="per-layer-used-up"),
    pytest.param(lambda: LayerGradNorms(MODEL.named_parameters(), lambda name: 1).measure(), TypeError,
                 "group_by(name) must return the name of the parameter's layer (a str), got 1 (int) for '0.weight'", id="tracker-layer-int"),
    pytest.param(lambda: LayerGradNorms(MODEL.named_parameters(), lambda name: None), TypeError, "group_by(name) must return",
                 id="tracker-layer-None"),
    pytest.param(lambda: LayerGradNorms(MODEL.named_parameters(), {1: "weight"}), TypeError, "a key of group_by must be a layer name (a str)",
                 id="tracker-key-int"),
    pytest.param(lambda: global_norm([torch.ones(2, dtype=torch.long)]), TypeError, "tensors must hold floating-point numbers",
                 id="global-norm-int"),
    pytest.param(lambda: MicroBatches([1, 2], 1.5), TypeError, "start must be an int", id="micro-batches-start-float"),
    pytest.param(lambda: MicroBatches([1, 2], -1), ValueError, "start must be >= 0", id="micro-batches-start-negative"),
    pytest.param(lambda: MicroBatches([1, 2], True), TypeError, "start must be an int", id="micro-batches-start-bool"),
    pytest.param(lambda: MicroBatches(None, 0), TypeError, "data must be a function of the batch index, a DataLoader or an iterable",
                 id="micro-batches-data-None"),
    pytest.param(lambda: MicroBatches(torch.zeros(4, 3), 0), TypeError, "data must be a function of the batch index",
                 id="micro-batches-data-tensor"),
    pytest.param(lambda: tensor_digest("abc"), TypeError, "tensor must be a torch.Tensor, got 'abc' (str)", id="digest-str"),
    pytest.param(lambda: tensor_digest([1, 2]), TypeError, "tensor must be a torch.Tensor", id="digest-list"),
    pytest.param(lambda: tensor_digest(torch.ones(2), "sha"), TypeError, "into must be a hashlib hash", id="digest-into-str"),
    pytest.param(lambda: tensor_digest(torch.ones(2), None, 3), TypeError, "name must be a str", id="digest-name-int"),
    pytest.param(lambda: checksum(["a"]), TypeError, "value[0] must be a tensor", id="checksum-list-of-str"),
    pytest.param(lambda: Timing(1.0, 2.0, 0.5, (1.0,)), ValueError, "low <= median <= high must hold", id="timing-low-above-high"),
    pytest.param(lambda: Timing(-1.0, -2.0, 0.5, (0.1,)), ValueError, "median must be a finite number of seconds >= 0", id="timing-negative"),
    pytest.param(lambda: Timing("1", 0.5, 2.0, (1.0,)), TypeError, "median must be a real number", id="timing-median-str"),
    pytest.param(lambda: Timing(1.0, 0.5, 2.0, "ab"), TypeError, "samples must be a tuple", id="timing-samples-str"),
    pytest.param(lambda: Timing(1.0, 0.5, 2.0, ()), ValueError, "samples is empty", id="timing-samples-empty"),
    pytest.param(lambda: Timing(1.0, 0.5, 2.0, (3.0,)), ValueError, "samples[0] must be in [low, high]", id="timing-sample-outside"),
    pytest.param(lambda: fused_adamw([1, 2], 0.1), TypeError, "params must be model.parameters() or a list of parameter groups",
                 id="fused-adamw-ints"),
    pytest.param(lambda: fused_adamw([{"params": []}], 0.1), ValueError, "params is empty (no group holds a parameter)", id="fused-adamw-empty-group"),
    pytest.param(lambda: fused_adamw([{"params": 3}], 0.1), TypeError, "params[0]['params'] must be a tensor or an iterable",
                 id="fused-adamw-group-int"),
    pytest.param(lambda: Spread(1.0, -1.0, 2), ValueError, "sem must be >= 0", id="spread-negative-sem"),
    pytest.param(lambda: Spread(1.0, 1.0, 0), ValueError, "n must be >= 1", id="spread-no-seed"),
    pytest.param(lambda: Spread(1.0, 1.0, 1.5), TypeError, "n must be an int", id="spread-n-float"),
    pytest.param(lambda: Spread(1.0, 0.5, 1), ValueError, "sem must be 0 for one seed", id="spread-one-seed-sem"),
    pytest.param(lambda: Spread("a", 1.0, 2), TypeError, "mean must be a real number", id="spread-mean-str"),
    pytest.param(lambda: _distributed.wrap(torch.nn.Linear(2, 1), "xyz"), ValueError, "device 'xyz' is not a device torch knows",
                 id="wrap-unknown-device"),
    pytest.param(lambda: _distributed.wrap(torch.nn.Linear(2, 1), "cuda"), ValueError, "device='cuda' but this machine has no CUDA GPU",
                 id="wrap-cuda-without-gpu", marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")),
    pytest.param(lambda: lm_loss(torch.nn.Linear(2, 2), torch.randint(0, 2, (2, 3))), TypeError,
                 "model must be a course_lib GPT (or one wrapped by DDP or torch.compile), which maps token ids (B, T) to logits",
                 id="loss-linear"),
    pytest.param(lambda: lm_loss(torch.nn.Embedding(5, 5), torch.randint(0, 5, (2, 3))), TypeError, "got Embedding", id="loss-embedding"),
    pytest.param(lambda: naive_attention(torch.ones(1, 2, 3, 4), torch.ones(1, 2, 5, 4), torch.ones(1, 2, 5, 4)), ValueError,
                 "q, k and v must have one shape (..., T, head_dim), e.g. (B, heads, T, head_dim) (causal self-attention), got q (1, 2, 3, 4), "
                 "k (1, 2, 5, 4)", id="naive-attention-shapes"),
    pytest.param(lambda: naive_attention(torch.ones(3), torch.ones(3), torch.ones(3)), ValueError, "q, k and v must have one shape",
                 id="naive-attention-1d"),
    pytest.param(lambda: naive_attention(*[torch.ones(1, 1, 2, 2, dtype=torch.long)] * 3), TypeError,
                 "q, k and v must hold floating-point numbers of one dtype", id="naive-attention-int"),
    pytest.param(lambda: naive_attention(torch.ones(1, 1, 2, 2), torch.ones(1, 1, 2, 2, dtype=torch.float64), torch.ones(1, 1, 2, 2)),
                 TypeError, "got torch.float32, torch.float64 and torch.float32", id="naive-attention-dtypes"),
    pytest.param(lambda: CausalSelfAttention(_ATTENTION)(torch.ones(1, 3, 5)), ValueError, "x must be a (batch, time, n_embd=16) tensor",
                 id="attention-width"),
    pytest.param(lambda: CausalSelfAttention(_ATTENTION)(torch.ones(3, 16)), ValueError, "got shape (3, 16)", id="attention-2d"),
    pytest.param(lambda: flops_per_token(_ATTENTION, 100), ValueError, "sequence_length (100) must be <= the model's block_size (8)",
                 id="flops-sequence-past-block"),
    pytest.param(lambda: synthetic_batches(10, 2, 4, pinned=False)(-1), ValueError, "m must be >= 0", id="synthetic-m-negative"),
    pytest.param(lambda: synthetic_batches(10, 2, 4, pinned=False)(1.5), TypeError, "m must be an int", id="synthetic-m-float"),
    pytest.param(lambda: synthetic_batches(10, 2, 4, pinned=False)(True), TypeError, "m must be an int", id="synthetic-m-bool"),
]


def test_engine_2_valid_metrics_and_tracked_subsets_still_work():
    """Metrics as a float, an int, a NumPy number or a one-element tensor; probes of part of the trained model."""
    import numpy as np

    model, optimizer, _ = _setup()
    some = [(name, p) for name, p in model.named_parameters() if name.startswith("0.")]
    metrics = lambda m, b: {"f": 0.5, "i": 1, "np": np.float64(0.25), "t": torch.tensor([0.75])}
    history = _train(model_opt=(model, optimizer, None),
                     callbacks=[WeightChange(some), GradNorms(some), Evaluate([_batch(100)], 1, metrics=metrics)])
    assert [history.metric(f"eval_{k}")[-1] for k in ("f", "i", "np", "t")] == [0.5, 1.0, 0.25, 0.75]
    assert len(history.metric("update_norm")) == 2 and history.metric_names("grad_norm/") == ["grad_norm/0"]


# ---------------------------------------------------------------------------------------------- round 2 of the probe: lessons 01-05, stored results, tables

from course_lib import i18n as _i18n


def _load_damaged(load, file, change):
    """``load()`` with the results folder holding a copy of the shipped ``file`` that ``change(results)`` damaged."""
    import json

    results = json.loads((_stored.DATA / file).read_text(encoding="utf-8"))
    change(results)
    folder = _TMP / "damaged"
    folder.mkdir(exist_ok=True)
    (folder / file).write_text(json.dumps(results), encoding="utf-8")
    before, _stored.DATA = _stored.DATA, folder
    try:
        return load()
    finally:
        _stored.DATA = before


def _damaged_run(key, value):
    """Change the first run's ``key`` to ``value``."""
    return lambda results: results["runs"][0].__setitem__(key, value)


def _refused(file, command, error):
    """What a load says of a damaged file: its name, the command that writes it, and the part that is wrong."""
    return f"{_TMP / 'damaged' / file} is damaged or was not written by `{command}`: {error}"


def _bert_results(**changes):
    """Lesson 03's shipped results with ``changes`` to the first run."""
    results = _finetuning_bert.load_results("gpu")
    return {**results, "runs": [{**results["runs"][0], **changes}, *results["runs"][1:]]}


_BERT_COMMAND = "python -m course_lib.lessons.finetuning_bert --config gpu"
_GPT_COMMAND = "python -m course_lib.lessons.targeted_freezing_gpt --config gpu"
_OPTIONS_COMMAND = "python -m course_lib.lessons.optimization_options --config gpu"
_TEN_TOKENS = torch.arange(10).repeat(3)
_BERT_CPU = _finetuning_bert.CONFIGS["cpu"]

LESSONS_2 = [
    pytest.param(lambda: _schedules_lesson.late_excess(History()), ValueError, "history recorded no 'excess_loss'", id="late-excess-empty"),
    pytest.param(lambda: _schedules_lesson.late_jitter(History()), ValueError, "history recorded no 'w1'", id="late-jitter-empty"),
    pytest.param(lambda: _schedules_lesson.settled_step(History(), 0.01), ValueError, "history recorded no 'excess_loss'",
                 id="settled-empty"),
    pytest.param(lambda: _schedules_lesson.integral_law_holds_until(History()), ValueError, "history recorded no 'w1'",
                 id="integral-law-empty"),
    pytest.param(lambda: _schedules_lesson.accumulated_rate(History()), ValueError, "history is empty", id="accumulated-empty"),
    pytest.param(lambda: _schedules_lesson.run_seeds(Constant(), 0.1, 5, [0, 0]), ValueError, "seeds holds seed 0 twice",
                 id="run-seeds-duplicate"),
    pytest.param(lambda: _finetuning_bert.run_all(_BERT_CPU, progress=1), TypeError, "progress must be a function", id="bert-run-all-progress"),
    pytest.param(lambda: dataclasses.replace(_BERT_CPU, declared=10), ValueError, "declared must be >= 40", id="bert-declared-short"),
    pytest.param(lambda: dataclasses.replace(_BERT_CPU, seeds=(0, 0)), ValueError, "seeds holds seed 0 twice", id="bert-seeds-duplicate"),
    pytest.param(lambda: dataclasses.replace(_BERT_CPU, sgd_lr=0), ValueError, "sgd_lr must be > 0", id="bert-sgd-lr-zero"),
    pytest.param(lambda: dataclasses.replace(_BERT_CPU, probes="yes"), TypeError, "probes must be True or False", id="bert-probes-str"),
    pytest.param(lambda: _finetuning_bert.part_norm(_NORMS, "attention"), ValueError, "part must be 'mlp' or one of the run's parts",
                 id="bert-part-norm-unknown"),
    pytest.param(lambda: _finetuning_bert.ClipPerPart([], 0.0), ValueError, "max_norm must be > 0", id="bert-clip-per-part-zero"),
    pytest.param(lambda: _finetuning_bert.update_ratio(_finetuning_bert.load_results("gpu"), "frozen", "frozen_noclip", "attention"),
                 ValueError, "part must be None or one of", id="bert-update-ratio-part"),
    pytest.param(lambda: _finetuning_bert.update_ratio(_finetuning_bert.load_results("gpu"), "frozen", "sgd"), ValueError,
                 "must have runs of the same seeds", id="bert-update-ratio-other-file"),
    pytest.param(lambda: _finetuning_bert.timing_saving([]), ValueError, "repeats is empty", id="bert-timing-empty"),
    pytest.param(lambda: _finetuning_bert.clipped_steps({**_NORMS, "variant": "frozen", "clipped_fraction": 0.5}, 0.0), ValueError,
                 "clip must be > 0", id="bert-clipped-steps-zero"),
    pytest.param(lambda: _finetuning_bert.clipped_steps({**_finetuning_bert.load_results("gpu")["runs"][0], "variant": "x"}, 1.0),
                 ValueError, "result['variant'] must be one of 'frozen'", id="bert-clipped-steps-variant"),
    pytest.param(lambda: _finetuning_bert.load_results("gpu_timing"), ValueError, "name must be one of 'cpu', 'gpu', 'gpu_sgd'",
                 id="bert-load-timing-by-name"),
    pytest.param(lambda: _load_damaged(_finetuning_bert.load_results, "lesson03_gpu.json", lambda r: r.pop("runs")), ValueError,
                 _refused("lesson03_gpu.json", _BERT_COMMAND, "results has no 'runs'"), id="bert-load-no-runs"),
    pytest.param(lambda: _load_damaged(_finetuning_bert.load_results, "lesson03_gpu.json", lambda r: r.__setitem__("runs", "x")),
                 ValueError, _refused("lesson03_gpu.json", _BERT_COMMAND, "results['runs'] must be a list, got 'x'"), id="bert-load-runs-str"),
    pytest.param(lambda: _load_damaged(_finetuning_bert.load_results, "lesson03_gpu.json", _damaged_run("accuracy_after", None)),
                 ValueError, _refused("lesson03_gpu.json", _BERT_COMMAND, "results['runs'][0]['accuracy_after'] must be a number, got None"),
                 id="bert-load-accuracy-null"),
    pytest.param(lambda: _load_damaged(_finetuning_bert.load_results, "lesson03_gpu.json", _damaged_run("accuracy_after", math.nan)),
                 ValueError, _refused("lesson03_gpu.json", _BERT_COMMAND,
                                      "results['runs'][0]['accuracy_after'] must be a finite number in [0.0, 1.0], got nan"),
                 id="bert-load-accuracy-nan"),
    pytest.param(lambda: _load_damaged(_finetuning_bert.load_results, "lesson03_gpu.json", _damaged_run("accuracy_after", 1.5)),
                 ValueError, "results['runs'][0]['accuracy_after'] must be a finite number in [0.0, 1.0], got 1.5", id="bert-load-accuracy-above-1"),
    pytest.param(lambda: _load_damaged(_finetuning_bert.load_results, "lesson03_gpu.json", _damaged_run("variant", "bogus")),
                 ValueError, "results['runs'][0]['variant'] must be one of 'frozen', 'full'", id="bert-load-variant-unknown"),
    pytest.param(lambda: _finetuning_bert.summarize(_bert_results(accuracy_after=math.nan)), ValueError,
                 "results['runs'][0]['accuracy_after'] must be a finite number in [0.0, 1.0], got nan", id="bert-summarize-nan"),
    pytest.param(lambda: _finetuning_bert.paired_gap(_bert_results(accuracy_after=None), "frozen", "full"), ValueError,
                 "results['runs'][0]['accuracy_after'] must be a number, got None", id="bert-paired-gap-null"),
    pytest.param(lambda: _tables.finetune_table(_bert_results(variant="bogus"), "en"), ValueError,
                 "results['runs'][0]['variant'] must be one of 'frozen', 'full'", id="finetune-table-variant-unknown"),
    pytest.param(lambda: _tables.finetune_table(_finetuning_bert.load_results("gpu"), "en", []), ValueError, "variants is empty",
                 id="finetune-table-no-variant"),
    pytest.param(lambda: _load_damaged(targeted_freezing_gpt.load_results, "lesson04_gpu.json", lambda r: r.pop("p_before")), ValueError,
                 _refused("lesson04_gpu.json", _GPT_COMMAND, "results has no 'p_before'"), id="gpt-load-no-p-before"),
    pytest.param(lambda: _load_damaged(targeted_freezing_gpt.load_results, "lesson04_gpu.json", _damaged_run("p", [0.2, 1.5])), ValueError,
                 "results['runs'][0]['p'][1] must be a finite number in [0.0, 1.0], got 1.5", id="gpt-load-p-above-1"),
    pytest.param(lambda: targeted_freezing_gpt.run_all(targeted_freezing_gpt.CONFIGS["cpu"], progress="yes"), TypeError,
                 "progress must be a function", id="gpt-run-all-progress"),
    pytest.param(lambda: targeted_freezing_gpt.flop_saving(torch.nn.Linear(2, 2)), TypeError, "model must be a course_lib.models.gpt.GPT",
                 id="gpt-flop-saving-linear"),
    pytest.param(lambda: targeted_freezing_gpt.noise_variance([]), ValueError, "losses must hold at least 3 losses", id="gpt-noise-empty"),
    pytest.param(lambda: targeted_freezing_gpt.noise_variance([1.0]), ValueError, "losses must hold at least 3 losses", id="gpt-noise-one"),
    pytest.param(lambda: targeted_freezing_gpt.noise_variance([math.nan, 1.0, 2.0]), ValueError, "losses[0] must be a finite number",
                 id="gpt-noise-nan"),
    pytest.param(lambda: targeted_freezing_gpt.p_summary([math.inf], {"p": [0.1]}, {"p": [0.2]}), ValueError,
                 "p_before[0] must be a finite number", id="gpt-p-summary-inf"),
    pytest.param(lambda: targeted_freezing_gpt.Config("x", steps=2, warmup=1), ValueError, "steps must be >= 3", id="gpt-config-steps-2"),
    pytest.param(lambda: targeted_freezing_gpt.Config("x", sample_seeds=(1, 1)), ValueError, "sample_seeds holds seed 1 twice",
                 id="gpt-config-sample-seeds-duplicate"),
    pytest.param(lambda: _load_damaged(_options.load_results, "lesson05_gpu.json", lambda r: r.__setitem__("batch_sizes", [{"batch": 8}])),
                 ValueError, _refused("lesson05_gpu.json", _OPTIONS_COMMAND, "results['batch_sizes'][0] has no 'ms_per_step'"),
                 id="options-load-batch-row"),
    pytest.param(lambda: _load_damaged(_options.load_results, "lesson05_gpu.json", lambda r: r.pop("precisions")), ValueError,
                 "results has no 'precisions'", id="options-load-no-precisions"),
    pytest.param(lambda: _load_damaged(_options.load_benchmark, "lesson05_nanogpt.json", lambda r: r.pop("comparison")), ValueError,
                 "lesson05_nanogpt.json is damaged or was not written by `python benchmarks/nanogpt_vs_course.py --nanogpt PATH`: "
                 "results has no 'comparison'", id="options-benchmark-no-comparison"),
    pytest.param(lambda: _options.run_all(_options.CONFIGS["cpu"], progress=None), TypeError, "progress must be a function",
                 id="options-run-all-progress"),
    pytest.param(lambda: _stored.require({"ab": 1}, "ab", "x"), TypeError, "keys must be a sequence of keys", id="require-keys-str"),
    pytest.param(lambda: _stored.path("05", "../../../etc/x"), ValueError, "name must name a file in the results folder", id="path-outside"),
    pytest.param(lambda: _stored.path("05", ""), ValueError, "name must name a file in the results folder", id="path-empty"),
    pytest.param(lambda: _stored.rounded(torch.tensor(1.0)), TypeError, "value must be JSON data", id="rounded-tensor"),
    pytest.param(lambda: _stored.rounded({"runs": [object()]}), TypeError, "value['runs'][0] must be JSON data", id="rounded-object"),
    pytest.param(lambda: _stored.validate({"n": True}, {"n": _stored.Int(1)}), ValueError, "results['n'] must be an int >= 1, got True",
                 id="validate-bool"),
    pytest.param(lambda: pretraining.PretrainConfig("tiny", steps=2, warmup=5), ValueError, "warmup must be in [0, 2]", id="pretrain-warmup"),
    pytest.param(lambda: pretraining.PretrainConfig(""), ValueError, "name must be letters, digits, - and _ only", id="pretrain-name-empty"),
    pytest.param(lambda: pretraining.PretrainConfig("../a"), ValueError, "name must be letters, digits, - and _ only", id="pretrain-name-path"),
    pytest.param(lambda: pretraining.cache_path(pretraining.PRETRAIN["cpu"], 5), TypeError, "cache must be None", id="cache-path-int"),
    pytest.param(lambda: pretraining.code_digest("nope.mod"), ValueError, "module must name a module inside course_lib", id="digest-unknown"),
    pytest.param(lambda: pretraining.code_digest(3), TypeError, "module must be a dotted module name", id="digest-int"),
    pytest.param(lambda: data_parallel.compare_processes(_TMP / "dp", processes=1), ValueError, "processes must be >= 2",
                 id="compare-one-process"),
    pytest.param(lambda: data_parallel.compare_processes(None), TypeError, "folder must be a folder's path", id="compare-folder-None"),
    pytest.param(lambda: data_parallel.launch(None, 1), TypeError, "out must be a folder's path", id="launch-out-None"),
    pytest.param(lambda: _i18n.bracketed(5, "en"), TypeError, "items must be a list of written items", id="bracketed-int"),
    pytest.param(lambda: _i18n.bracketed([0.5, 1.0], "en"), TypeError, "items[0] must be a string", id="bracketed-numbers"),
    pytest.param(lambda: _tables.measured_table([{"a": 1}], [], "en"), ValueError, "columns is empty", id="measured-no-columns"),
    pytest.param(lambda: _tables.with_spread(spread([1.0, 1.1, 0.9]), "en", 2, 0), ValueError, "scale must be a finite number > 0",
                 id="with-spread-scale-zero"),
    pytest.param(lambda: sentiment.classification_loss(None, _encoded()), TypeError, "model must be the classifier", id="loss-model-None"),
    pytest.param(lambda: sentiment.classification_loss(torch.nn.Linear(2, 2), {"input_ids": torch.zeros(2, 2)}), ValueError,
                 "batch has no 'labels'", id="loss-no-labels"),
    pytest.param(lambda: sentiment.accuracy(torch.nn.Linear(2, 2), [1]), TypeError, "batch must be a dict of tensors", id="accuracy-list"),
    pytest.param(lambda: train_tokenizer([""], 300), ValueError, "texts holds no non-empty text", id="tokenizer-empty-text"),
    pytest.param(lambda: characteristic_tokens(_TEN_TOKENS, _TEN_TOKENS, 10**6), ValueError, "S is empty", id="characteristic-k-past-vocabulary"),
    pytest.param(lambda: characteristic_tokens(_TEN_TOKENS, _TEN_TOKENS, 3), ValueError, "S is empty", id="characteristic-same-text"),
    pytest.param(lambda: token_share(_TEN_TOKENS, set()), ValueError, "S is empty", id="share-S-empty"),
    pytest.param(lambda: token_share(_TEN_TOKENS, {-5}), ValueError, "S must hold token ids >= 0", id="share-S-negative"),
    pytest.param(lambda: plotting.plot_loss_curves([1.0] * 5, [1.0] * 5, "en", 20), ValueError, "window must be at most the curves' 5 steps",
                 id="loss-curves-window"),
]

SOURCE = [
    pytest.param(lambda: source.code_of(3), TypeError, "obj: expected a function, method or class", id="code-of-int"),
    pytest.param(lambda: source.code_of(len), TypeError, "obj: expected a function, method or class", id="code-of-builtin"),
]


def _torch_bytes(obj) -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


# Add a module's table here (e.g. "training": TRAINING); ids become "training-<case id>".
TABLES = {
    "schedules": SCHEDULES,
    "clipping": CLIPPING,
    "i18n": I18N,
    "report": REPORT,
    "plotting": PLOTTING,
    "widgets": WIDGETS,
    "training": TRAINING,
    "gpt": LANGUAGE_MODEL,
    "exercises": EXERCISES,
    "engine": ENGINE,
    "timing": TIMING,
    "stats": STATS,
    "stored": STORED,
    "optimization_options": OPTIMIZATION_OPTIONS,
    "lesson_summaries": LESSON_SUMMARIES,
    "tables": TABLES_SHOW,
    "models": MODELS,
    "fast_step": FAST_STEP,
    "toy": TOY,
    "corpus": CORPUS,
    "sentiment": SENTIMENT,
    "finetuning": FINETUNING,
    "targeted-freezing": TARGETED_FREEZING,
    "distributed": DISTRIBUTED,
    "online": ONLINE,
    "plain": PLAIN,
    "engine-2": ENGINE_2,
    "lessons-2": LESSONS_2,
    "source": SOURCE,
}
CASES = [pytest.param(*case.values, id=f"{module}-{case.id}", marks=case.marks) for module, table in TABLES.items() for case in table]


@pytest.mark.parametrize("call, error, names_argument", CASES)
def test_bad_input_raises_a_clear_error(call, error, names_argument):
    with pytest.raises(error, match=re.escape(names_argument)) as raised:
        call()
    assert type(raised.value) is error  # not a subclass raised from deep inside torch or Python


# Edge values that are valid: they must keep working, with the same numbers as before.


def test_infinite_threshold_only_measures():
    model = model_with_grads()
    before = [p.grad.clone() for p in model.parameters()]
    assert threshold_at(math.inf, 0) == math.inf
    assert threshold_at(2, 0) == 2.0 and isinstance(threshold_at(2, 0), float)
    assert delayed(math.inf, 0)(5) == math.inf
    norm = clip_grad_norm_(model.parameters(), math.inf)
    clip_grad_value_(model.parameters(), math.inf)
    assert all(torch.equal(a, p.grad) for a, p in zip(before, model.parameters()))
    assert norm.item() == pytest.approx(global_grad_norm(model.parameters()).item())
    assert clip_grad_norm_([], 1.0).item() == 0.0 and clip_grad_norm_per_layer_({"none": []}, 1.0) == {"none": 0.0}


def test_measures_accept_zero_inf_and_tensor_norms():
    assert clip_factor(0.0, 1.0) == 1.0 and clip_factor(math.inf, 1.0) == 0.0 and clip_factor(3, math.inf) == 1.0
    assert norm_lost(math.inf, 1.0) == math.inf and norm_lost(0, 2) == 0.0
    norm = clip_grad_norm_(model_with_grads().parameters(), math.inf)
    assert float(clip_factor(norm, 0.1)) == pytest.approx(0.1 / norm.item())


def test_schedule_edge_values():
    assert linear_with_warmup(0, 1, min_lr_ratio=0).lrs(3, 1.0) == [1.0, 0.0, 0.0]
    assert cosine_with_warmup(0, 4, min_lr_ratio=1).lrs(4, 2) == [2.0] * 4
    assert cosine_with_warmup(3, 3).lrs(4, 1.0) == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0])
    assert CosineDecay(10, num_cycles=1e-9)(5) == pytest.approx(1.0)
    assert Constant().lrs(0, 0.1) == [] and Constant().lr_at(0, torch.tensor(0.5)) == 0.5


def test_scheduler_state_carries_the_schedule_and_loads_with_weights_only(tmp_path):
    schedule = cosine_with_warmup(2, 10, num_cycles=1.5, min_lr_ratio=0.1)
    first = ScheduledLR(optimizer(), schedule)
    for _ in range(4):
        first.optimizer.step()
        first.step()
    torch.save(first.state_dict(), tmp_path / "scheduler.pt")
    state = torch.load(tmp_path / "scheduler.pt", weights_only=True)
    assert state["schedule_fingerprint"] == repr(schedule)
    second = ScheduledLR(optimizer(), cosine_with_warmup(2, 10, num_cycles=1.5, min_lr_ratio=0.1))  # equal, not the same object
    second.load_state_dict(state)
    assert second.last_epoch == 4 and second.get_last_lr() == first.get_last_lr()


def test_scheduler_state_of_a_schedule_without_its_own_repr():
    class Halving(Schedule):
        def factor(self, step):
            return 0.5**step

    state = scheduler_state(Halving())
    assert state["schedule_fingerprint"] == "test_scheduler_state_of_a_schedule_without_its_own_repr.<locals>.Halving()"
    ScheduledLR(optimizer(), Halving()).load_state_dict(state)
    with pytest.raises(ValueError, match="state_dict was saved by a ScheduledLR over"):
        ScheduledLR(optimizer(), Constant()).load_state_dict(state)


def test_numbers_are_written_as_before():
    assert number(math.nan, "en") == "nan" and significant(-math.inf, "vi") == "-inf"
    assert number(5, "vi", 0) == "5" and number(1.0625, "vi", 2) == "1,06"
    assert number(torch.tensor(1.25), "en", 2) == "1.25" and significant(1234567, "en") == "1.23e+06"


def test_tracker_edge_groupings():
    model = model_with_grads()
    assert list(LayerGradNorms(model.named_parameters(), lambda name: "all")()) == ["all"]
    assert set(LayerGradNorms(model.named_parameters(), {"weights": "weight$"})()) == {"weights", "other"}
    assert set(LayerGradNorms(list(model.named_parameters()), {"first": re.compile(r"^0\.")})()) == {"first", "other"}


def test_table_with_header_only():
    assert str(Table(["a", "b"], [])).splitlines() == ["a | b", "--+--"]


def test_figures_of_edge_values_are_still_drawn():
    import matplotlib.pyplot as plt

    for fig in (plot_rates({"a": torch.tensor([0.1, 0.2]), "b": (0.3, 0.1)}, "en"), explorer_figure(10, 10, 4.0, 1.0, "en"),
                plotting.plot_loss_curves([1.0] * 5, [2.0] * 5, "en", window=5)):
        plt.close(fig)


# Lesson 02, second edition: the sweep of rates, lesson 03's norms at step 0, the table of rates.

LESSON_02_SECOND = [
    pytest.param(lambda: _clipping_lesson.steps_to_target_by_rate(()), TypeError, "etas must be a non-empty tuple", id="rates-empty"),
    pytest.param(lambda: _clipping_lesson.steps_to_target_by_rate(0.5), TypeError, "etas must be a non-empty tuple", id="rates-number"),
    pytest.param(lambda: _clipping_lesson.steps_to_target_by_rate((0.5, -1.0)), ValueError, "etas[1] must be a finite learning rate",
                 id="rates-negative"),
    pytest.param(lambda: _clipping_lesson.steps_to_target_by_rate((0.5,), max_norm=math.inf), ValueError,
                 "max_norm must be a finite clipping threshold", id="rates-threshold-inf"),
    pytest.param(lambda: _clipping_lesson.steps_to_target_by_rate((0.5,), num_steps=0), ValueError, "num_steps", id="rates-no-steps"),
    pytest.param(lambda: _clipping_lesson.steps_to_target_by_rate((0.5,), target=0), ValueError, "target must be a finite loss",
                 id="rates-target-zero"),
    pytest.param(lambda: _clipping_lesson.start_norms([]), TypeError, "results must be", id="start-norms-list"),
    pytest.param(lambda: _clipping_lesson.start_norms({"config": {}}), ValueError, "results holds no list 'runs'", id="start-norms-no-runs"),
    pytest.param(lambda: _clipping_lesson.start_norms(_finetuning_bert.load_results(), "frozen_typo"), ValueError,
                 "variant must be one of", id="start-norms-variant"),
    pytest.param(lambda: _tables.clipping_by_rate((0.5,), "fr"), ValueError, "lang", id="rate-table-language"),
]


@pytest.mark.parametrize("call, error, names_argument", LESSON_02_SECOND)
def test_lesson_02_second_edition_bad_input_raises_a_clear_error(call, error, names_argument):
    with pytest.raises(error, match=re.escape(names_argument)):
        call()
# Lesson 01, second edition.

from course_lib.lessons.lr_schedules import late_loss, phrase_batches, tiny_gpt, train_tiny_gpt  # noqa: E402
from course_lib.show.plotting import plot_warmup_losses  # noqa: E402

LESSON_01_2E = [
    pytest.param(lambda: tiny_gpt(-1), ValueError, "seed", id="tiny-gpt-seed"),
    pytest.param(lambda: tiny_gpt(0.5), TypeError, "seed", id="tiny-gpt-seed-float"),
    pytest.param(lambda: phrase_batches(-2), ValueError, "seed", id="phrase-seed"),
    pytest.param(lambda: train_tiny_gpt(0.0, 0, 0), ValueError, "eta_max", id="tiny-gpt-eta"),
    pytest.param(lambda: train_tiny_gpt(0.1, 200, 0), ValueError, "num_warmup_steps", id="tiny-gpt-warmup-too-long"),
    pytest.param(lambda: late_loss([1.0, 2.0]), TypeError, "history", id="late-loss-list"),
    pytest.param(lambda: late_loss(History()), ValueError, "history recorded no loss", id="late-loss-empty"),
    pytest.param(lambda: late_loss(History(step=[0], lr=[0.1], loss=[1.0]), last=0), ValueError, "last", id="late-loss-last"),
    pytest.param(lambda: plot_warmup_losses({}, 0.1, "en"), ValueError, "runs is empty", id="warmup-plot-empty"),
    pytest.param(lambda: plot_warmup_losses({"a": [History()]}, 0.1, "en"), TypeError, "runs['a'] must be", id="warmup-plot-no-loss"),
    pytest.param(lambda: plot_warmup_losses({"a": [History(step=[0], lr=[0.1], loss=[1.0])]}, 0.0, "en"), ValueError, "eta_max",
                 id="warmup-plot-eta"),
    pytest.param(lambda: plot_warmup_losses({"a": [History(step=[0], lr=[0.1], loss=[1.0])]}, 0.1, "fr"), ValueError, "lang",
                 id="warmup-plot-lang"),
]


@pytest.mark.parametrize("call, error, names_argument", LESSON_01_2E)
def test_lesson_01_second_edition_bad_input_raises_a_clear_error(call, error, names_argument):
    with pytest.raises(error, match=re.escape(names_argument)) as raised:
        call()
    assert type(raised.value) is error
# Lesson 04, second edition: the freezing rule, the FLOP and memory counts, the timing study.
LESSON04_SECOND = [
    pytest.param(lambda: targeted_freezing_gpt.trains("transformer.h.0.attn.c_attn.weight", "top", 4), ValueError,
                 "variant must be one of", id="trains-variant"),
    pytest.param(lambda: targeted_freezing_gpt.trains(3, "full", 4), TypeError, "name must be a parameter's name", id="trains-name"),
    pytest.param(lambda: targeted_freezing_gpt.trains("transformer.wte.weight", "full", 0), ValueError, "n_layer must be",
                 id="trains-layers"),
    pytest.param(lambda: targeted_freezing_gpt.bits_per_byte(2.0, 0.0), ValueError, "bytes_per_token must be a finite number > 0",
                 id="bpb-bytes"),
    pytest.param(lambda: targeted_freezing_gpt.bits_per_byte(math.inf, 1.0), ValueError, "loss must be", id="bpb-loss"),
    pytest.param(lambda: targeted_freezing_gpt.update_consistency([0.1], [0.0], 4), ValueError, "lrs holds no step",
                 id="consistency-no-rate"),
    pytest.param(lambda: targeted_freezing_gpt.update_consistency([0.1], [0.1], 0), ValueError, "n must be", id="consistency-n"),
    pytest.param(lambda: targeted_freezing_gpt.state_memory("model"), TypeError, "model must be a torch.nn.Module", id="state-memory"),
    pytest.param(lambda: targeted_freezing_gpt.TimingConfig("x", processes=1), ValueError, "processes must be", id="timing-processes"),
    pytest.param(lambda: targeted_freezing_gpt.TimingConfig("x", variants=("targeted",)), ValueError, "variants must include 'full'",
                 id="timing-no-full"),
    pytest.param(lambda: targeted_freezing_gpt.time_variants(targeted_freezing_gpt.CONFIGS["cpu"]), TypeError,
                 "config must be a TimingConfig", id="time-variants-config"),
    pytest.param(lambda: targeted_freezing_gpt.load_timing("gpu"), ValueError, "name must be one of 'timing-cpu', 'timing-gpu'",
                 id="load-timing-name"),
    pytest.param(lambda: targeted_freezing_gpt.timing_summary({"processes": []}), ValueError, "results['processes'] is empty",
                 id="timing-summary-empty"),
    pytest.param(lambda: targeted_freezing_gpt.measure(None, None, [], None, targeted_freezing_gpt.CONFIGS["cpu"], "full", 0, ""),
                 ValueError, "callbacks must hold the DataChecksum", id="measure-callbacks"),
]


@pytest.mark.parametrize("call, error, message", LESSON04_SECOND)
def test_lesson04_second_edition_bad_inputs(call, error, message):
    with pytest.raises(error, match=re.escape(message)):
        call()


# Lesson 05, second edition: what learners get wrong (course_lib.lessons.training_mistakes), and launch's module.
from course_lib.lessons import training_mistakes as _mistakes

TRAINING_MISTAKES = [
    pytest.param(lambda: _mistakes.accumulation_normalisation(((16, 14),)), ValueError, "lengths must hold at least 2 micro-batches",
                 id="accumulation-one-micro-batch"),
    pytest.param(lambda: _mistakes.accumulation_normalisation(((16, 17), (3,))), ValueError, "lengths[0][1] must be in [1, 16]",
                 id="accumulation-too-long"),
    pytest.param(lambda: _mistakes.accumulation_normalisation(((4,), ())), ValueError, "lengths[1] is empty", id="accumulation-empty"),
    pytest.param(lambda: _mistakes.accumulation_normalisation("16,14"), TypeError, "lengths must be a tuple", id="accumulation-str"),
    pytest.param(lambda: _mistakes.accumulation_normalisation(seed=-1), ValueError, "seed must be >= 0", id="accumulation-seed"),
    pytest.param(lambda: _mistakes.accumulation_under_ddp(_TMP, processes=1), ValueError, "processes must be >= 2",
                 id="ddp-one-process"),
    pytest.param(lambda: _mistakes.accumulation_under_ddp(_TMP, accumulate=0), ValueError, "accumulate must be >= 1",
                 id="ddp-accumulate-zero"),
    pytest.param(lambda: _mistakes.accumulation_under_ddp(3), TypeError, "folder must be a folder's path", id="ddp-folder-int"),
    pytest.param(lambda: _mistakes.main(["--out", str(_TMP), "--accumulate", "0"]), ValueError, "--accumulate must be >= 1",
                 id="ddp-main-accumulate"),
    pytest.param(lambda: _mistakes.main(["--out", str(_TMP), "--backend", "nccl"]), ValueError, "--backend must be gloo",
                 id="ddp-main-backend"),
    pytest.param(lambda: _mistakes.schedule_step_counting(1), ValueError, "optimizer_steps must be >= 2", id="schedule-steps"),
    pytest.param(lambda: _mistakes.schedule_step_counting(accumulate=0), ValueError, "accumulate must be >= 1", id="schedule-accumulate"),
    pytest.param(lambda: _mistakes.schedule_step_counting(processes=2.0), TypeError, "processes must be an int", id="schedule-processes"),
    pytest.param(lambda: _mistakes.schedule_step_counting(warmup_fraction=1.0), ValueError, "warmup_fraction must be in (0, 1)",
                 id="schedule-warmup"),
    pytest.param(lambda: _mistakes.schedule_step_counting(min_lr_ratio=1.0), ValueError, "min_lr_ratio must be in [0, 1)",
                 id="schedule-floor"),
    pytest.param(lambda: _mistakes.fp16_underflow(()), ValueError, "shrinks is empty", id="fp16-no-shrink"),
    pytest.param(lambda: _mistakes.fp16_underflow((1, 0)), ValueError, "shrinks[1] must be >= 1", id="fp16-shrink-zero"),
    pytest.param(lambda: _mistakes.fp16_underflow(scale=0.5), ValueError, "scale must be a finite number >= 1", id="fp16-scale"),
    pytest.param(lambda: _mistakes.grad_scaler_steps(0), ValueError, "steps must be >= 1", id="scaler-steps"),
    pytest.param(lambda: _mistakes.grad_scaler_steps(init_scale=math.inf), ValueError, "init_scale must be a finite number > 0",
                 id="scaler-init-scale"),
    pytest.param(lambda: _mistakes.grad_scaler_steps(growth_interval=0), ValueError, "growth_interval must be >= 1", id="scaler-growth"),
    pytest.param(lambda: _mistakes.clip_before_unscale(scale=0.0), ValueError, "scale must be a finite number >= 1", id="clip-scale"),
    pytest.param(lambda: _mistakes.clip_before_unscale(max_norm=-1.0), ValueError, "max_norm must be a finite number > 0",
                 id="clip-max-norm"),
    pytest.param(lambda: _mistakes.clip_before_unscale(lr="0.1"), TypeError, "lr must be a real number", id="clip-lr-str"),
    pytest.param(lambda: _mistakes.mfu_against_peaks([]), TypeError, "results must be the stored benchmark", id="mfu-results-list"),
    pytest.param(lambda: _mistakes.mfu_against_peaks({}), ValueError, "micro_batch=12: results holds no course row", id="mfu-no-row"),
    pytest.param(lambda: _mistakes.mfu_against_peaks(None, micro_batch=0), ValueError, "micro_batch must be >= 1", id="mfu-micro-batch"),
    pytest.param(lambda: data_parallel.launch(_TMP, 2, module="os"), ValueError, "module must be one of", id="launch-module"),
]


@pytest.mark.parametrize("call, error, names_argument", TRAINING_MISTAKES)
def test_training_mistakes_bad_input_raises_a_clear_error(call, error, names_argument):
    with pytest.raises(error, match=re.escape(names_argument)) as raised:
        call()
    assert type(raised.value) is error
