"""The fast engine: every request of the full fleet with arrays instead of events (`--engine fast`).

engine.py      chunks of time, fleet by fleet: the flows of sim/des/engine.py
sources.py     send and read arrivals
station.py     a FIFO multi-server station as the Kiefer-Wolfowitz recursion (+ capacity windows)
order.py       jobs in (station, time) order, cheaply
fleet.py       one pass of a feed-forward fleet over a chunk
slices.py      time slices for fleets that feed back into themselves
kafka.py       leader and follower appends, commits
consumers.py   the consumers' backlog (lag in messages)
storage.py     Redis and Cassandra: appends, GETs, fills, writes, reads, inbox writes, joins
placement.py   the ring, hash slots, partitions, group members, popularity, token buckets
rng.py         counter-based random numbers and distributions
tables.py      request rows and job lists
record.py      counters, histograms, windows and fleet views for sim/result.py
faults.py      slow nodes and GC pauses as capacity windows
support.py     scenario features the fast engine refuses
"""

import hashlib
import os
import shutil
import time
from pathlib import Path

import numba


def _versioned_numba_cache() -> None:
    """Keep compiled kernels in a cache keyed by the sources they come from.

    numba's own cache (cache=True) checks only the file of the function it compiles: a kernel
    that inlines `serve` from station.py keeps its stale machine code after station.py changes.
    The directory is named after a hash of this package's sources (and sim/histogram.py, whose
    constants the kernels use), so any change compiles afresh; directories of other versions are
    removed an hour after they were made (two checkouts of different versions may be running).
    NUMBA_CACHE_DIR, when set, wins."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in [*sorted(here.glob("*.py")), here.parent / "histogram.py"]:
        digest.update(path.name.encode() + path.read_bytes())
    root = here / "__pycache__" / "numba"
    current = root / digest.hexdigest()[:16]
    if root.is_dir():
        for old in root.iterdir():
            if old != current and time.time() - old.stat().st_mtime > 3600:
                shutil.rmtree(old, ignore_errors=True)
    numba.config.CACHE_DIR = str(current)


_versioned_numba_cache()
