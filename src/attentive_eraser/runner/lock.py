"""One batch run at a time per folder: an exclusive lock file in OUTPUT_DIR (and in the report's folder).

Two runs on one OUTPUT_DIR would delete each other's temporary files (the planner's clean-up), write one
report part together and compute every item twice. The main process therefore holds
``.attentive-eraser-batch.lock`` in each folder the run writes to, from planning until the report is
merged; a second run is refused at once with the holder's pid. The lock is the operating system's
(``flock``): it is released when its holder exits, however it exits, so a lock file left by a killed run
is stale by construction and the next run simply takes it over.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterable
from pathlib import Path

from .. import imaging
from ..imaging.common import one_line
from ..imaging.save import ProtectedFiles

LOCK_NAME = ".attentive-eraser-batch.lock"


def lock_path(folder: Path) -> Path:
    """The lock file of a run writing into ``folder``."""
    return folder / LOCK_NAME


def _holder(path: Path) -> str:
    """Who holds the lock at ``path``, as written by :func:`_take` (``pid N on HOST``), or ``unknown``."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").split()
    except OSError:
        return "pid unknown"
    if len(text) >= 2 and text[0].isdigit():
        return f"pid {text[0]}" if text[1] == socket.gethostname() else f"pid {text[0]} on {text[1]}"
    return "pid unknown"


def _take(path: Path, argument: str) -> int | None:
    """The descriptor of the lock at ``path``, now held; ``None`` where the OS has no ``flock``."""
    try:
        import fcntl
    except ImportError:  # not a POSIX system: runs there are not serialised
        return None
    for _ in range(100):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise imaging.InputError(
                argument, f"cannot create the lock file {str(path)!r}: {one_line(error)}"
            ) from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise imaging.InputError(
                argument,
                f"another batch is writing to {str(path.parent)!r} ({_holder(path)}); rerun when it ends "
                "(done items are skipped), or write to another folder",
            ) from None
        except OSError as error:
            os.close(descriptor)
            if error.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                return None  # a file system without locks: runs there are not serialised
            raise imaging.InputError(argument, f"cannot lock {str(path)!r}: {one_line(error)}") from None
        # A holder that was releasing (unlink, then close) may have left us the lock of a deleted file,
        # while a third run locks a new file of the same name: hold the lock only of the file at ``path``.
        try:
            current = os.stat(path).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(descriptor).st_ino:
            os.ftruncate(descriptor, 0)
            os.write(descriptor, f"{os.getpid()} {socket.gethostname()}\n".encode())
            return descriptor
        os.close(descriptor)
    raise imaging.InputError(argument, f"cannot take the lock {str(path)!r}")


class BatchLock:
    """The locks of one run, one per folder it writes to; :meth:`release` deletes them (after a crash the
    files stay, but unlocked: the next run takes them over)."""

    def __init__(self, folders: Iterable[tuple[Path, str]], protected: ProtectedFiles | None = None) -> None:
        """Take a lock in each ``(folder, argument)``, or raise ``InputError`` naming ``argument`` and the
        holder. A lock path that is an input of the run (``protected``) is refused, never written."""
        self.held: list[tuple[Path, int]] = []
        seen: set[str] = set()
        try:
            for folder, argument in folders:
                path = lock_path(folder)
                key = os.path.normcase(path.resolve())
                if key in seen:
                    continue
                seen.add(key)
                source = protected.find(path) if protected is not None else None
                if source is not None:
                    raise imaging.InputError(
                        argument,
                        f"the run would write its lock {str(path)!r}, and it is the input file "
                        f"{str(source)!r}; an input is never overwritten",
                    )
                descriptor = _take(path, argument)
                if descriptor is not None:
                    self.held.append((path, descriptor))
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """Delete the lock files, then let go of the locks (a waiting run then finds no file or a new one)."""
        for path, descriptor in reversed(self.held):
            try:
                if os.stat(path).st_ino == os.fstat(descriptor).st_ino:
                    path.unlink()
            except OSError:
                pass  # already gone: nothing to clean
            os.close(descriptor)
        self.held = []
