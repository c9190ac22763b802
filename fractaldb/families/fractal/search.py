"""Category search: samplers, the fill-rate gate, and the category folder.

Three samplers (SPEC 1.1, 1.4):

``official``
    Replays the original loop on NumPy's legacy ``np.random.seed(S)`` stream.
    From seed 1 it reproduces the published FractalDB-1k categories bit for
    bit.  The stream is walked ahead on one thread and candidates are
    evaluated on all workers; acceptance never changes what a candidate
    consumed, so the result is the same for any worker count.
``modern``
    The same rule (2..7 maps, coefficients U(-1, 1), p ~ |det|, fill gate) on
    streams derived from ``(seed, candidate)``: every candidate is
    reproducible on its own.
``svd``
    Anderson & Farrell's sigma-factor sampler: every map contractive, no
    candidate rejected.
"""

from __future__ import annotations

import json
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ...ifs import constants as C
from ...errors import ConfigError
from ...safety import check_bound, check_workers
from ...keys import CATEGORIES_SUMMARY
from ...kernels import mt19937 as mt
from ...parallel import default_workers
from ...seeds import declare_purposes, generator, stream_key
from ...storage import check_output_dir, staged_dir, write_file
from . import kernels_search as ks
from ...ifs.system import IFS, write_csv
from ...ifs.render import PointScratch

#: The search's random streams.
PURPOSES = declare_purposes("fractal", {
    "search-candidate": 1,  # parameters of a modern/svd search candidate
    "search-points": 2,     # chaos-game uniforms of a search candidate
})

__all__ = ["SAMPLERS", "SearchConfig", "SearchResult", "search", "write_categories", "default_workers",
           "check_output_dir"]

SAMPLERS = ("official", "modern", "svd")


@dataclass(frozen=True)
class SearchConfig:
    """Settings of one category search (defaults: the original's)."""

    sampler: str = "official"
    categories: int = 1000
    seed: int = C.SEARCH_SEED
    fill_rate: float = C.SEARCH_FILL_RATE
    points: int = C.SEARCH_POINTS
    size: int = C.SEARCH_SIZE
    pad: int = C.PAD
    workers: int = field(default_factory=default_workers)
    #: Candidates to try before giving up (None: :meth:`budget`); not part of the result.
    max_candidates: int | None = None

    def budget(self) -> int:
        """Candidates the search may try: ``max_candidates``, or a generous default
        (1000 per category, at least 100,000; the published FractalDB-1k took 43 per category)."""
        return self.max_candidates if self.max_candidates is not None else max(100_000, 1000 * self.categories)

    def __post_init__(self):
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"unknown sampler {self.sampler!r}; choose one of {', '.join(SAMPLERS)}")
        if not isinstance(self.categories, int) or self.categories <= 0:
            raise ConfigError(f"categories must be a positive integer, got {self.categories}")
        if not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            raise ConfigError(f"seed must be an integer in 0..2**32-1, got {self.seed}")
        if not (isinstance(self.fill_rate, (int, float)) and 0.0 < self.fill_rate <= 1.0):
            raise ConfigError(f"fill rate must be in (0, 1], got {self.fill_rate}")
        if not isinstance(self.points, int) or self.points < 2:
            raise ConfigError(f"points must be an integer >= 2, got {self.points}")
        if not isinstance(self.pad, int) or self.pad < 0:
            raise ConfigError(f"pad must be an integer >= 0, got {self.pad}")
        if not isinstance(self.size, int) or self.size <= 2 * self.pad + 1:
            raise ConfigError(
                f"size {self.size} is too small for pad {self.pad}; use a size above {2 * self.pad + 1}"
            )
        check_workers(self.workers)
        if self.max_candidates is not None and (isinstance(self.max_candidates, bool) or not isinstance(
                self.max_candidates, int) or self.max_candidates <= 0):
            raise ConfigError(f"--max-candidates must be a positive integer, got {self.max_candidates!r}")
        check_bound("search_points", self.points, "--points (search_points in a preset)")
        check_bound("size", self.size, "--size")
        if self.sampler != "svd":
            self._check_reachable()

    def _check_reachable(self) -> None:
        """Refuse a fill-rate gate no candidate can pass (the search would never end).

        A candidate fills at most one pixel per point, and only pixels inside the
        pad border: ``fill_rate * size**2`` must not exceed either.
        """
        need = math.ceil(self.fill_rate * self.size * self.size - 1e-9)
        inner = (self.size - 2 * self.pad + 1) ** 2  # coordinates land in [pad, size - pad]
        if need > inner:
            best = inner / (self.size * self.size)
            raise ConfigError(f"fill rate {self.fill_rate} cannot be reached: the {self.pad}-pixel pad border leaves "
                              f"at most {best:.4f} of a {self.size}x{self.size} raster; use a fill rate <= {best:.4f}")
        if self.points < need:
            raise ConfigError(f"{self.points} points cannot fill {self.fill_rate} of a {self.size}x{self.size} raster "
                              f"(one pixel per point, {need} pixels needed); the smallest workable --points "
                              f"(search_points in a preset) is {need}")


@dataclass
class SearchResult:
    """Accepted categories in order, with what the search measured."""

    config: SearchConfig
    categories: list = field(default_factory=list)   # list[IFS]
    fill_rates: list = field(default_factory=list)   # per accepted category
    candidate_ids: list = field(default_factory=list)  # index of each in the candidate sequence
    candidates_tried: int = 0

    @property
    def acceptance_rate(self) -> float:
        return len(self.categories) / self.candidates_tried if self.candidates_tried else 0.0

    def summary(self) -> dict:
        """The ``categories.json`` document."""
        cfg = asdict(self.config)
        cfg.pop("workers")  # not part of the result: any worker count gives the same
        cfg.pop("max_candidates")  # a budget, not a setting of the result
        return {
            "format": "fractaldb-categories-v1",
            **cfg,
            "fill_gate_applied": self.config.sampler != "svd",
            "num_categories": len(self.categories),
            "candidates_tried": self.candidates_tried,
            "acceptance_rate": self.acceptance_rate,
            "categories": [
                {"id": f"{i:05d}", "file": f"{i:05d}.csv", "candidate": int(cand),
                 "n_maps": ifs.n_maps, "fill_rate": float(fill)}
                for i, (ifs, fill, cand) in enumerate(zip(self.categories, self.fill_rates, self.candidate_ids))
            ],
        }


class _Scratch(PointScratch):
    """Per-thread buffers of one candidate evaluation: the renderer's, plus the
    MT19937 state and the raw words of the official stream."""

    def __init__(self, cfg: SearchConfig):
        super().__init__(cfg.points, cfg.size)
        self.st = np.empty(mt.STATE_SIZE, dtype=np.uint32)
        self.words = np.empty(2 * cfg.points, dtype=np.uint32)


class _Batch:
    """Parameters of a block of consecutive candidates."""

    def __init__(self, start: int, size: int):
        self.start = start
        self.maps = np.zeros((size, C.MAX_MAPS, 7), dtype=np.float64)
        self.nmaps = np.zeros(size, dtype=np.int64)
        self.snapshots = np.zeros((size, mt.STATE_SIZE), dtype=np.uint32)
        self.keys = np.zeros(size, dtype=np.uint64)
        self.fills = np.zeros(size, dtype=np.int64)

    def __len__(self):
        return self.nmaps.shape[0]


def _official_batches(cfg: SearchConfig, batch_size: int):
    st = mt.state_from_seed(cfg.seed)
    start = 0
    while True:
        b = _Batch(start, batch_size)
        ks.walk(st, batch_size, cfg.points, b.maps, b.nmaps, b.snapshots)
        yield b
        start += batch_size


def _modern_params(rng: np.random.Generator) -> np.ndarray:
    n = int(rng.integers(C.SEARCH_MIN_MAPS, C.SEARCH_MAX_MAPS + 1))
    coef = rng.uniform(-1.0, 1.0, size=(n, 6))
    det = np.abs(coef[:, 0] * coef[:, 3] - coef[:, 1] * coef[:, 2])
    total = det.sum()
    p = det / total if total > 0 else np.full(n, 1.0 / n)
    return np.concatenate([coef, p[:, None]], axis=1)


def svd_params(rng: np.random.Generator) -> np.ndarray:
    """One sigma-factor system (Anderson & Farrell 2022).

    ``N`` in 2..4 maps; ``A = R(theta) diag(s1, s2) R(phi) D`` with random
    reflections ``D``; singular values ``1 >= s1 >= s2 >= 0`` drawn so that
    ``sum(s1 + 2 s2) = sigma``, ``sigma ~ U((5 + N)/2, (6 + N)/2)``; each
    map's ``s1 + 2 s2`` is drawn in turn within the bounds that keep the
    remaining budget reachable; translations U(-1, 1); p ~ |det A|.
    """
    n = int(rng.integers(2, 5))
    sigma = rng.uniform((5 + n) / 2, (6 + n) / 2)
    rows = np.empty((n, 7))
    remaining = sigma
    for i in range(n):
        left = n - i - 1
        # Budget b_i = s1 + 2 s2 lies in [0, 3]; keep the rest reachable.
        lo = max(0.0, remaining - 3.0 * left)
        hi = min(3.0, remaining)
        b = remaining if left == 0 else rng.uniform(lo, hi)
        remaining -= b
        # s1 + 2 s2 = b with s2 <= s1 <= 1, s2 >= 0  =>  s1 in [b/3, min(1, b)].
        s1_lo, s1_hi = b / 3.0, min(1.0, b)
        s1 = rng.uniform(s1_lo, s1_hi) if s1_hi > s1_lo else s1_lo
        s2 = (b - s1) / 2.0
        theta, phi = rng.uniform(0.0, 2.0 * math.pi, size=2)
        d = rng.choice([-1.0, 1.0], size=2)

        def rot(t):
            return np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])

        a = rot(theta) @ np.diag([s1, s2]) @ rot(phi) @ np.diag(d)
        rows[i, :4] = a.reshape(-1)
        rows[i, 4:6] = rng.uniform(-1.0, 1.0, size=2)
        rows[i, 6] = abs(s1 * s2)
    total = rows[:, 6].sum()
    rows[:, 6] = rows[:, 6] / total if total > 0 else 1.0 / n
    return rows


def _keyed_batches(cfg: SearchConfig, batch_size: int):
    draw = _modern_params if cfg.sampler == "modern" else svd_params
    start = 0
    while True:
        b = _Batch(start, batch_size)
        for k in range(batch_size):
            c = start + k
            rows = draw(generator(cfg.seed, "search-candidate", c))
            b.maps[k, : rows.shape[0]] = rows
            b.nmaps[k] = rows.shape[0]
            b.keys[k] = stream_key(cfg.seed, "search-points", c)
        yield b
        start += batch_size


def _evaluate(cfg: SearchConfig, batch: _Batch, lo: int, hi: int, scratch: _Scratch) -> None:
    s = scratch
    if cfg.sampler == "official":
        ks.evaluate(batch.maps, batch.nmaps, batch.snapshots, lo, hi, cfg.points, cfg.size, cfg.pad,
                    batch.fills, s.st, s.words, s.idx, s.xs, s.ys, s.keep, s.px, s.py, s.bits)
    else:
        ks.evaluate_keyed(batch.maps, batch.nmaps, batch.keys, lo, hi, cfg.points, cfg.size, cfg.pad,
                          batch.fills, s.u, s.idx, s.xs, s.ys, s.keep, s.px, s.py, s.bits)


def search(cfg: SearchConfig, progress=None) -> SearchResult:
    """Run the search until ``cfg.categories`` candidates are accepted.

    Args:
        cfg: the search settings.
        progress: optional callable ``progress(accepted, tried)`` called after
            every batch of candidates.

    Returns:
        The accepted categories in order; identical for any ``cfg.workers``.
    """
    batch_size = 64 * cfg.workers if cfg.sampler == "official" else 16 * cfg.workers
    threshold = cfg.fill_rate * cfg.size * cfg.size
    gate = cfg.sampler != "svd"
    result = SearchResult(config=cfg)
    batches = _official_batches(cfg, batch_size) if cfg.sampler == "official" else _keyed_batches(cfg, batch_size)
    local = threading.local()

    def work(batch, lo, hi):
        if not hasattr(local, "scratch"):
            local.scratch = _Scratch(cfg)
        _evaluate(cfg, batch, lo, hi, local.scratch)

    bounds = np.linspace(0, batch_size, cfg.workers + 1).astype(int)
    with ThreadPoolExecutor(cfg.workers) as pool, ThreadPoolExecutor(1) as walker:
        pending = walker.submit(next, batches)
        budget = cfg.budget()
        while len(result.categories) < cfg.categories:
            if result.candidates_tried >= budget:
                pending.cancel()
                raise ConfigError(
                    f"the search tried {result.candidates_tried} candidates (the --max-candidates budget) and "
                    f"accepted only {len(result.categories)} of {cfg.categories} categories; lower the fill "
                    "rate, or raise --max-candidates")
            batch = pending.result()
            pending = walker.submit(next, batches)  # walk ahead while we evaluate
            list(pool.map(lambda k: work(batch, bounds[k], bounds[k + 1]), range(cfg.workers)))
            for k in range(len(batch)):
                fill = batch.fills[k]
                result.candidates_tried += 1
                if not gate or fill >= threshold:
                    n = batch.nmaps[k]
                    result.categories.append(IFS.from_rows(batch.maps[k, :n]))
                    result.fill_rates.append(fill / (cfg.size * cfg.size))
                    result.candidate_ids.append(batch.start + k)
                    if len(result.categories) == cfg.categories:
                        break
            if progress is not None:
                progress(len(result.categories), result.candidates_tried)
        pending.cancel()
    return result


def write_categories(result: SearchResult, out_dir, overwrite: bool = False) -> Path:
    """Write ``00000.csv ...`` and ``categories.json`` to ``out_dir``.

    The folder is assembled under a temporary name beside ``out_dir`` and
    renamed into place, so an interrupted run leaves nothing half-written.
    """
    out = Path(out_dir)
    with staged_dir(out, overwrite) as tmp:
        for i, ifs in enumerate(result.categories):
            write_csv(ifs, tmp / f"{i:05d}.csv")
        write_file(tmp / CATEGORIES_SUMMARY, (json.dumps(result.summary(), indent=1) + "\n").encode())
    return out
