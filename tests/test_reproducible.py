"""Same scenario and seed, same numbers, in any process: a run's summary.json does not depend on how
many threads BLAS uses (numpy's dot products split over threads round differently; capsim sums
products with np.sum, whose pairwise order is fixed). Found by the web app, whose runs go in a
child process: the cache model's hit ratio and the analytic estimates differed in the last bits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "interview-small.yaml"


def run_with_threads(threads: int, out: Path) -> dict:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads)}
    capsim = Path(sys.executable).with_name("capsim")
    done = subprocess.run([str(capsim), "run", str(SCENARIO), "--duration", "2", "--warmup", "0.5",
                           "--sample", "0.25", "--quiet", "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    summary.pop("wall_seconds")
    return summary


def test_the_summary_is_the_same_bits_whatever_blas_threads(tmp_path: Path) -> None:
    one = run_with_threads(1, tmp_path / "one")
    two = run_with_threads(2, tmp_path / "two")
    assert json.dumps(one, sort_keys=True) == json.dumps(two, sort_keys=True)
    assert one["cache"]["model_hit_ratio"] > 0  # the figures that used to differ are there
