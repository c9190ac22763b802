"""Helpers of the hostile-input tests (issue 27): datasets tampered so that they still verify,
planted links, a small HTTP server that lies.  Not a test module."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import struct
import tarfile
import threading
import zlib
from pathlib import Path


def bomb_png(side: int = 60000) -> bytes:
    """A tiny PNG whose header claims ``side`` x ``side`` pixels (a decompression bomb)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))


def members(path) -> list:
    """``[(name, bytes), ...]`` of a shard, in order."""
    with tarfile.open(path) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar if m.isfile()]


def rewrite_shard(ds: Path, index: int, change) -> None:
    """Replace shard ``index`` of dataset ``ds`` by ``change(members) -> members`` and make the
    manifest (sizes, sha256) and the derived indexes agree, so that ``verify`` says ok:
    what a tampered download looks like."""
    from fractaldb.indexes import write_indexes
    from fractaldb.shards import tar_bytes

    manifest = json.loads((ds / "manifest.json").read_text())
    entry = manifest["shards"][index]
    data = tar_bytes(change(members(ds / entry["name"])))
    (ds / entry["name"]).write_bytes(data)
    entry["bytes"], entry["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    (ds / "manifest.json").write_text(json.dumps(manifest))
    write_indexes(str(ds), ["wids", "timm"])


def edit_member(suffix: str, new, first_only: bool = True):
    """A ``change`` for :func:`rewrite_shard`: the first member ending in ``suffix`` gets the bytes
    ``new`` (or ``new(old)``)."""
    def change(ms):
        out, done = [], False
        for name, data in ms:
            if name.endswith(suffix) and not (done and first_only):
                data = new(data) if callable(new) else new
                done = True
            out.append((name, data))
        return out
    return change


def tree(folder) -> dict:
    """``{relative path: ('link', target) | ('file', bytes) | ('dir', None)}`` of everything
    under ``folder``, links not followed."""
    folder = Path(folder)
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = Path(root) / name
            rel = p.relative_to(folder).as_posix()
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                out[rel] = ("dir", None)
            elif p.is_file():
                out[rel] = ("file", p.read_bytes())
            else:
                out[rel] = ("other", None)
    return out


def temporaries(folder) -> list:
    """Our temporaries and staging folders left anywhere under ``folder``."""
    return [os.path.join(r, n) for r, ds, fs in os.walk(folder) for n in ds + fs if n.startswith(".fractaldb-tmp-")]


class Server:
    """A threaded HTTP/1.1 server on 127.0.0.1 whose answers a test writes: ``routes`` maps a
    path to ``handler(method, sock)``; every request line is recorded in ``requests``."""

    def __init__(self, routes: dict):
        self.routes, self.requests = routes, []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(32)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stop = threading.Event()
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
            method, path = buf.split(b" ", 2)[:2]
            self.requests.append((method.decode(), path.decode()))
            handler = self.routes.get(path.decode().split("?")[0], not_found)
            handler(method.decode(), conn)
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def close(self):
        self.stop.set()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass
        self.sock.close()


def not_found(method, conn):
    conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


def file_route(data: bytes, claimed: int | None = None, extra: bytes = b""):
    """Serve ``data`` (HEAD and GET); ``claimed``: the Content-Length it says (None: none);
    ``extra``: bytes it sends past what it claims."""
    def handler(method, conn):
        head = "HTTP/1.1 200 OK\r\nConnection: close\r\n"
        if claimed is not None:
            head += f"Content-Length: {claimed}\r\n"
        conn.sendall((head + "\r\n").encode())
        if method == "GET":
            conn.sendall(data + extra)
    return handler


def endless_route(prefix: bytes):
    """A GET that never ends (no Content-Length): ``prefix``, then zeros for ever."""
    def handler(method, conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        if method != "GET":
            return
        conn.sendall(prefix)
        block = b" " * 65536
        while True:
            conn.sendall(block)
    return handler


def stalled_route(prefix: bytes):
    """A GET that sends ``prefix`` and then nothing, holding the connection open."""
    stop = threading.Event()

    def handler(method, conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        if method == "GET":
            conn.sendall(prefix)
            stop.wait(600)
    handler.stop = stop
    return handler


def png_bytes(array) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()
