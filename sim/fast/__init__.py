"""The fast engine: every request of the full fleet with arrays instead of events (`--engine fast`).

engine.py      the engine: wires the stages, chunk by chunk (the flows of sim/des/engine.py)
system.py      the system built once from a scenario: fleets, stations, placement, kernels' parameters
flight.py      a run in flight: request tables, jobs waiting at each fleet, counters
requests.py    arrivals become request rows; token buckets; the first hop
front.py       the gateway and message-service fleets, and their balancers
steps.py       a send's and a read's storage steps, and the Redis-Cassandra cycle
delivery.py    Kafka's produce cycle, the consumers' gates, the group service's inbox fan-out
outcomes.py    acknowledgements, recording, compaction
finish.py      the run's RunState
sources.py     send and read arrival times
order.py       jobs in (station, time) order, cheaply
fleet.py       one pass of a feed-forward fleet over a chunk
slices.py      the one slice-merge kernel, for fleets that feed back into themselves
kafka.py       leader and follower appends, commits (on the slice kernel)
storage.py     Redis and Cassandra: appends, GETs, fills, writes, reads, inbox writes (on the slice kernel)
joins.py       the joins of the storage replies: k-of-n writes, inbox writes
consumers.py   the consumers' backlog (lag in messages)
tables.py      request rows and job lists
support.py     scenario features the fast engine refuses

Shared with the calendar engine, in sim/arrays/: station.py (a FIFO multi-server station as the
Kiefer-Wolfowitz recursion, with capacity windows), rng.py (counter-based random numbers),
record.py (recording for sim/result.py), windows.py (faults as capacity windows), placement.py
(ring, hash slots, partitions, group members, popularity, token buckets).
"""

import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import numba


def numba_cache_root(environ: dict[str, str] | os._Environ[str], home: Path) -> Path:
    """Where compiled kernels go: $XDG_CACHE_HOME/capsim/numba, else ~/.cache/capsim/numba (never
    the source tree, which may be read-only or shared). Pure: the environment and home are given."""
    xdg = environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".cache"
    return base / "capsim" / "numba"


def sources_digest(here: Path) -> str:
    """A hash of this package's sources (and sim/histogram.py, whose constants the kernels use)."""
    digest = hashlib.sha256()
    for path in [*sorted(here.glob("*.py")), here.parent / "histogram.py"]:
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def _writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".probe-", delete=True)  # noqa: SIM115
        probe.close()
    except OSError:
        return False
    return True


def _versioned_numba_cache() -> None:
    """Keep compiled kernels in the user's cache directory, keyed by the sources they come from.

    numba's own cache (cache=True) checks only the file of the function it compiles: a kernel
    that inlines `serve` from station.py keeps its stale machine code after station.py changes.
    The directory is named after a hash of this package's sources, so any change compiles afresh;
    directories of other versions are removed an hour after they were made (two checkouts of
    different versions may be running). NUMBA_CACHE_DIR, when set, wins; when the cache directory
    cannot be written, a directory under the system's temp dir is used."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    here = Path(__file__).resolve().parent
    key = sources_digest(here)
    root = numba_cache_root(os.environ, Path.home())
    if not _writable(root / key):
        root = Path(tempfile.gettempdir()) / f"capsim-numba-{os.getuid() if hasattr(os, 'getuid') else 0}"
        if not _writable(root / key):
            return  # numba then keeps kernels in memory only (cache=True warns, never fails)
    current = root / key
    for old in root.iterdir():
        try:
            if old != current and old.is_dir() and time.time() - old.stat().st_mtime > 3600:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            continue
    numba.config.CACHE_DIR = str(current)


_versioned_numba_cache()
