"""sim/system/keys.py and the arrays a key space costs: built a chunk at a time, the same bits as the
whole-array expressions, and no more memory than the estimate (sim/budget.py) counts."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import sim.workload as workload
from sim.budget import estimate
from sim.calendar.program import build
from sim.loading import load_scenario
from sim.system import keys
from sim.threads import usable_cores
from sim.workload import running_sum, zipf_cell_weights, zipf_partial_sums

ROOT = Path(__file__).resolve().parents[1]
DESIGNS = ROOT / "scenarios" / "designs"


def _whole_array_weights(n_cell: int, s: float, sample: float) -> np.ndarray:
    """The bins' shares as one expression over the whole cell (the definition)."""
    n_full = max(n_cell, round(n_cell / sample))
    edges = np.floor(np.arange(n_cell + 1) * (n_full / n_cell)).astype(np.int64)
    w = np.diff(zipf_partial_sums(edges, s))
    return w / w.sum()


@pytest.mark.parametrize(("n", "s", "sample"), [
    (1, 1.0, 1.0), (5_000, 1.0, 1.0), (12_345, 0.5, 0.01), (2_100_000, 0.9, 1.0), (999, 1.2, 1e-6),
])
def test_chunked_weights_and_running_sums_are_the_whole_array_bits(monkeypatch: pytest.MonkeyPatch, n: int,
                                                                   s: float, sample: float) -> None:
    monkeypatch.setattr(workload, "CELL_CHUNK", 777)  # many chunks, off SIMD widths, a partial last one
    whole = _whole_array_weights(n, s, sample)
    chunked = zipf_cell_weights(n, s, sample)
    assert np.array_equal(chunked, whole)
    assert np.array_equal(running_sum(chunked.copy()), np.cumsum(whole))


@pytest.mark.parametrize("zipf_s", [0.0, 0.8])
def test_cell_cdf_is_the_running_sum_of_the_weights_ending_at_one(monkeypatch: pytest.MonkeyPatch,
                                                                  zipf_s: float) -> None:
    monkeypatch.setattr(workload, "CELL_CHUNK", 777)
    n = workload.cell_size(100_000, 0.3)
    cdf = keys.cell_cdf(100_000, zipf_s, 0.3, np.empty(n))
    expected = np.cumsum(keys.cell_weights(100_000, zipf_s, 0.3))
    assert cdf[-1] == 1.0 and abs(expected[-1] - 1.0) < 1e-9
    assert np.array_equal(cdf[:-1], expected[:-1])


@pytest.mark.parametrize(("design", "sample"), [("ride-hailing", 0.25), ("url-shortener", 0.25),
                                                ("news-feed", 0.05)])
def test_a_build_allocates_what_the_estimate_counts_and_a_chunk_a_thread_more(design: str,
                                                                             sample: float) -> None:
    """The calendar engine's build of a design (6.5M-10M keys here) holds what the memory estimate's
    key-space and instance terms count, and at its peak at most one chunk's temporaries a thread
    more (the estimate's BASE_BYTES covers them): a key space once cost ~48 B a key at the peak (news-feed's
    150M keys: 7.2 GB) against the 8-28 B these designs count."""
    sc = load_scenario(DESIGNS / f"{design}.yaml", [f"sample={sample}"])
    counted = sum(t.amount for t in estimate(sc).memory if t.field)  # every term but BASE_BYTES
    # ~8 float64 or int64 arrays of a chunk, on each thread that builds chunks at once
    chunk_temporaries = workload.CELL_CHUNK * 8 * 8 * min(usable_cores(), workload.CHUNK_THREADS)
    keys._cached_weights.cache_clear()  # a cache model's weights count once built, as in a fresh run
    tracemalloc.start()
    try:
        program = build(sc)
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert program.cdfs.size >= 0.99 * sum(keys.cell_keys(k, sample) for k in sc.keys.values())
    assert held <= counted + chunk_temporaries / 2, (held, counted)
    assert peak <= counted + chunk_temporaries, (peak, counted)
    assert held >= 0.5 * counted, (held, counted)  # the estimate is not a loose bound either
