"""Fixed cost of a command: CPU (user + sys) and wall time of whole processes, A/B.

Runs each command as a fresh process, ``--rounds`` times, alternating the
installations given by ``--a`` and ``--b`` (each a ``fractaldb`` executable, e.g.
two virtual environments: an older release's and this checkout's) in every
round, A first on even rounds and B first on odd ones.  Before the rounds, each
command runs once per side (numba's on-disk cache warm, files in the page
cache, bytecode written: ``PYTHONDONTWRITEBYTECODE`` is removed from the
commands' environment).  Reported per command: median CPU-seconds of the process and its
children (``getrusage(RUSAGE_CHILDREN)``) and median wall seconds, per side,
and the ratio A/B; the load average before and after.

    python benchmarks/bench_startup.py --b "$(which fractaldb)" --rounds 7
    python benchmarks/bench_startup.py --a /work/venv-speed-base/bin/fractaldb --b "$(which fractaldb)" --rounds 7

The commands: ``--help``, ``presets list``, ``presets show tiny``, ``verify`` of a
tiny dataset and ``generate --preset tiny`` into a new folder each time (the
targets of issue 24: ``--help`` <= 0.3 s, ``generate --preset tiny`` <= 0.7 CPU-s).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time


#: Bytecode caching as a user has it: a shell with PYTHONDONTWRITEBYTECODE set (as this
#: project's VM has) makes every start compile every module again, ~0.3 CPU-s of noise.
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _run(argv: list) -> tuple:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=_ENV)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", default=None, help="the 'fractaldb' executable of side A (optional)")
    ap.add_argument("--b", default=shutil.which("fractaldb"), help="the 'fractaldb' executable of side B")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--only", default=None, help="comma-separated command names to run (help,list,show,verify,tiny)")
    args = ap.parse_args()
    sides = {k: v for k, v in (("A", args.a), ("B", args.b)) if v}
    print(f"# load average {os.getloadavg()[0]:.2f} at start; " + "; ".join(f"{k}: {v}" for k, v in sides.items()))
    with tempfile.TemporaryDirectory() as tmp:
        data = {}
        for side, exe in sides.items():  # a tiny dataset per side, for verify
            data[side] = os.path.join(tmp, f"data-{side}")
            _run([exe, "generate", "--preset", "tiny", "--out", data[side]])
        commands = {
            "help": lambda exe, side, r: [exe, "--help"],
            "list": lambda exe, side, r: [exe, "presets", "list"],
            "show": lambda exe, side, r: [exe, "presets", "show", "tiny"],
            "verify": lambda exe, side, r: [exe, "verify", data[side]],
            "tiny": lambda exe, side, r: [exe, "generate", "--preset", "tiny", "--out",
                                          os.path.join(tmp, f"gen-{side}-{r}")],
        }
        if args.only:
            commands = {k: v for k, v in commands.items() if k in args.only.split(",")}
        results = {(c, s): [] for c in commands for s in sides}
        for c, make in commands.items():  # warm-up
            for side, exe in sides.items():
                _run(make(exe, side, "warm"))
        for r in range(args.rounds):
            order = list(sides.items()) if r % 2 == 0 else list(reversed(sides.items()))
            for c, make in commands.items():
                for side, exe in order:
                    results[(c, side)].append(_run(make(exe, side, r)))
    print(f"# {args.rounds} rounds, load average {os.getloadavg()[0]:.2f} at the end; medians")
    for c in commands:
        parts = []
        med = {}
        for side in sides:
            runs = results[(c, side)]
            med[side] = (statistics.median(x[0] for x in runs), statistics.median(x[1] for x in runs))
            parts.append(f"{side} {med[side][0]:.3f} CPU-s, {med[side][1]:.3f} s wall")
        ratio = f"; A/B {med['A'][0] / med['B'][0]:.2f}x CPU" if len(med) == 2 else ""
        print(f"{c:>7}: " + "; ".join(parts) + ratio)


if __name__ == "__main__":
    main()
