"""Our ustar writer against the standard library's, byte for byte."""

from __future__ import annotations

import io
import tarfile

import pytest

from fractaldb.shards import TAR_OWNER, tar_bytes


def _stdlib_tar(members) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o444
            info.uid = info.gid = 0
            info.uname = info.gname = TAR_OWNER
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("members", [
    [],
    [("a.cls", b"0")],
    [("c00001-w02-k3-f1.cls", b"17"), ("c00001-w02-k3-f1.json", b"{}" * 300),
     ("c00001-w02-k3-f1.png", bytes(range(256)) * 40)],
    [(f"k{i}.bin", b"x" * (i * 511)) for i in range(40)],   # every padding length class
    [("big.bin", b"\x01" * (10240 * 3 + 7))],
])
def test_tar_bytes_equals_tarfile(members):
    assert tar_bytes(members) == _stdlib_tar(members)


def test_tar_bytes_reads_back():
    members = [("s1.cls", b"3"), ("s1.png", b"\x89PNG" + b"\0" * 1000)]
    with tarfile.open(fileobj=io.BytesIO(tar_bytes(members))) as tar:
        got = [(m.name, tar.extractfile(m).read(), m.mtime, m.mode, m.uname) for m in tar]
    assert got == [(n, d, 0, 0o444, TAR_OWNER) for n, d in members]


def test_long_name_is_refused():
    with pytest.raises(ValueError, match="too long"):
        tar_bytes([("x" * 101, b"")])
