"""Where outputs go: local folders or any fsspec URL (``s3://``, ``gs://``, ``file://``).

Writes are atomic: on a local file system a file is written under a hidden
temporary name and renamed; on object stores a single PUT is already atomic
(an object is visible only once complete).  Either way a reader, or a run
killed at any moment, never sees a partial file.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import uuid
from pathlib import Path

from .errors import InputError, OutputError

__all__ = ["Store", "check_output_dir", "check_writable_folder", "staged_dir"]


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


def check_output_dir(out, overwrite: bool) -> None:
    """Fail before any work when folder ``out`` cannot be (re)written."""
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise OutputError(f"output {out} exists and is not a directory; choose another --out")
        if any(out.iterdir()) and not overwrite:
            raise OutputError(f"output {out} exists and is not empty; choose a new --out or pass --overwrite")
    check_writable_folder(out)


@contextlib.contextmanager
def staged_dir(out, overwrite: bool = False):
    """Assemble a local output folder under a hidden temporary name.

    Yields the temporary folder.  On success it is renamed to ``out`` (an
    existing ``out`` is first renamed aside and deleted only once the new
    one is in place); on any error or interrupt the temporary folder is
    removed, so nothing half-written is ever visible at ``out``.
    """
    out = Path(out)
    check_output_dir(out, overwrite)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        yield tmp
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise OutputError(f"cannot write {out}: {exc.strerror or exc}; choose a writable --out") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class Store:
    """A folder (local path or fsspec URL) holding a dataset."""

    def __init__(self, url: str):
        import fsspec
        from fsspec.implementations.local import LocalFileSystem

        self.url = str(url)
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.url)
        except (ImportError, ValueError) as exc:
            raise OutputError(f"cannot open {self.url}: {exc}") from None
        self.local = isinstance(self.fs, LocalFileSystem)
        self.root = self.root.rstrip("/") or "/"

    def path(self, name: str) -> str:
        return posixpath.join(self.root, name)

    def exists(self, name: str = "") -> bool:
        return self.fs.exists(self.path(name) if name else self.root)

    def names(self) -> list:
        """File names directly in the folder ([] if it does not exist)."""
        if not self.fs.exists(self.root):
            return []
        return sorted(posixpath.basename(p.rstrip("/")) for p in self.fs.ls(self.root, detail=False))

    def read(self, name: str) -> bytes:
        try:
            return self.fs.cat_file(self.path(name))
        except FileNotFoundError:
            raise InputError(f"{self.path(name)} does not exist") from None

    def size(self, name: str) -> int:
        return int(self.fs.size(self.path(name)))

    def makedirs(self) -> None:
        try:
            self.fs.makedirs(self.root, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create {self.url}: {exc.strerror or exc}; choose a writable --out") from None

    def check_writable(self) -> None:
        """Fail before any work when the folder cannot be written."""
        if self.local:
            check_writable_folder(self.root)

    def write(self, name: str, data: bytes) -> None:
        """Write ``name`` atomically."""
        target = self.path(name)
        try:
            if self.local:
                folder, base = os.path.split(target)
                os.makedirs(folder, exist_ok=True)
                tmp = os.path.join(folder, f".{base}.tmp-{uuid.uuid4().hex[:12]}")
                with open(tmp, "wb") as f:
                    f.write(data)
                os.replace(tmp, target)
            else:
                self.fs.pipe_file(target, data)
        except OSError as exc:
            raise OutputError(f"cannot write {target}: {exc.strerror or exc}; choose a writable --out") from None

    def remove(self, name: str) -> None:
        path = self.path(name)
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)

    def clean_temporaries(self) -> None:
        """Remove temporary files left by a killed run (local folders only)."""
        if self.local and os.path.isdir(self.root):
            for n in os.listdir(self.root):
                if n.startswith(".") and ".tmp-" in n:
                    os.remove(os.path.join(self.root, n))
