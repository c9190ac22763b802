"""Output folders: checked before any work, assembled under a staging name and renamed
into place, and deleted only when they carry our mark (part of the safe-write layer of
:mod:`fractaldb.storage`, which re-exports these names).

* :func:`check_output_dir` -- before any work: an ``--out`` that exists must be an empty
  folder unless ``--overwrite``; never the current folder, a root, or a folder holding the
  command's input (replacing it would delete the input).
* :func:`staged_dir` -- a folder output assembled in ``.fractaldb-tmp-<random>-new-NAME``
  (created exclusively, marked as ours), put in place by :func:`replace_dir`; staging folders
  of killed runs are removed at the next run, a user's look-alike never.
* :func:`claim_dir` -- a folder a command adds to over several runs (a study): used only
  when it is new, empty or carries the command's own mark.
* Renames into place and removals run with interrupts deferred
  (:func:`fractaldb.signals.deferred`): nothing is ever left half renamed or half removed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import socket
import uuid
from pathlib import Path

from .errors import OutputError
from .safety import TEMP_PREFIX
from .signals import deferred

__all__ = ["check_writable_folder", "check_output_dir", "check_not_inside", "staged_dir", "replace_dir",
           "claim_dir", "remove_tree", "pid_alive"]

log = logging.getLogger("fractaldb")


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


def pid_alive(pid: int) -> bool:
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
            if info.get("host") != socket.gethostname() or pid_alive(int(info["pid"])):
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
    """Mark ``folder`` as ours (created exclusively: never through a link, never over a user's file)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    with contextlib.suppress(OSError):
        fd = os.open(folder / _STAGING_MARK, flags, 0o644)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))


def remove_tree(path: Path, why: str) -> None:
    """Remove a staging folder; first renamed (still marked as ours), so that threads an
    interrupt left running cannot write into it any more.  Interrupts wait until it is gone."""
    with deferred():
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


def replace_dir(tmp: Path, out: Path) -> None:
    """Put the finished folder ``tmp`` at ``out`` (an existing ``out`` -- a folder, or a link,
    never what it points to -- is renamed aside first and removed once the new one is in
    place).  Interrupts wait until it is done: ``out`` is never missing or half removed."""
    with deferred():
        old = None
        if os.path.lexists(out):
            old = out.parent / f"{TEMP_PREFIX}{uuid.uuid4().hex}-old-{out.name}"  # random: no one can plant it
            os.rename(out, old)
            if not old.is_symlink():
                _mark(old)
        os.replace(tmp, out)
        if old is not None:
            remove_tree(old, "replaced")


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
        replace_dir(tmp, out)
        tmp = None
    except OSError as exc:
        if tmp is not None:
            remove_tree(tmp, "failed")
        raise OutputError(f"cannot write {out}: {exc.strerror or exc}; choose a writable --out") from None
    except KeyboardInterrupt:
        from .signals import Interrupted

        if tmp is None:  # the interrupt was held back until the new folder was in place
            raise Interrupted(f"{out} was written completely before the interrupt") from None
        remove_tree(tmp, "interrupted, cleaning up")
        raise Interrupted(f"nothing was written to {out} (it appears only when complete); run the command "
                          "again") from None
    except BaseException:
        if tmp is not None:
            remove_tree(tmp, "cleaning up")
        raise


def claim_dir(out, mark: str, what: str, fix: str = "choose a new --out") -> Path:
    """The folder ``out`` for a command that adds to it over several runs (a study, an
    interrupted render): created if absent; an existing one is used only when it is a real
    folder that is empty or holds ``mark`` (a regular file the command wrote), else refused."""
    out = Path(out)
    if os.path.islink(out) or (os.path.lexists(out) and not out.is_dir()):
        raise OutputError(f"{out} is not a folder fractaldb made (a link or a file); remove it or {fix}")
    if out.is_dir() and any(out.iterdir()):
        marker = out / mark
        if os.path.islink(marker) or not marker.is_file():
            raise OutputError(f"{out} holds files but no {mark}: it is not {what}, so fractaldb will not write "
                              f"into it; {fix}")
        return out
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {out}: {exc.strerror or exc}; {fix}") from None
    return out
