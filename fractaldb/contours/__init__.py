"""The contour machinery: what VisualAtom, RCDB and SegRCDB share (docs, ../shared FDSL.md §1).

Generic and below the families (it names none); each contour family builds on it:

* :mod:`.pyrandom` -- CPython's ``random`` (MT19937 seeded by ``init_by_array``):
  ``seed``, ``random``, ``uniform``, ``randint``, ``expovariate`` on a ``uint32[625]``
  state array, in numba, plus fast-forwarding (official mode replays a worker's stream);
* :mod:`.noise` -- ``noise.pnoise1`` (the "Perlin" of the originals) in float32, bit exact;
* :mod:`.lines` -- Pillow's width-1 ``ImageDraw.line`` on a 2-D array;
* :mod:`.orbits` -- the orbit recurrence (§1.4) drawn with those lines, its noise either
  replayed from CPython's stream (official) or keyed per instance (modern);
* :mod:`.kernels_cuda` -- the GPU twin of the orbit rasteriser (the same bytes).

Importing this package imports nothing heavy; the kernels compile on first use.
"""
