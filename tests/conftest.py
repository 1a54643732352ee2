"""Fixtures shared by the test modules."""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest

PoolMap = Callable[[Callable[[Any], Any], list[Any]], list[Any]]


@pytest.fixture(scope="module")
def pool_map() -> Iterator[PoolMap]:
    """map(fn, jobs) over independent simulation runs, in a pool of CAPSIM_TEST_PROCS processes
    (default: the CPU count) where the platform forks cheaply, else in this process. `fn` must be a
    module-level function (the pool pickles it)."""
    procs = int(os.environ.get("CAPSIM_TEST_PROCS", os.cpu_count() or 1))
    if procs <= 1 or "fork" not in mp.get_all_start_methods():
        yield lambda fn, jobs: [fn(job) for job in jobs]
        return
    with ProcessPoolExecutor(procs, mp_context=mp.get_context("fork")) as pool:
        yield lambda fn, jobs: list(pool.map(fn, jobs))
