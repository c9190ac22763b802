"""3-D fractals (MV-FractalDB, ExFractalDB, 3-D OFDB): categories, the
variance-gated search, instance clouds, views and the CPU renderer.

A **category** (:class:`Fractal3DClass`) is a 3-D IFS of N = 2..7 affine maps,
each 12 parameters ``a..l`` (``x' = a x + b y + c z + j``, ``y' = d x + e y +
f z + k``, ``z' = g x + h y + i z + l``) and a probability ``p`` proportional
to ``|det|``.  An **instance** is one row of the 145-row weight table
(:func:`weight_table`): the 12 parameters of every map scaled by the row,
``p`` unchanged, and a fresh chaos game.  A **view** is a camera on a sphere
of radius 4 around the cloud.  A block of the dataset is one
(category, instance) cloud rendered in all its views.

What is exact, what is faithful and what ``compat: modern`` fixes is in
docs/fractal3d.md (VARIANTS.md section 1 has the original's algorithm).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ...errors import ConfigError
from ..base import HostRenderer
from ...ifs.policy import RETRIES, SHRINK
from ...seeds import declare_purposes, generator, stream_keys
from . import kernels as K

#: The family's random streams.
PURPOSES = declare_purposes("fractal3d", {
    "fractal3d-candidate": 18,      # N and parameters of a 3-D fractal search candidate (candidate)
    "fractal3d-search-points": 19,  # chaos-game uniforms of a 3-D search candidate (candidate)
    "fractal3d-points": 20,         # chaos-game uniforms of a 3-D instance cloud (category, instance)
    "fractal3d-views": 21,          # the camera of one view (category, instance, view)
})

__all__ = ["Fractal3DClass", "weight_table", "TYPO_ROW", "COMPATS", "VIEWS", "DEGENERATE", "Fractal3DSearchConfig",
           "search_classes", "Fractal3DRenderConfig", "Fractal3DRenderer", "view_eyes", "camera", "cameras",
           "cloud", "replacement_factors", "replacement_accepted", "degenerate_record", "MAX_MAPS", "FOVY", "CAM_DIST", "NEAR", "FAR"]

#: Maps per category: the original's ``np.random.randint(2, 8)``.
MIN_MAPS, MAX_MAPS = 2, 7
#: Camera of the original renderer: perspective fovy 45 degrees, aspect 1,
#: near 1, far 100, at distance 4 from the origin.
FOVY, CAM_DIST, NEAR, FAR = 45.0, 4.0, 1.0, 100.0
#: MV-FractalDB's base azimuth: ``glm.radians(30)`` after ``2 pi k / n``.
BASE_AZIMUTH_DEG = 30.0
#: compat modes: ``official`` keeps the original's traps, ``modern`` fixes them.
COMPATS = ("official", "modern")
#: View distributions: ``mv`` (MV-FractalDB's 12 azimuths) or ``random`` (ExFractalDB, ours).
VIEWS = ("mv", "random")
#: What modern mode does with a diverging instance (a cloud with NaN coordinates):
#: ``replace`` it (the weight factor pulled towards 1, as the 2-D degenerate variants),
#: or ``record`` it and keep its blank images (fractaldb before 0.3; official mode always).
DEGENERATE = ("replace", "record")
#: The scale factors of the weight table (parsed as the CSV's strings are).
FACTORS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6)
#: The shipped table's typo: this row should scale parameter i by 1.6 and says 0.6.
TYPO_ROW = 108


def weight_table(compat: str = "modern") -> np.ndarray:
    """The ``(145, 12)`` weight table of ``weights_ins145.csv``.

    Parameter ``a`` at 0.4, 0.5, ..., 1.6 (13 rows, row 6 the identity), then
    each of ``b..l`` at the same factors without 1.0 (12 rows each).  In
    ``official`` mode row :data:`TYPO_ROW` scales ``i`` by 0.6, as the shipped
    file does; ``modern`` has 1.6 there.
    """
    rows = []
    for q in range(12):
        for f in FACTORS:
            if f == 1.0 and q > 0:
                continue
            r = [1.0] * 12
            r[q] = f
            rows.append(r)
    table = np.array(rows, dtype=np.float64)
    if compat == "official":
        table[TYPO_ROW, 8] = 0.6
    return table


def _finite(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(value)):
        raise ConfigError(f"{what} must be a finite number, got {value!r}")
    return float(value)


class Fractal3DClass:
    """One category: ``maps`` ``(N, 13)`` float64, a row per map ``a..l, p``
    (the original's CSV, ``%06d.csv``, has the same columns)."""

    __slots__ = ("maps",)

    def __init__(self, maps):
        if not isinstance(maps, (list, tuple, np.ndarray)) or len(maps) == 0:
            raise ConfigError(f"a 3-D fractal category needs {MIN_MAPS}..{MAX_MAPS} rows of 13 numbers, got {maps!r}")
        rows = [[_finite(v, "a 3-D fractal parameter") for v in row] for row in maps]
        if not (1 <= len(rows) <= MAX_MAPS) or any(len(r) != 13 for r in rows):
            raise ConfigError(f"a 3-D fractal category needs 1..{MAX_MAPS} rows of 13 numbers "
                              f"(a..l, p), got {len(rows)} rows of lengths {sorted({len(r) for r in rows})}")
        self.maps = np.array(rows, dtype=np.float64)
        self.maps.setflags(write=False)

    @classmethod
    def _trusted(cls, maps: np.ndarray) -> "Fractal3DClass":
        """Without the checks (the search's own candidates: finite by construction)."""
        obj = cls.__new__(cls)
        obj.maps = maps
        obj.maps.setflags(write=False)
        return obj

    @property
    def n_maps(self) -> int:
        return self.maps.shape[0]

    def cumulative(self) -> np.ndarray:
        """Running sums of ``p`` (left to right, as the original's ``temp_proba += proba``)."""
        out = np.empty(self.n_maps)
        s = 0.0
        for m in range(self.n_maps):
            s += float(self.maps[m, 12])
            out[m] = s
        return out

    def to_dict(self) -> dict:
        """JSON-able, exact: Python floats round-trip through JSON."""
        return {"maps": self.maps.tolist()}

    @classmethod
    def from_dict(cls, d) -> "Fractal3DClass":
        if not isinstance(d, dict) or set(d) - {"maps", "family"} or "maps" not in d:
            raise ConfigError(f"a 3-D fractal category is a mapping with the key 'maps', got {d!r}")
        return cls(d["maps"])

    def __eq__(self, other):
        return isinstance(other, Fractal3DClass) and np.array_equal(self.maps, other.maps)

    def __repr__(self):
        return f"Fractal3DClass({self.n_maps} maps)"


def _padded(systems, factors=None):
    """``(B, 7, 12)`` maps (scaled by ``factors`` rows when given), ``(B, 7)`` cum, ``(B,)`` counts."""
    b = len(systems)
    maps = np.zeros((b, MAX_MAPS, 12))
    cum = np.zeros((b, MAX_MAPS))
    counts = np.zeros(b, dtype=np.int64)
    for c, cls in enumerate(systems):
        n = cls.n_maps
        maps[c, :n] = cls.maps[:, :12] if factors is None else cls.maps[:, :12] * factors[c]
        cum[c, :n] = cls.cumulative()
        counts[c] = n
    return maps, cum, counts


# --------------------------------------------------------------------------
# Category search
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Fractal3DSearchConfig:
    """The variance-gated search (the original's ``category_search.py``).

    Attributes:
        categories: categories to find.
        seed: dataset seed (``fractal3d-candidate`` and ``fractal3d-search-points`` streams).
        variance: threshold on the variance of each axis (strictly above).
        points: the original's ``point_num``; the chaos game makes ``points - 1``.
        compat: ``official`` (NaN checked on y only, centroid over ``points``) or ``modern``.
        workers: threads evaluating a batch of candidates (no effect on the result).
        max_candidates: candidates tried before giving up (default ``2000 * categories + 10000``).
    """

    categories: int
    seed: int = 1
    variance: float = 0.05
    points: int = 10000
    compat: str = "modern"
    workers: int = 1
    max_candidates: int | None = None


def candidate(seed: int, index: int) -> Fractal3DClass:
    """Candidate ``index`` of a search: N = integers(2, 8), the 12 N parameters
    uniform(-1, 1) map after map, ``p = |det A| / sum`` (``np.linalg.det``, the
    sum left to right as the original's loop), from
    ``generator(seed, "fractal3d-candidate", index)``."""
    rng = generator(seed, "fractal3d-candidate", index)
    n = int(rng.integers(MIN_MAPS, MAX_MAPS + 1))
    params = rng.uniform(-1.0, 1.0, (n, 12))
    rows = np.zeros((n, 13))
    rows[:, :12] = params
    dets = np.abs(np.linalg.det(params[:, :9].reshape(n, 3, 3)))  # the same LU per matrix as one by one
    total = 0.0
    for m in range(n):
        total += float(dets[m])
    rows[:, 12] = dets / total
    return Fractal3DClass._trusted(rows)


#: Candidates drawn and evaluated together.
BATCH = 512


def search_classes(cfg: Fractal3DSearchConfig, progress=None) -> list:
    """The first ``cfg.categories`` candidates (in candidate order) that pass the gate.

    Candidate ``c``'s chaos game draws from ``stream_key(seed,
    "fractal3d-search-points", c)``; the gate is :func:`kernels.search_batch`'s.
    The result does not depend on ``workers``.

    Raises:
        ConfigError: ``max_candidates`` candidates did not give enough categories.
    """
    limit = cfg.max_candidates or 2000 * cfg.categories + 10000
    divisor = float(cfg.points) if cfg.compat == "official" else float(cfg.points - 1)
    nan_all = 0 if cfg.compat == "official" else 1
    workers = max(1, int(cfg.workers))
    scratch = [np.empty((3, cfg.points - 1)) for _ in range(workers)]
    found: list = []
    start = 0
    with ThreadPoolExecutor(workers) as pool:
        while len(found) < cfg.categories and start < limit:
            idx = np.arange(start, min(start + BATCH, limit))
            cands = [candidate(cfg.seed, int(c)) for c in idx]
            maps, cum, counts = _padded(cands)
            keys = stream_keys(cfg.seed, "fractal3d-search-points", idx[:, None])
            ok = np.zeros(len(idx), dtype=np.int64)
            bounds = np.linspace(0, len(idx), workers + 1).astype(int)

            def run(w):
                sl = slice(bounds[w], bounds[w + 1])
                K.search_batch(maps[sl], cum[sl], counts[sl], keys[sl], divisor, nan_all, cfg.variance,
                               scratch[w], ok[sl])

            list(pool.map(run, range(workers)))
            for c in np.flatnonzero(ok):
                if len(found) < cfg.categories:
                    found.append(cands[c])
            start = int(idx[-1]) + 1
            if progress is not None:
                progress(len(found), start)
    if len(found) < cfg.categories:
        raise ConfigError(f"found only {len(found)} of {cfg.categories} 3-D fractal categories in {start} candidates "
                          f"at variance > {cfg.variance}; lower the variance threshold or ask for fewer categories")
    return found


# --------------------------------------------------------------------------
# Clouds, views, rendering
# --------------------------------------------------------------------------

def cloud(cls: Fractal3DClass, factors, key, points: int, compat: str, out=None) -> np.ndarray:
    """The normalised, centred ``(3, points - 1)`` float64 cloud of ``cls`` scaled by
    ``factors`` (12 numbers), chaos-game draws from ``key``."""
    maps, cum, counts = _padded([cls], np.asarray(factors, dtype=np.float64)[None, :])
    out = np.empty((3, points - 1)) if out is None else out
    K.chaos_game(maps[0], cum[0], counts[0], np.uint64(key), out)
    K.normalise(out, float(points) if compat == "official" else float(points - 1))
    return out


def view_eyes(views: str, n_views: int, jitter: float, keys) -> np.ndarray:
    """``(n, 2, 3)``: camera position and up vector of each view; ``keys`` one per view,
    view ``k % n_views`` of its instance.

    ``mv`` (MV-FractalDB): rotation about +y by ``phi_k = k / n * 2 pi + radians(30)
    + radians(eps_k)``, ``eps_k = -jitter + 2 jitter u`` (``jitter`` in **degrees**:
    the original's ``glm.radians(random.uniform(-pi, pi))``, about +-3.14 degrees),
    camera at ``-4 (cos phi, 0, -sin phi)``, up +y.

    ``random`` (our ExFractalDB choice; the original does not ship one): the
    camera direction uniform on the sphere, ``y = 2 u0 - 1``, azimuth ``2 pi u1``,
    distance 4, up +y (+z when the camera is within 1e-6 of a pole).
    """
    keys = np.asarray(keys, dtype=np.uint64).reshape(-1)
    u = np.empty((len(keys), 2))
    K.view_uniforms(keys, u)
    out = np.zeros((len(keys), 2, 3))
    if views == "mv":
        k = np.arange(len(keys)) % n_views
        eps = -jitter + (jitter - (-jitter)) * u[:, 0]  # random.uniform(a, b) = a + (b - a) u
        phi = k / n_views * math.pi * 2.0 + math.radians(BASE_AZIMUTH_DEG) + eps * (math.pi / 180.0)
        out[:, 0, 0] = -CAM_DIST * np.cos(phi)
        out[:, 0, 2] = CAM_DIST * np.sin(phi)
        out[:, 1, 1] = 1.0
    else:
        y = 2.0 * u[:, 0] - 1.0
        r = np.sqrt(np.maximum(0.0, 1.0 - y * y))
        theta = 2.0 * math.pi * u[:, 1]
        out[:, 0] = CAM_DIST * np.stack([r * np.cos(theta), y, r * np.sin(theta)], axis=1)
        pole = r <= 1e-6
        out[:, 1, 1] = np.where(pole, 0.0, 1.0)
        out[:, 1, 2] = np.where(pole, 1.0, 0.0)
    return out


def cameras(eyes, fovy: float = FOVY, near: float = NEAR, far: float = FAR) -> np.ndarray:
    """``(n, 13)`` cameras of :func:`kernels.project_points` for gluLookAt(eye, 0, up),
    from :func:`view_eyes`' ``(n, 2, 3)``."""
    eye, up = eyes[:, 0], eyes[:, 1]
    dist = np.sqrt((eye * eye).sum(axis=1))
    f = -eye / dist[:, None]
    s = np.cross(f, up)
    s /= np.sqrt((s * s).sum(axis=1))[:, None]
    u = np.cross(s, f)
    cot = 1.0 / math.tan(math.radians(fovy) / 2.0)
    n = len(eyes)
    return np.concatenate([s, u, f, dist[:, None], np.full((n, 1), cot), np.full((n, 1), near),
                           np.full((n, 1), far)], axis=1)


def camera(eye, up, fovy: float = FOVY, near: float = NEAR, far: float = FAR) -> np.ndarray:
    """The float64[13] camera of :func:`kernels.project_points` for gluLookAt(eye, 0, up)."""
    return cameras(np.array([[eye, up]], dtype=np.float64), fovy, near, far)[0]


def replacement_factors(row: np.ndarray, attempt: int) -> np.ndarray:
    """The weight factors of attempt ``attempt`` (0-based) at replacing a diverging
    instance of weight row ``row``: the row's factors pulled towards 1 by
    ``SHRINK ** (attempt + 1)`` (the 2-D degenerate variants' rule,
    :mod:`fractaldb.ifs.policy`), and all ones (the category itself) after ``RETRIES``."""
    if attempt < RETRIES:
        return 1.0 + (np.asarray(row, dtype=np.float64) - 1.0) * (SHRINK ** (attempt + 1))
    return np.ones(12)


def replacement_accepted(pts, attempt: int, threshold: float, flags, var) -> bool:
    """Whether attempt ``attempt``'s normalised cloud replaces a diverging instance: it passes
    the category search's own gate (no NaN in any row, every axis's variance above
    ``threshold``), so a replacement is neither blank nor collapsed to a few pixels; the
    last attempt (the category's own factors) needs only to be finite.  ``flags`` and
    ``var`` are (3,) scratch.  Both renderers decide with this function on host clouds."""
    if K.passes(pts, 1, threshold, flags, var):
        return True
    if attempt < RETRIES:
        return False
    K.nan_rows(pts, flags)
    return not flags.any()


def degenerate_record(family: str, category: int, instance: int, nan: str, replaced) -> dict:
    """What the manifest records of a diverging instance: its NaN axes, whether the
    original would drop it (a NaN in y), and -- replaced -- the factors drawn instead
    (``None`` when even the category's own factors diverge: then it stays blank)."""
    record = {"family": family, "category": category, "instance": instance, "nan_axes": nan,
              "original_drops": "y" in nan}
    if replaced is not False:
        record.update(action="replace", replaced_by=None if replaced is None else [float(v) for v in replaced])
    return record


@dataclass(frozen=True)
class Fractal3DRenderConfig:
    """What a render needs: image side, chaos-game length, compat, views, weight
    rows (the first ``instances`` rows of the table), the dataset seed, what modern
    mode does with a diverging instance, and the camera's near plane and point size."""

    size: int = 224
    points: int = 10000
    compat: str = "modern"
    views: str = "mv"
    n_views: int = 12
    jitter: float = math.pi
    instances: int = 145
    seed: int = 1
    degenerate: str = "replace"
    near: float = NEAR
    point_size: int = 1
    variance: float = 0.05  #: the category gate a replacement must pass

    @property
    def replaces(self) -> bool:
        """A diverging instance is replaced (modern mode, ``degenerate: replace``)."""
        return self.compat == "modern" and self.degenerate == "replace"


class Fractal3DRenderer(HostRenderer):
    """Renders (category, instance) blocks on the calling thread; one per thread.

    Items are ``(Fractal3DClass, category index, instance)``; a block is
    ``(n_views, size, size, 1)`` uint8, white single-pixel splats on black.
    """

    def __init__(self, cfg: Fractal3DRenderConfig):
        self.cfg = cfg
        self.table = weight_table(cfg.compat)
        self.pts = np.empty((3, cfg.points - 1))
        self.flags = np.zeros(3, dtype=np.int64)
        self.var = np.zeros(3)

    def keys(self, pairs):
        """Cloud keys ``(n,)`` and view keys ``(n, n_views)`` of ``(category, instance)``
        pairs (two vectorised derivations for all of them)."""
        c = self.cfg
        pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        cloud_keys = stream_keys(c.seed, "fractal3d-points", pairs)
        ids = np.concatenate([np.repeat(pairs, c.n_views, axis=0),
                              np.tile(np.arange(c.n_views), len(pairs))[:, None]], axis=1)
        return cloud_keys, stream_keys(c.seed, "fractal3d-views", ids).reshape(len(pairs), c.n_views)

    def cloud(self, cls: Fractal3DClass, category: int, instance: int, key=None) -> np.ndarray:
        """The instance's float64 cloud (the renderer's own buffer)."""
        c = self.cfg
        if key is None:
            key = self.keys([(category, instance)])[0][0]
        return cloud(cls, self.table[instance], key, c.points, c.compat, self.pts)

    def cameras(self, category: int, instance: int, views=None, keys=None) -> np.ndarray:
        """``(len(views), 13)`` cameras of the instance's views (all by default)."""
        c = self.cfg
        views = list(range(c.n_views)) if views is None else list(views)
        if keys is None:
            keys = self.keys([(category, instance)])[1][0]
        return cameras(view_eyes(c.views, c.n_views, c.jitter, keys), near=c.near)[views]

    def _nan(self, pts) -> str:
        K.nan_rows(pts, self.flags)
        return "".join(a for a, f in zip("xyz", self.flags) if f)

    def finite_cloud(self, cls, category: int, instance: int, key) -> tuple:
        """The instance's cloud after the diverging-instance policy: ``(cloud, nan,
        replaced)``.  ``nan``: the NaN axes of the instance's own cloud ('' when finite);
        ``replaced``: False (nothing replaced), the factors that replaced it (the first
        attempt that :func:`replacement_accepted`), or None (replacing failed: the last
        attempt's cloud, still diverging)."""
        c = self.cfg
        pts = self.cloud(cls, category, instance, key)
        nan = self._nan(pts)
        replaced = False
        if nan and c.replaces:
            replaced = None
            for attempt in range(RETRIES + 1):
                factors = replacement_factors(self.table[instance], attempt)
                pts = cloud(cls, factors, key, c.points, c.compat, self.pts)
                if replacement_accepted(pts, attempt, c.variance, self.flags, self.var):
                    replaced = factors
                    break
        return pts, nan, replaced

    def render(self, cls, category: int, instance: int, views=None, out=None, keys=None):
        """The views' images ``(len(views), S, S, 1)``, the NaN rows of the instance's
        cloud (a string of ``x``, ``y``, ``z``; empty when the cloud is finite) and what
        replaced a diverging cloud (:meth:`finite_cloud`).  ``keys``: this block's
        ``(cloud key, view keys)`` from :meth:`keys` (derived when None)."""
        c = self.cfg
        if keys is None:
            ck, vk = self.keys([(category, instance)])
            keys = (ck[0], vk[0])
        cams = self.cameras(category, instance, views, keys[1])
        pts, nan, replaced = self.finite_cloud(cls, category, instance, keys[0])
        pts32 = pts.astype(np.float32)  # the original's float32 vertex buffer
        shape = (len(cams), c.size, c.size, 1)
        if out is None:
            out = np.zeros(shape, dtype=np.uint8)
        elif tuple(out.shape) != shape or out.dtype != np.uint8:
            raise ValueError(f"out must be a uint8 array of shape {shape}, got {out.dtype} {out.shape}")
        else:
            out[...] = 0
        half = (c.point_size - 1) // 2
        for v, cam in enumerate(cams):
            K.project_points(pts32, cam, half, out[v, :, :, 0])
        return out, nan, replaced

    def render_many(self, items):
        """Each ``(cls, category, instance)`` item's block of all views (a new array)."""
        for cls, k, i in items:
            yield self.render(cls, k, i)[0]

    def render_many_device(self, items, out=None) -> np.ndarray:
        """Every item's views in one ``(n_items * n_views, S, S, 1)`` host array."""
        items = list(items)
        c = self.cfg
        shape = (len(items) * c.n_views, c.size, c.size, 1)
        if out is None:
            out = np.empty(shape, dtype=np.uint8)
        if items:
            ck, vk = self.keys([(k, i) for _, k, i in items])
        for j, (cls, k, i) in enumerate(items):
            self.render(cls, k, i, out=out[j * c.n_views:(j + 1) * c.n_views], keys=(ck[j], vk[j]))
        return out

