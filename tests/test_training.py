"""course_lib.training: the loop's order of operations, records, non-finite steps, exact resume."""

import math

import pytest
import torch

from course_lib.clipping import LayerGradNorms, delayed
from course_lib.schedules import ScheduledLR, cosine_with_warmup, linear_with_warmup
from course_lib.training import History, load_checkpoint, pick_device, train

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
        model, optimizer, batches, mse, 30, scheduler=scheduler, clip=0.5, device=device, checkpoint=ckpt, resume=True
    )
    assert next(model.parameters()).device.type == device
    for a, b in zip(model.parameters(), reference):
        assert torch.equal(a.detach(), b)
    assert resumed.loss == full.loss and resumed.lr == full.lr and resumed.step == list(range(30))


def test_checkpoint_loads_with_weights_only(tmp_path):
    model, optimizer, scheduler = setup()
    train(model, optimizer, batches, mse, 5, scheduler=scheduler, device="cpu", checkpoint=tmp_path / "c.pt", checkpoint_every=5)
    model, optimizer, scheduler = setup()
    step, history = load_checkpoint(tmp_path / "c.pt", model=model, optimizer=optimizer, scheduler=scheduler)
    assert step == 5 and isinstance(history, History) and len(history.loss) == 5
    assert scheduler.last_epoch == 5


@pytest.mark.parametrize("device", DEVICES)
def test_records_the_rate_used_and_clips_before_the_update(device):
    """Plain SGD: |update| = lr_t * min(|g|, c), with lr_t the schedule's rate for that step."""
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2)
    schedule = linear_with_warmup(2, 10)
    history = train(
        model, optimizer, batches, mse, 10, scheduler=ScheduledLR(optimizer, schedule), clip=2.0, record_update=True, device=device
    )
    assert history.lr == pytest.approx(schedule.lrs(10, 0.2))
    assert sum(g > 2.0 for g in history.grad_norm[1:]) >= 2 and sum(g < 2.0 for g in history.grad_norm[1:]) >= 2
    for lr, norm, update in zip(history.lr, history.grad_norm, history.update_norm):
        assert update == pytest.approx(lr * min(norm, 2.0), rel=1e-5, abs=1e-9)
    assert all(f == pytest.approx(min(1.0, 2.0 / g)) for f, g in zip(history.clip_factor, history.grad_norm))


def test_delayed_clipping_threshold_is_recorded():
    model, optimizer, _ = setup(schedule=False)
    history = train(model, optimizer, batches, mse, 6, clip=delayed(1.0, 3), device="cpu")
    assert history.threshold == [math.inf] * 3 + [1.0] * 3


def test_layer_norms_are_recorded_per_step():
    model, optimizer, _ = setup(schedule=False)
    tracker = LayerGradNorms(model.named_parameters(), {"hidden": r"^0\.", "head": r"^3\."})
    history = train(model, optimizer, batches, mse, 4, track=tracker, device="cpu")
    assert set(history.layer_norms) == {"hidden", "head"}
    for t in range(4):
        total = math.hypot(history.layer_norms["hidden"][t], history.layer_norms["head"][t])
        assert total == pytest.approx(history.grad_norm[t], rel=1e-5)


def test_non_finite_gradients_are_skipped_or_raise():
    def bad_at_3(step):
        x, y = batches(step)
        return (x, y, torch.tensor(step == 3))

    def loss_fn(model, batch):
        x, y, bad = batch
        loss = mse(model, (x, y))
        return loss * float("inf") if bad else loss

    model, optimizer, _ = setup(momentum=0.0, schedule=False)
    with pytest.raises(FloatingPointError):
        train(model, optimizer, bad_at_3, loss_fn, 5, device="cpu")

    model, optimizer, scheduler = setup(momentum=0.0, schedule=True)
    history = train(
        model, optimizer, bad_at_3, loss_fn, 5, scheduler=scheduler, device="cpu", on_nonfinite="skip", record_update=True
    )
    assert history.skipped == [False, False, False, True, False]
    assert history.update_norm[3] == 0.0 and history.update_norm[4] > 0.0
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert scheduler.last_epoch == 4, "a skipped update must not advance the schedule"
    assert history.lr[4] == history.lr[3]


def test_parameters_unfrozen_later_are_clipped_and_trained():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    model[0].requires_grad_(False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    first = model[0].weight.detach().clone()

    def unfreeze_at_2(model, batch):
        if not model[0].weight.requires_grad and torch.equal(batch[0], batches(2)[0]):
            model[0].requires_grad_(True)
        return mse(model, batch)

    history = train(model, optimizer, batches, unfreeze_at_2, 4, clip=1e-3, record_update=True, device="cpu")
    assert not torch.equal(model[0].weight, first), "the unfrozen layer was not trained"
    moved = torch.linalg.vector_norm(model[0].weight.detach() - first).item()
    assert moved <= 2 * 0.1 * 1e-3 * (1 + 1e-4), "the unfrozen layer's gradient escaped clipping"
    assert all(u <= 0.1 * 1e-3 * (1 + 1e-4) for u in history.update_norm)


def test_progress_lines_outside_notebooks(capsys):
    model, optimizer, _ = setup(schedule=False)
    train(model, optimizer, batches, mse, 20, device="cpu", progress=True)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("step")]
    assert len(lines) == 10 and lines[-1].startswith("step     20/20")
    train(model, optimizer, batches, mse, 20, device="cpu")
    assert capsys.readouterr().err == ""


def test_device_choice_and_bad_arguments():
    assert pick_device("cpu") == torch.device("cpu")
    if torch.cuda.is_available():
        assert pick_device() == torch.device("cuda")
    model, optimizer, _ = setup(schedule=False)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        train(model, optimizer, batches, mse, 0)
    with pytest.raises(ValueError, match="on_nonfinite"):
        train(model, optimizer, batches, mse, 1, on_nonfinite="ignore")
    with pytest.raises(ValueError, match="checkpoint_every"):
        train(model, optimizer, batches, mse, 1, checkpoint_every=3)
