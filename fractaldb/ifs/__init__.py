"""Iterated function systems, shared by every family that draws 2-D IFS fractals.

This package sits below the families (no family imports another): the IFS
model and the original category CSV format (:mod:`.system`), the original's
constants (:mod:`.constants`), weight tables (:mod:`.weights`), the chaos
game and patch raster kernels (:mod:`.kernels`, :mod:`.kernels_cuda`), the
host-side policy both renderers share (:mod:`.policy`) and the CPU and GPU
instance renderers (:mod:`.render`, :mod:`.render_cuda`).  The FractalDB
family renders (category, weight) blocks with them; 1p-frac renders its
perturbed systems with them; the colour families use the IFS model.
"""
