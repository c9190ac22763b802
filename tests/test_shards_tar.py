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


def test_fast_header_equals_field_by_field_header():
    """The precomputed-pieces header against the one built field by field (which the
    tests above tie to tarfile), over name lengths 0..100 and sizes of every digit count."""
    from fractaldb.shards import _ustar_header, _ustar_header_slow

    for length in range(101):
        for size in (0, 1, 7, 8, 511, 512, 4097, 123456789, 8**11 - 1):
            name = ("c00001-w02-k3-f1.png" * 6)[:length]
            assert _ustar_header(name, size) == _ustar_header_slow(name, size)
