"""A clear error for every bad input.

One table of cases per module: ``pytest.param(call, error type, text that must appear in the message,
id=...)``; the text names the argument.  Every table is listed in ``TABLES`` at the bottom and
checked by one test; a new module's table is one more list and one more entry there.  Below the
tables, the edge values that must keep working.
"""

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
from course_lib.i18n import check_language, count, number, significant, text
from course_lib.show.plotting import (
    plot_clip_directions,
    plot_clipping_runs,
    plot_excess_loss,
    plot_integral_law,
    plot_rates,
)
from course_lib.show.report import Table
from course_lib.lessons import pretraining
from course_lib.lessons import data_parallel, finetuning_bert, online, plain, sentiment, targeted_freezing_gpt
from course_lib.lessons.corpus import TextTokenizer, characteristic_tokens, encode_texts
from course_lib.engine.distributed import child_environment, child_error
from course_lib.engine.distributed import setup as distributed_setup
from course_lib.show import exercises, plotting, widgets
from course_lib.lessons.corpus import TokenWindows, finetuning_text, held_out_blocks, split_held_out, token_share, train_tokenizer
from course_lib.models.gpt import GPT, GPTConfig, flops_per_token, generate
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
from course_lib.engine.checkpoints import load_checkpoint
from course_lib.engine.data import make_loader, pick_device
from course_lib.show.exercises import check_clip_coefficient, check_mfu, check_optimizer_groups, check_warmup_cosine
from course_lib.engine.stats import spread
from course_lib.lessons.lr_schedules import integral_law_holds_until, paired_difference
from course_lib.engine.freezing import freeze, param_groups, trainable_ratio
from course_lib.models.toy import train_softmax_toy
from course_lib.engine.training import Callback, History, train
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
    pytest.param(lambda: plotting.plot_finetune_norms({"grad_norm": [1.0]}, 1.0, "en"), ValueError, "run lacks 'grad_norm_mlp'",
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
    """A real checkpoint relabelled with the format before this one (2: no clip, accumulate or callbacks' states)."""
    path = _TMP / f"{name}.pt"
    state = torch.load(_checkpoint("whole"), weights_only=True)
    state["format"] = 2
    torch.save(state, path)
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
    pytest.param(lambda: _resume(_older_format("format-2")), ValueError, "has format 2, written by another version of course_lib",
                 id="resume-older-format"),
    pytest.param(lambda: _resume(_broken("empty", b"")), ValueError, "cannot be read", id="checkpoint-empty"),
    pytest.param(lambda: _resume(_broken("truncated", None)), ValueError, "cannot be read", id="checkpoint-truncated"),
    pytest.param(lambda: _resume(_broken("corrupt", b"not a checkpoint at all" * 10)), ValueError, "cannot be read", id="checkpoint-corrupt"),
    pytest.param(lambda: load_checkpoint(_broken("foreign", _torch_bytes({"weights": torch.zeros(2)})), model=_setup()[0], optimizer=_setup()[1]),
                 ValueError, "is not a course_lib checkpoint", id="checkpoint-foreign-dict"),
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


_NORMS = {"grad_norm": [2.0, 0.5], "grad_norm_mlp": [1.0, 0.2], "grad_norm_classifier": [1.5, 0.4], "norm_lost": [1.0, 0.0]}
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
    pytest.param(lambda: finetuning_bert.load_results("tpu"), ValueError, "name must be one of 'cpu', 'gpu'", id="load-unknown"),
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
    pytest.param(lambda: targeted_freezing_gpt.flop_saving(torch.nn.ReLU()), ValueError, "model has no weight matrix", id="flop-saving"),
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
    "corpus": CORPUS,
    "sentiment": SENTIMENT,
    "finetuning": FINETUNING,
    "targeted-freezing": TARGETED_FREEZING,
    "distributed": DISTRIBUTED,
    "online": ONLINE,
    "plain": PLAIN,
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
    assert clip_grad_norm_([], 1.0).item() == 0.0 and clip_grad_norm_per_layer_({}, 1.0) == {}


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
