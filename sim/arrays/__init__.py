"""Compiled array primitives the array engines (sim/calendar, sim/stations) use: FIFO multi-server
stations served on arrival (station.py), counter-based random numbers (rng.py), bulk recording in
the shapes sim/result.py reads (record.py), the tail breakdown's sums (tails.py), and faults as
stations' capacity windows (windows.py).
Neither engine owns them; no engine is imported here. Importing it keeps their compiled kernels
in a cache keyed by the sources of every package with kernels (below)."""


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


COMPILED = ("arrays", "calendar", "stations")  # the packages of sim/ with numba kernels


def sources_digest(sim_dir: Path) -> str:
    """A hash of the sources of every package with kernels, of sim/histogram.py (whose constants
    they use), and of the modules with loops of their own (sim/workload.py, sim/cache.py): a kernel
    inlines functions and constants of other modules and packages."""
    digest = hashlib.sha256()
    paths = [p for pkg in COMPILED for p in sorted((sim_dir / pkg).glob("*.py"))]
    for path in [*paths, *(sim_dir / name for name in ("histogram.py", "workload.py", "cache.py"))]:
        digest.update(str(path.relative_to(sim_dir)).encode() + path.read_bytes())
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
    that inlines `serve` from station.py, or reads a column number from another module, keeps its
    stale machine code after that module changes. The directory is named after a hash of the
    sources of every package with kernels (`COMPILED`), so any change compiles afresh;
    directories of other versions are removed an hour after they were made (two checkouts of
    different versions may be running). NUMBA_CACHE_DIR, when set, wins; when the cache directory
    cannot be written, a directory under the system's temp dir is used."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    key = sources_digest(Path(__file__).resolve().parent.parent)
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


def compiled(kernel: object) -> bool | None:
    """Whether a numba kernel is compiled already, in this process or in numba's cache (None: this
    numba keeps its cache where we cannot look)."""
    if getattr(kernel, "signatures", None):
        return True
    try:
        index = kernel._cache._cache_file._index_path  # type: ignore[attr-defined]  # numba's internals
    except AttributeError:
        return None
    return Path(index).exists()

