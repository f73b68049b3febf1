"""The Vietnamese edition reads as Vietnamese (issue 29).

(a) every output of notebooks/vi/*.ipynb writes its numbers the Vietnamese way: a decimal comma (0,25, never 0.25; a
    dot followed by exactly three digits is a thousands separator), thousands grouped (no run of 5+ digits), no
    e-notation (3,5·10⁻⁵, never 3,5e-05), a space before the percent sign (56,9 %);
(b) no English word from the glossary's English column (the "*(english)*" after each term of book/vi/glossary.md),
    less the loanwords the course keeps, in Vietnamese prose or outputs (code, math, links, MyST roles, and English
    glosses in parentheses or italics are left out);
(c) the tick labels of every Vietnamese figure have a decimal comma and thousands dots;
(d) the Vietnamese feedback of every check_ exercise, for a typical wrong answer, writes its numbers that way;
(e) every Vietnamese course string, rendered with sample values, does too.

Outputs (a, b) are what the committed notebooks hold: a failure there after a change to course_lib may only mean that
the notebook must be re-executed.
"""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from course_lib.i18n import _STRINGS, text  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
VI_NOTEBOOKS = sorted((ROOT / "notebooks" / "vi").glob("*.ipynb"))
GLOSSARY = ROOT / "book" / "vi" / "glossary.md"

# ---------------------------------------------------------------------------------------------------------------
# (a) numbers


# spans that are not Vietnamese prose: versions, commands, code, identifiers, paths, links
_NOT_PROSE = [
    re.compile(r"https?://\S+"),
    re.compile(r"`[^`\n]*`"),
    re.compile(r"(?:lệnh|command): [^;\n]*"),  # a stored result's command line
    re.compile(r"\b(?:torch|CUDA|driver|transformers|Python|python|numpy|nanoGPT|cu\d*|v)\s?\d[\w.+\-]*"),  # versions
    re.compile(r"[\w.]*[A-Za-z_][\w.]*\([^()\n]*(?:\([^()\n]*\)[^()\n]*)*\)"),  # a call such as f(t=0.25, T=10)
    re.compile(r"\b\w+=\S+"),  # an argument as Python writes it: lr=0.1
    re.compile(r"\S*[/\\]\S*\.\w+"),  # a path
    re.compile(r"\b(?=\w*[A-Za-z_])(?=\w*\d)\w+"),  # identifiers, hashes and names with digits: H100, 3adf61e, fp32
    re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"),  # dates and times
    re.compile(r"\b\d{1,2}:\d{2}(?::\d{2})?"),  # times
]


def prose_of(output: str) -> str:
    for pattern in _NOT_PROSE:
        output = pattern.sub(" ", output)
    return output


def number_problems(written: str, lists: bool = True) -> list[str]:
    """Numbers written the English way in ``written`` (prose, once code, versions and identifiers are left out).

    ``lists``: also flag decimals listed with commas (off for templates filled with made-up values side by side).
    """
    problems = []
    for pattern in _NOT_PROSE[:-3]:  # identifiers are left in: 3e-05 would read as one
        written = pattern.sub(" ", written)
    for match in re.finditer(r"(?<![\w.,])\d+(?:[.,]\d+)?[eE][+\-]?\d+(?![\w])", written):
        problems.append(f"e-notation: {match.group()!r}")
    written = prose_of(written)
    for match in re.finditer(r"(?<![\w.,])\d+(?:\.\d+)+(?![\w])", written):
        if not re.fullmatch(r"\d{1,3}(?:\.\d{3})+", match.group()):
            problems.append(f"decimal point: {match.group()!r} in …{written[max(0, match.start() - 30):match.end() + 10]!r}")
    for match in re.finditer(r"(?<![\w.,])\d{5,}(?![\w])", written):
        problems.append(f"thousands not grouped: {match.group()!r} in …{written[max(0, match.start() - 30):match.end() + 10]!r}")
    for match in re.finditer(r"(?<![\w.,])\d[\d.]*,\d+, \d[\d.]*,\d+", written if lists else ""):
        problems.append(f"decimals listed with commas: {match.group()!r} (write 1,06; 1,03)")
    for match in re.finditer(r"\d%", written):
        problems.append(f"percent without a space: {written[max(0, match.start() - 20):match.end()]!r}")
    return problems


def test_the_number_check_can_fail():
    assert number_problems("0.25 và 3.14159") and number_problems("49857 MB") and number_problems("3,5e-05")
    assert number_problems("56,9%") and number_problems("[1.06, 1.03]") and number_problems("nhanh gấp 1,06, 1,03, 1,03 lần")
    assert not number_problems("1.063.680 tham số, 5,3; 56,9 %; 3,5·10⁻⁵; 2.048; năm 2024; 0,25; 1,06; 1,03; 256, 512, 1.024")
    assert not number_problems("torch 2.11.0+cu130, CUDA 13.0, driver 580.159.04; lệnh: python -m x --lr 0.1")
    assert not number_problems("H100 80GB HBM3, nanoGPT 3adf61e, warmup_cosine(t=0.25, T=10), lr=0.1, `x = 0.5`")


def _outputs(path: Path):
    """(where, kind, text) for every output of a notebook's code cells, less shown source code and errors."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code" or "show_source(" in "".join(cell["source"]):
            continue
        for output in cell.get("outputs", []):
            where = f"{path.name}, cell {index}"
            if output["output_type"] == "stream":
                yield where, "stream", "".join(output["text"])
            elif output["output_type"] in ("execute_result", "display_data"):
                data = output.get("data", {})
                for kind in ("text/plain", "text/markdown", "text/html"):
                    if kind in data and not (kind == "text/plain" and "image/png" in data):
                        value = "".join(data[kind])
                        if kind == "text/html":
                            value = re.sub(r"<style.*?</style>|<script.*?</script>", " ", value, flags=re.S)
                            value = re.sub(r"<[^>]+>", " ", value)
                        yield where, kind, value


@pytest.mark.parametrize("path", VI_NOTEBOOKS, ids=lambda p: p.name)
def test_vietnamese_outputs_write_numbers_the_vietnamese_way(path):
    problems = [f"{where} ({kind}): {problem}" for where, kind, value in _outputs(path) for problem in number_problems(value)]
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------------------------------------------
# (b) English words

# loanwords the course keeps, and glosses that are also names or identifiers
ALLOWED = {
    "token", "tokens", "epoch", "epochs", "gradient", "gradients", "gpu", "cpu", "kernel", "kernels", "mfu", "flop", "flops",
    "batch size",  # written "kích thước lô"; the gloss is listed in case the glossary keeps it
    "deep learning", "machine learning",  # glossed in parentheses where they occur
    "callback", "callbacks", "notebook", "notebooks", "adam", "ddp", "layernorm", "adamw", "sgd", "pooler", "softmax", "logit", "logits", "bias",
}


def glossary_english() -> set[str]:
    """The English column of the glossary: each "*(english)*" gloss, split at commas and slashes."""
    glosses = set()
    for gloss in re.findall(r"^\s+\*\(([^)]*)\)\*", GLOSSARY.read_text(encoding="utf-8"), flags=re.M):
        for term in re.split(r"[,;/]| or ", gloss):
            term = term.strip().strip("\"'").lower()
            if term and re.fullmatch(r"[a-z][a-z\- ]*[a-z]", term) and term not in ALLOWED:
                glosses.add(term)
    return glosses


# English the issue found on Vietnamese pages, kept here as well in case the glossary lacks the term
ISSUE_ENGLISH = {"micro-batch", "micro-batches", "eager", "non-blocking", "cross-entropy", "attention", "pageable", "pinned",
                 "held-out", "warm-up", "learning rate", "checkpoint", "seed", "seeds", "moment", "moments", "weight tying",
                 "cuda graphs", "cuda graph", "ablation", "throughput", "fine-tuning", "scheduler", "optimizer", "loss"}

ENGLISH = glossary_english() | ISSUE_ENGLISH


def _without_glosses(prose: str) -> str:
    """Prose less parentheses and italics (where the course glosses an English term) and quoted words."""
    previous = None
    while previous != prose:
        previous, prose = prose, re.sub(r"\([^()]*\)", " ", prose)
    prose = re.sub(r"(?<![*\w])\*[^*\n]+\*(?!\*)|(?<!\w)_[^_\n]+_(?!\w)", " ", prose)
    return re.sub(r"\"[^\"]{0,300}\"|“[^”]{0,300}”", " ", prose)  # a quotation, e.g. of the lecture notes


def markdown_prose(markdown: str) -> str:
    """The prose of a Jupytext lesson: no code cells, front matter, math, code, links' targets, roles, HTML."""
    markdown = re.sub(r"\A---\n.*?\n---\n", "", markdown, flags=re.S)
    markdown = re.sub(r"^(```+|~~~+).*?^\1\s*$", " ", markdown, flags=re.S | re.M)
    markdown = re.sub(r"<!--.*?-->", " ", markdown, flags=re.S)
    markdown = re.sub(r"\$\$.*?\$\$", " ", markdown, flags=re.S)
    markdown = re.sub(r"\$[^$\n]+\$", " ", markdown)
    markdown = re.sub(r"\{[\w:-]+\}`[^`]*`", " ", markdown)  # {cite:p}`...`, {term}`...`
    markdown = re.sub(r"`[^`]*`", " ", markdown)
    markdown = re.sub(r"\]\([^)]*\)", "] ", markdown)  # a link's target
    markdown = re.sub(r"\(#[\w-]+\)=|\([\w-]+\)=", " ", markdown)  # MyST targets
    markdown = re.sub(r"^[+:]{3}.*$|^:::.*$|^:[\w-]+:.*$", " ", markdown, flags=re.M)  # directive lines and options
    markdown = re.sub(r"<[^>]+>", " ", markdown)
    markdown = re.sub(r"https?://\S+", " ", markdown)
    return markdown


# identifiers that happen to be English words: the argument names an exercise's feedback lists
IDENTIFIER_PHRASES = ("model, optimizer, scaler, loss",)


def english_words(prose: str) -> list[str]:
    for phrase in IDENTIFIER_PHRASES:
        prose = prose.replace(phrase, " ")
    prose = _without_glosses(prose)
    found = []
    for term in sorted(ENGLISH):
        for match in re.finditer(rf"(?<![\w\-.]){re.escape(term)}(?![\w\-])", prose, flags=re.I):
            found.append(f"{term!r} in …{prose[max(0, match.start() - 40):match.end() + 20]!r}")
    return found


def test_the_glossary_gives_the_english_list():
    assert {"learning rate", "warm-up", "layer"} <= ENGLISH, sorted(ENGLISH)[:30]


def test_the_english_check_can_fail():
    assert english_words("Ta dùng learning rate lớn.") and english_words("một micro-batch")
    assert not english_words(markdown_prose("tốc độ học (learning rate) và *warm-up*, `layer`"))


# the lessons and the pages; the glossary names the English terms and the references cite English titles
VI_PAGES = sorted((ROOT / "notebooks" / "vi").glob("*.md")) + sorted(
    p for p in (ROOT / "book" / "vi").glob("*.md") if p.name not in ("glossary.md", "references.md"))


@pytest.mark.parametrize("path", VI_PAGES, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_no_english_in_vietnamese_prose(path):
    found = english_words(markdown_prose(path.read_text(encoding="utf-8")))
    assert not found, "\n".join(found)


@pytest.mark.parametrize("path", VI_NOTEBOOKS, ids=lambda p: p.name)
def test_no_english_in_vietnamese_outputs(path):
    found = [f"{where}: {word}" for where, kind, value in _outputs(path) for word in english_words(prose_of(value))]
    assert not found, "\n".join(found)


# ---------------------------------------------------------------------------------------------------------------
# (e) the course strings


def _sample(field: str, i: int):
    return (12345, 0.25, 1234.5678, 3.5e-05, [1.06, 1.03])[i % 5]


@pytest.mark.parametrize("key", sorted(_STRINGS))
def test_vietnamese_strings_render_vietnamese_numbers(key):
    template = _STRINGS[key]["vi"]
    fields = [name for _, name, _, _ in string.Formatter().parse(template) if name]
    for shift in range(5):
        rendered = text(key, "vi", **{name: _sample(name, i + shift) for i, name in enumerate(fields)})
        problems = number_problems(rendered, lists=False)
        assert not problems, f"{key}: {rendered!r}\n" + "\n".join(problems)


@pytest.mark.parametrize("key", sorted(_STRINGS))
def test_vietnamese_strings_hold_no_english_word(key):
    template = re.sub(r"\{[^{}]*\}", " ", _STRINGS[key]["vi"])
    found = english_words(prose_of(template))
    assert not found, f"{key}: " + "\n".join(found)


# ---------------------------------------------------------------------------------------------------------------
# (c) figures


def _figures():
    from course_lib.engine.schedules import Constant
    from course_lib.engine.training import History
    from course_lib.lessons.lr_schedules import train_softmax_toy  # noqa: F401  (imported where the lesson imports it)
    from course_lib.show import plotting

    toy = {"η = 0,2": train_softmax_toy(Constant(), 0.2, 40)}
    clipped = History(step=list(range(30)), loss=[1e4 / (t + 1) for t in range(30)], lr=[0.1] * 30,
                      grad_norm=[2000.0 / (t + 1) for t in range(30)], threshold=[1.0] * 30, skipped=[False] * 30)
    gpt = {"variant": "full", "loss": [2.0, 1.5, 1.25], "eval_steps": [0, 1000, 2000], "eval_loss": [2.0, 1.6, 1.45],
           "weight_change": {"w": [0.1, 0.25, 0.125]}}
    targeted = {**gpt, "variant": "targeted", "eval_loss": [2.0, 1.7, 1.5]}
    norms = {"grad_norm": [2.5, 0.5, 0.25], "grad_norm_parts": {"mlp.0": [1.0, 0.2, 0.1], "pooler": [0.3, 0.1, 0.05],
                                                                "classifier": [1.5, 0.4, 0.2]}, "norm_lost": [1.5, 0.0, 0.0]}
    rows = [{"length": t, "fused_ms": 0.05 * t / 256, "naive_ms": 0.2 * (t / 256) ** 2,
             "fused_memory_mb": 10.5 * t / 256, "naive_memory_mb": 30.5 * (t / 256) ** 2} for t in (256, 512, 1024, 2048)]
    return {
        "rates": lambda: plotting.plot_rates({"a": [0.00025 * t for t in range(2500)]}, "vi"),
        "integral_law": lambda: plotting.plot_integral_law(toy, "vi"),
        "excess_loss": lambda: plotting.plot_excess_loss(toy, "vi"),
        "clip_directions": lambda: plotting.plot_clip_directions([2.5, 0.5], 1.0, "vi"),
        "clipping_runs": lambda: plotting.plot_clipping_runs({"a": clipped}, "vi", ["a"]),
        "finetune_norms": lambda: plotting.plot_finetune_norms(norms, 1.0, "vi"),
        "gpt_losses": lambda: plotting.plot_gpt_losses([gpt, targeted], "vi"),
        "loss_scatter": lambda: plotting.plot_loss_scatter(gpt, targeted, "vi"),
        "weight_changes": lambda: plotting.plot_weight_changes(gpt, targeted, "vi"),
        "attention_lengths": lambda: plotting.plot_attention_lengths(rows, "vi"),
        "loss_curves": lambda: plotting.plot_loss_curves([10.5 - 0.01 * t for t in range(60)],
                                                         [10.5 - 0.0101 * t for t in range(60)], "vi", window=5),
        "explorer": lambda: __import__("course_lib.show.widgets", fromlist=["explorer_figure"]).explorer_figure(5, 60, 0.5, 0.0, "vi"),
        "warmup_losses": lambda: plotting.plot_warmup_losses({"không": [toy["η = 0,2"]]}, 0.2, "vi"),
    }


def tick_labels(fig) -> list[str]:
    fig.canvas.draw()
    labels = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            labels += [t.get_text() for t in axis.get_majorticklabels() + axis.get_minorticklabels()]
            labels.append(axis.get_offset_text().get_text())
    return [label for label in labels if label]


FIGURES = _figures()


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_vietnamese_tick_labels(name):
    fig = FIGURES[name]()
    try:
        labels = tick_labels(fig)
        assert labels, "the figure has tick labels"
        bad = [label for label in labels
               if re.search(r"\d\.(?!\d{3}(?!\d))\d|\d{4,}|\de[+\-−]?\d", label.replace("\\mathdefault", ""))]
        assert not bad, bad
    finally:
        plt.close(fig)


def test_the_tick_check_can_fail():
    fig, ax = plt.subplots()
    ax.plot([0, 2500], [0, 0.5])
    try:
        assert any(re.search(r"\d\.\d|\d{4,}", label) for label in tick_labels(fig)), "English ticks are caught"
    finally:
        plt.close(fig)


def test_english_tick_labels_are_unchanged():
    from course_lib.show import plotting

    fig = plotting.plot_rates({"a": [0.00025 * t for t in range(2500)]}, "en")
    try:
        labels = tick_labels(fig)
        assert "0.2" in labels or "0.20" in labels or "0.25" in labels, labels
        assert "2000" in labels, labels
    finally:
        plt.close(fig)


# ---------------------------------------------------------------------------------------------------------------
# (d) exercise feedback


def _wrong_answers():
    import test_exercises

    return [pytest.param(p.values[0], p.values[1], id=p.id) for p in test_exercises.WRONG]


@pytest.mark.parametrize("check, wrong", _wrong_answers())
def test_vietnamese_feedback_writes_numbers_the_vietnamese_way(check, wrong, capsys):
    verdict = check(wrong, "vi")
    capsys.readouterr()
    assert not verdict
    problems = number_problems(verdict.message)
    assert not problems, verdict.message + "\n" + "\n".join(problems)
