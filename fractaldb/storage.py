"""Where outputs go: local folders or any fsspec URL (``s3://``, ``gs://``, ``file://``).

This module is the **one safe-write layer**: every output of every command (generate,
render, export, report, index, preview, search, the experiments and training runs) is
created through it, under one rule:

* a file is written whole -- an exclusive, unpredictable temporary in its folder
  (:func:`fractaldb.safety.temp_name`), then a rename -- so a link planted at its name is
  replaced, never written through, and no temporary name can be planted in advance
  (:func:`write_file`; :meth:`Store.write` inside a dataset folder also refuses a subfolder
  that is a link); render's log of finished blocks is appended through :func:`append_line`
  (never through a link, regular files only);
* a folder is assembled under a staging name and renamed into place (:func:`staged_dir`);
  an existing, non-empty folder is replaced only with ``--overwrite``, never when it holds
  the command's input or the current folder, and written into only when it carries the
  command's own mark (:func:`claim_dir`); only what carries our mark is ever deleted;
* renames into place and clean-ups run with interrupts deferred
  (:func:`fractaldb.signals.deferred`), so Ctrl-C never leaves one half done;
* URLs: local folders and object stores are written; http(s) and hf are read-only
  (:data:`PROTOCOLS`, :data:`READ_PROTOCOLS`); every network call is bounded in time and
  every read in bytes (:mod:`fractaldb.remote`).

On object stores a single PUT is already atomic (an object is visible only once complete).
Either way a reader, or a run killed at any moment, never sees a partial file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import posixpath
import shutil
import socket
import stat
import time
import uuid

from .errors import FractalDBError, InputError, OutputError
from .inputs import read_file
from .keys import LOCK
from .outputs import (check_not_inside, check_output_dir, check_writable_folder, claim_dir, pid_alive, remove_tree,
                      replace_dir, staged_dir)
from .remote import S3_CONFIG, TimedOut, TooLarge
from .remote import call as remote_call
from .remote import deadline, fs_kwargs, stream
from .safety import is_temp_name, memory_budget, temp_name
from .signals import deferred

__all__ = ["Store", "check_output_dir", "check_writable_folder", "staged_dir", "storage_error", "PROTOCOLS",
           "READ_PROTOCOLS", "check_not_inside", "write_file", "append_line", "claim_dir", "replace_dir",
           "remove_tree", "S3_CONFIG"]

log = logging.getLogger("fractaldb")

#: URL schemes a dataset may live at: local folders and object stores.  Others
#: (zip://, http://, memory://, ...) cannot hold a dataset that outlives the
#: command, or cannot be written; they are refused with one line.
PROTOCOLS = ("file", "local", "s3", "s3a", "gs", "gcs", "az", "abfs", "abfss")
#: Schemes a dataset may also be read from (never written).
READ_PROTOCOLS = PROTOCOLS + ("http", "https", "hf")


def write_file(path, data) -> None:
    """Write the local file ``path`` whole: an exclusive, unpredictable temporary in its
    folder, then a rename.  A link at ``path`` is replaced, never written through; a folder
    there is refused.  ``data``: bytes, or a function that writes to a binary file object
    (e.g. ``lambda f: torch.save(obj, f)``)."""
    target = os.fspath(path)
    folder = os.path.dirname(target) or "."
    if os.path.isdir(target) and not os.path.islink(target):
        raise OutputError(f"cannot write {target}: a folder is there; move it away or choose another --out")
    tmp = os.path.join(folder, temp_name())
    try:
        with open(tmp, "xb") as f:  # exclusive: never an existing file, never through a link
            if callable(data):
                data(f)
            else:
                f.write(data)
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}; choose a writable --out") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.remove(tmp)


def append_line(path, text: str) -> None:
    """Append one line to the local log ``path`` (created if absent): never through a link,
    only to a regular file."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc} (a symbolic link or not a file?); remove it "
                          "or choose another --out") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OutputError(f"cannot write {path}: it is not a regular file; remove it or choose another --out")
        os.write(fd, (text.rstrip("\n") + "\n").encode())
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}; choose a writable --out") from None
    finally:
        os.close(fd)


def storage_error(exc: BaseException) -> str:
    """A storage fault (OSError, botocore, aiohttp, ...) as a short phrase for one line."""
    name = type(exc).__name__
    text = " ".join(str(exc).split())
    low = (name + " " + text).lower()
    if "credential" in low or "signature" in low or "accessdenied" in low or "forbidden" in low:
        return (f"access refused or no credentials ({name}); set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
                "or a profile with access")
    if "nosuchbucket" in low or "bucket does not exist" in low:
        return "the bucket does not exist; create it first (fractaldb never creates buckets)"
    if "timeout" in low or "timed out" in low or "timedout" in low:
        why = text if isinstance(exc, TimedOut) else name
        return f"the storage endpoint timed out ({why}); check it is up, then run again (generate: --resume)"
    if "connect" in low or "endpoint" in low or "connection" in low or "unreachable" in low:
        return f"cannot reach the storage endpoint ({text[:160] or name}); check the address and that it is up"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{name}: {text[:200]}" if text else name


class Store:
    """A folder (local path or fsspec URL) holding a dataset.

    Every name is a relative path inside the folder (:meth:`path` refuses
    anything else), every storage fault becomes a one-line
    :class:`~fractaldb.errors.OutputError` / :class:`~fractaldb.errors.InputError`,
    every network call ends within a deadline and every read within its bound
    (:mod:`fractaldb.remote`), and only local folders and object stores are written
    (http(s) and hf URLs are read-only).
    """

    def __init__(self, url: str):
        import fsspec
        from fsspec.implementations.local import LocalFileSystem

        self.url = str(url)
        if not self.url.strip():
            raise OutputError("an empty path was given; pass a folder or an s3:// URL")
        protocol = self.url.split("://", 1)[0].lower() if "://" in self.url else None
        self.protocol = protocol
        if "::" in self.url or (protocol is not None and protocol not in READ_PROTOCOLS):
            self._refuse()
        kwargs = fs_kwargs(protocol, fsspec.config.conf.get(protocol or "file", {}))
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.url, **kwargs)
        except FractalDBError:
            raise
        except Exception as exc:  # ImportError of a missing back end, bad URLs, ...
            raise OutputError(f"cannot open {self.url}: {storage_error(exc)}") from None
        self.local = isinstance(self.fs, LocalFileSystem)
        self.root = self.root.rstrip("/") or "/"
        self.timed_out = None  # the first deadline missed: later calls fail at once
        if protocol in ("s3", "s3a") and hasattr(self.fs, "retries"):
            # One retry loop, botocore's (S3_CONFIG or the user's config_kwargs): s3fs's own
            # five attempts on top of it turn a frozen server into a quarter-hour hang.
            self.fs.retries = 1

    @property
    def writable(self) -> bool:
        """Whether this URL may be written (local folders and object stores; not http(s), hf)."""
        return self.protocol is None or self.protocol in PROTOCOLS

    # -- names and faults ---------------------------------------------------------------------

    def path(self, name: str) -> str:
        """``root/name`` for a relative ``name`` made of plain parts (never outside the folder)."""
        parts = name.split("/") if isinstance(name, str) else [None]
        if not name or any(p in (None, "", ".", "..") or "\\" in p or "\0" in p for p in parts):
            raise InputError(f"{name!r} is not a file name inside {self.url}; the manifest was edited or "
                             "is not a fractaldb output")
        return posixpath.join(self.root, name)

    @contextlib.contextmanager
    def faults(self, doing: str, where: str, error=OutputError):
        """Storage exceptions inside the block as one-line ``error`` (ours pass through)."""
        try:
            yield
        except FractalDBError:
            raise
        except Exception as exc:
            raise error(f"cannot {doing} {where}: {storage_error(exc)}") from None

    def call(self, method: str, *args, nbytes: int = 0, **kwargs):
        """``self.fs.method(*args)``: at once on a local folder, else within a deadline
        (:mod:`fractaldb.remote`); after one missed deadline every call fails at once."""
        if self.local:
            return getattr(self.fs, method)(*args, **kwargs)
        if self.timed_out is not None:
            raise TimedOut(self.timed_out)
        try:
            return remote_call(self.fs, method, *args, seconds=deadline(self.fs, nbytes), **kwargs)
        except TimedOut as exc:
            self.timed_out = str(exc)
            raise

    # -- reading ------------------------------------------------------------------------------

    def exists(self, name: str = "") -> bool:
        target = self.path(name) if name else self.root
        with self.faults("reach", target, InputError):
            return self.call("exists", target)

    def names(self) -> list:
        """File names directly in the folder ([] if it does not exist)."""
        with self.faults("list", self.url, InputError):
            if not self.call("exists", self.root):
                return []
            return sorted(posixpath.basename(p.rstrip("/")) for p in self.call("ls", self.root, detail=False))

    def listdir(self, name: str) -> list:
        """File names directly in the subfolder ``name``."""
        path = self.path(name)
        with self.faults("list", path, InputError):
            return sorted(posixpath.basename(p.rstrip("/")) for p in self.call("ls", path, detail=False))

    def check_regular(self, name: str) -> int | None:
        """Size of file ``name``, refusing (without reading it) anything but a regular file:
        a link to a device, a FIFO, a folder.  None when a web server does not say."""
        path = self.path(name)
        if self.local:
            from .inputs import check_regular_path

            return check_regular_path(path, path, "replace it with the file 'fractaldb regenerate' makes")
        with self.faults("read", path, InputError):
            info = self.call("info", path)
        if info.get("type") not in ("file", None):
            raise InputError(f"{path} is not a file; replace it with the file 'fractaldb regenerate' makes")
        size = info.get("size")
        return int(size) if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None

    def read(self, name: str, max_bytes: int | None = None) -> bytes:
        """The bytes of regular file ``name``: refused unread when its size is over
        ``max_bytes`` (by default the memory bound), and never more than that read, whatever
        a server says its size is."""
        limit = memory_budget() if max_bytes is None else max_bytes
        path = self.path(name)
        fix = "it is not the file fractaldb wrote"
        if self.local:
            return read_file(path, path, limit, fix)
        size = self.check_regular(name)
        if size is not None and size > limit:
            raise InputError(f"{path} is {size} bytes, over the {limit} this read allows; {fix}")
        with self.faults("read", path, InputError):
            try:
                if self.protocol in PROTOCOLS and size == 0:
                    data = b""
                elif self.protocol in PROTOCOLS and size is not None:  # an object store's sizes are its own
                    data = self.call("cat_file", path, start=0, end=limit + 1, nbytes=size)  # a range: bounded
                else:  # a web server's Content-Length may be absent or lie: stream, stop past the bound
                    if self.timed_out is not None:
                        raise TimedOut(self.timed_out)
                    data = stream(self.fs, path, limit, deadline(self.fs, limit))
            except FileNotFoundError:
                raise InputError(f"{path} does not exist") from None
            except TooLarge:
                raise InputError(f"{path} is over the {limit} bytes this read allows (its server sent more); "
                                 f"{fix}") from None
        if len(data) > limit:
            raise InputError(f"{path} is over the {limit} bytes this read allows; {fix}")
        return data

    def size(self, name: str) -> int | None:
        return self.check_regular(name)

    # -- writing ------------------------------------------------------------------------------

    def _refuse(self):
        raise OutputError(f"{self.url}: {self.protocol or 'chained'} URLs cannot hold a dataset; use a local "
                          "folder, file://, s3://, gs:// or az://")

    def require_writable(self) -> None:
        """Refuse any write (and any lock, removal or cleanup) at a read-only URL."""
        if not self.writable:
            raise OutputError(f"{self.url}: {self.protocol} URLs are read-only, fractaldb never writes to them; "
                              "copy the dataset to a local folder or an object store first")

    def makedirs(self) -> None:
        """Create the local folder (object stores have no folders, and buckets are never created)."""
        self.require_writable()
        if not self.local:
            return
        try:
            os.makedirs(self.root, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create {self.url}: {exc.strerror or exc}; choose a writable --out") from None

    def check_writable(self) -> None:
        """Fail before any work when the folder cannot be written: a local folder
        gets a probe file; an object store's bucket must exist (we never create one)."""
        if self.protocol is not None and self.protocol not in PROTOCOLS:
            self._refuse()
        if self.local:
            check_writable_folder(self.root)
            return
        bucket = self.root.split("/", 1)[0]
        with self.faults("reach", self.url):
            try:
                if hasattr(self.fs, "call_s3"):  # s3fs: exists() hides why (credentials, endpoint)
                    self.call("call_s3", "head_bucket", Bucket=bucket)
                    found = True
                else:
                    found = self.call("exists", bucket)
            except FileNotFoundError:
                found = False
        if not found:
            raise OutputError(f"bucket {bucket} of {self.url} does not exist or cannot be seen with these "
                              "credentials; create it first (fractaldb never creates buckets)")

    def write(self, name: str, data: bytes) -> None:
        """Write ``name`` atomically (locally: :func:`write_file`, below no linked subfolder)."""
        self.require_writable()
        target = self.path(name)
        if self.local:
            self._no_links(name)
            try:
                os.makedirs(os.path.dirname(target), exist_ok=True)
            except OSError as exc:
                raise OutputError(f"cannot write {target}: {exc.strerror or exc}; choose a writable --out") from None
            write_file(target, data)
            return
        with self.faults("write", target):
            self.call("pipe_file", target, data, nbytes=len(data))

    def _no_links(self, name: str) -> None:
        """Refuse a subfolder of ``name`` that is a symbolic link (or not a folder): it could
        lead outside the folder."""
        parts = name.split("/")[:-1]
        for i in range(len(parts)):
            sub = posixpath.join(self.root, *parts[: i + 1])
            if os.path.islink(sub) or (os.path.lexists(sub) and not os.path.isdir(sub)):
                raise OutputError(f"{sub} is a symbolic link or not a folder; fractaldb writes only inside "
                                  f"{self.url}: remove it")

    def remove(self, name: str) -> None:
        self.require_writable()
        path = self.path(name)
        if self.local:
            with self.faults("remove", path):
                if os.path.islink(path) or os.path.isfile(path):
                    os.remove(path)
                elif os.path.isdir(path):
                    with deferred():
                        shutil.rmtree(path)
            return
        with self.faults("remove", path):
            if self.call("exists", path):
                self.call("rm", path, recursive=True)

    def clean_temporaries(self) -> int:
        """Remove our temporary files left by a killed run (local folders only; only
        regular files named as :func:`fractaldb.safety.temp_name` makes them).  Returns the count."""
        n = 0
        if self.local:
            for folder in (self.root, os.path.join(self.root, ".fractaldb-progress")):
                if not os.path.isdir(folder) or os.path.islink(folder):
                    continue
                for entry in os.scandir(folder):
                    if is_temp_name(entry.name) and entry.is_file(follow_symlinks=False):
                        with contextlib.suppress(OSError):
                            os.remove(entry.path)
                            n += 1
        if n:
            log.warning("removed %d temporary file(s) of an interrupted run from %s", n, self.url)
        return n

    # -- one writer at a time -----------------------------------------------------------------

    def _holder(self) -> dict:
        try:
            info = json.loads(self.read(LOCK, max_bytes=4096))
            return info if isinstance(info, dict) else {}
        except (InputError, ValueError):
            return {}

    def _stale(self, holder: dict) -> bool:
        pid = holder.get("pid")
        return holder.get("host") == socket.gethostname() and isinstance(pid, int) and not pid_alive(pid)

    @contextlib.contextmanager
    def lock(self):
        """Hold ``.fractaldb-lock`` in the folder while writing: a second writer gets a
        one-line error instead of interleaving.  A lock whose process is gone (same
        machine) is taken over with a message.  Creates a local folder if needed (and
        removes it again, if still empty, when the block fails)."""
        self.require_writable()
        me = {"pid": os.getpid(), "host": socket.gethostname(), "token": uuid.uuid4().hex, "since": time.time()}
        data = (json.dumps(me) + "\n").encode()
        created = self.local and not os.path.isdir(self.root)
        self.makedirs()
        path = self.path(LOCK)
        for _ in range(2):
            if self.local:
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
                except FileExistsError:
                    pass
                except OSError as exc:
                    raise OutputError(f"cannot write {path}: {exc.strerror or exc}; choose a writable --out") from None
                else:
                    with os.fdopen(fd, "wb") as f:
                        f.write(data)
                    break
            elif not self.exists(LOCK):
                self.write(LOCK, data)
                if self._holder().get("token") == me["token"]:
                    break
            holder = self._holder()
            if self._stale(holder):
                log.warning("taking over %s: its run (pid %s) is gone", path, holder.get("pid"))
                with contextlib.suppress(OSError, FractalDBError):
                    self.remove(LOCK)
                continue
            who = f"pid {holder.get('pid')} on {holder.get('host')}" if holder else "an unknown process"
            raise OutputError(f"another fractaldb run ({who}) is writing {self.url}; wait for it to finish, "
                              f"or, if it is gone, delete {path}")
        else:
            raise OutputError(f"cannot lock {self.url}: another run keeps taking it; try again")
        try:
            yield
        finally:
            if self._holder().get("token") == me["token"]:
                with contextlib.suppress(OSError, FractalDBError):
                    self.remove(LOCK)
            if created:
                with contextlib.suppress(OSError):
                    os.rmdir(self.root)  # only if still empty
