"""Where the runs of an experiment execute: in this process, a local process pool, or Dask.

Every executor maps a function over tasks and returns the results in task order, calling
`on_done(index)` as each finishes (for progress). A task's result depends only on the task (its
scenario and seed), so every executor gives the same results; only the wall time differs.

- `LocalExecutor(workers)`: a process pool of `workers` processes (default: the machine's cores;
  1 runs in this process, which is what tests and small jobs want). Processes are spawned, not
  forked, so a pool is safe next to threads (a progress bar, a Dask client).
- `DaskExecutor(address)`: a `dask.distributed` cluster at `address` (tcp://host:port); needs
  the optional extra `capsim[dask]`, and every worker needs capsim installed (the same version),
  because workers import `sim` to run a task.
An infrastructure failure (a worker process that dies) comes back as that task's exception
object, so callers can report the task as failed and keep the rest.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Protocol

from sim.errors import ScenarioError

OnDone = Callable[[int], None]


class Executor(Protocol):
    name: str

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any],
            on_done: OnDone | None = None) -> list[Any]: ...


class LocalExecutor:
    """A pool of `workers` processes on this machine (1: run in this process)."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.name = "local (in process)" if self.workers == 1 else f"local ({self.workers} processes)"

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any], on_done: OnDone | None = None) -> list[Any]:
        results: list[Any] = [None] * len(tasks)
        if self.workers == 1 or len(tasks) <= 1:
            for i, task in enumerate(tasks):
                try:
                    results[i] = fn(task)
                except Exception as exc:  # fn should catch its own; keep the rest going
                    results[i] = exc
                if on_done:
                    on_done(i)
            return results
        workers = min(self.workers, len(tasks))
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
            pending: dict[Future, int] = {pool.submit(fn, task): i for i, task in enumerate(tasks)}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    i = pending.pop(future)
                    try:
                        results[i] = future.result()
                    except Exception as exc:  # e.g. BrokenProcessPool when a worker dies
                        results[i] = exc
                    if on_done:
                        on_done(i)
        return results


class DaskExecutor:
    """Tasks on a `dask.distributed` cluster (`capsim[dask]`) whose scheduler is at `address`.

    The client connects on first use (or `connect()`, to report an unreachable scheduler before
    any work starts) and stays open for the executor's life; `close()` ends it.
    """

    def __init__(self, address: str, client: Any = None) -> None:
        self.address = address
        self.name = f"dask ({address})"
        self._client = client

    def connect(self) -> Any:
        """The client, connecting if needed; ScenarioError (one line) if that fails."""
        if self._client is not None:
            return self._client
        try:
            from distributed import Client
        except ImportError:
            raise ScenarioError("--dask-scheduler", "dask.distributed is not installed; install the "
                                                   "extra: pip install 'capsim[dask]'") from None
        try:
            self._client = Client(self.address, timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise ScenarioError(f"--dask-scheduler {self.address}",
                                f"cannot reach the scheduler ({' '.join(str(exc).split())}); allowed: the "
                                "address of a running dask scheduler, e.g. tcp://10.0.0.5:8786") from None
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any], on_done: OnDone | None = None) -> list[Any]:
        if not tasks:
            return []
        from distributed import as_completed

        client = self.connect()
        # pure=False: tasks that look alike are still separate runs; keys map results to tasks
        futures = client.map(fn, list(tasks), pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[Any] = [None] * len(tasks)
        for future in as_completed(futures):
            i = index[future.key]
            try:
                results[i] = future.result()
            except Exception as exc:  # a worker that died, a task that could not be sent
                results[i] = exc
            if on_done:
                on_done(i)
        return results


def make_executor(workers: int | None = None, dask_scheduler: str | None = None) -> Executor:
    """Dask when a scheduler address is given, else a local pool of `workers` processes."""
    if dask_scheduler:
        return DaskExecutor(dask_scheduler)
    return LocalExecutor(workers)
