"""The online (Colab) paths' contact with the network: one clear message, in the reader's language, when a source is out of reach.

Online, lessons 03 and 04 load bert-base-uncased, GPT-2 and ``rotten_tomatoes``
from the Hugging Face Hub and *Hamlet* from Project Gutenberg.  Without a
network, the libraries underneath retry for half a minute and end in a long
traceback.  Here a quick connection test fails at once, and the reader sees one
message that names what could not be reached and how to take the offline path.
Nothing falls back to the offline data silently: a student must know which data
produced the numbers.

``HF_HUB_OFFLINE=1`` (Hugging Face's own switch: the local cache only) skips
the connection test: files downloaded earlier then load without a network,
which is how the course's tests run the online path.  Without it, an
unreachable Hub stops the run even where the cache holds the files (the
libraries would otherwise spend minutes retrying before they fall back to it).
Only errors that say the network is missing become :class:`Unreachable`; a 404
or a full disk passes through as it is.
"""

from __future__ import annotations

import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from course_lib.engine._checks import check_int, check_number, check_type
from course_lib.i18n import check_language, text

__all__ = ["Unreachable", "HUB", "hub_endpoint", "hub_offline", "unreachable_reason", "network_failure", "hub", "download_text"]

HUB = "Hugging Face Hub"
TIMEOUT = 10.0  # seconds: a reachable host answers a connection in well under a second


class Unreachable(ConnectionError):
    """A source of the online path could not be reached: ``what`` (a name), ``address`` (a URL) and why.

    IPython and Jupyter show it as its message alone (``_render_traceback_``):
    the cause is in the message, and a long traceback would hide it.
    """

    def __init__(self, what: str, address: str, reason: str, lang: str = "en"):
        self.what, self.address, self.reason, self.lang = what, address, reason, check_language(lang)
        super().__init__(text("unreachable", self.lang, what=what, address=address, reason=reason))

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


def hub_endpoint() -> str:
    """The Hub's address: ``HF_ENDPOINT`` if set (a mirror), else https://huggingface.co."""
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


_TRUE, _FALSE = ("1", "ON", "YES", "TRUE"), ("", "0", "OFF", "NO", "FALSE")


def hub_offline() -> bool:
    """Whether Hugging Face's ``HF_HUB_OFFLINE`` (or the older ``TRANSFORMERS_OFFLINE``) asks for the local cache only.

    A value that is neither true (1, on, yes, true) nor false (0, off, no,
    false, empty) is refused: Hugging Face would read it as false, and a
    reader who set ``HF_HUB_OFFLINE=offline`` would wait for the network.
    """
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        value = os.environ.get(name, "").strip().upper()
        if value not in _TRUE + _FALSE:
            raise ValueError(f"environment variable {name} must be 1 (the local cache only) or 0, got {os.environ[name]!r}")
        if value in _TRUE:
            return True
    return False


def unreachable_reason(error: BaseException, limit: int = 200) -> str:
    """The error's type and the first line of its message, cut at a word, not mid-word."""
    check_type("error", error, BaseException, "an exception")
    check_int("limit", limit, 1, unit="characters")
    lines = str(error).strip().splitlines()
    message = lines[0] if lines else ""
    if len(message) > limit:
        message = message[:limit].rsplit(" ", 1)[0] + " …"
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


_NETWORK_ERRORS = {"LocalEntryNotFoundError", "OfflineModeIsEnabled", "ConnectError", "ConnectTimeout", "TimeoutException"}


def network_failure(error: BaseException) -> bool:
    """Whether ``error``, or an error that led to it, says the network is missing; not a 404, a full disk or a bad token."""
    check_type("error", error, BaseException, "an exception")
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, (ConnectionError, TimeoutError, socket.gaierror)) or type(error).__name__ in _NETWORK_ERRORS:
            return True
        if isinstance(error, urllib.error.URLError) and not isinstance(error, urllib.error.HTTPError):
            return True
        error = error.__cause__ or error.__context__
    return False


def _proxied(url: str) -> bool:
    """Whether ``url`` would go through a proxy (``HTTPS_PROXY`` and the like, less ``NO_PROXY``)."""
    parts = urllib.parse.urlsplit(url)
    proxies = urllib.request.getproxies()
    return bool(proxies.get(parts.scheme) or proxies.get("all")) and not urllib.request.proxy_bypass(parts.hostname or "")


def _connect(url: str, timeout: float) -> str | None:
    """None if a TCP connection to ``url``'s host opens within ``timeout`` seconds in all, else why not.

    Behind a proxy a direct connection may fail where the download would work,
    so there the test is skipped and the download's own error speaks.
    """
    if _proxied(url):
        return None
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    deadline = time.monotonic() + timeout
    try:
        addresses = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except OSError as error:
        return unreachable_reason(error)
    failure: OSError = TimeoutError(f"no answer within {timeout:g} s")
    for family, kind, protocol, _, address in addresses:  # IPv6 and IPv4, one deadline for all
        left = deadline - time.monotonic()
        if left <= 0:
            break
        with socket.socket(family, kind, protocol) as connection:
            connection.settimeout(left)
            try:
                connection.connect(address)
                return None
            except OSError as error:
                failure = error
    return unreachable_reason(failure)


@contextmanager
def _reach(what: str, address: str, lang: str, probe: str | None, timeout: float = TIMEOUT) -> Iterator[None]:
    """Runs a download of ``address``: :class:`Unreachable` at once if ``probe`` (a URL) takes no connection, or if the
    download fails for want of a network.  Other errors (a 404, a full disk) pass through unchanged."""
    failure = _connect(probe, timeout) if probe else None
    if failure:
        raise Unreachable(what, address, failure, lang)
    try:
        yield
    except Exception as error:
        if network_failure(error):
            raise Unreachable(what, address, unreachable_reason(error), lang) from error
        raise


def hub(what: str, lang: str = "en"):
    """A context for a download of ``what`` (a model's or ``datasets/<name>``) from the Hub; see :func:`_reach`.

    With ``HF_HUB_OFFLINE`` set there is no connection test: the libraries read their cache.
    """
    check_type("what", what, str, "a model's name or 'datasets/<name>' on the Hub")
    check_language(lang)
    return _reach(HUB, f"{hub_endpoint()}/{what}", lang, None if hub_offline() else hub_endpoint())


def download_text(what: str, url: str, lang: str = "en", timeout: float = 60.0) -> str:
    """The text at ``url`` (UTF-8, a byte-order mark dropped), or :class:`Unreachable` naming ``what``."""
    check_type("what", what, str, "a name for the source, e.g. 'Project Gutenberg'")
    check_type("url", url, str, "an http:// or https:// address")
    if urllib.parse.urlsplit(url).scheme not in ("http", "https") or not urllib.parse.urlsplit(url).hostname:
        raise ValueError(f"url must be an http:// or https:// address, got {url!r}")
    check_language(lang)
    check_number("timeout", timeout, "> 0 seconds", lambda v: v > 0)
    with _reach(what, url, lang, url, min(timeout, TIMEOUT)), urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode("utf-8-sig")
