"""course_lib.engine.distributed: torchrun with 2 CPU processes (gloo) against one plain process; the loop under DDP."""

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from course_lib.engine.callbacks import Evaluate, GradNorms, UnfreezeAt, WeightChange
from course_lib.engine.checkpoints import unwrap
from course_lib.engine.data import checksum
from course_lib.engine.distributed import child_environment, child_error, cleanup, global_batch_slice, setup, wrap
from course_lib.lessons import data_parallel
from course_lib.lessons.data_parallel import TINY_GPT, collect, launch, main
from course_lib.models.gpt import GPT, lm_loss
from course_lib.engine.training import train

needs_gloo = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()),
    reason="this PyTorch build has no torch.distributed or no gloo backend, which these tests run on",
)

# 2 processes against 1, same global batch, 20 SGD steps, weights up to 1.08 in size.  Measured on a 2-core
# x86 CPU (torch 2.13, OMP_NUM_THREADS=1): the largest difference is 1.5e-7 (2.2e-7 with --accumulate 2,
# 1.2e-7 with --freeze, 2.0e-7 with --seed 2); float sums split another way, nothing more.  Tolerance ~5x that.
TOLERANCE = dict(atol=1e-6, rtol=1e-5)
FROZEN = r"^transformer\.(wpe|h\.0)\."  # the position embedding and the first block


RUNS = {  # name: (processes, options of python -m course_lib.lessons.data_parallel)
    "one": (1, ()),
    "two": (2, ()),
    "two accumulating": (2, ("--accumulate", "2")),
    "one frozen": (1, ("--freeze", FROZEN)),
    "two frozen": (2, ("--freeze", FROZEN)),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, dict]:
    """Every run of RUNS, started together: they spend most of their time importing torch (about 23 s in all on 2 cores)."""
    folder = tmp_path_factory.mktemp("runs")
    outs = {name: folder / name.replace(" ", "-") for name in RUNS}
    started = {name: launch(outs[name], *RUNS[name]) for name in RUNS}
    try:
        return {name: collect(started[name], outs[name], RUNS[name][0]) for name in RUNS}
    finally:
        for process in started.values():
            if process.poll() is None:  # a run failed or hung: stop the others (torchrun stops its workers)
                process.terminate()
                process.wait(timeout=60)


def assert_same_run(two: dict, one: dict) -> None:
    """Ranks identical bit for bit; the same start as one process; the same end within TOLERANCE."""
    assert len(set(two["checksums"])) == 1 and two["checksums"][0] == checksum(two["final"])
    assert two["record"]["world_size"] == 2 and two["record"]["backend"] == "gloo"
    assert checksum(two["initial"]) == checksum(one["initial"])
    torch.testing.assert_close(two["final"], one["final"], **TOLERANCE)
    torch.testing.assert_close(two["record"]["loss"], one["record"]["loss"], **TOLERANCE)  # rank 0 records the global mean


@needs_gloo
def test_two_processes_end_with_the_weights_of_one_process(runs):
    one, two = runs["one"], runs["two"]
    assert_same_run(two, one)
    assert one["record"]["world_size"] == 1 and one["record"]["device"] == "cpu"
    assert all(not torch.equal(two["final"][k], two["initial"][k]) for k in two["final"]), "some weights never moved"
    assert one["record"]["loss"][-1] < one["record"]["loss"][0] - 0.5


@needs_gloo
def test_accumulation_on_two_processes_equals_one_process_without_it(runs):
    assert runs["two accumulating"]["record"]["accumulate"] == 2
    assert_same_run(runs["two accumulating"], runs["one"])


@needs_gloo
def test_frozen_parameters_stay_put_without_find_unused_parameters(runs):
    one, two = runs["one frozen"], runs["two frozen"]
    assert_same_run(two, one)
    frozen = [k for k in two["final"] if re.search(FROZEN, k)]
    assert len(frozen) == 13, frozen  # wpe and the 12 tensors of block 0
    for run in (one, two):
        assert all(torch.equal(run["final"][k], run["initial"][k]) for k in frozen)
        assert all(not torch.equal(run["final"][k], run["initial"][k]) for k in run["final"] if k not in frozen)


# ---------------------------------------------------------------------------------------------- the loop under DDP


@pytest.fixture
def group(tmp_path):
    """A gloo process group of one rank, in this process: DDP's code paths without launching anything.

    One thread: on a busy 2-core machine two OpenMP threads on these tiny matrices take 0.5 s a step, one 1 ms.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'group'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()
    torch.set_num_threads(threads)


def _tiny_gpt() -> GPT:
    torch.manual_seed(0)
    return GPT(TINY_GPT)


def _batch(m: int) -> torch.Tensor:
    return torch.randint(TINY_GPT.vocab_size, (4, TINY_GPT.block_size + 1), generator=torch.Generator().manual_seed(m))


def _run(model: torch.nn.Module, bare: torch.nn.Module, **options):
    callbacks = [GradNorms(bare.named_parameters()), WeightChange(bare.named_parameters()),
                 Evaluate([_batch(100), _batch(101)], every=2)]
    optimizer = torch.optim.SGD(bare.parameters(), lr=0.1)
    return train(model, optimizer, _batch, lm_loss, 4, callbacks=callbacks, log_every=2, **options)


@needs_gloo
def test_ddp_all_reduces_once_per_step_and_trains_like_the_bare_model(group, tmp_path):
    """Accumulating 4 micro-batches: one all-reduce per step (no_sync before the last); callbacks and checkpoints work."""
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

    calls = []

    def counted(state, bucket):
        calls.append(bucket.index())
        return allreduce_hook(state, bucket)

    bare = _tiny_gpt()
    ddp = DistributedDataParallel(bare)
    ddp.register_comm_hook(None, counted)
    history = _run(ddp, bare, accumulate=4, checkpoint=tmp_path / "run.pt", checkpoint_every=2)
    assert calls == [0] * 4, "one bucket, all-reduced once in each of the 4 steps"
    assert unwrap(ddp) is bare and not any(k.startswith("module.") for k in torch.load(tmp_path / "run.pt", weights_only=True)["model"])
    with pytest.raises(TypeError, match="model is already wrapped in DistributedDataParallel"):
        wrap(ddp, "cpu")

    reference = _tiny_gpt()
    expected = _run(reference, reference, accumulate=4)
    torch.testing.assert_close(bare.state_dict(), reference.state_dict(), atol=0, rtol=0)
    assert history.loss == expected.loss and history.metrics.keys() == expected.metrics.keys()
    assert history.metric("eval_loss") == expected.metric("eval_loss")


@needs_gloo
def test_unfreeze_at_refuses_a_ddp_model_at_the_start(group):
    bare = _tiny_gpt()
    bare.transformer.wpe.requires_grad_(False)
    ddp = DistributedDataParallel(bare)
    before = checksum(bare)
    with pytest.raises(ValueError, match="cannot unfreeze inside a DistributedDataParallel model"):
        train(ddp, torch.optim.SGD(bare.parameters(), lr=0.1), _batch, lm_loss, 4, callbacks=[UnfreezeAt(2, "wpe")])
    assert checksum(bare) == before


class TwoHeads(torch.nn.Module):
    """A model whose second head is used only on odd steps: a trainable parameter that some steps leave without gradient."""

    def __init__(self):
        super().__init__()
        self.body, self.even, self.odd = torch.nn.Linear(4, 4), torch.nn.Linear(4, 1), torch.nn.Linear(4, 1)

    def forward(self, x, step):
        return (self.odd if step % 2 else self.even)(self.body(x))


@needs_gloo
def test_find_unused_parameters_is_needed_for_a_branch_not_taken_not_for_frozen_parameters(group):
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    loss = lambda model, step: model(x, step).pow(2).mean()

    def steps(ddp, loss_fn=loss):
        optimizer = torch.optim.SGD(ddp.parameters(), lr=0.1)
        train(ddp, optimizer, lambda m: m, loss_fn, 3, device="cpu")

    torch.manual_seed(0)
    frozen = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    frozen[0].requires_grad_(False)  # no gradient in any step, and DDP never registered it: no flag needed
    first = frozen[0].weight.detach().clone()
    steps(DistributedDataParallel(frozen), lambda model, step: model(x).pow(2).mean())
    assert torch.equal(frozen[0].weight, first)
    with pytest.raises(RuntimeError, match="find_unused_parameters"):
        steps(DistributedDataParallel(TwoHeads()))  # a trainable head unused in step 0: DDP waits for its gradient
    steps(DistributedDataParallel(TwoHeads(), find_unused_parameters=True))


# ---------------------------------------------------------------------------------------------- pieces and bad inputs


def test_global_batch_slices_are_equal_and_cover_the_batch_in_order():
    batch = torch.arange(24).view(12, 2)
    for world_size in (1, 2, 3, 4, 12):
        shares = [global_batch_slice(batch, rank, world_size) for rank in range(world_size)]
        assert {len(s) for s in shares} == {12 // world_size}
        assert torch.equal(torch.cat(shares), batch)
    assert torch.equal(global_batch_slice(batch, 1, 3), batch[4:8])


def test_one_plain_process_has_no_group(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    rank, world_size, device = setup()
    assert (rank, world_size) == (0, 1) and not (dist.is_available() and dist.is_initialized())
    assert device.type == ("cuda" if torch.cuda.is_available() else "cpu") and setup("gloo")[2] == torch.device("cpu")
    model = torch.nn.Linear(2, 2)
    assert wrap(model, "cpu") is model
    cleanup()  # nothing to destroy: no error


def _env(monkeypatch, **values):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return setup


_UNUSED = str(Path(tempfile.mkdtemp(prefix="course-distributed-")) / "unused")

BAD = [
    pytest.param(lambda m: global_batch_slice(torch.arange(5), 0, 2), ValueError, "a global batch of 5 does not split evenly over world_size=2", id="slice-uneven"),
    pytest.param(lambda m: global_batch_slice(torch.arange(4), 2, 2), ValueError, "rank must be in [0, 1]", id="slice-rank-high"),
    pytest.param(lambda m: global_batch_slice(torch.arange(4), -1, 2), ValueError, "rank must be in [0, 1]", id="slice-rank-negative"),
    pytest.param(lambda m: global_batch_slice(torch.arange(4), 0, 0), ValueError, "world_size must be >= 1", id="slice-world-zero"),
    pytest.param(lambda m: global_batch_slice(torch.arange(4), 0, 2.0), TypeError, "world_size must be an int", id="slice-world-float"),
    pytest.param(lambda m: global_batch_slice([1, 2], 0, 1), TypeError, "batch must be a tensor", id="slice-list"),
    pytest.param(lambda m: global_batch_slice(torch.tensor(3), 0, 1), ValueError, "batch must have a batch dimension", id="slice-0d"),
    pytest.param(lambda m: setup(3), TypeError, "backend must be a torch.distributed backend name", id="setup-backend-int"),
    pytest.param(lambda m: setup(""), ValueError, "backend must be a torch.distributed backend name", id="setup-backend-empty"),
    pytest.param(lambda m: _env(m, RANK="0")(), ValueError, "RANK is set but WORLD_SIZE is not", id="setup-no-world-size"),
    pytest.param(lambda m: _env(m, RANK="x", WORLD_SIZE="2", LOCAL_RANK="0")(), ValueError, "environment variable RANK must be an int", id="setup-rank-text"),
    pytest.param(lambda m: _env(m, RANK="2", WORLD_SIZE="2", LOCAL_RANK="0")(), ValueError, "RANK=2, WORLD_SIZE=2", id="setup-rank-too-high"),
    pytest.param(lambda m: wrap("model", "cpu"), TypeError, "model must be a torch.nn.Module", id="wrap-model"),
    pytest.param(lambda m: wrap(torch.nn.Linear(2, 2), 0), TypeError, "device must be a device such as 'cpu'", id="wrap-device"),
    pytest.param(lambda m: wrap(torch.nn.Linear(2, 2), "cpu", find_unused_parameters=1), TypeError, "find_unused_parameters must be True or False", id="wrap-flag"),
    pytest.param(lambda m: main(["--out", _UNUSED, "--steps", "0"]), ValueError, "--steps must be >= 1", id="main-steps"),
    pytest.param(lambda m: main(["--out", _UNUSED, "--global-batch", "6", "--accumulate", "4"]), ValueError,
                 "--global-batch 6 must be a multiple of world size x --accumulate = 1 x 4", id="main-global-batch"),
]
if not torch.cuda.is_available():
    BAD.append(pytest.param(lambda m: setup("nccl"), ValueError, "backend='nccl' needs CUDA GPUs", id="setup-nccl-without-gpu"))


@pytest.mark.parametrize("call, error, names_argument", BAD)
def test_bad_input_raises_a_clear_error(monkeypatch, call, error, names_argument):
    with pytest.raises(error, match=re.escape(names_argument)) as raised:
        call(monkeypatch)
    assert type(raised.value) is error


def test_the_scaling_benchmark_learns_the_same_on_two_processes_and_resumes_on_one(tmp_path):
    """benchmarks/ddp_scaling.py on CPU processes: same curves for 1 and 2 ranks; a 2-rank checkpoint resumes on 1."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "ddp.json"
    done = subprocess.run([sys.executable, str(root / "benchmarks" / "ddp_scaling.py"), "--gpus", "2", "--size", "tiny",
                           "--backend", "gloo", "--parts", "curves", "--global-batch", "8", "--curve-steps", "6",
                           "--out", str(out)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    curves = json.loads(out.read_text())["curves"]
    assert len(curves["one"]) == len(curves["many"]) == 6 and len(curves["resumed_one"]) == 6
    assert curves["agreement"]["max_gap"] < 1e-4 and curves["resume_agreement"]["max_gap"] < 1e-4
    assert curves["resumed_one"][0] < curves["one"][0], "the resumed runs start from the trained weights"


# ---------------------------------------------------------------------------------------------- no finished work lost


def _file_in_the_way(tmp_path) -> Path:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the output folder's parent should be")
    return blocker / "run"


def test_an_out_that_cannot_be_written_fails_at_once_before_any_training(tmp_path, monkeypatch):
    out = _file_in_the_way(tmp_path)
    monkeypatch.setattr(data_parallel, "train", lambda *a, **k: pytest.fail("trained before checking --out"))
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: pytest.fail("started a process before checking out"))
    start = time.perf_counter()
    with pytest.raises(ValueError, match=re.escape(f"--out {str(out / 'final.pt')!r} cannot be written: {str(out.parent)!r} is a file")):
        main(["--out", str(out), "--steps", "2"])
    with pytest.raises(ValueError, match="out .* cannot be written"):
        launch(out, 2)
    assert time.perf_counter() - start < 1.0


def test_a_folder_lost_during_training_keeps_the_results_in_files_named_in_warnings(tmp_path, monkeypatch):
    out = tmp_path / "run"
    trained = data_parallel.train

    def train_then_lose_the_folder(*args, **kwargs):
        history = trained(*args, **kwargs)
        for file in out.iterdir():
            file.unlink()
        out.rmdir()
        out.write_text("a file now stands where the output folder was")
        return history

    monkeypatch.setattr(data_parallel, "train", train_then_lose_the_folder)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        main(["--out", str(out), "--steps", "2"])
    kept = {str(w.message).split("(")[0]: Path(str(w.message).rsplit("they are kept in ", 1)[1]) for w in caught}
    assert len(kept) == 4, [str(w.message) for w in caught]
    weights = next(path for message, path in kept.items() if "the final weights" in message)
    record = next(path for message, path in kept.items() if "the run's record" in message)
    assert checksum(torch.load(weights, weights_only=True)) == json.loads(record.read_text())["checksum"]
    for path in kept.values():
        path.unlink()


# ---------------------------------------------------------------------------------------------- a child's own error


WORKER = """
import os
raise ValueError(f"rank {os.environ['RANK']} ran out of bananas: the worker's own words")
"""


def test_child_error_finds_each_ranks_own_error_under_torchrun_s_report(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)],
                          env=child_environment(), capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "ran out of bananas" not in output[-2000:]  # torchrun's report fills the end
    error = child_error(output)
    for rank in (0, 1):  # without torch a worker prints no "[rank0]:"; the two ranks' writes may interleave, not split a message
        assert f"rank {rank} ran out of bananas: the worker's own words" in error
    assert "ChildFailedError" not in error and "exitcode" not in error


def test_a_failed_launch_reports_the_scripts_own_message(tmp_path):
    process = launch(tmp_path / "run", 2, ("--global-batch", "6", "--accumulate", "4"))
    with pytest.raises(RuntimeError, match=re.escape("rank 0, rank 1:\nTraceback")) as raised:
        collect(process, tmp_path / "run", 2)
    assert "ValueError: --global-batch 6 must be a multiple of world size x --accumulate = 2 x 4" in str(raised.value)


def test_child_error_of_one_plain_process_and_of_a_crash():
    plain = "some output\nTraceback (most recent call last):\n  File \"x.py\", line 1\nKeyError: 'a'\n\nDuring handling...\n" \
            "Traceback (most recent call last):\n  File \"x.py\", line 3\nValueError: the last one"
    assert child_error(plain) == plain[len("some output\n"):]
    ranks = "[rank1]: Traceback (most recent call last):\n[rank1]: OSError: disk\n[rank0]: Traceback (most recent call last):\n" \
            "[rank0]: ValueError: shape\ntorchrun's report"
    assert child_error(ranks) == "rank 0:\nTraceback (most recent call last):\nValueError: shape\n" \
                                 "rank 1:\nTraceback (most recent call last):\nOSError: disk"
    assert child_error("x" * 50 + "Killed", limit=10) == "xxxxKilled"


def test_wrap_takes_the_devices_pick_device_takes():
    """None picks the device as everywhere else; an unknown name is a ValueError naming device, not torch's RuntimeError."""
    from course_lib.engine.data import pick_device

    model = torch.nn.Linear(2, 1)
    assert wrap(model, None) is model and model.weight.device.type == pick_device(None).type
    assert wrap(model, torch.device("cpu")) is model and model.weight.device.type == "cpu"
    with pytest.raises(ValueError, match="device 'xyz' is not a device torch knows"):
        wrap(model, "xyz")
