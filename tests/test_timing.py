"""course_lib.engine.timing and course_lib.engine.stats: what they accept (what train accepts), and the edge values that must keep working."""

import math

import pytest
import torch

from course_lib.engine import timing
from course_lib.engine.data import default_dtype
from course_lib.engine.stats import Spread, curve_agreement, spread


def _regression(dtype=torch.float32):
    torch.manual_seed(0)
    with default_dtype(dtype):
        model = torch.nn.Linear(9, 1)
    return model, torch.optim.SGD(model.parameters(), lr=0.01)


def _loss(model, batch):
    return model(batch.to(model.weight.dtype) / 50).pow(2).mean()


def _blocks(m):
    """Micro-batch m: (2 + 2·(m % 2), 9) token blocks, so steps alternate between 16 and 32 counted tokens."""
    return torch.randint(0, 50, (2 + 2 * (m % 2), 9), generator=torch.Generator().manual_seed(m))


@pytest.mark.parametrize("kind", ["function", "list", "DataLoader"])
def test_train_speed_takes_the_data_train_takes(kind):
    """A function of the index, a list of batches or a DataLoader; tokens_per_step is the mean over the timed steps."""
    batches = [_blocks(m) for m in range(8)]
    data = {"function": _blocks, "list": batches,
            "DataLoader": torch.utils.data.DataLoader(batches, batch_size=None)}[kind]
    model, optimizer = _regression()
    result = timing.train_speed(model, optimizer, data, _loss, steps=2, warmup=1, rounds=2, device="cpu")
    assert result["tokens_per_step"] == (4 * 8 + 2 * 8 + 4 * 8 + 2 * 8) / 4  # steps 1-4 timed, after the warm-up step 0
    assert result["tokens_per_s"] == pytest.approx(result["tokens_per_step"] / (result["ms_per_step"] / 1e3))


def test_train_speed_counts_with_the_tokens_function_on_every_micro_batch():
    model, optimizer = _regression()
    result = timing.train_speed(model, optimizer, _blocks, _loss, steps=1, warmup=0, rounds=3, accumulate=2, device="cpu",
                                tokens=lambda batch: batch.shape[0])
    assert result["tokens_per_step"] == 2 + 4 and isinstance(result["tokens_per_step"], int)


@pytest.mark.parametrize("precision, asked", [("fp32", "fp32"), ("bf16", "bf16"), ("fp16", "fp16"), ("fp64", None)])
def test_the_mfu_is_against_the_peak_of_the_precision_timed(monkeypatch, precision, asked):
    """fp16 against fp16's peak (a T4 has no bf16 one), fp64 against none: the table has no fp64 column."""
    calls = []
    monkeypatch.setattr(timing, "peak_flops", lambda device, kind: calls.append(kind) or 1e12)
    model, optimizer = _regression(torch.float64 if precision == "fp64" else torch.float32)
    result = timing.train_speed(model, optimizer, _blocks, _loss, steps=1, warmup=0, rounds=1, precision=precision,
                                device="cpu", flops_per_token=1e6)
    assert calls == ([asked] if asked else [])
    assert (result["mfu"] is None) == (asked is None)


def test_synchronize_takes_a_device_name_or_none():
    timing.synchronize("cpu")
    timing.synchronize(None)
    timing.synchronize(torch.device("cpu"))


def test_timing_accepts_zero_seconds():
    assert timing.Timing.of([0.0, 0.0]).median == 0.0 and math.isnan(timing.Timing.of([0.0]).spread)
    assert timing.Timing.of(x for x in (0.1, 0.3, 0.2)).median == 0.2


def test_the_spread_of_a_diverged_seed_is_not_a_number():
    """statistics.stdev fails on a NaN; the spread says NaN instead, and the mean is what fmean gives."""
    with_nan = spread([math.nan, 1.0])
    assert math.isnan(with_nan.mean) and math.isnan(with_nan.sem) and with_nan.n == 2
    with_inf = spread([math.inf, 1.0])
    assert with_inf.mean == math.inf and math.isnan(with_inf.sem)
    assert spread([math.inf]) == Spread(math.inf, 0.0, 1)


def test_spread_takes_ints_generators_and_one_element_tensors():
    assert spread([1, 2, 3]) == spread(float(v) for v in (1, 2, 3))
    assert spread([torch.tensor(1.0), torch.tensor(3.0)]) == Spread(2.0, 1.0, 2)


def test_curve_agreement_takes_equal_curves_and_zero_losses_of_the_other():
    agreement = curve_agreement([2.0] * 4, [0.0, 0.0, 2.0, 2.0], window=2)
    assert agreement["final_gap"] == 0.0 and agreement["max_gap"] == 1.0


def test_train_speed_checks_its_arguments_before_any_step(monkeypatch):
    """A bad precision or flops_per_token is refused before the run is set up: not after minutes of timing."""
    started = []
    monkeypatch.setattr(timing, "timed_run", lambda *a, **k: started.append(1))
    model, optimizer = _regression()
    for kwargs in ({"precision": "fp8"}, {"flops_per_token": math.nan}, {"tokens": "count"}):
        with pytest.raises((TypeError, ValueError)):
            timing.train_speed(model, optimizer, _blocks, _loss, device="cpu", **kwargs)
    assert started == []


def test_a_timing_and_a_spread_must_be_consistent_and_stay_valid_at_their_edges():
    """low <= median <= high, samples within them; sem >= 0 or NaN (a diverged seed), 0 for one seed."""
    assert timing.Timing(0.0, 0.0, 0.0, (0.0,)).spread != timing.Timing(0.0, 0.0, 0.0, (0.0,)).spread  # nan: no median
    measured = timing.Timing.of([torch.tensor(0.25), 0.5, 0.75])
    assert measured == timing.Timing(0.5, 0.25, 0.75, (0.25, 0.5, 0.75)) and all(type(s) is float for s in measured.samples)
    assert Spread(1.0, math.nan, 2).n == 2 and Spread(math.inf, 0.0, 1).mean == math.inf
    assert math.isnan(spread([1.0, math.nan]).sem) and spread([2.0]) == Spread(2.0, 0.0, 1)
    with pytest.raises(ValueError, match="low <= median <= high must hold"):
        timing.Timing(1.0, 2.0, 0.5, (1.0,))
    with pytest.raises(ValueError, match="sem must be >= 0"):
        Spread(1.0, -1.0, 2)
    with pytest.raises(ValueError, match="sem must be 0 for one seed"):
        Spread(1.0, 0.1, 1)
