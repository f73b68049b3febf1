"""course_lib.engine.training and its callbacks: order of operations, records, precision, accumulation, data, resume."""

import collections
import dataclasses
import math
import re

import pytest
import torch

from course_lib.engine.data import count_tokens
from course_lib.show.widgets import progress_bar
from course_lib.engine.callbacks import (
    DataChecksum,
    Evaluate,
    GradNorms,
    Throughput,
    UnfreezeAt,
    WeightChange,
    evaluate,
)
from course_lib.engine.checkpoints import load_checkpoint, unwrap
from course_lib.engine.clipping import delayed
from course_lib.engine.data import checksum, make_loader, pick_device, to_device
from course_lib.engine.schedules import Schedule, ScheduledLR, cosine_with_warmup, linear_with_warmup
from course_lib.engine.training import Callback, History, forward_backward, train

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])  # the GPU CI job runs both

X = torch.randn(64, 6, generator=torch.Generator().manual_seed(1))
Y = X @ torch.randn(6, 1, generator=torch.Generator().manual_seed(2))


def batches(step):
    index = torch.randint(0, 64, (8,), generator=torch.Generator().manual_seed(step))
    return X[index], Y[index]


def mse(model, batch):
    x, y = batch
    return torch.nn.functional.mse_loss(model(x), y)


def setup(seed=0, lr=0.05, momentum=0.9, schedule=True):
    """Model, optimizer and (if ``schedule``) scheduler; without one the rate stays at ``lr``."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Dropout(0.2), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    scheduler = ScheduledLR(optimizer, cosine_with_warmup(3, 40)) if schedule else None
    return model, optimizer, scheduler


class Seen(Callback):
    """Records a fingerprint of every batch the loop trains on."""

    def on_step_begin(self, state):
        state.log("batch_sum", sum(float(b[0].sum()) for b in state.batches))


# ---------------------------------------------------------------------------------------------- resume


@pytest.mark.parametrize("device", DEVICES)
def test_resumed_run_equals_uninterrupted_run(tmp_path, device):
    model, optimizer, scheduler = setup()
    full = train(model, optimizer, batches, mse, 30, scheduler=scheduler, clip=0.5, device=device)
    reference = [p.detach().clone() for p in model.parameters()]

    ckpt = tmp_path / "run.pt"
    model, optimizer, scheduler = setup()
    train(model, optimizer, batches, mse, 12, scheduler=scheduler, clip=0.5, device=device, checkpoint=ckpt, checkpoint_every=4)
    torch.manual_seed(12345)  # a new process would start with other random states
    model, optimizer, scheduler = setup(seed=99)
    resumed = train(
        model, optimizer, batches, mse, 30, scheduler=scheduler, clip=0.5, device=device, checkpoint=ckpt,
        checkpoint_every=10, resume=True,
    )
    assert next(model.parameters()).device.type == device
    for a, b in zip(model.parameters(), reference):
        assert torch.equal(a.detach(), b)
    assert resumed.loss == full.loss and resumed.lr == full.lr and resumed.step == list(range(30))


def test_resumed_loader_run_sees_the_same_batches(tmp_path):
    """A DataLoader from make_loader: 3 epochs of 8 batches, stopped mid-epoch 2 and resumed."""
    dataset = torch.utils.data.TensorDataset(X, Y)
    model, optimizer, _ = setup(schedule=False)
    full = train(model, optimizer, make_loader(dataset, 8, seed=3, device="cpu"), mse, 22, callbacks=[Seen()], device="cpu")
    assert len(set(full.metric("batch_sum")[:8])) == 8 and full.metric("batch_sum")[:8] != full.metric("batch_sum")[8:16]

    model, optimizer, _ = setup(schedule=False)
    ckpt = tmp_path / "loader.pt"
    train(model, optimizer, make_loader(dataset, 8, seed=3, device="cpu"), mse, 11, callbacks=[Seen()], device="cpu",
          checkpoint=ckpt, checkpoint_every=11)
    model, optimizer, _ = setup(seed=5, schedule=False)
    resumed = train(model, optimizer, make_loader(dataset, 8, seed=3, device="cpu"), mse, 22, callbacks=[Seen()],
                    device="cpu", checkpoint=ckpt, checkpoint_every=11, resume=True)
    assert resumed.metric("batch_sum") == full.metric("batch_sum")
    assert resumed.loss == full.loss


def test_checkpointing_a_shuffled_plain_loader_is_refused_before_the_first_step(tmp_path):
    """Its order cannot be replayed, so its checkpoints could never be resumed: refused up front, nothing written."""
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=8, shuffle=True)
    model, optimizer, _ = setup(schedule=False)
    before = checksum(model)
    ckpt = tmp_path / "c.pt"
    with pytest.raises(ValueError, match="make_loader"):
        train(model, optimizer, loader, mse, 3, device="cpu", checkpoint=ckpt, checkpoint_every=3)
    assert not ckpt.exists() and checksum(model) == before
    train(model, optimizer, loader, mse, 3, device="cpu")  # without a checkpoint it trains


def test_plain_iterable_runs_out_with_a_clear_error():
    model, optimizer, _ = setup(schedule=False)
    with pytest.raises(ValueError, match="ran out after 3 batches"):
        train(model, optimizer, iter([batches(i) for i in range(3)]), mse, 5, device="cpu")


def test_checkpoint_loads_with_weights_only(tmp_path):
    model, optimizer, scheduler = setup()
    train(model, optimizer, batches, mse, 5, scheduler=scheduler, device="cpu", checkpoint=tmp_path / "c.pt", checkpoint_every=5)
    state = torch.load(tmp_path / "c.pt", weights_only=True)
    assert state["fingerprint"]["optimizer"] == "SGD" and "cosine" in state["fingerprint"]["schedule"].lower()
    model, optimizer, scheduler = setup()
    step, history = load_checkpoint(tmp_path / "c.pt", model=model, optimizer=optimizer, scheduler=scheduler)
    assert step == 5 and len(History.from_state_dict(history).loss) == 5
    assert scheduler.last_epoch == 5


# ---------------------------------------------------------------------------------------------- the step


@pytest.mark.parametrize("device", DEVICES)
def test_records_the_rate_used_and_clips_before_the_update(device):
    """Plain SGD: |update| = lr_t * min(|g|, c), with lr_t the schedule's rate for that step."""
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2)
    schedule = linear_with_warmup(2, 10)
    history = train(
        model, optimizer, batches, mse, 10, scheduler=ScheduledLR(optimizer, schedule), clip=2.0,
        callbacks=[WeightChange(model.named_parameters())], device=device, log_every=3,
    )
    assert history.lr == pytest.approx(schedule.lrs(10, 0.2))
    assert sum(g > 2.0 for g in history.grad_norm[1:]) >= 2 and sum(g < 2.0 for g in history.grad_norm[1:]) >= 2
    for lr, norm, update in zip(history.lr, history.grad_norm, history.metric("update_norm")):
        assert update == pytest.approx(lr * min(norm, 2.0), rel=1e-5, abs=1e-9)
    assert all(f == pytest.approx(min(1.0, 2.0 / g)) for f, g in zip(history.clip_factor, history.grad_norm))
    assert len(history.metric("seconds_per_step")) == 4  # one per logging window: 3 + 3 + 3 + 1 steps


def test_delayed_clipping_threshold_is_recorded():
    model, optimizer, _ = setup(schedule=False)
    history = train(model, optimizer, batches, mse, 6, clip=delayed(1.0, 3), device="cpu")
    assert history.threshold == [math.inf] * 3 + [1.0] * 3


def test_layer_norms_and_weight_changes_are_recorded_per_step():
    model, optimizer, _ = setup(schedule=False)
    probes = [GradNorms(model.named_parameters(), {"hidden": r"^0\.", "head": r"^3\."}),
              WeightChange(model.named_parameters(), per_matrix=True)]
    history = train(model, optimizer, batches, mse, 4, callbacks=probes, device="cpu")
    assert set(history.metric_names("grad_norm/")) == {"grad_norm/hidden", "grad_norm/head"}
    assert set(history.metric_names("weight_change/")) == {"weight_change/0.weight", "weight_change/3.weight"}
    for t in range(4):
        total = math.hypot(history.metric("grad_norm/hidden")[t], history.metric("grad_norm/head")[t])
        assert total == pytest.approx(history.grad_norm[t], rel=1e-5)
        assert history.metric("weight_change/0.weight")[t] <= history.metric("update_norm")[t] + 1e-7


def bad_at_3(step):
    """The batches of ``batches``, with a flag that makes step 3's loss infinite (see ``infinite_when_flagged``)."""
    x, y = batches(step)
    return (x, y, torch.tensor(step == 3))


def infinite_when_flagged(model, batch):
    x, y, bad = batch
    return mse(model, (x, y)) * torch.where(bad, float("inf"), 1.0)  # no Python `if` on a tensor: that would be a read


def test_non_finite_gradients_are_skipped_or_raise():
    model, optimizer, _ = setup(momentum=0.0, schedule=False)
    with pytest.raises(FloatingPointError, match="at step 3"):
        train(model, optimizer, bad_at_3, infinite_when_flagged, 5, device="cpu")

    model, optimizer, scheduler = setup(momentum=0.0, schedule=True)
    history = train(model, optimizer, bad_at_3, infinite_when_flagged, 5, scheduler=scheduler, device="cpu", on_nonfinite="skip",
                    callbacks=[WeightChange(model.named_parameters())])
    assert history.skipped == [False, False, False, True, False]
    assert history.metric("update_norm")[3] == 0.0 and history.metric("update_norm")[4] > 0.0
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert scheduler.last_epoch == 4, "a skipped update must not advance the schedule"
    assert history.lr[4] == history.lr[3]


def test_a_fused_optimizer_skips_on_the_device_and_the_loop_reads_nothing_per_step(monkeypatch):
    """With fused AdamW the finite check is a flag handed to the optimizer: no host read until the read-back."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, fused=True)
    weights = []
    record = type("Record", (Callback,), {"on_step_end": lambda self, state: weights.append(
        [p.detach().clone() for p in model.parameters()])})()
    reads = []
    for name in ("__bool__", "item", "tolist"):
        original = getattr(torch.Tensor, name)
        monkeypatch.setattr(torch.Tensor, name, lambda self, *a, _o=original, _n=name, **k: (reads.append(_n), _o(self, *a, **k))[1])
    with pytest.raises(FloatingPointError, match=r"at step 3 the loss is inf \(found at the read-back after step 4"):
        train(model, optimizer, bad_at_3, infinite_when_flagged, 8, device="cpu", log_every=5, callbacks=[record])
    assert reads == ["tolist", "__bool__"], f"5 steps, one read-back, then the error's weight check; got {reads}"
    assert all(torch.equal(a, b) for a, b in zip(weights[2], weights[3])), "the non-finite step's update was skipped"
    assert not all(torch.equal(a, b) for a, b in zip(weights[3], weights[4])), "the next one was not"
    assert optimizer.state[model[0].weight]["step"] == 4, "a skipped step does not count in Adam's bias correction"
    assert not hasattr(optimizer, "found_inf")


def test_the_device_side_skip_gives_the_same_run_as_the_host_decision():
    """Fused AdamW, finite steps: the same weights whichever way the loop decides (skip on the device or read)."""
    finals = []
    for on_nonfinite in ("error", "skip"):  # "skip" reads the flag on the host every step
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, fused=True)
        history = train(model, optimizer, batches, mse, 6, device="cpu", log_every=4, on_nonfinite=on_nonfinite, clip=0.5)
        finals.append(([p.detach().clone() for p in model.parameters()], history.loss))
    assert all(torch.equal(a, b) for a, b in zip(finals[0][0], finals[1][0]))
    assert finals[0][1] == finals[1][1]


def test_nan_loss_with_finite_gradients_stops_training():
    """A NaN that does not reach the gradients (here: an added constant) still stops the run."""
    model, optimizer, _ = setup(schedule=False)
    nan_loss = lambda model, batch: mse(model, batch) + torch.tensor(float("nan"))
    with pytest.raises(FloatingPointError, match="loss is nan"):
        train(model, optimizer, batches, nan_loss, 3, device="cpu")


def test_an_update_that_writes_nan_into_the_weights_is_an_error():
    """Adam with eps=0 and a zero gradient divides 0 by 0: the gradient was finite, the update was not."""
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1, eps=0.0)
    zero_grad_loss = lambda model, batch: (model(batch[0]) * 0.0).sum()
    with pytest.raises(FloatingPointError, match="update of step 0"):
        train(model, optimizer, batches, zero_grad_loss, 3, device="cpu", on_nonfinite="skip")


def test_infinite_learning_rate_is_refused_before_it_reaches_the_weights():
    model, optimizer, _ = setup(lr=math.inf, schedule=False)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match="learning rate of parameter group 0 is inf"):
        train(model, optimizer, batches, mse, 3, device="cpu")
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), before))


def test_unfreeze_at_step_k_trains_from_that_step_and_is_clipped():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    model[0].requires_grad_(False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    first = model[0].weight.detach().clone()
    history = train(model, optimizer, batches, mse, 5, clip=1e-3, device="cpu",
                    callbacks=[UnfreezeAt(3, r"^0\."), WeightChange(model.named_parameters(), per_matrix=True),
                               GradNorms(model.named_parameters())])
    assert history.metric_steps("grad_norm/0") == [3, 4], "the layer got gradients before its step"
    assert history.metric_steps("weight_change/0.weight") == [3, 4]
    moved = torch.linalg.vector_norm(model[0].weight.detach() - first).item()
    assert 0 < moved <= 2 * 0.1 * 1e-3 * (1 + 1e-4), "the unfrozen layer's gradient escaped clipping"
    assert all(u <= 0.1 * 1e-3 * (1 + 1e-4) for u in history.metric("update_norm"))


def test_evaluation_and_throughput_are_recorded():
    model, optimizer, _ = setup(schedule=False)
    held_out = [batches(1000 + i) for i in range(3)]
    seen = []

    class Watch(Callback):
        def on_evaluate(self, state):
            seen.append((state.step, sorted(state.eval_results)))

    accuracy = lambda model, batch: {"close": ((model(batch[0]) - batch[1]).abs() < 1).float().mean()}
    history = train(model, optimizer, batches, mse, 10, device="cpu", log_every=5,
                    callbacks=[Evaluate(held_out, every=4, metrics=accuracy), Throughput(), Watch()])
    assert history.metric_steps("eval_loss") == [3, 7, 9]
    assert seen == [(3, ["eval_close", "eval_loss"]), (7, ["eval_close", "eval_loss"]), (9, ["eval_close", "eval_loss"])]
    model.eval()
    with torch.no_grad():
        expected = sum(mse(model, b).item() for b in held_out) / 3
    assert history.metric("eval_loss")[-1] == pytest.approx(expected, rel=1e-5)
    assert len(history.metric("tokens_per_s")) == 2 and all(r > 0 for r in history.metric("tokens_per_s"))


# ---------------------------------------------------------------------------------------------- accumulation


def test_accumulated_micro_batches_give_the_large_batch_gradient():
    """Means: 4 micro-batches of 8 = one batch of 32."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    micro = [batches(i) for i in range(4)]
    forward_backward(model, micro, mse)
    accumulated = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    mse(model, (torch.cat([b[0] for b in micro]), torch.cat([b[1] for b in micro]))).backward()
    for a, b in zip(accumulated, model.parameters()):
        torch.testing.assert_close(a, b.grad, rtol=1e-5, atol=1e-7)


def test_accumulation_with_unequal_token_counts_normalises_by_the_total():
    """Micro-batches of 3, 7 and 12 "tokens": (sum, count) pairs give the gradient of the mean over all 22."""
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 1)
    sizes, start, micro = (3, 7, 12), 0, []
    for size in sizes:
        micro.append((X[start:start + size], Y[start:start + size]))
        start += size

    def summed(model, batch):
        x, y = batch
        return torch.nn.functional.mse_loss(model(x), y, reduction="sum"), len(x)

    loss = forward_backward(model, micro, summed)
    accumulated = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    whole = mse(model, (X[:22], Y[:22]))
    whole.backward()
    assert loss.item() == pytest.approx(whole.item(), rel=1e-6)
    for a, b in zip(accumulated, model.parameters()):
        torch.testing.assert_close(a, b.grad, rtol=1e-5, atol=1e-7)
    model.zero_grad()
    forward_backward(model, micro, mse)  # averaging the means instead weighs the 3-token batch like the 12-token one
    assert not torch.allclose(model.weight.grad, accumulated[0], rtol=1e-3)


def test_training_with_accumulation_matches_large_batches():
    def large(step):
        parts = [batches(4 * step + j) for j in range(4)]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    model, optimizer, _ = setup(momentum=0.0, schedule=False)
    model[1].p = 0.0  # no dropout: the two runs draw different masks
    accumulated = train(model, optimizer, batches, mse, 6, accumulate=4, device="cpu")
    model, optimizer, _ = setup(momentum=0.0, schedule=False)
    model[1].p = 0.0
    whole = train(model, optimizer, large, mse, 6, device="cpu")
    assert accumulated.loss == pytest.approx(whole.loss, rel=1e-5)


# ---------------------------------------------------------------------------------------------- precision


def _precision_run(precision, device, data=batches, steps=40):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 64), torch.nn.GELU(), torch.nn.Linear(64, 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    return train(model, optimizer, data, mse, steps, precision=precision, device=device, clip=1.0)


@pytest.mark.parametrize("device", DEVICES)
def test_bf16_tracks_fp32(device):
    """Tolerance: every step's loss within 2 % of fp32's (measured on the CPU: at most 0.65 %)."""
    reference, mixed = _precision_run("fp32", device), _precision_run("bf16", device)
    assert not any(mixed.skipped)
    for a, b in zip(mixed.loss, reference.loss):
        assert abs(a - b) <= 0.02 * b
    assert mixed.loss[-1] < 0.2 * mixed.loss[0]


@pytest.mark.parametrize("device", DEVICES)
def test_fp16_tracks_fp32_on_the_steps_it_takes(device):
    """The GradScaler starts at scale 2^16 and skips the first steps whose scaled gradients overflow.

    The fp32 reference trains on the batches of the steps fp16 kept, so both
    take the same updates; tolerance 0.5 % per step (measured: at most 0.06 %).
    """
    mixed = _precision_run("fp16", device)
    kept = [t for t, skipped in enumerate(mixed.skipped) if not skipped]
    assert 0 < len(mixed.step) - len(kept) <= 5 and all(t < 5 for t, s in enumerate(mixed.skipped) if s)
    reference = _precision_run("fp32", device, data=lambda m: batches(kept[m]), steps=len(kept))
    for j, t in enumerate(kept):
        assert abs(mixed.loss[t] - reference.loss[j]) <= 0.005 * reference.loss[j]


def test_fp64_trains_a_float64_model_and_keeps_its_dtype():
    """precision='fp64' trains a model built in float64 and keeps it float64; it tracks the fp32 run from the same start."""
    from course_lib.engine.data import default_dtype
    from course_lib.engine.training import weight_dtype

    assert weight_dtype("fp64") == torch.float64 and weight_dtype("bf16") == torch.float32
    torch.manual_seed(0)
    with default_dtype(weight_dtype("fp64")):
        model = torch.nn.Sequential(torch.nn.Linear(6, 64), torch.nn.GELU(), torch.nn.Linear(64, 1))
    assert torch.get_default_dtype() == torch.float32  # restored after the block
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    data = lambda m: tuple(t.double() for t in batches(m))
    history = train(model, optimizer, data, mse, 40, precision="fp64", device="cpu", clip=1.0)
    assert all(p.dtype == torch.float64 for p in model.parameters())
    assert history.loss[-1] < 0.2 * history.loss[0]
    torch.manual_seed(0)
    start = torch.nn.Sequential(torch.nn.Linear(6, 64), torch.nn.GELU(), torch.nn.Linear(64, 1))
    model, reference = start.double(), _precision_run("fp32", "cpu")  # the same start, exactly, in float64
    history = train(model, torch.optim.AdamW(model.parameters(), lr=3e-3), data, mse, 40, precision="fp64", device="cpu", clip=1.0)
    for a, b in zip(history.loss, reference.loss):  # float32 rounding is all that separates them (measured: < 1e-5)
        assert abs(a - b) <= 1e-4 * b


def test_default_dtype_refuses_other_dtypes_and_restores_after_an_error():
    from course_lib.engine.data import default_dtype

    with pytest.raises(ValueError, match="dtype must be torch.float32 or torch.float64"):
        with default_dtype(torch.float16):
            pass
    with pytest.raises(RuntimeError):
        with default_dtype(torch.float64):
            raise RuntimeError
    assert torch.get_default_dtype() == torch.float32


def test_fp16_scaler_skips_overflowing_steps_without_advancing_the_schedule():
    """An fp16 backward that overflows: the GradScaler halves its scale, the step is skipped and recorded."""
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    scheduler = ScheduledLR(optimizer, linear_with_warmup(0, 100))
    huge = lambda model, batch: mse(model, batch) * 100  # times the initial scale 2^16, the gradients overflow fp16
    history = train(model, optimizer, batches, huge, 20, scheduler=scheduler, precision="fp16", device="cpu")
    skipped = sum(history.skipped)
    assert skipped >= 1 and history.skipped[0]
    assert not all(history.skipped), "the scaler never recovered"
    assert scheduler.last_epoch == 20 - skipped
    assert all(torch.isfinite(p).all() for p in model.parameters())


# ---------------------------------------------------------------------------------------------- batches, devices, processes


def test_to_device_keeps_every_container_type():
    from transformers import BatchEncoding

    Pair = collections.namedtuple("Pair", "x y")

    @dataclasses.dataclass
    class Item:
        ids: torch.Tensor
        name: str

    class Movable:
        def to(self, device):
            return ("moved", device)

    batch = {"enc": BatchEncoding({"input_ids": torch.ones(2, 3)}), "pair": Pair(torch.ones(1), [torch.zeros(1)]),
             "item": Item(torch.ones(2), "a"), "other": Movable(), "n": 3}
    out = to_device(batch, torch.device("cpu"))
    assert isinstance(out["enc"], BatchEncoding) and torch.equal(out["enc"]["input_ids"], torch.ones(2, 3))
    assert isinstance(out["pair"], Pair) and isinstance(out["pair"].y, list)
    assert isinstance(out["item"], Item) and out["item"].name == "a"
    assert out["other"] == ("moved", torch.device("cpu")) and out["n"] == 3
    if torch.cuda.is_available():
        moved = to_device(batch, torch.device("cuda"))
        assert moved["enc"]["input_ids"].is_cuda and moved["pair"].y[0].is_cuda and moved["item"].ids.is_cuda


def test_device_choice(monkeypatch):
    assert pick_device("cpu") == torch.device("cpu")
    if torch.cuda.is_available():
        monkeypatch.setenv("LOCAL_RANK", "0")
        assert pick_device() == torch.device("cuda", 0)
    else:
        with pytest.raises(ValueError, match="device='cuda'.*no CUDA"):
            pick_device("cuda")


def test_only_rank_0_writes_checkpoints(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    model, optimizer, _ = setup(schedule=False)
    train(model, optimizer, batches, mse, 2, device="cpu", checkpoint=tmp_path / "c.pt", checkpoint_every=1)
    assert not (tmp_path / "c.pt").exists()


def test_wrapped_models_save_bare_state_dicts(tmp_path):
    """torch.compile's _orig_mod. and DDP's module. prefixes are not saved: the checkpoint loads into a bare model."""
    import torch.distributed as dist

    model, optimizer, _ = setup(schedule=False)
    compiled = torch.compile(model, backend="eager")
    train(compiled, optimizer, batches, mse, 2, device="cpu", checkpoint=tmp_path / "c.pt", checkpoint_every=2)
    saved = torch.load(tmp_path / "c.pt", weights_only=True)["model"]
    assert not any(key.startswith("_orig_mod.") for key in saved)
    bare, _, _ = setup(seed=3, schedule=False)
    bare.load_state_dict(saved)

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        model, _, _ = setup(schedule=False)
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        optimizer = torch.optim.SGD(ddp.parameters(), lr=0.05)
        assert unwrap(ddp) is model
        train(ddp, optimizer, batches, mse, 2, device="cpu", checkpoint=tmp_path / "d.pt", checkpoint_every=2)
        saved = torch.load(tmp_path / "d.pt", weights_only=True)["model"]
        assert not any(key.startswith("module.") for key in saved)
        bare.load_state_dict(saved)
        for a, b in zip(bare.parameters(), model.parameters()):
            assert torch.equal(a, b)
    finally:
        dist.destroy_process_group()


# ---------------------------------------------------------------------------------------------- progress


@pytest.mark.parametrize("lang, words", [("vi", ("Huấn luyện", "bước/s", "mất mát")), ("en", ("Training", "step/s", "loss"))])
def test_progress_shows_rate_time_left_and_loss_in_the_readers_language(capsys, lang, words):
    model, optimizer, _ = setup(schedule=False)
    train(model, optimizer, batches, mse, 20, device="cpu", callbacks=[progress_bar(lang)], log_every=5)
    err = capsys.readouterr().err
    assert all(word in err for word in words) and "20/20" in err and "<" in err  # tqdm's "elapsed<left"
    train(model, optimizer, batches, mse, 20, device="cpu")
    assert capsys.readouterr().err == ""


def test_history_round_trips_through_its_state_dict():
    model, optimizer, _ = setup(schedule=False)
    history = train(model, optimizer, batches, mse, 3, device="cpu", callbacks=[GradNorms(model.named_parameters())])
    again = History.from_state_dict(history.state_dict())
    assert again == history and again.metric("grad_norm/0") == history.metric("grad_norm/0")
    with pytest.raises(KeyError, match="no metric named 'nope'"):
        history.metric("nope")


def test_evaluation_weighs_every_example_and_leaves_the_run_unchanged(tmp_path):
    """Held-out batches of 5 and 1 examples: the mean is over the 6 examples; a resumed run with Evaluate is exact."""
    held_out = [(X[:5], Y[:5]), (X[5:6], Y[5:6])]
    model, optimizer, _ = setup(schedule=False)
    history = train(model, optimizer, batches, mse, 4, device="cpu", callbacks=[Evaluate(held_out, every=4)])
    model.eval()
    with torch.no_grad():
        expected = torch.nn.functional.mse_loss(model(X[:6]), Y[:6]).item()
    assert history.metric("eval_loss")[-1] == pytest.approx(expected, rel=1e-5)

    full_model, optimizer, _ = setup()
    full = train(full_model, optimizer, batches, mse, 12, device="cpu", callbacks=[Evaluate(held_out, every=4)])
    model, optimizer, _ = setup()
    ckpt = tmp_path / "e.pt"
    train(model, optimizer, batches, mse, 6, device="cpu", callbacks=[Evaluate(held_out, every=4)], checkpoint=ckpt, checkpoint_every=6)
    model, optimizer, _ = setup(seed=7)
    resumed = train(model, optimizer, batches, mse, 12, device="cpu", callbacks=[Evaluate(held_out, every=4)],
                    checkpoint=ckpt, checkpoint_every=6, resume=True)
    assert resumed.loss == full.loss  # dropout draws the same masks: evaluation took nothing from the random state


class Halving(Schedule):
    """A user's schedule with a plain __init__ (not a dataclass): its repr holds a memory address."""

    def __init__(self, every):
        self.every = every

    def factor(self, step):
        return 0.5 ** (step // self.every)


def test_a_run_with_a_plain_schedule_class_resumes(tmp_path):
    ckpt = tmp_path / "halving.pt"
    model, optimizer, _ = setup(schedule=False)
    full = train(model, optimizer, batches, mse, 8, scheduler=ScheduledLR(optimizer, Halving(3)), device="cpu")
    model, optimizer, _ = setup(schedule=False)
    train(model, optimizer, batches, mse, 4, scheduler=ScheduledLR(optimizer, Halving(3)), device="cpu", checkpoint=ckpt,
          checkpoint_every=4)
    model, optimizer, _ = setup(schedule=False)
    resumed = train(model, optimizer, batches, mse, 8, scheduler=ScheduledLR(optimizer, Halving(3)), device="cpu",
                    checkpoint=ckpt, checkpoint_every=4, resume=True)
    assert resumed.loss == full.loss and resumed.lr == full.lr
    model, optimizer, _ = setup(schedule=False)
    with pytest.raises(ValueError, match=r"another schedule: saved '.*Halving\(every=3\)', now '.*Halving\(every=2\)'"):
        train(model, optimizer, batches, mse, 8, scheduler=ScheduledLR(optimizer, Halving(2)), device="cpu",
              checkpoint=ckpt, checkpoint_every=4, resume=True)


def test_resuming_with_another_clip_or_accumulate_is_refused_and_the_same_resumes(tmp_path):
    ckpt = tmp_path / "clip.pt"
    model, optimizer, _ = setup(schedule=False)
    train(model, optimizer, batches, mse, 4, clip=delayed(1.0, 2), accumulate=2, device="cpu", checkpoint=ckpt,
          checkpoint_every=4)
    for clip, accumulate, message in [
        (delayed(1.0, 3), 2, "another clipping threshold (clip): saved '_Delayed(max_norm=1.0, start_step=2)', "
                             "now '_Delayed(max_norm=1.0, start_step=3)'"),
        (1.0, 2, "another clipping threshold (clip): saved '_Delayed(max_norm=1.0, start_step=2)', now '1.0'"),
        (delayed(1.0, 2), 1, "another accumulate (micro-batches per step): saved 2, now 1"),
    ]:
        model, optimizer, _ = setup(schedule=False)
        with pytest.raises(ValueError, match=re.escape(message)):
            train(model, optimizer, batches, mse, 8, clip=clip, accumulate=accumulate, device="cpu", checkpoint=ckpt,
                  checkpoint_every=4, resume=True)
    model, optimizer, _ = setup(schedule=False)
    resumed = train(model, optimizer, batches, mse, 8, clip=delayed(1.0, 2), accumulate=2, device="cpu", checkpoint=ckpt,
                    checkpoint_every=4, resume=True)
    assert resumed.step == list(range(8)) and resumed.threshold[:2] == [math.inf, math.inf]


class StopAt(Callback):
    """Stops the run after step ``step``, as a killed job would stop (its last checkpoint written at that step)."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, state):
        state.should_stop = state.step + 1 == self.step


def test_a_stopped_and_resumed_run_counts_the_same_data_and_tokens(tmp_path):
    """Callbacks that count across steps (DataChecksum, Throughput) continue from the checkpoint."""
    model, optimizer, scheduler = setup()
    probes = [DataChecksum(), Throughput()]
    train(model, optimizer, batches, mse, 12, scheduler=scheduler, accumulate=2, device="cpu", callbacks=probes)
    reference = probes[0].hexdigest(), probes[1].total_tokens
    assert reference[1] == 12 * 2 * 8 * 6

    ckpt = tmp_path / "stopped.pt"
    model, optimizer, scheduler = setup()
    train(model, optimizer, batches, mse, 12, scheduler=scheduler, accumulate=2, device="cpu",
          callbacks=[DataChecksum(), Throughput(), StopAt(5)], checkpoint=ckpt, checkpoint_every=4)
    model, optimizer, scheduler = setup()
    probes = [DataChecksum(), Throughput()]
    resumed = train(model, optimizer, batches, mse, 12, scheduler=scheduler, accumulate=2, device="cpu", callbacks=probes,
                    checkpoint=ckpt, checkpoint_every=4, resume=True)
    assert resumed.step == list(range(12))
    assert (probes[0].hexdigest(), probes[1].total_tokens) == reference
    model, optimizer, scheduler = setup()
    train(model, optimizer, batches, mse, 12, scheduler=scheduler, accumulate=2, device="cpu", callbacks=probes)
    assert (probes[0].hexdigest(), probes[1].total_tokens) == reference  # reused from step 0: counted afresh

    model, optimizer, scheduler = setup()
    with pytest.raises(ValueError, match=re.escape("holds the states of the callbacks ['DataChecksum[0]', 'Throughput[0]'], "
                                                   "but this run passes callbacks that keep state ['Throughput[0]']")):
        train(model, optimizer, batches, mse, 12, scheduler=scheduler, accumulate=2, device="cpu", callbacks=[Throughput()],
              checkpoint=ckpt, checkpoint_every=4, resume=True)


def test_a_reused_throughput_probe_starts_afresh():
    """A run that failed mid-window leaves tokens counted; the next run with the same probe must not count them."""
    class Fail(Callback):
        def on_step_end(self, state):
            if state.step == 3:
                raise RuntimeError("interrupted")

    probe = Throughput()
    model, optimizer, _ = setup(schedule=False)
    with pytest.raises(RuntimeError, match="interrupted"):
        train(model, optimizer, batches, mse, 10, device="cpu", callbacks=[probe, Fail()], log_every=10)
    windows = []

    class Window(Callback):
        def on_log(self, state, logs):
            windows.append((state.window_steps, logs["tokens_per_s"] * state.window_seconds))

    model, optimizer, _ = setup(schedule=False)
    train(model, optimizer, batches, mse, 4, device="cpu", callbacks=[probe, Window()], log_every=2)
    assert [steps for steps, _ in windows] == [2, 2]
    assert [tokens for _, tokens in windows] == pytest.approx([2 * 8 * 6] * 2)
    assert probe.total_tokens == 4 * 8 * 6


def test_count_tokens_counts_the_predictions_of_language_model_blocks():
    blocks = torch.randint(0, 50, (4, 17))
    assert count_tokens(blocks) == 4 * 16  # inputs [:, :-1], targets [:, 1:]
    assert count_tokens((blocks[:, :-1], blocks[:, 1:])) == 4 * 16  # an (x, y) pair: the inputs
    assert count_tokens({"input_ids": torch.zeros(8, 12, dtype=torch.long), "labels": torch.zeros(8)}) == 96
    assert count_tokens(torch.zeros(8, 6)) == 48 and count_tokens(batches(0)) == 48  # not tokens: elements
    assert count_tokens(torch.zeros(8, 6, dtype=torch.bool)) == 48
    with pytest.raises(TypeError, match="batch holds no tensor to count tokens in"):  # not 0 tokens/s without a word
        count_tokens(["raw", "text"])


def test_evaluate_restores_the_training_mode_when_the_loss_raises():
    model, _, _ = setup(schedule=False)

    def broken(model, batch):
        raise RuntimeError("the loss failed")

    for mode in (True, False):
        model.train(mode)
        with pytest.raises(RuntimeError, match="the loss failed"):
            evaluate(model, [batches(0)], broken, device="cpu")
        assert model.training is mode and all(m.training is mode for m in model.modules())


# ---------------------------------------------------------------------------------------------- the runner: set up once, stepped on


def _without_timings(history):
    state = history.state_dict()
    state["metrics"] = {name: series for name, series in state["metrics"].items() if name != "seconds_per_step"}
    return state


def _same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_a_run_stepped_3_then_4_times_trains_as_train_does_in_7():
    """start(), steps(3), steps(4), finish(): bitwise the weights, the optimizer's state and the history of train(..., 7)."""
    from course_lib.engine.training import start

    settings = dict(clip=0.5, accumulate=2, device="cpu", log_every=2)
    model, optimizer, scheduler = setup()
    expected = train(model, optimizer, batches, mse, 7, scheduler=scheduler, callbacks=[Seen()], **settings)
    stepped, stepped_optimizer, stepped_scheduler = setup()
    run = start(stepped, stepped_optimizer, batches, mse, 7, scheduler=stepped_scheduler, callbacks=[Seen()], **settings)
    run.advance(3)
    assert run.done == 3 and len(run.history.loss) == 3  # read back at the end of the call
    run.advance(4)
    history = run.finish()
    assert _without_timings(history) == _without_timings(expected) and history.step == list(range(7))
    assert _same_weights(stepped, model)
    momenta = lambda opt: [s["momentum_buffer"] for s in opt.state.values()]
    assert all(torch.equal(a, b) for a, b in zip(momenta(stepped_optimizer), momenta(optimizer), strict=True))
    assert stepped_scheduler.last_epoch == scheduler.last_epoch == 7


def test_a_run_is_set_up_and_checked_once_however_often_it_is_stepped(monkeypatch):
    """The argument checks and the finiteness check of the weights run once per run, not once per steps() call."""
    from course_lib.engine import training

    calls = collections.Counter()
    for name in ("_check_arguments", "_check_weights_finite"):
        original = getattr(training, name)
        monkeypatch.setattr(training, name, lambda *a, _o=original, _n=name, **k: (calls.update([_n]), _o(*a, **k))[1])
    began = []
    begin = type("Begin", (Callback,), {"on_train_begin": lambda self, state: began.append(state.step)})
    model, optimizer, _ = setup()
    run = training.start(model, optimizer, batches, mse, callbacks=[begin()], device="cpu")
    for _ in range(4):
        run.advance(2)
    assert calls == {"_check_arguments": 1} and began == [0]
    run.finish()
    assert calls == {"_check_arguments": 1, "_check_weights_finite": 1} and len(run.history.loss) == 8


def test_a_run_refuses_steps_past_its_length_or_its_end_and_stops_when_told():
    from course_lib.engine.training import start

    model, optimizer, _ = setup()
    run = start(model, optimizer, batches, mse, 5, device="cpu")
    run.advance(4)
    with pytest.raises(ValueError, match=r"2 more steps would take the run past its length, steps=5 \(4 done\)"):
        run.advance(2)
    with pytest.raises(TypeError, match="n must be an int"):
        run.advance(1.0)
    run.advance(1)
    run.finish()
    with pytest.raises(RuntimeError, match="this run was finished"):
        run.advance(0)

    stop = type("Stop", (Callback,), {"on_step_end": lambda self, state: setattr(state, "should_stop", state.step == 1)})
    model, optimizer, _ = setup()
    run = start(model, optimizer, batches, mse, callbacks=[stop()], device="cpu")
    assert run.advance(5).step == [0, 1] and run.advance(5).step == [0, 1] and run.done == 2


def test_loop_steps_keeps_one_grad_scaler_across_calls():
    """fp16 whose steps overflow at the initial scale 2^16: the scale the GradScaler lowered carries over, so 3 + 4 steps train as 7 do."""
    from course_lib.engine.timing import loop_steps

    def build():
        torch.manual_seed(0)
        model = torch.nn.Linear(6, 1)
        return model, torch.optim.SGD(model.parameters(), lr=0.01)

    model, optimizer = build()
    expected = train(model, optimizer, batches, mse, 7, precision="fp16", device="cpu")
    assert expected.skipped[0] and not all(expected.skipped)
    stepped, stepped_optimizer = build()
    run = loop_steps(stepped, stepped_optimizer, batches, mse, precision="fp16", device="cpu")
    run(3)
    run(4)
    assert _same_weights(stepped, model)


class _Stream(torch.utils.data.IterableDataset):
    """A stream without a length: a DataLoader over it has __len__, which raises."""

    def __iter__(self):
        return (batches(i) for i in range(10_000))


def test_a_dataloader_over_a_stream_without_length_trains_and_resumes(tmp_path):
    loader = torch.utils.data.DataLoader(_Stream(), batch_size=None)
    model, optimizer, _ = setup(schedule=False)
    full = train(model, optimizer, loader, mse, 6, device="cpu", callbacks=[Seen()])
    model, optimizer, _ = setup(schedule=False)
    train(model, optimizer, loader, mse, 3, device="cpu", checkpoint=tmp_path / "s.pt", checkpoint_every=3, callbacks=[Seen()])
    model, optimizer, _ = setup(schedule=False)
    resumed = train(model, optimizer, loader, mse, 6, device="cpu", checkpoint=tmp_path / "s.pt", checkpoint_every=3, resume=True,
                    callbacks=[Seen()])
    assert resumed.loss == full.loss and resumed.metric("batch_sum") == full.metric("batch_sum")
