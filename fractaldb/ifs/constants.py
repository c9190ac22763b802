"""Official FractalDB constants, in one place (SPEC 1.1-1.2)."""

from __future__ import annotations

#: Fill-rate threshold of the original category search.
SEARCH_FILL_RATE = 0.2
#: Points per candidate in the original search (100 000 drawn, 99 999 steps).
SEARCH_POINTS = 100_000
#: Raster size and pad of the original search.
SEARCH_SIZE = 512
PAD = 6
#: Seed of the published FractalDB-1k search (``np.random.seed(1)``).
SEARCH_SEED = 1
#: Map count of the original sampler: ``randint(2, 8)`` -> 2..7.
SEARCH_MIN_MAPS = 2
SEARCH_MAX_MAPS = 7

#: Recommended instance settings of the original renderer.
RENDER_SIZE = 362
RENDER_POINTS = 200_000
RENDER_PATCHES = 10
RENDER_FLIPS = 4
RENDER_WEIGHT_STEP = "0.4"
#: The original renderer re-seeds ``np.random.seed(100)`` before every render.
RENDER_COMPAT_SEED = 100
#: Gray value of a drawn pixel.
GRAY = 127
#: Colour mode: hue cycles with the point index over this many steps.
COLOR_PERIOD = 128
#: Weight-table steps shipped with the original renderer.
WEIGHT_STEPS = ("0.0125", "0.025", "0.05", "0.1", "0.2", "0.3", "0.4", "0.5")
#: Largest number of maps in one system that the kernels accept.
MAX_MAPS = 32
