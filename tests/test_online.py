"""The online path of lessons 03 and 04, run without a network, and its one message when a source is out of reach.

The online path loads bert-base-uncased, GPT-2 and ``rotten_tomatoes`` from the
Hugging Face Hub and *Hamlet* from Project Gutenberg.  Here they come from
stand-ins built at test time (``hub_standins``) in the real sources' layouts:
a local Hugging Face cache read with ``HF_HUB_OFFLINE=1``, and a local HTTP
server.  The lessons run end to end with ``SOURCE = "online"``; their numbers
are the stand-ins', so only what the online path must get right is checked.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

import jupytext
import nbclient
import pytest
import torch

import hub_standins
from course_lib.lessons import corpus
from course_lib.lessons import online
from course_lib.lessons.online import HUB, Unreachable, download_text, unreachable_reason

ROOT = Path(__file__).resolve().parents[1]
BOOK = "/cache/epub/1524/pg1524.txt"


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    """HF_HOME with the Hub stand-ins, and the text of Project Gutenberg's *Hamlet* stand-in."""
    from course_lib.lessons.pretraining import PRETRAIN, pretrained
    from course_lib.lessons.sentiment import load_reviews

    home = tmp_path_factory.mktemp("hf")
    hub_standins.bert_standin(home / "hub")
    model, tokenizer, _ = pretrained(PRETRAIN["cpu"])  # cached on disk after the first run
    hub_standins.gpt2_standin(home / "hub", model, tokenizer)
    hub_standins.rotten_tomatoes_standin(home / "datasets", load_reviews("offline"))
    return home, corpus.finetuning_text("offline")


def _python(code: str, env: dict) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter: Hugging Face's libraries read HF_HOME and HF_HUB_OFFLINE when imported."""
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


def _run_lesson(path: str, book_url: str | None = None) -> tuple[str, list[dict]]:
    """Execute a lesson's .md with ``SOURCE = "online"`` (and *Hamlet* at ``book_url``) until it ends or a cell fails.

    Returns what the cells printed and the error outputs (none, or the one of the cell that stopped the run).
    """
    notebook = jupytext.read(ROOT / path)
    cell = next(i for i, c in enumerate(notebook.cells) if c.cell_type == "code" and 'SOURCE = "offline"' in c.source)
    notebook.cells[cell].source = notebook.cells[cell].source.replace('SOURCE = "offline"', 'SOURCE = "online"')
    if book_url:
        patch = jupytext.reads(f"import course_lib.lessons.corpus\ncourse_lib.lessons.corpus.ONLINE_BOOK = {book_url!r}\n", fmt="py:percent")
        notebook.cells.insert(cell + 1, patch.cells[0])
    client = nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3",
                                     resources={"metadata": {"path": str((ROOT / path).parent)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError:
        pass  # the error output stays in the notebook; the caller checks it
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    printed = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream" and o.get("name") == "stdout")
    return printed, [o for o in outputs if o.get("output_type") == "error"]


def test_unreachable_is_one_line_in_the_readers_language():
    error = Unreachable("Project Gutenberg", "https://www.gutenberg.org/x.txt", "gaierror: Name or service not known", "vi")
    assert isinstance(error, ConnectionError)
    (line,) = error._render_traceback_()  # what IPython shows instead of a traceback
    assert line.startswith("Unreachable: không kết nối được tới Project Gutenberg tại https://www.gutenberg.org/x.txt")
    assert 'SOURCE = "offline"' in line
    assert 'set SOURCE = "offline"' in str(Unreachable(HUB, "https://huggingface.co/gpt2", "x"))
    with pytest.raises(ValueError, match="lang must be one of"):
        Unreachable(HUB, "a", "b", "fr")
    from course_lib.lessons.pretraining import load_pretrained
    from course_lib.lessons.sentiment import load_classifier, load_reviews

    for load in (load_reviews, load_classifier, corpus.finetuning_text, load_pretrained):  # checked offline too
        with pytest.raises(ValueError, match="lang must be one of"):
            load("offline", lang="fr")


def test_the_reason_is_cut_at_a_word_not_mid_word():
    reason = unreachable_reason(OSError("word " * 100 + "\nsecond line"))
    assert reason.startswith("OSError: word word") and reason.endswith("word …") and "second" not in reason
    assert unreachable_reason(TimeoutError()) == "TimeoutError"


def test_gutenberg_text_from_a_server_and_a_clear_error_without_one(monkeypatch):
    hub_standins.network_settings(monkeypatch)
    hamlet = "ACT I\nSCENE I. Elsinore.\nBER. Who's there?"
    with hub_standins.serve({BOOK: hub_standins.gutenberg_book(hamlet)}) as url:
        monkeypatch.setattr(corpus, "ONLINE_BOOK", url + BOOK)
        assert corpus.finetuning_text("online") == hamlet  # BOM, header, footer and CRs gone
        with pytest.raises(urllib.error.HTTPError, match="404"):  # the server answered: not a missing network
            download_text("Project Gutenberg", url + "/missing")
    monkeypatch.setattr(corpus, "ONLINE_BOOK", f"http://127.0.0.1:{hub_standins.closed_port()}{BOOK}")
    start = time.perf_counter()
    with pytest.raises(Unreachable, match=r"Project Gutenberg .*ConnectionRefusedError"):
        corpus.finetuning_text("online", lang="vi")
    assert time.perf_counter() - start < 10


def test_an_unreachable_hub_fails_at_once_with_one_message(monkeypatch):
    """No half-minute of retries: a connection test to the Hub fails first, and every online loader says so."""
    endpoint = f"http://127.0.0.1:{hub_standins.closed_port()}"
    env = hub_standins.network_settings(monkeypatch, HF_ENDPOINT=endpoint)
    code = f"""
import time
from course_lib.lessons.online import Unreachable
from course_lib.lessons.sentiment import load_classifier, load_reviews
from course_lib.lessons.pretraining import load_pretrained
for load in (lambda: load_reviews("online", lang="vi"), lambda: load_classifier("online"), lambda: load_pretrained("online")):
    start = time.perf_counter()
    try:
        load()
    except Unreachable as error:
        print(round(time.perf_counter() - start, 1), error)
"""
    result = _python(code, env)
    lines = result.stdout.splitlines()
    assert len(lines) == 3, result.stdout + result.stderr
    for line, address in zip(lines, ("datasets/rotten_tomatoes", "bert-base-uncased", "gpt2")):
        seconds, message = line.split(" ", 1)
        assert float(seconds) < 10  # the import of datasets or transformers included; retries would take 25-30 s
        assert f"{endpoint}/{address} (ConnectionRefusedError" in message
    assert lines[0].split(" ", 1)[1].startswith("không kết nối được tới Hugging Face Hub")


def test_behind_a_proxy_the_download_speaks_not_the_connection_test(monkeypatch):
    """A direct connection may fail where the proxy would carry the download: no false alarm there."""
    closed = f"http://127.0.0.1:{hub_standins.closed_port()}"
    hub_standins.network_settings(monkeypatch)
    assert "ConnectionRefusedError" in online._connect(closed, 1)
    hub_standins.network_settings(monkeypatch, NO_PROXY="localhost")  # no proxy at all, only a list of hosts to bypass one
    assert "ConnectionRefusedError" in online._connect(closed, 1)
    hub_standins.network_settings(monkeypatch, HTTPS_PROXY="http://127.0.0.1:9", NO_PROXY="127.0.0.1")  # this host bypasses the proxy
    assert "ConnectionRefusedError" in online._connect(closed, 1)
    hub_standins.network_settings(monkeypatch, HTTP_PROXY="http://127.0.0.1:9")
    assert online._connect(closed, 1) is None


def test_only_a_missing_network_becomes_unreachable():
    assert online.network_failure(urllib.error.URLError(ConnectionRefusedError(111, "refused")))
    assert online.network_failure(socket.gaierror(-2, "Name or service not known"))
    try:
        try:
            raise TimeoutError("read timed out")
        except TimeoutError as cause:
            raise OSError("We couldn't connect to 'https://huggingface.co' to load the files") from cause
    except OSError as wrapped:  # transformers' way: an OSError whose cause is the network's
        assert online.network_failure(wrapped)
    assert not online.network_failure(urllib.error.HTTPError("https://x", 404, "Not Found", None, None))
    assert not online.network_failure(OSError(28, "No space left on device"))


def test_an_empty_offline_cache_gives_the_same_message(monkeypatch, tmp_path):
    env = hub_standins.network_settings(monkeypatch, HF_HUB_OFFLINE=1, HF_HOME=tmp_path)
    code = """
from course_lib.lessons.online import Unreachable
from course_lib.lessons.sentiment import load_classifier, load_reviews
for load in (lambda: load_reviews("online"), lambda: load_classifier("online")):
    try:
        load()
    except Unreachable as error:
        print(error)
"""
    result = _python(code, env)
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("could not reach Hugging Face Hub at ") for line in lines), result.stdout + result.stderr


def test_online_reviews_are_shuffled_before_any_slice(monkeypatch, standins):
    """The Hub's splits are sorted by label: without the seeded shuffle, the first 256 test reviews would all be positive."""
    home, _ = standins
    env = hub_standins.network_settings(monkeypatch, HF_HUB_OFFLINE=1, HF_HOME=home)
    code = """
import json
from course_lib.lessons.sentiment import load_reviews
a, b, c = load_reviews("online"), load_reviews("online"), load_reviews("online", seed=1)
print(json.dumps({"sizes": [len(a[s]) for s in ("train", "validation", "test")],
                  "positive_first_256": sum(r.label for r in a["test"][:256]),
                  "same_seed_same_order": a == b, "other_seed_other_order": a["test"] != c["test"],
                  "same_reviews": sorted(r.text for r in a["test"]) == sorted(r.text for r in c["test"])}))
"""
    result = _python(code, env)
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)
    assert min(facts["sizes"]) > 1000
    assert 64 < facts["positive_first_256"] < 192
    assert facts["same_seed_same_order"] and facts["other_seed_other_order"] and facts["same_reviews"]


def test_lesson_03_runs_online_from_a_local_cache(monkeypatch, standins):
    home, _ = standins
    hub_standins.network_settings(monkeypatch, HF_HUB_OFFLINE=1, HF_HOME=home)
    printed, errors = _run_lesson("notebooks/en/03_finetuning_bert.md")
    assert not errors, errors
    assert "(the Hub's own split)" in printed
    assert "R measured on bert-base-uncased:" in printed
    assert "the last layer (number 5)" in printed  # the stand-in has MiniLM's 6 layers; bert-base would say 11
    positive = float(re.search(r"the live run's 256 test reviews: ([\d.]+)% positive", printed).group(1))
    assert 25 < positive < 75, printed


def test_lesson_04_runs_online_from_a_local_cache_and_says_it_cut_the_run(monkeypatch, standins):
    home, hamlet = standins
    hub_standins.network_settings(monkeypatch, HF_HUB_OFFLINE=1, HF_HOME=home)
    with hub_standins.serve({BOOK: hub_standins.gutenberg_book(hamlet)}) as url:
        printed, errors = _run_lesson("notebooks/en/04_targeted_freezing_gpt.md", url + BOOK)
    assert not errors, errors
    assert ("There is a GPU, but DEVICE" if torch.cuda.is_available() else "No GPU. For the full run: Runtime") in printed
    assert "So the notebook runs a cut configuration: 10 steps at batch 4, 2 sampling seeds" in printed


@pytest.mark.parametrize("path, address, first_words", [
    ("notebooks/vi/03_finetuning_bert.md", "datasets/rotten_tomatoes", "không kết nối được tới Hugging Face Hub"),
    ("notebooks/en/04_targeted_freezing_gpt.md", "gpt2", "could not reach Hugging Face Hub"),
])
def test_a_lesson_without_a_network_stops_with_one_message(monkeypatch, tmp_path, path, address, first_words):
    """The first cell that needs the Hub shows one line in the page's language, and the run stops there."""
    hub_standins.network_settings(monkeypatch, HF_HUB_OFFLINE=1, HF_HOME=tmp_path)
    _, errors = _run_lesson(path)
    assert len(errors) == 1
    (line,) = errors[0]["traceback"]
    assert errors[0]["ename"] == "Unreachable"
    assert line.startswith(f"Unreachable: {first_words} tại https://huggingface.co/{address}" if "vi/" in path
                           else f"Unreachable: {first_words} at https://huggingface.co/{address}")
    assert 'SOURCE = "offline"' in line


@pytest.mark.parametrize("value, offline", [("1", True), ("yes", True), (" TRUE ", True), ("on", True), ("0", False), ("no", False),
                                            ("off", False), ("false", False), ("", False)])
def test_hub_offline_reads_true_and_false_words(monkeypatch, value, offline):
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert online.hub_offline() is offline


def test_hub_offline_refuses_a_word_it_cannot_read(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "offline")
    with pytest.raises(ValueError, match="environment variable TRANSFORMERS_OFFLINE must be 1 .* got 'offline'"):
        online.hub_offline()
