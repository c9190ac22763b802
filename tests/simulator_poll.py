"""A block scheduler for numba-cuda's CUDA simulator that waits instead of spinning.

The simulator runs each CUDA thread of a block as a Python thread, and its
``BlockManager.run`` watches them in a loop that never sleeps: it holds the GIL
while the threads that have work wait for it.  How long a launch then takes is
luck of the GIL hand-off: the same Perlin ``render_many`` of 12 instances at
32 px took 0.4 s on one run and more than 300 s on another (py-spy showed the
time in that loop).  :func:`install` replaces the loop with one that checks the
same things (an exception in a thread aborts the block; when every live thread
waits in ``syncthreads`` they are all released) but sleeps between checks.

Only the simulator runs of the test suite install it (``conftest.py``, when
``NUMBA_ENABLE_CUDASIM=1``); the package never does, and on a real GPU the
simulator is not used.
"""

from __future__ import annotations

import time

#: Seconds between two looks at the block's threads.
POLL = 0.0002


def _run(self, grid_point, *args):
    from numba.cuda.simulator.kernel import BlockThread

    import numpy as np

    threads = []
    for block_point in np.ndindex(*self._block_dim):
        thread = BlockThread(lambda: self._f(*args), self, grid_point, block_point, self._debug)
        thread.start()
        threads.append(thread)
    watch(threads)


def watch(threads: list) -> None:
    """Wait for a block's started threads: release them when every live one waits in
    ``syncthreads``, and raise the first exception a thread raised (aborting the others)."""

    def abort_on(failed):
        for other in threads:
            other.abort = True
            other.syncthreads_blocked = False
            other.syncthreads_event.set()
        raise failed.exception[0].with_traceback(failed.exception[1])

    live = threads
    while live:
        live = [t for t in live if t.is_alive() or t.syncthreads_blocked]
        failed = next((t for t in threads if t.exception), None)
        if failed is not None:
            abort_on(failed)
        if live and all(t.syncthreads_blocked for t in live):
            for t in live:
                t.syncthreads_blocked = False
                t.syncthreads_event.set()
        elif live:
            # Block on the first running thread for a moment: the GIL goes to the
            # threads with work, and a finished thread wakes us at once.  The threads
            # run on meanwhile: the last one may have reached syncthreads since the
            # test above, so there may be none to wait on (look again).
            running = next((t for t in live if not t.syncthreads_blocked), None)
            if running is not None:
                running.join(POLL)
    failed = next((t for t in threads if t.exception), None)
    if failed is not None:
        raise failed.exception[0].with_traceback(failed.exception[1])


def install() -> None:
    """Replace the simulator's ``BlockManager.run`` (call only under ``NUMBA_ENABLE_CUDASIM=1``)."""
    from numba.cuda.simulator import kernel

    kernel.BlockManager.run = _run
