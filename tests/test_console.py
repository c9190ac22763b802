"""The command line off a terminal: progress as plain log lines, a word before a first
compile, and a Ctrl-C during start-up as one line (issue 28)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fractaldb import console
from fractaldb.console import LogProgress

from tinyset import ROOT, run_cli


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_log_progress_lines_every_few_seconds_with_phase_done_total_rate_and_eta(capsys):
    clock = Clock()
    bar = LogProgress(total=1000, unit="img", desc="generate (2 processes)", every=5.0, clock=clock)
    clock.t += 1
    bar.update(100)  # within the interval: nothing yet
    assert capsys.readouterr().err == ""
    clock.t += 4
    bar.update(150)  # 5 s in: 250 done at 50 img/s, 750 left = 15 s
    assert capsys.readouterr().err == "generate (2 processes): 250/1,000 img, 50.0 img/s, ETA 15 s\n"
    clock.t += 2
    bar.update(250)
    assert capsys.readouterr().err == ""
    clock.t += 3
    bar.update(500)
    assert capsys.readouterr().err == "generate (2 processes): 1,000/1,000 img, 100.0 img/s, done in 10 s\n"
    bar.close()  # said already: not again
    assert capsys.readouterr().err == ""
    bar = LogProgress(total=1000, unit="img", desc="export", every=5.0, clock=clock)
    clock.t += 5
    bar.update(400)
    clock.t += 1
    bar.update(100)
    bar.close()
    bar.close()
    assert capsys.readouterr().err.splitlines() == ["export: 400/1,000 img, 80.0 img/s, ETA 8 s",
                                                    "export: 500/1,000 img, 83.3 img/s, ETA 6 s"]


def test_a_short_phase_stays_quiet_and_a_resumed_one_counts_its_own_rate(capsys):
    clock = Clock()
    with LogProgress(total=10, unit="img", desc="verify", clock=clock) as bar:
        bar.update(10)
    assert capsys.readouterr().err == ""
    bar = LogProgress(total=100, initial=60, unit="img", desc="generate", every=0, clock=clock)
    clock.t += 2
    bar.update(20)
    assert capsys.readouterr().err == "generate: 80/100 img, 10.0 img/s, ETA 2 s\n"


def test_log_progress_wraps_an_iterable_and_takes_tqdm_calls(capsys):
    clock = Clock()
    bar = LogProgress(iterable=range(3), desc="train", unit="batch", every=0, clock=clock, leave=False)
    bar.set_postfix(loss=1.0)
    assert list(bar) == [0, 1, 2] and bar.total == 3
    bar.set_description("epoch 2")
    assert bar.desc == "epoch 2"
    assert capsys.readouterr().err.splitlines()[-1].startswith("train: 3/3 batch")


def test_progress_bar_is_a_log_off_a_terminal():
    # pytest captures stderr: not a terminal
    assert isinstance(console.progress_bar(total=3, unit="img", desc="x"), LogProgress)


def test_a_redirected_generate_logs_its_progress(tmp_path, monkeypatch):
    monkeypatch.setattr(console, "LOG_EVERY", 0.0)
    code, out, err = run_cli(["generate", "--preset", "tiny", "--set", "fractal.categories=2", "--out",
                              tmp_path / "d", "--workers", "1"])
    assert code == 0, err
    lines = [ln for ln in err.splitlines() if ln.startswith("generate")]
    assert lines and lines[-1].startswith("generate (1 thread): 24/24 img, ") and "done in" in lines[-1], err
    assert any("ETA" in ln for ln in lines), err
    assert any(ln.startswith("search fractal: ") for ln in err.splitlines()), err


_ANNOUNCE = """\
import numpy as np
from fractaldb import _jit
said = []
_jit.announce_compiles(said.append)
from fractaldb.kernels.random import fill_uniform, splitmix64
fill_uniform(np.uint64(1), np.empty(4))  # compiles (it calls splitmix64: a nested compile, no second line)
splitmix64(np.uint64(1), np.uint64(2))
print(len(said), said[0] if said else "")
"""


@pytest.mark.slow  # two interpreters that import numba and compile: ~3-8 s
def test_a_line_before_a_first_compile_and_none_from_the_cache(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    env.pop("NUMBA_DISABLE_JIT", None)
    first = subprocess.run([sys.executable, "-c", _ANNOUNCE], capture_output=True, text=True, env=env, timeout=120)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("1 compiling the kernels: a first run on this machine"), first.stdout
    again = subprocess.run([sys.executable, "-c", _ANNOUNCE], capture_output=True, text=True, env=env, timeout=120)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "0"  # loaded from the cache: nothing to say


def test_ctrl_c_during_start_up_is_one_line(tmp_path):
    """A KeyboardInterrupt while the command line is still being imported (here: held in a
    stand-in for click, deterministic): one line and the interrupt's exit code, no traceback."""
    fake = tmp_path / "fake" / "click"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise KeyboardInterrupt\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "fake"), str(ROOT)])}
    r = subprocess.run([sys.executable, "-c", "from fractaldb.cli import run; run()"], capture_output=True,
                       text=True, env=env, timeout=60, cwd=tmp_path)
    assert r.returncode == 130
    assert r.stderr == "interrupted\n"
