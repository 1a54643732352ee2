"""Fresh output folders: a command's results appear all at once, in a folder no other run uses.

Every command that writes results (run, size, sweep, compare) writes into a hidden staging folder
next to its target, `.<target>.partial-<pid>`, and renames it into place when everything is
written. An interrupted run (an exception, Ctrl-C) removes its staging folder, so nothing that
looks finished is left. The default target is named after the time (`20260101-120000`); when that
folder is taken, by an earlier run or one finishing in the same second, the run takes the next
free `-2`, `-3`, ... An explicit `--out` folder that exists and is not empty is refused before
anything runs (two runs in one folder cannot be told apart).
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sim.errors import ScenarioError

MAX_SUFFIX = 1000


def default_target(root: Path, prefix: str = "", now: dt.datetime | None = None) -> Path:
    """`root/<prefix><YYYYmmdd-HHMMSS>`: the default output folder (made unique when published)."""
    return root / f"{prefix}{(now or dt.datetime.now()):%Y%m%d-%H%M%S}"


def check_target(target: Path, option: str = "--out") -> None:
    """Refuse an explicit target that is a file, or a folder that is not empty (one line)."""
    if target.exists() and not target.is_dir():
        raise ScenarioError(f"{option} {target}", "is a file; allowed: a new or empty folder")
    if target.is_dir() and any(target.iterdir()):
        raise ScenarioError(f"{option} {target}", "exists and is not empty (results of two runs would mix); "
                                                  "allowed: a new or empty folder, or leave --out out for a "
                                                  "fresh folder under reports/")


@dataclass
class Staged:
    """The folder to write into (`path`), and where it ended up once published (`final`)."""

    path: Path
    target: Path
    final: Path | None = None

    def published(self, path: Path) -> Path:
        """Where `path` (written under the staging folder) is after publishing."""
        if self.final is None:
            return path
        try:
            return self.final / path.relative_to(self.path)
        except ValueError:
            return path


def staging_folder(target: Path) -> Path:
    return target.parent / f".{target.name}.partial-{os.getpid()}"


@contextmanager
def fresh_folder(target: Path, explicit: bool = False) -> Iterator[Staged]:
    """Yield a staging folder for `target`; on success rename it into place (`staged.final`), on
    any exception (Ctrl-C included) remove it and re-raise. `explicit`: the user named `target`,
    so it must be new or empty (checked again here, as the run may have taken a while)."""
    if explicit:
        check_target(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = staging_folder(target)
    if staging.exists():  # left by a killed process that had our pid
        shutil.rmtree(staging)
    staging.mkdir()
    staged = Staged(staging, target)
    try:
        yield staged
        staged.final = publish(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def publish(staging: Path, target: Path) -> Path:
    """Rename `staging` to `target`, or to the first free `target-2`, `target-3`, ... (rename is
    atomic, and fails rather than merge into a folder another run filled in the meantime)."""
    for n in range(1, MAX_SUFFIX + 1):
        candidate = target if n == 1 else target.with_name(f"{target.name}-{n}")
        if candidate.exists() and not (candidate.is_dir() and not any(candidate.iterdir())):
            continue
        try:
            os.rename(staging, candidate)  # replaces only an empty folder
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                continue
            raise
        return candidate
    raise OSError(errno.EEXIST, f"{target} and {MAX_SUFFIX - 1} numbered variants are taken")
