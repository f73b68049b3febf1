"""course_lib.engine.freezing: choosing parameters, frozen ones never move, R, parameter groups, the report."""

import pytest
import torch

from course_lib.engine.callbacks import UnfreezeAt, WeightChange
from course_lib.engine.freezing import freeze, param_groups, select, trainable_ratio, unfreeze
from course_lib.show.tables import freezing_table
from course_lib.i18n import text
from course_lib.engine.training import train

transformers = pytest.importorskip("transformers")


def tiny_bert(seed=0):
    """A two-layer BERT classifier with bert-base's structure and tiny sizes."""
    torch.manual_seed(seed)
    config = transformers.BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=32, num_labels=2)
    return transformers.BertForSequenceClassification(config)


def batches(step):
    g = torch.Generator().manual_seed(step)
    return {"input_ids": torch.randint(1, 120, (8, 12), generator=g), "labels": torch.randint(0, 2, (8,), generator=g)}


def loss_fn(model, batch):
    return model(**batch).loss


RECIPE = r"embeddings|attention"  # the notes' recipe: train MLP + pooler + classifier


def test_ratio_is_exact():
    model = tiny_bert()
    freeze(model, RECIPE)
    params = dict(model.named_parameters())
    trainable = sum(p.numel() for n, p in params.items() if "embeddings" not in n and "attention" not in n)
    assert trainable_ratio(model) == trainable / sum(p.numel() for p in params.values())
    assert 0 < trainable_ratio(model) < 1


def test_select_by_pattern_module_type_and_layer_index():
    model = tiny_bert()
    norms = select(model, module_type=torch.nn.LayerNorm)
    assert norms and all("LayerNorm" in n for n in norms)
    assert len(norms) == 2 * (1 + 2 * 2)  # embeddings, and two per layer; weight and bias each
    layer_1 = select(model, layers=[1])
    assert layer_1 and all(".layer.1." in n for n in layer_1)
    assert select(model, "attention", layers=[0]) == [n for n in select(model, "attention") if ".layer.0." in n]
    with pytest.raises(ValueError, match="no parameter matches"):
        select(model, layers=[7])
    with pytest.raises(ValueError, match="needs a pattern"):
        select(model)


PARAMETERS = {
    "optimizer-of-all-parameters": lambda model: model.parameters(),
    "param_groups": lambda model: param_groups(model, 0.1),
    "param_groups-include-frozen": lambda model: param_groups(model, 0.1, include_frozen=True),
}


@pytest.mark.parametrize("groups", PARAMETERS)
def test_frozen_parameters_are_bitwise_unchanged_with_adamw_and_weight_decay(groups):
    """AdamW skips a parameter whose .grad is None: no update, no weight decay, no state, even when it holds it."""
    model = tiny_bert()
    frozen = set(freeze(model, RECIPE))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    parameters = PARAMETERS[groups](model)
    optimizer = torch.optim.AdamW(parameters, lr=1e-2, weight_decay=0.1)
    train(model, optimizer, batches, loss_fn, 5, clip=1.0, device="cpu")
    for name, p in model.named_parameters():
        if name in frozen:
            assert torch.equal(p.detach(), before[name]), name
            assert p not in optimizer.state or not optimizer.state[p], f"{name} has optimizer state"
        elif p.ndim == 2:
            assert not torch.equal(p.detach(), before[name]), f"{name} did not train"


def test_param_groups_hold_trainable_parameters_and_spare_biases_and_norms():
    model = tiny_bert()
    freeze(model, RECIPE)
    decay, no_decay = param_groups(model, 0.01)
    names = {id(p): n for n, p in model.named_parameters()}
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    assert all(names[id(p)].endswith("weight") and "LayerNorm" not in names[id(p)] for p in decay["params"])
    assert all(names[id(p)].endswith("bias") or "LayerNorm" in names[id(p)] for p in no_decay["params"])
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for p in decay["params"] + no_decay["params"]} == trainable
    model.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameter"):
        param_groups(model, 0.01)


def test_param_groups_can_hold_frozen_parameters_in_their_decay_groups():
    model = tiny_bert()
    freeze(model, RECIPE)
    decay, no_decay = param_groups(model, 0.01, include_frozen=True)
    names = {id(p): n for n, p in model.named_parameters()}
    assert {id(p) for p in decay["params"] + no_decay["params"]} == set(names)
    assert all(p.ndim >= 2 and "LayerNorm" not in names[id(p)] for p in decay["params"])
    assert any(not p.requires_grad for p in no_decay["params"]) and any(not p.requires_grad for p in decay["params"])
    assert [len(g["params"]) for g in param_groups(model, 0.01)] == [
        sum(p.requires_grad for p in g["params"]) for g in (decay, no_decay)]
    model.requires_grad_(False)
    assert len(param_groups(model, 0.01, include_frozen=True)) == 2
    with pytest.raises(TypeError, match="include_frozen must be True or False"):
        param_groups(model, 0.01, include_frozen=1)


def test_frozen_parameters_in_the_optimizer_change_nothing_until_unfrozen():
    """The same run, bit for bit, with or without the frozen parameters in AdamW; then UnfreezeAt trains them."""
    runs = {}
    for include_frozen in (False, True):
        model = tiny_bert()
        freeze(model, RECIPE)
        optimizer = torch.optim.AdamW(param_groups(model, 0.1, include_frozen=include_frozen), lr=1e-2)
        runs[include_frozen] = train(model, optimizer, batches, loss_fn, 4, clip=1.0, device="cpu").loss, model
    assert runs[False][0] == runs[True][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[False][1].parameters(), runs[True][1].parameters()))

    model = tiny_bert()
    freeze(model, RECIPE)
    optimizer = torch.optim.AdamW(param_groups(model, 0.1, include_frozen=True), lr=1e-2)
    history = train(model, optimizer, batches, loss_fn, 4, clip=1.0, device="cpu",
                    callbacks=[UnfreezeAt(2, r"layer\.1\.attention"), WeightChange(model.named_parameters(), per_matrix=True)])
    assert history.loss[:2] == runs[True][0][:2]
    assert history.metric_steps("weight_change/bert.encoder.layer.1.attention.self.query.weight") == [2, 3]
    norm = model.get_parameter("bert.encoder.layer.1.attention.output.LayerNorm.weight")
    assert next(g for g in optimizer.param_groups if any(p is norm for p in g["params"]))["weight_decay"] == 0.0


def test_unfreeze_at_refuses_an_optimizer_without_the_frozen_parameters_before_any_step():
    model = tiny_bert()
    freeze(model, RECIPE)
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.AdamW(param_groups(model, 0.1), lr=1e-2)
    with pytest.raises(ValueError, match=r"would unfreeze 'bert\.encoder\.layer\.1\.attention\.self\.query\.weight' and 9 more, .*"
                                         r"param_groups\(model, weight_decay, include_frozen=True\)"):
        train(model, optimizer, batches, loss_fn, 6, device="cpu", callbacks=[UnfreezeAt(3, r"layer\.1\.attention")])
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters()))


def test_unfreezing_mid_run_trains_the_unfrozen_part_from_that_step():
    model = tiny_bert()
    freeze(model, RECIPE)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    history = train(model, optimizer, batches, loss_fn, 6, device="cpu",
                    callbacks=[UnfreezeAt(3, r"layer\.1\.attention"), WeightChange(model.named_parameters(), per_matrix=True)])
    query = "weight_change/bert.encoder.layer.1.attention.self.query.weight"
    assert history.metric_steps(query) == [3, 4, 5] and all(v > 0 for v in history.metric(query))
    assert "weight_change/bert.encoder.layer.0.attention.self.query.weight" not in history.metrics
    unfreeze(model, RECIPE)
    assert trainable_ratio(model) == 1.0


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_report_lists_each_part_and_r(lang):
    model = tiny_bert()
    freeze(model, RECIPE)
    table = freezing_table(model, lang)
    rows = {row[0]: row for row in table.rows}
    assert rows["bert.encoder.layer.*.attention"][2] == text("frozen", lang)
    assert rows["bert.encoder.layer.*.intermediate"][2] == text("trainable", lang)
    assert rows["classifier"][2] == text("trainable", lang)
    r = f"{trainable_ratio(model):.3f}"
    assert table.rows[-1][2] == text("ratio_r", lang, r=r.replace(".", ",") if lang == "vi" else r)
