"""Run directories that cannot be clobbered.

- One process at a time: an exclusive advisory lock (``.nas.lock``, ``flock``) held for the run's life and released
  on any exit, the kernel's included (a killed process leaves a stale file that the next run simply takes over). On
  file systems without ``flock`` the lock file holds the pid, and a lock whose process is gone is detected as stale.
- A new run only in a new or empty directory: another run's files, a failed run's leftovers or anything else are
  refused unless the run is resumed.
- No writes through symbolic links: a link in a run directory is refused, history lines are appended with
  ``O_NOFOLLOW``, and every other file is written with :func:`nas_core._io.atomic_write` (temp file + rename, which
  replaces a link instead of following it).
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Mapping

from ._errors import CheckpointError, ConfigError
from ._io import read_json

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the pid-file lock below
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_NAME", "RUN_FILES", "RunLock", "RunDirLocked", "run_dir_path", "check_run_dir", "open_run_dir",
           "refuse_links", "append_line"]

LOCK_NAME = ".nas.lock"
#: what a run writes (a directory holding any of them belongs to a run)
RUN_FILES = ("config.json", "history.jsonl", "checkpoint.pt", "result.json")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class RunDirLocked(ConfigError):
    """Another process holds the run directory's lock; ``holder`` is what it wrote there (pid, host, start)."""

    def __init__(self, message: str, holder: Mapping[str, Any]):
        super().__init__(message)
        self.holder = dict(holder)


def run_dir_path(value: Any) -> Path | None:
    """``None`` (write nothing) or the run directory as a path; an empty value is an error, never the current
    directory."""
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise ConfigError(f"run_dir: expected a directory path, got {type(value).__name__} {value!r}")
    if not str(value).strip():
        raise ConfigError("run_dir: the value is empty; give a directory for the run (or leave run_dir out)")
    try:
        return Path(value).expanduser()
    except RuntimeError as exc:  # '~someone' of an unknown user
        raise ConfigError(f"run_dir: '{value}' cannot be expanded ({exc})") from exc


def refuse_links(path: Path, what: str = "run directory") -> None:
    """Refuse a directory that holds a symbolic link (at any depth: ``tensorboard/`` too): writing a run's files
    through it could overwrite any file."""
    for root, dirs, files in os.walk(path):  # never descends into linked directories
        for name in sorted(dirs + files):
            entry = Path(root) / name
            if entry.is_symlink():
                raise ConfigError(
                    f"{what} '{path}' holds a symbolic link '{entry.relative_to(path)}' -> '{os.readlink(entry)}'; nas "
                    f"never writes through links (it could overwrite files elsewhere): remove the link, or copy what it "
                    f"points at"
                )


def check_run_dir(path: Path, *, resume: bool, what: str = "run directory") -> None:
    """Refuse, before any compute, a run directory that a run cannot use: a file; a path below a file; for a new
    run, a directory that holds anything; for a resumed run, one that holds a symbolic link."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{what} '{path}' is a file, not a directory; choose another path")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{what} '{path}' cannot be created: '{parent}' is a file; choose another path")
            break
    if not path.is_dir():
        if resume:
            raise CheckpointError(f"cannot resume: '{path}' has no checkpoint.pt: the directory does not exist")
        return
    if resume:
        if not (path / "checkpoint.pt").exists():
            raise CheckpointError(
                f"cannot resume: '{path}' has no checkpoint.pt (the run never saved one, or this is not a run directory)"
            )
        refuse_links(path, what)
        return
    entries = sorted(p.name for p in path.iterdir() if p.name != LOCK_NAME)
    if not entries:
        return
    if "checkpoint.pt" in entries or "result.json" in entries:
        raise ConfigError(
            f"{what} '{path}' already holds a run (checkpoint.pt or result.json); pass resume=True (--resume {path}) to "
            f"continue it, or choose a new directory"
        )
    listed = ", ".join(entries[:5]) + (f", ... ({len(entries)} entries)" if len(entries) > 5 else "")
    if any(name in RUN_FILES for name in entries):
        raise ConfigError(
            f"{what} '{path}' holds the leftovers of a run that stopped before its first checkpoint ({listed}); it "
            f"cannot be resumed: delete them, or choose a new directory"
        )
    raise ConfigError(
        f"{what} '{path}' is not empty ({listed}); a new run needs a new or empty directory, so that nothing in it is "
        f"overwritten: choose another directory"
    )


def open_run_dir(path: Path, *, resume: bool, fingerprint: str | None = None, what: str = "run directory") -> RunLock:
    """Check ``path`` (:func:`check_run_dir`), create it, take its lock and check again under the lock; for a
    resumed run also that it holds a checkpoint and a matching ``config.json``. Returns the held lock."""
    check_run_dir(path, resume=resume, what=what)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{what} '{path}' cannot be created: {exc.strerror or exc}; choose another path") from exc
    lock = RunLock(path, what=what)
    lock.acquire()
    try:
        check_run_dir(path, resume=resume, what=what)  # another process may have written between the check and the lock
        if resume:
            _check_resumable(path, fingerprint)
            for stale in path.glob(".*.tmp"):  # a kill during a save leaves its temporary file; the file itself is whole
                stale.unlink(missing_ok=True)
    except BaseException:
        lock.release()
        raise
    return lock


def _check_resumable(path: Path, fingerprint: str | None) -> None:
    cfg_path = path / "config.json"
    if not cfg_path.exists():
        return  # a checkpoint without a config: the checkpoint's own fingerprint decides
    saved = read_json(cfg_path, what="the run's configuration")
    theirs = saved.get("_fingerprint")
    if fingerprint is not None and theirs is not None and theirs != fingerprint:
        raise CheckpointError(
            f"'{path}' belongs to a run with a different configuration (fingerprint {theirs} != {fingerprint}); "
            f"resume with the same options, or start a new run directory"
        )


def append_line(path: Path, text: str) -> None:
    """Append ``text`` to ``path`` without following a symbolic link planted there."""
    if not _NOFOLLOW and path.is_symlink():  # pragma: no cover - no O_NOFOLLOW (Windows)
        raise _link_error(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP or path.is_symlink():
            raise _link_error(path) from exc
        raise
    with os.fdopen(fd, "a") as fh:
        fh.write(text)


def _link_error(path: Path) -> ConfigError:
    return ConfigError(
        f"'{path}' is a symbolic link (-> '{os.readlink(path)}'); nas never writes through links: remove it"
    )


# -- the lock --------------------------------------------------------------------------------------------------
def _holder_text() -> str:
    argv = " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:])[:300] if sys.argv and sys.argv[0] else ""
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                       "command": argv}) + "\n"


def _parse_holder(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _alive(holder: Mapping[str, Any]) -> bool:
    """Whether the holder may still run (a process on another host cannot be checked: assumed alive)."""
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    if holder.get("host") not in (None, socket.gethostname()):
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """The exclusive lock of one run directory (``directory/.nas.lock``)."""

    def __init__(self, directory: Path, *, what: str = "run directory"):
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self.what = what
        self.stale: dict[str, Any] | None = None  # what a dead holder had written, when its lock was taken over
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`RunDirLocked` naming the process that holds it."""
        if self._fd is not None:
            return
        for _ in range(10):
            fd = self._open(os.O_RDWR | os.O_CREAT)
            if fcntl is None:
                os.close(fd)
                return self._acquire_pid_file()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _parse_holder(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
                os.close(fd)
                raise self._locked(holder) from None
            except OSError as exc:  # a file system without flock (some network mounts)
                os.close(fd)
                if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                    return self._acquire_pid_file()
                raise
            # a releasing holder unlinks the file: a lock on an unlinked file protects nothing, so try again
            try:
                same = os.stat(self.path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            previous = _parse_holder(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
            if previous.get("pid") not in (None, os.getpid()):
                self.stale = previous
            self._write(fd)
            self._fd = fd
            return
        raise ConfigError(f"{self.what} '{self.directory}': its lock file keeps changing; is another run starting there?")

    def _acquire_pid_file(self) -> None:
        for _ in range(10):
            try:
                fd = self._open(os.O_RDWR | os.O_CREAT | os.O_EXCL)
            except FileExistsError:
                try:
                    holder = _parse_holder(self.path.read_text(encoding="utf-8", errors="replace"))
                except FileNotFoundError:
                    continue
                if _alive(holder):
                    raise self._locked(holder) from None
                self.stale = holder  # its process is gone (killed): take the lock over
                self.path.unlink(missing_ok=True)
                continue
            self._write(fd)
            self._fd = fd
            return
        raise ConfigError(f"{self.what} '{self.directory}': its lock file keeps changing; is another run starting there?")

    def _open(self, flags: int) -> int:
        try:
            return os.open(self.path, flags | _NOFOLLOW, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP or self.path.is_symlink():
                raise _link_error(self.path) from exc
            if isinstance(exc, FileExistsError):
                raise
            raise ConfigError(f"{self.what} '{self.directory}': cannot create its lock file ({exc.strerror or exc})") from exc

    @staticmethod
    def _write(fd: int) -> None:
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, _holder_text().encode())

    def _locked(self, holder: Mapping[str, Any]) -> RunDirLocked:
        pid = holder.get("pid", "?")
        who = f"pid {pid}" + (f" on {holder['host']}" if holder.get("host") else "")
        who += f" since {holder['since']}" if holder.get("since") else ""
        who += f" ({holder['command']})" if holder.get("command") else ""
        if pid == os.getpid():
            fix = "this process already runs in it: finish or close() the other RunContext first"
        else:
            fix = f"wait for it to finish or stop it (kill {pid}), or use another directory"
            if holder.get("host") not in (None, socket.gethostname()):
                fix += f"; if that process is gone, delete '{self.path}'"
        return RunDirLocked(f"{self.what} '{self.directory}' is in use by another nas run: {who}; {fix}", holder)

    def release(self) -> None:
        """Give the lock up (idempotent); the lock file is removed."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if os.stat(self.path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
                self.path.unlink()
        except OSError:
            pass
        os.close(fd)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
