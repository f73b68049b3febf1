"""Finished work is never lost and damaged work never loads: engine.files, checkpoints, and a really killed process."""

import math
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest
import torch

from course_lib.engine.callbacks import DataChecksum
from course_lib.engine.checkpoints import load_checkpoint
from course_lib.engine.data import checksum
from course_lib.engine.files import check_writable, content_digest, load_verified, save_verified, write_safely
from course_lib.engine.schedules import ScheduledLR, cosine_with_warmup
from course_lib.engine.training import train

ROOT = Path(__file__).resolve().parents[1]


def batches(step):
    g = torch.Generator().manual_seed(step)
    x = torch.randn(8, 6, generator=g)
    return x, x.sum(1, keepdim=True)


def mse(model, batch):
    x, y = batch
    return torch.nn.functional.mse_loss(model(x), y)


def setup(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
    return model, optimizer, ScheduledLR(optimizer, cosine_with_warmup(2, 20))


def written(tmp_path, steps=4):
    model, optimizer, scheduler = setup()
    path = tmp_path / "run.pt"
    train(model, optimizer, batches, mse, steps, scheduler=scheduler, device="cpu", checkpoint=path, checkpoint_every=steps,
          callbacks=[DataChecksum()])
    return path


def flip_byte_inside(path: Path, needle: bytes) -> None:
    """Flip one bit in the first place where ``needle`` (a tensor's raw bytes) is stored in the file."""
    data = bytearray(path.read_bytes())
    at = data.find(needle)
    assert at >= 0, "the tensor's bytes are not stored as they are"
    data[at + len(needle) // 2] ^= 0x10
    path.write_bytes(bytes(data))


def resume(path, steps=6):
    model, optimizer, scheduler = setup(seed=1)
    return train(model, optimizer, batches, mse, steps, scheduler=scheduler, device="cpu", checkpoint=path,
                 checkpoint_every=2, resume=True, callbacks=[DataChecksum()])


# ---------------------------------------------------------------------------------------------- integrity on read


def test_a_bit_flipped_in_the_weights_is_refused_naming_the_file(tmp_path):
    path = written(tmp_path)
    weight = load_verified(path)["model"]["0.weight"]
    flip_byte_inside(path, weight.numpy().tobytes())
    with pytest.raises(ValueError, match=rf"checkpoint '{path}' is damaged"):
        resume(path)


def test_a_bit_flipped_in_the_saved_random_state_is_refused(tmp_path):
    path = written(tmp_path)
    rng = load_verified(path)["rng"]["torch"]
    flip_byte_inside(path, rng.numpy().tobytes()[1000:1400])
    with pytest.raises(ValueError, match="is damaged: its contents no longer match the SHA-256"):
        resume(path)


def test_the_digest_sees_every_kind_of_content():
    base = {"w": torch.zeros(3), "step": 4, "history": {"loss": [1.0, 0.5]}, "name": "a"}
    changed = [{**base, "w": torch.tensor([0.0, 0.0, 1e-30])}, {**base, "w": torch.zeros(3, dtype=torch.float64)},
               {**base, "step": 5}, {**base, "history": {"loss": [1.0, 0.5000001]}}, {**base, "name": "b"},
               {**base, "w": torch.zeros(1, 3)}, {**base, "extra": None}]
    digests = {content_digest(base)} | {content_digest(c) for c in changed}
    assert len(digests) == 1 + len(changed)
    assert content_digest(dict(reversed(base.items()))) == content_digest(base)  # key order is not content


def test_a_late_failure_while_restoring_changes_nothing(tmp_path):
    """A checkpoint that passes every check but whose random state cannot be set: model, optimizer, schedule stay as they were."""
    path = written(tmp_path)
    state = load_verified(path)
    state["rng"]["torch"] = torch.zeros(3, dtype=torch.uint8)  # well formed, a valid digest, and not a random state
    save_verified(state, path)
    model, optimizer, scheduler = setup(seed=7)
    train(model, optimizer, batches, mse, 2, scheduler=scheduler, device="cpu")
    before = checksum(model), repr(optimizer.state_dict()), scheduler.state_dict(), torch.get_rng_state()
    with pytest.raises(ValueError, match="could not be restored .*left as they were"):
        load_checkpoint(path, model=model, optimizer=optimizer, scheduler=scheduler, callbacks=[DataChecksum()])
    after = checksum(model), repr(optimizer.state_dict()), scheduler.state_dict(), torch.get_rng_state()
    assert before[:3] == after[:3] and torch.equal(before[3], after[3])


# ---------------------------------------------------------------------------------------------- refused before the work


def test_a_new_run_does_not_overwrite_another_runs_checkpoint(tmp_path):
    path = written(tmp_path)
    saved = path.read_bytes()
    model, optimizer, scheduler = setup()
    with pytest.raises(ValueError, match="already holds a run, and resume=False would overwrite it"):
        train(model, optimizer, batches, mse, 4, scheduler=scheduler, device="cpu", checkpoint=path, checkpoint_every=4)
    assert path.read_bytes() == saved


@pytest.mark.parametrize("place", ["parent-is-a-file", "is-a-folder"])
def test_an_unwritable_checkpoint_is_refused_before_the_first_step(tmp_path, place):
    (tmp_path / "file").write_text("x")
    path = tmp_path / "file" / "run.pt" if place == "parent-is-a-file" else tmp_path
    model, optimizer, scheduler = setup()
    before = checksum(model)
    with pytest.raises(ValueError, match="checkpoint .* (is a file, not a folder|is a folder)"):
        train(model, optimizer, batches, mse, 4, scheduler=scheduler, device="cpu", checkpoint=path, checkpoint_every=2)
    assert checksum(model) == before


def test_a_parameter_outside_the_model_is_refused():
    """A learnable temperature in the loss: the loop would not zero, clip, check or checkpoint it."""
    model, _, _ = setup()
    temperature = torch.nn.Parameter(torch.ones(()))
    optimizer = torch.optim.SGD([*model.parameters(), temperature], lr=0.1)
    with pytest.raises(ValueError, match=r"optimizer holds 1 parameter\(s\) that are not the model's"):
        train(model, optimizer, batches, lambda m, b: mse(m, b) / temperature, 3, clip=1.0, device="cpu")
    model.temperature = temperature  # the rule the message teaches: make it part of the model
    history = train(model, optimizer, batches, lambda m, b: mse(m, b) / m.temperature, 3, clip=1.0, device="cpu")
    assert max(history.grad_norm) > 0 and temperature.item() != 1.0


# ---------------------------------------------------------------------------------------------- writing


def test_check_writable_finds_each_bad_place(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"--out '.*file/sub/r.json' cannot be written: '.*file' is a file"):
        check_writable(tmp_path / "file" / "sub" / "r.json", "--out")
    with pytest.raises(ValueError, match="is a folder"):
        check_writable(tmp_path, "--out")
    with pytest.raises(TypeError, match="--out must be a file path"):
        check_writable(3, "--out")
    assert check_writable(tmp_path / "new" / "deeper" / "r.json") == tmp_path / "new" / "deeper" / "r.json"
    assert not list((tmp_path / "new" / "deeper").iterdir())  # the probe file is gone


def test_a_write_that_fails_after_the_work_keeps_it_and_says_where(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    target = folder / "results.json"
    folder.rmdir()
    folder.write_text("a file now stands where the folder was")  # what a user might do while the work ran
    with pytest.warns(UserWarning, match="could not write the results to .* they are kept in ") as caught:
        kept = write_safely(target, lambda f: f.write_text("{\"loss\": 1.5}"), "the results")
    assert kept != target and kept.read_text() == "{\"loss\": 1.5}" and str(kept) in str(caught[0].message)
    kept.unlink()


def test_a_checkpoint_kept_whole_through_a_rename(tmp_path):
    path = written(tmp_path)
    assert not [p for p in tmp_path.iterdir() if p != path]  # no temporary file left behind
    assert load_verified(path)["step"] == 4


# ---------------------------------------------------------------------------------------------- a really killed process

KILLED = textwrap.dedent("""
    import sys
    import torch
    sys.path.insert(0, {root!r})
    from course_lib.engine.training import train

    def batches(step):
        x = torch.randn(8, 6, generator=torch.Generator().manual_seed(step))
        return x, x.sum(1, keepdim=True)

    torch.manual_seed(0)  # about a million weights (12 MB with AdamW's state): a kill often lands inside a write
    model = torch.nn.Sequential(torch.nn.Linear(6, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 1024), torch.nn.ReLU(),
                                torch.nn.Linear(1024, 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    train(model, optimizer, batches, lambda m, b: torch.nn.functional.mse_loss(m(b[0]), b[1]), 100000, device="cpu",
          checkpoint=sys.argv[1], checkpoint_every=1, resume=True)
""")


def test_a_run_killed_at_random_moments_always_leaves_a_checkpoint_that_loads(tmp_path):
    script = tmp_path / "killed.py"
    script.write_text(KILLED.format(root=str(ROOT)))
    path = tmp_path / "run.pt"
    steps = []
    for delay in (0.6, 0.13, 0.31, 0.07, 0.21):
        child = subprocess.Popen([sys.executable, str(script), str(path)], cwd=ROOT, stderr=subprocess.PIPE)
        last = path.stat().st_mtime_ns if path.exists() else None
        deadline = time.monotonic() + 120
        while (path.stat().st_mtime_ns if path.exists() else None) == last and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)  # until this run has written its first checkpoint
        time.sleep(delay)
        assert child.poll() is None, child.stderr.read().decode()[-2000:]
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stderr.close()
        steps.append(load_verified(path)["step"])  # whole and undamaged, whatever the kill interrupted
    assert steps == sorted(steps) and steps[-1] > steps[0]  # each run resumed the last one's checkpoint and went on
    assert len(list(tmp_path.glob(".run.pt.*.part"))) <= 1  # a write removes the parts of killed runs; the last kill's may stay
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        content = load_verified(path)
    assert content["format"] == 4


@pytest.mark.parametrize("command", [
    ["benchmarks/ddp_scaling.py", "--gpus", "2", "--size", "tiny", "--backend", "gloo", "--parts", "curves"],
    ["benchmarks/nanogpt_vs_course.py", "--parts", "loss", "--device", "cpu"],
])
def test_the_benchmarks_refuse_a_bad_out_before_they_run(tmp_path, command):
    (tmp_path / "file").write_text("x")
    began = time.monotonic()
    done = subprocess.run([sys.executable, *command, "--out", str(tmp_path / "file" / "r.json")], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2 and "--out '" in done.stderr and "is a file, not a folder" in done.stderr, done.stderr[-2000:]
    assert time.monotonic() - began < 60  # refused at the start, not after the runs


def test_a_checkpoint_write_that_fails_late_is_kept(tmp_path, monkeypatch):
    """torch.save raises RuntimeError for a path; written through a Python file, a full disk is an OSError, and the work is kept."""
    real, calls = torch.save, []

    def full_disk_once(obj, file, *args, **kwargs):  # what torch.save does on a full disk, the first time
        calls.append(file)
        if len(calls) == 1 and isinstance(file, (str, os.PathLike)):
            raise RuntimeError("basic_ios::clear: iostream error")  # given a path: torch's C++ writer
        if len(calls) == 1:
            raise OSError(28, "No space left on device")  # given a Python file
        return real(obj, file, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk_once)
    with pytest.warns(UserWarning, match="could not write the checkpoint to .*No space left on device.*kept in ") as caught:
        kept = save_verified({"w": torch.arange(3)}, tmp_path / "c.pt")
    assert str(kept) in str(caught[0].message) and torch.equal(load_verified(kept)["w"], torch.arange(3))
    assert not list(tmp_path.iterdir())  # no half-written file left beside the target
    assert save_verified({"w": torch.arange(4)}, tmp_path / "c.pt") == tmp_path / "c.pt"


def test_resuming_keeps_the_settings_the_run_started_with(tmp_path):
    """OneCycleLR moves AdamW's betas during the run; the resumed run starts from the same settings and is not refused."""
    def run(steps, resume):
        model, _, _ = setup()
        optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.05, total_steps=8)
        return train(model, optimizer, batches, mse, steps, scheduler=scheduler, device="cpu", checkpoint=tmp_path / "one.pt",
                     checkpoint_every=2, resume=resume)

    run(4, resume=False)
    assert len(run(8, resume=True).loss) == 8
    model, _, _ = setup()
    other = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.5)
    with pytest.raises(ValueError, match="another set of optimizer settings"):
        train(model, other, batches, mse, 8, scheduler=torch.optim.lr_scheduler.OneCycleLR(other, max_lr=0.05, total_steps=8),
              device="cpu", checkpoint=tmp_path / "one.pt", checkpoint_every=2, resume=True)


def test_one_micro_batch_with_nothing_to_count_is_fine_when_the_step_has_some():
    """All labels of one micro-batch masked: its count is 0, the step's is not."""
    model, optimizer, _ = setup()

    def summed(model, batch):
        x, y, n = batch
        return torch.nn.functional.mse_loss(model(x), y, reduction="sum") * (n > 0), torch.tensor(n)

    data = lambda m: (*batches(m), 0 if m % 2 else 8)
    history = train(model, optimizer, data, summed, 3, accumulate=2, device="cpu")
    assert all(math.isfinite(v) for v in history.loss)
