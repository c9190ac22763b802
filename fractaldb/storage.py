"""Where outputs go: local folders or any fsspec URL (``s3://``, ``gs://``, ``file://``).

Writes are atomic: on a local file system a file is written under a hidden
temporary name and renamed; on object stores a single PUT is already atomic
(an object is visible only once complete).  Either way a reader, or a run
killed at any moment, never sees a partial file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import posixpath
import re
import shutil
import socket
import stat
import time
import uuid
from pathlib import Path

from .errors import FractalDBError, InputError, OutputError
from .keys import LOCK
from .safety import TEMP_PREFIX, is_temp_name, memory_budget, temp_name

__all__ = ["Store", "check_output_dir", "check_writable_folder", "staged_dir", "storage_error", "PROTOCOLS",
           "check_not_inside"]

log = logging.getLogger("fractaldb")

#: URL schemes a dataset may live at: local folders and object stores.  Others
#: (zip://, http://, memory://, ...) cannot hold a dataset that outlives the
#: command, or cannot be written; they are refused with one line.
PROTOCOLS = ("file", "local", "s3", "s3a", "gs", "gcs", "az", "abfs", "abfss")
#: Schemes a dataset may also be read from (never written).
READ_PROTOCOLS = PROTOCOLS + ("http", "https", "hf")
#: Timeouts and retries for S3 (unless the fsspec configuration sets its own):
#: a frozen server ends in one line within about three minutes instead of hanging.
S3_CONFIG = {"connect_timeout": 10, "read_timeout": 60, "retries": {"max_attempts": 3, "mode": "standard"}}


def check_writable_folder(path) -> None:
    """Fail early unless files can be created at ``path`` (its nearest existing
    ancestor is a folder we can really write to: a probe file is created and
    removed, which also catches read-only mounts and /proc, even as root)."""
    import tempfile

    probe = os.path.abspath(str(path))
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise OutputError(f"cannot write to {path}: {probe} is a file, not a folder; choose another --out")
    try:
        fd, name = tempfile.mkstemp(prefix=".fractaldb-probe-", dir=probe)
        os.close(fd)
        os.remove(name)
    except OSError as exc:
        raise OutputError(f"cannot write to {path}: {exc.strerror or exc} in {probe}; choose a writable --out") from None


def check_output_dir(out, overwrite: bool, inputs=()) -> None:
    """Fail before any work when folder ``out`` cannot be (re)written, or when
    replacing it would delete one of ``inputs`` (or the current folder)."""
    out = Path(out)
    check_not_inside(out, inputs)
    if out.exists():
        if not out.is_dir():
            raise OutputError(f"output {out} exists and is not a directory; choose another --out")
        if any(out.iterdir()) and not overwrite:
            raise OutputError(f"output {out} exists and is not empty; choose a new --out or pass --overwrite")
    check_writable_folder(out)


def check_not_inside(out, inputs=()) -> None:
    """Refuse an output folder that holds (or is) an input or the current folder:
    replacing it would delete them."""
    target = Path(os.path.abspath(out))
    here = Path(os.getcwd())
    if target == here or target in here.parents:
        raise OutputError(f"--out {out} is the current folder or one above it; give a new folder name for --out")
    if target.parent == target:
        raise OutputError(f"--out {out} is a file-system root; give a new folder name for --out")
    for item in inputs:
        if item is None or "://" in str(item):
            continue
        src = Path(os.path.abspath(item))
        if src == target or target in src.parents:
            raise OutputError(f"--out {out} holds the input {item}; replacing it would delete the input, "
                              "choose another --out")
        if src.exists() and os.path.realpath(src).startswith(os.path.realpath(target) + os.sep):
            raise OutputError(f"--out {out} holds the input {item}; replacing it would delete the input, "
                              "choose another --out")


_STAGING_MARK = ".fractaldb-staging"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True
    return True


def _clean_stale_staging(out: Path) -> None:
    """Remove our staging folders of ``out`` left by killed runs (marked, and their process gone)."""
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        return
    pattern = re.compile(r"^\.fractaldb-tmp-[0-9a-f]{32}-(new|old)-" + re.escape(out.name) + "$")
    for entry in os.scandir(parent):
        if not pattern.match(entry.name) or not entry.is_dir(follow_symlinks=False):
            continue
        mark = Path(entry.path, _STAGING_MARK)
        try:
            info = json.loads(mark.read_text())
            if info.get("host") != socket.gethostname() or _pid_alive(int(info["pid"])):
                continue
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue  # not ours, or not readable: leave it
        log.warning("removing %s, left by an interrupted run (pid %s)", entry.path, info.get("pid"))
        shutil.rmtree(entry.path, ignore_errors=True)


def _staging(parent: Path, kind: str, name: str) -> Path:
    """A new staging folder beside ``name``: unpredictable, created exclusively, marked as ours."""
    final = parent / f"{TEMP_PREFIX}{uuid.uuid4().hex}-{kind}-{name}"
    os.mkdir(final)  # exclusive: fails if the name exists
    _mark(final)
    return final


def _mark(folder: Path) -> None:
    with contextlib.suppress(OSError):
        (folder / _STAGING_MARK).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))


def _remove_tree(path: Path, why: str) -> None:
    """Remove a staging folder; first renamed (still marked as ours), so that
    threads an interrupt left running cannot write into it any more."""
    if path.is_symlink():  # an --out that was a link: drop the link, never what it points to
        with contextlib.suppress(OSError):
            path.unlink()
        return
    if not path.exists():
        return
    with contextlib.suppress(OSError):
        aside = path.with_name(f"{TEMP_PREFIX}{uuid.uuid4().hex}-old-{path.name.split('-', 4)[-1]}")
        os.rename(path, aside)
        path = aside
    n = sum(len(files) for _, _, files in os.walk(path))
    if n > 1000:
        log.warning("%s: removing %d files of %s ...", why, n, path)
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def staged_dir(out, overwrite: bool = False, inputs=()):
    """Assemble a local output folder under a hidden temporary name.

    Yields the temporary folder.  On success it is renamed to ``out`` (an
    existing ``out`` is first renamed aside and deleted only once the new
    one is in place); on any error or interrupt the temporary folder is
    removed, so nothing half-written is ever visible at ``out``.  Refuses an
    ``out`` that holds one of ``inputs`` or the current folder.  Staging
    folders are named ``.fractaldb-tmp-<random>-new-<name>``, created
    exclusively and marked; those of killed runs are removed at the next run.
    """
    out = Path(os.path.abspath(out))
    check_output_dir(out, overwrite, inputs)
    out.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale_staging(out)
    tmp = None
    try:
        tmp = _staging(out.parent, "new", out.name)
        yield tmp
        (tmp / _STAGING_MARK).unlink()
        old = None
        if out.exists():
            old = out.parent / f"{TEMP_PREFIX}{uuid.uuid4().hex}-old-{out.name}"  # random: no one can plant it
            os.rename(out, old)
            _mark(old)
        os.replace(tmp, out)
        tmp = None
        if old is not None:
            _remove_tree(old, "replaced")
    except OSError as exc:
        if tmp is not None:
            _remove_tree(tmp, "failed")
        raise OutputError(f"cannot write {out}: {exc.strerror or exc}; choose a writable --out") from None
    except KeyboardInterrupt:
        if tmp is not None:
            _remove_tree(tmp, "interrupted, cleaning up")
        from .signals import Interrupted

        raise Interrupted(f"nothing was written to {out} (it appears only when complete); run the command "
                          "again") from None
    except BaseException:
        if tmp is not None:
            _remove_tree(tmp, "cleaning up")
        raise


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
    if "timeout" in low or "timed out" in low:
        return f"the storage endpoint timed out ({name}); check it is up, then run again (generate: --resume)"
    if "connect" in low or "endpoint" in low or "connection" in low or "unreachable" in low:
        return f"cannot reach the storage endpoint ({text[:160] or name}); check the address and that it is up"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{name}: {text[:200]}" if text else name


class Store:
    """A folder (local path or fsspec URL) holding a dataset.

    Every name is a relative path inside the folder (:meth:`path` refuses
    anything else), and every storage fault becomes a one-line
    :class:`~fractaldb.errors.OutputError` / :class:`~fractaldb.errors.InputError`.
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
        kwargs = {}
        if protocol in ("s3", "s3a"):
            conf = fsspec.config.conf.get("s3", {})
            if "config_kwargs" not in conf:
                kwargs["config_kwargs"] = S3_CONFIG
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.url, **kwargs)
        except FractalDBError:
            raise
        except Exception as exc:  # ImportError of a missing back end, bad URLs, ...
            raise OutputError(f"cannot open {self.url}: {storage_error(exc)}") from None
        self.local = isinstance(self.fs, LocalFileSystem)
        self.root = self.root.rstrip("/") or "/"
        if protocol in ("s3", "s3a") and hasattr(self.fs, "retries"):
            # One retry loop, botocore's (S3_CONFIG or the user's config_kwargs): s3fs's own
            # five attempts on top of it turn a frozen server into a quarter-hour hang.
            self.fs.retries = 1

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

    # -- reading ------------------------------------------------------------------------------

    def exists(self, name: str = "") -> bool:
        target = self.path(name) if name else self.root
        with self.faults("reach", target, InputError):
            return self.fs.exists(target)

    def names(self) -> list:
        """File names directly in the folder ([] if it does not exist)."""
        with self.faults("list", self.url, InputError):
            if not self.fs.exists(self.root):
                return []
            return sorted(posixpath.basename(p.rstrip("/")) for p in self.fs.ls(self.root, detail=False))

    def check_regular(self, name: str) -> int:
        """Size of file ``name``, refusing (without reading it) anything but a regular file:
        a link to a device, a FIFO, a folder."""
        path = self.path(name)
        if self.local:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                raise InputError(f"{path} does not exist") from None
            except OSError as exc:
                raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
            if not stat.S_ISREG(st.st_mode):
                raise InputError(f"{path} is not a regular file (a folder, device, FIFO or a link to one); "
                                 "replace it with the file 'fractaldb regenerate' makes")
            return st.st_size
        with self.faults("read", path, InputError):
            info = self.fs.info(path)
        if info.get("type") != "file":
            raise InputError(f"{path} is not a file; replace it with the file 'fractaldb regenerate' makes")
        return int(info.get("size") or 0)

    def read(self, name: str, max_bytes: int | None = None) -> bytes:
        """The bytes of regular file ``name`` (refused unread when over ``max_bytes``,
        by default the memory bound)."""
        limit = memory_budget() if max_bytes is None else max_bytes
        size = self.check_regular(name)
        if size > limit:
            raise InputError(f"{self.path(name)} is {size} bytes, over the {limit} this read allows; "
                             "it is not the file fractaldb wrote")
        path = self.path(name)
        with self.faults("read", path, InputError):
            try:
                return self.fs.cat_file(path)
            except FileNotFoundError:
                raise InputError(f"{path} does not exist") from None

    def size(self, name: str) -> int:
        return self.check_regular(name)

    # -- writing ------------------------------------------------------------------------------

    def makedirs(self) -> None:
        """Create the local folder (object stores have no folders, and buckets are never created)."""
        if not self.local:
            return
        try:
            os.makedirs(self.root, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create {self.url}: {exc.strerror or exc}; choose a writable --out") from None

    def _refuse(self):
        raise OutputError(f"{self.url}: {self.protocol or 'chained'} URLs cannot hold a dataset; use a local "
                          "folder, file://, s3://, gs:// or az://")

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
                    self.fs.call_s3("head_bucket", Bucket=bucket)
                    found = True
                else:
                    found = self.fs.exists(bucket)
            except FileNotFoundError:
                found = False
        if not found:
            raise OutputError(f"bucket {bucket} of {self.url} does not exist or cannot be seen with these "
                              "credentials; create it first (fractaldb never creates buckets)")

    def write(self, name: str, data: bytes) -> None:
        """Write ``name`` atomically (locally: an exclusive, unpredictable temporary, then a rename)."""
        target = self.path(name)
        tmp = None
        try:
            if self.local:
                self._no_links(name)
                folder = os.path.dirname(target)
                os.makedirs(folder, exist_ok=True)
                tmp = os.path.join(folder, temp_name())
                with open(tmp, "xb") as f:
                    f.write(data)
                os.replace(tmp, target)
                tmp = None
            else:
                with self.faults("write", target):
                    self.fs.pipe_file(target, data)
        except OSError as exc:
            raise OutputError(f"cannot write {target}: {exc.strerror or exc}; choose a writable --out") from None
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.remove(tmp)

    def _no_links(self, name: str) -> None:
        """Refuse a subfolder of ``name`` that is a symbolic link: it could lead outside the folder."""
        parts = name.split("/")[:-1]
        for i in range(len(parts)):
            sub = posixpath.join(self.root, *parts[: i + 1])
            if os.path.islink(sub):
                raise OutputError(f"{sub} is a symbolic link; fractaldb writes only inside {self.url}: "
                                  "remove the link")

    def remove(self, name: str) -> None:
        path = self.path(name)
        with self.faults("remove", path):
            if self.fs.exists(path):
                self.fs.rm(path, recursive=True)

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
        return holder.get("host") == socket.gethostname() and isinstance(pid, int) and not _pid_alive(pid)

    @contextlib.contextmanager
    def lock(self):
        """Hold ``.fractaldb-lock`` in the folder while writing: a second writer gets a
        one-line error instead of interleaving.  A lock whose process is gone (same
        machine) is taken over with a message.  Creates a local folder if needed (and
        removes it again, if still empty, when the block fails)."""
        if self.protocol is not None and self.protocol not in PROTOCOLS:
            self._refuse()
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
