"""course_lib.engine.clipping: equal to torch's clipping, non-finite handling, per-layer norms, thresholds."""

import math

import pytest
import torch

from course_lib.engine import clipping
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


def model_with_grads(seed=0, scale=1.0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3), torch.nn.Linear(3, 2))
    x = torch.randn(16, 5)
    (model(x).pow(2).sum() * scale).backward()
    return model


def twins(**kwargs):
    return model_with_grads(**kwargs), model_with_grads(**kwargs)


def grads(model):
    return [p.grad.clone() for p in model.parameters() if p.grad is not None]


@pytest.mark.parametrize("max_norm", [0.01, 0.5, 1.0, 3.0, 1e6, math.inf])
@pytest.mark.parametrize("scale", [1.0, 50.0])
def test_clip_grad_norm_equals_torch(max_norm, scale):
    ours, theirs = twins(scale=scale)
    norm = clip_grad_norm_(ours.parameters(), max_norm)
    expected = torch.nn.utils.clip_grad_norm_(theirs.parameters(), max_norm)
    assert norm.item() == pytest.approx(expected.item(), rel=1e-6)
    for a, b in zip(grads(ours), grads(theirs)):
        torch.testing.assert_close(a, b, rtol=2e-6, atol=1e-8)


def test_norm_after_clipping_is_min_of_norm_and_threshold():
    for max_norm in (0.1, 1.0, 1e3):
        model = model_with_grads(scale=10.0)
        before = clip_grad_norm_(model.parameters(), max_norm).item()
        after = global_grad_norm(model.parameters()).item()
        assert after == pytest.approx(min(before, max_norm), rel=1e-6)


def test_direction_is_kept():
    model = model_with_grads(scale=30.0)
    flat_before = torch.cat([g.flatten() for g in grads(model)])
    clip_grad_norm_(model.parameters(), 0.5)
    flat_after = torch.cat([g.flatten() for g in grads(model)])
    assert torch.nn.functional.cosine_similarity(flat_before, flat_after, dim=0).item() == pytest.approx(1.0, abs=1e-6)


def test_several_param_groups_and_parameters_without_gradients():
    ours, theirs = twins(scale=20.0)
    for model in (ours, theirs):
        model[3].weight.grad = None  # e.g. a frozen or unused parameter
    opt = torch.optim.SGD([{"params": ours[0].parameters()}, {"params": list(ours[2].parameters()) + list(ours[3].parameters()), "lr": 0.1}], lr=1.0)
    params = [p for group in opt.param_groups for p in group["params"]]
    norm = clip_grad_norm_(params, 1.0)
    expected = torch.nn.utils.clip_grad_norm_(theirs.parameters(), 1.0)
    assert norm.item() == pytest.approx(expected.item(), rel=1e-6)
    assert ours[3].weight.grad is None
    for a, b in zip(grads(ours), grads(theirs)):
        torch.testing.assert_close(a, b, rtol=2e-6, atol=1e-8)


def test_no_gradients_at_all_gives_zero_norm():
    model = torch.nn.Linear(2, 2)
    assert clip_grad_norm_(model.parameters(), 1.0).item() == 0.0


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_gradients_raise_by_default_and_are_left_untouched(bad):
    model = model_with_grads()
    model[0].weight.grad[0, 0] = bad
    untouched = grads(model)
    with pytest.raises(FloatingPointError, match="global gradient norm is (nan|inf)"):
        clip_grad_norm_(model.parameters(), 1.0)
    norm = clip_grad_norm_(model.parameters(), 1.0, error_if_nonfinite=False)
    assert not math.isfinite(norm.item())
    for a, b in zip(grads(model), untouched):
        torch.testing.assert_close(a, b, equal_nan=True)


def test_torch_default_would_write_nan_silently():
    """Why course_lib raises: torch's default turns the inf into NaN and zeroes every other gradient."""
    model = model_with_grads()
    model[0].weight.grad[0, 0] = float("inf")
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    assert torch.isnan(model[0].weight.grad[0, 0])
    assert (model[2].weight.grad == 0).all()


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_bad_thresholds(bad):
    model = model_with_grads()
    with pytest.raises(ValueError, match="max_norm must be > 0"):
        clip_grad_norm_(model.parameters(), bad)
    with pytest.raises(ValueError, match="clip_value must be > 0"):
        clip_grad_value_(model.parameters(), bad)


def test_clip_grad_value_equals_torch_and_changes_direction():
    ours, theirs = twins(scale=5.0)
    clip_grad_value_(ours.parameters(), 0.3)
    torch.nn.utils.clip_grad_value_(theirs.parameters(), 0.3)
    for a, b in zip(grads(ours), grads(theirs)):
        torch.testing.assert_close(a, b)
    g = torch.nn.Parameter(torch.zeros(2))
    g.grad = torch.tensor([3.0, 0.5])
    clip_grad_value_([g], 1.0)
    assert g.grad.tolist() == [1.0, 0.5]


def test_per_layer_clipping_bounds_each_layer():
    model = model_with_grads(scale=20.0)
    layers = {"first": model[0].parameters(), "second": model[2].parameters(), "third": model[3].parameters()}
    before = clip_grad_norm_per_layer_(layers, 1.0)
    after = LayerGradNorms(model.named_parameters(), {"first": r"^0\.", "second": r"^2\.", "third": r"^3\."})()
    for name in before:
        assert after[name].item() == pytest.approx(min(before[name].item(), 1.0), rel=1e-6)


def test_layer_norms_match_a_plain_loop_and_combine_to_the_global_norm():
    model = model_with_grads()
    tracker = LayerGradNorms(model.named_parameters())
    norms = tracker()
    assert list(norms) == ["0", "2", "3"]
    for index in ("0", "2", "3"):
        layer = model[int(index)]
        expected = torch.sqrt(sum(p.grad.pow(2).sum() for p in layer.parameters()))
        assert norms[index].item() == pytest.approx(expected.item(), rel=1e-6)
    total = math.sqrt(sum(v.item() ** 2 for v in norms.values()))
    assert total == pytest.approx(global_grad_norm(model.parameters()).item(), rel=1e-6)


def test_layer_patterns_and_unmatched_parameters():
    model = model_with_grads()
    tracker = LayerGradNorms(model.named_parameters(), {"weights": r"weight$"})
    norms = tracker()
    assert set(norms) == {"weights", "other"}
    model[0].weight.grad = None
    model[2].weight.grad = None
    model[3].weight.grad = None
    assert set(tracker()) == {"other"}


def test_by_module():
    assert by_module("encoder.layer.0.attention.self.query.weight") == "encoder.layer.0.attention.self.query"
    assert by_module("bias") == "bias"


def test_thresholds_and_measures():
    assert threshold_at(None, 5) == math.inf
    assert threshold_at(2.0, 5) == 2.0
    schedule = delayed(1.0, start_step=10)
    assert [threshold_at(schedule, t) for t in (0, 9, 10, 50)] == [math.inf, math.inf, 1.0, 1.0]
    assert threshold_at(lambda t: 1.0 + t, 3) == 4.0
    with pytest.raises(ValueError, match="clipping threshold must be > 0"):
        threshold_at(lambda t: 0.0, 3)
    with pytest.raises(ValueError, match="start_step must be >= 0"):
        delayed(1.0, -1)
    assert clip_factor(4.0, 1.0) == 0.25 and clip_factor(0.5, 1.0) == 1.0 and clip_factor(9.0, math.inf) == 1.0
    assert norm_lost(4.0, 1.0) == 3.0 and norm_lost(0.5, 1.0) == 0.0


def test_functions_that_change_gradients_in_place_end_in_an_underscore():
    """torch's convention (clip_grad_norm_, clip_grad_value_), with no alias under the old names."""
    for name in ("clip_grad_norm", "clip_grad_value", "clip_grad_norm_per_layer"):
        assert not hasattr(clipping, name) and name + "_" in clipping.__all__


def test_the_norm_of_finite_fp16_gradients_does_not_overflow():
    """300 elements of 1000 in fp16: each is finite, the norm (17,320) too, but their sum of squares passes fp16's 65,504."""
    weight = torch.nn.Parameter(torch.zeros(300, dtype=torch.float16))
    weight.grad = torch.full((300,), 1000.0, dtype=torch.float16)
    norm = clip_grad_norm_([weight], 1.0)  # raised "some gradient holds NaN or inf" when measured in fp16
    assert norm.dtype == torch.float32 and abs(norm.item() - 1000 * 300 ** 0.5) < 1
    assert abs(global_norm([weight.grad.float()]).item() - 1.0) < 1e-3  # clipped to the threshold


def test_clip_grad_value_does_not_hide_a_nan():
    weight = torch.nn.Parameter(torch.zeros(3))
    weight.grad = torch.tensor([5.0, float("nan"), -5.0])
    with pytest.raises(FloatingPointError, match="which clamping would hide"):
        clip_grad_value_([weight], 1.0)
    norm = clip_grad_value_([weight], 1.0, error_if_nonfinite=False)
    assert math.isnan(norm.item()) and weight.grad[0].item() == 5.0  # left as it is, and the norm says so


def test_a_used_up_generator_is_refused_and_fresh_or_empty_lists_are_not():
    """A generator of parameters runs once: a second use would clip nothing, so it is refused; a list may be empty."""
    model = torch.nn.Linear(3, 2)
    model(torch.randn(4, 3)).sum().backward()
    first, second = clip_grad_norm_(model.parameters(), 1e9), clip_grad_norm_(model.parameters(), 1e9)
    assert first.item() == second.item() > 0
    assert clip_grad_norm_([], 1.0).item() == clip_grad_norm_((), 1.0).item() == global_grad_norm([]).item() == 0.0
    assert clip_grad_norm_per_layer_({"none": [], "all": model.parameters()}, 1e9)["none"].item() == 0.0
    parameters = model.parameters()
    global_grad_norm(parameters)
    with pytest.raises(ValueError, match="parameters is an iterator that yields nothing"):
        clip_grad_norm_(parameters, 1.0)
    with pytest.raises(ValueError, match="layers is empty"):
        clip_grad_norm_per_layer_({}, 1.0)


def test_group_by_must_name_layers_with_strings():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    assert LayerGradNorms(model.named_parameters(), lambda name: "all").layers == ["all"]
    with pytest.raises(TypeError, match=r"group_by\(name\) must return the name of the parameter's layer \(a str\), got 0 \(int\)"):
        LayerGradNorms(model.named_parameters(), lambda name: 0)


# Lesson 02, second edition: where clipping slows the quadratic, lesson 03's norms at step 0, torch at an overflowing norm.


def test_clipping_slows_the_quadratic_where_full_steps_do_not_overshoot_and_speeds_it_up_where_they_do():
    from course_lib.lessons.gradient_clipping import SETUPS, steps_to_target_by_rate

    found = steps_to_target_by_rate((0.25, 0.75, 1.5))
    assert all(set(steps) == set(SETUPS) for steps in found.values())
    # without clipping, L_t = 5 (1 - 2 eta)^(2t): below 1e-3 from the first t with t > log(5000) / (2 log 2) at eta = 0.25
    assert found[0.25]["no_clip"] == math.ceil(math.log(5000) / (2 * math.log(2)))
    assert found[0.25]["clip_only"] > found[0.25]["no_clip"] and found[0.25]["clip_and_schedule"] > found[0.25]["schedule_only"]
    assert found[0.75]["clip_only"] < found[0.75]["no_clip"]
    assert found[1.5]["no_clip"] is None and found[1.5]["clip_only"] is None
    assert found[1.5]["clip_and_schedule"] < found[1.5]["schedule_only"]
    assert steps_to_target_by_rate((0.25,), max_norm=1e9)[0.25]["clip_only"] == found[0.25]["no_clip"], "a threshold never reached"


def test_start_norms_split_lesson_03s_step_0_norm_into_shares_that_add_up_to_one():
    from course_lib.lessons.finetuning_bert import load_results
    from course_lib.lessons.gradient_clipping import start_norms

    results = load_results()
    found = start_norms(results)
    frozen = [r for r in results["runs"] if r["variant"] == "frozen"]
    assert found["total"].n == len(frozen) >= 2
    assert math.isclose(found["total"].mean, sum(r["grad_norm"][0] for r in frozen) / len(frozen))
    assert math.isclose(sum(found[f"{part}_share"].mean for part in ("head", "pooler", "mlp", "rest")), 1.0)
    parts = {"classifier": [3.0], "pooler": [2.0], "mlp.0": [1.0], "mlp.1": [1.0], "layernorm": [1.0]}
    run = {"variant": "frozen", "grad_norm": [math.sqrt(17.0)], "grad_norm_parts": parts}
    one = start_norms({"runs": [run]})
    assert math.isclose(one["mlp"].mean, math.sqrt(2.0)) and math.isclose(one["rest"].mean, math.sqrt(2.0))
    assert math.isclose(one["head_share"].mean, 9 / 17) and math.isclose(one["pooler_share"].mean, 4 / 17)
    with pytest.raises(ValueError, match="variant must be one of 'frozen'"):
        start_norms({"runs": [run]}, "full")


def test_torch_clip_grad_norm_at_an_overflowing_norm():
    """What lesson 02 shows: finite components whose squares overflow give a norm of inf; a finite max_norm then
    zeroes the gradient (factor c / (inf + 1e-6) = 0), max_norm=inf turns it into NaN, an inf component becomes NaN."""
    def clipped(grad, max_norm):
        w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
        w.grad = torch.tensor(grad)
        total = torch.nn.utils.clip_grad_norm_([w], max_norm)
        torch.optim.SGD([w], lr=0.1).step()
        return total.item(), w.grad.tolist(), w.tolist()

    assert clipped([3e19, 4e19], 1.0) == (math.inf, [0.0, 0.0], [1.0, -2.0])
    total, grad, weights = clipped([3e19, 4e19], math.inf)
    assert total == math.inf and all(math.isnan(v) for v in grad + weights)
    total, grad, weights = clipped([math.inf, 1.0], 1.0)
    assert math.isnan(grad[0]) and grad[1] == 0.0 and math.isnan(weights[0]) and weights[1] == -2.0


def test_clipping_by_rate_table_has_one_row_per_rate_in_the_readers_language():
    from course_lib.show.tables import clipping_by_rate

    table = clipping_by_rate((0.25, 1.5), "vi")
    assert [row[0] for row in table.rows] == ["0,25", "1,5"]
    assert table.rows[1][1] == "không bao giờ" and table.header[0] == "η \\ số bước đến L < 10⁻³"
