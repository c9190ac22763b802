"""Network storage, bounded in bytes and time: every call to an object store or a web server
ends, with one line, within a deadline, and no read takes more bytes than it allows.

Why a deadline of our own: the client libraries' timeouts cover a connection that cannot be
made and a reply that does not start, not a server that stops reading in the middle of an
upload (a frozen process keeps its connections open: botocore then waits for ever) nor one
that trickles an endless reply.  So every call of :class:`fractaldb.storage.Store` on a
non-local file system runs under :func:`call` (an fsspec coroutine cancelled at the
deadline, or a synchronous call waited on in a helper thread) with a deadline of the
configured connect and read timeouts times the attempts, plus :data:`SLACK`, plus the
transfer at :data:`MIN_RATE`.  Reads of servers whose sizes cannot be trusted (http(s), hf: a
Content-Length may be absent or lie) are streamed and stopped one byte past their bound
(:func:`stream`).  Once a store has timed out, its later calls fail at once (the lock's
release included), so a frozen server costs one deadline, not one per call.
"""

from __future__ import annotations

import threading

__all__ = ["S3_CONFIG", "HTTP_TIMEOUTS", "MIN_RATE", "SLACK", "TimedOut", "TooLarge", "fs_kwargs", "deadline",
           "call", "stream"]

#: Timeouts and retries for S3 (unless the fsspec configuration sets its own).
#: A frozen server is a one-line error after (5 + 15) x 3 + SLACK = 65 s (plus the transfer time).
S3_CONFIG = {"connect_timeout": 5, "read_timeout": 15, "retries": {"max_attempts": 3, "mode": "standard"}}
#: Connect and read timeouts (seconds) for http(s) reads (unless the fsspec configuration sets its own).
HTTP_TIMEOUTS = {"connect": 5, "read": 15}
#: The slowest transfer a call is given time for (bytes per second).
MIN_RATE = 1 << 20
#: Seconds every deadline adds (a slow DNS answer, a busy machine).
SLACK = 5.0
#: Bytes read from a stream at a time.
CHUNK = 1 << 20


class TimedOut(TimeoutError):
    """A storage call that did not end within its deadline (the message says which)."""


class TooLarge(Exception):
    """A streamed read that went past its bound (``args[0]``: the bound)."""


def fs_kwargs(protocol: str | None, conf: dict) -> dict:
    """Keyword arguments for ``fsspec.core.url_to_fs``: our timeouts, unless ``conf`` (the
    fsspec configuration of ``protocol``) sets its own."""
    if protocol in ("s3", "s3a") and "config_kwargs" not in conf:
        return {"config_kwargs": S3_CONFIG}
    if protocol in ("http", "https") and "client_kwargs" not in conf:
        try:
            import aiohttp
        except ImportError:  # pragma: no cover - fsspec's http needs aiohttp anyway
            return {}
        return {"client_kwargs": {"timeout": aiohttp.ClientTimeout(total=None, sock_connect=HTTP_TIMEOUTS["connect"],
                                                                     connect=HTTP_TIMEOUTS["connect"],
                                                                     sock_read=HTTP_TIMEOUTS["read"])}}
    return {}


def _number(v, default: float) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 1e6 else default


def deadline(fs, nbytes: int = 0) -> float:
    """Seconds a call that moves ``nbytes`` may take on ``fs`` (see the module's text)."""
    conf = getattr(fs, "config_kwargs", None)
    if isinstance(conf, dict):  # botocore's settings (s3fs)
        retries = conf.get("retries") if isinstance(conf.get("retries"), dict) else {}
        per_try = _number(conf.get("connect_timeout"), 60) + _number(conf.get("read_timeout"), 60)
        base = per_try * _number(retries.get("max_attempts"), 3)
    else:
        base = float(HTTP_TIMEOUTS["connect"] + HTTP_TIMEOUTS["read"])
    return base + SLACK + max(0, nbytes) / MIN_RATE


def call(fs, method: str, *args, seconds: float, **kwargs):
    """``fs.method(*args, **kwargs)``, ended with :class:`TimedOut` after ``seconds``.

    An fsspec async file system's coroutine (``fs._method``) is cancelled at the deadline
    (its connection closed); any other call runs in a daemon helper thread that is left
    behind at the deadline."""
    coro = getattr(fs, f"_{method}", None)
    loop = getattr(fs, "loop", None)
    if getattr(fs, "async_impl", False) and coro is not None and loop is not None:
        from fsspec.asyn import sync
        from fsspec.exceptions import FSTimeoutError

        try:
            return sync(loop, coro, *args, timeout=seconds, **kwargs)
        except FSTimeoutError:
            raise TimedOut(f"no answer within {seconds:.0f} s") from None
    return in_thread(lambda: getattr(fs, method)(*args, **kwargs), seconds)


def in_thread(fn, seconds: float):
    """``fn()``, or :class:`TimedOut` when it has not returned after ``seconds`` (it is then
    left running in its daemon thread; ``stream`` stops at its next chunk)."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box["error"] = exc

    t = threading.Thread(target=run, name="fractaldb-storage-call", daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        box["abandoned"] = True
        raise TimedOut(f"no answer within {seconds:.0f} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def stream(fs, path: str, limit: int, seconds: float) -> bytes:
    """The bytes of ``path``, read a chunk at a time: :class:`TooLarge` one byte past
    ``limit`` (whatever the server said the size was), :class:`TimedOut` after ``seconds``."""
    import time

    stop = time.monotonic() + seconds
    cancelled = threading.Event()

    def read():
        out = bytearray()
        with fs.open(path, "rb", block_size=0) if _is_http(fs) else fs.open(path, "rb") as f:
            while not cancelled.is_set():
                chunk = f.read(min(CHUNK, limit + 1 - len(out)))
                if not chunk:
                    return bytes(out)
                out += chunk
                if len(out) > limit:
                    raise TooLarge(limit)
                if time.monotonic() > stop:
                    break
        raise TimedOut(f"not read within {seconds:.0f} s")

    try:
        return in_thread(read, seconds)
    except TimedOut:
        cancelled.set()
        raise


def _is_http(fs) -> bool:
    protocol = getattr(fs, "protocol", ())
    protocol = (protocol,) if isinstance(protocol, str) else tuple(protocol)
    return bool({"http", "https"} & set(protocol))
