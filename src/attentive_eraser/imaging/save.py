"""Saving: refused overwrites of inputs, free-space and name checks, atomic writes, stale temporaries.

The rule of every write and clean-up: a file the run reads (:class:`ProtectedFiles`) is never written or
deleted by it.
"""

from __future__ import annotations

import errno
import numbers
import os
import pathlib
import re
import secrets
import shutil
from collections.abc import Iterable

from PIL import Image

from .common import InputError, PathLike, one_line, rgb_or_rgba

# Output extension -> Pillow format name. Anything else is refused rather than guessed.
SAVE_FORMATS: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}

#: the formats save_image can write without changing a pixel (``lossless=True``): PNG, BMP and TIFF always
#: are (TIFF uncompressed), WebP in its lossless mode; JPEG never is
LOSSLESS_FORMATS = frozenset({"PNG", "WEBP", "BMP", "TIFF"})

# What save_image names its temporary files: ".<name>.<12 hex digits>.tmp" beside the target.
_TEMPORARY_NAME = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{12}\.tmp$")


def same_file(a: pathlib.Path, b: pathlib.Path) -> bool:
    """True when two paths name the same file (after resolving links, or by inode when both exist)."""
    if os.path.normcase(a.resolve()) == os.path.normcase(b.resolve()):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


def _mode_for(image: Image.Image, file_format: str) -> Image.Image:
    """Convert ``image`` to a mode the format writes faithfully (JPEG: RGB, alpha dropped)."""
    if file_format == "JPEG":
        return image if image.mode in ("RGB", "L") else rgb_or_rgba(image).convert("RGB")
    if image.mode in ("RGB", "RGBA", "L"):
        return image
    return rgb_or_rgba(image)


def save_image(
    image: Image.Image,
    path: PathLike,
    *,
    protect: Iterable[PathLike] = (),
    quality: int = 95,
    lossless: bool = False,
) -> pathlib.Path:
    """Write ``image`` atomically in the format named by the extension; never over a ``protect`` path.

    Formats: .png, .jpg/.jpeg (alpha dropped), .webp, .bmp, .tif/.tiff. ``quality`` (1-100) applies
    to JPEG and WebP. ``lossless=True`` (masks) writes every pixel exactly: WebP in its lossless mode, and
    JPEG, which has none, is refused. Missing parent folders are created. The image goes to a temporary
    file in the destination folder, which then replaces ``path`` in one step, so a failure leaves no
    partial file.
    """
    target = pathlib.Path(path)
    suffix = target.suffix.lower()
    file_format = SAVE_FORMATS.get(suffix)
    if file_format is None:
        choices = ", ".join(SAVE_FORMATS)
        extension = suffix or "(none)"
        message = f"unsupported extension {extension!r} in {str(target)!r}; use one of {choices}"
        raise InputError("output", message)
    if not isinstance(quality, numbers.Integral) or isinstance(quality, bool) or not 1 <= quality <= 100:
        raise InputError("quality", f"expected an integer from 1 to 100, got {quality!r}")
    if lossless and file_format not in LOSSLESS_FORMATS:
        choices = ", ".join(ext for ext, name in SAVE_FORMATS.items() if name in LOSSLESS_FORMATS)
        raise InputError("output", f"{str(target)!r} would be lossy ({file_format}); use one of {choices}")
    for protected in protect:
        if same_file(target, pathlib.Path(protected)):
            raise InputError("output", f"refusing to overwrite the input file {str(target)!r}")
    try:
        is_dir = target.is_dir()
    except OSError as error:  # e.g. a name longer than the file system allows
        raise InputError("output", f"cannot write {str(target)!r}: {one_line(error)}") from error
    if is_dir:
        raise InputError("output", f"is a directory, not a file path: {str(target)!r}")

    image = _mode_for(image, file_format)
    options: dict[str, object] = {}
    if lossless and file_format == "WEBP":
        options["lossless"] = True  # quality would be the encoder's effort here: its default is kept
    elif file_format in ("JPEG", "WEBP"):
        options["quality"] = int(quality)
    if file_format == "JPEG":
        options["subsampling"] = 0  # 4:4:4 keeps the colour of thin edited regions
    icc_profile = image.info.get("icc_profile")
    if icc_profile and file_format in ("PNG", "JPEG", "WEBP", "TIFF"):
        options["icc_profile"] = icc_profile

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        message = f"cannot create the folder {str(target.parent)!r}: {one_line(error)}"
        raise InputError("output", message) from error

    temporary, descriptor = _create_temporary(target)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            image.save(handle, format=file_format, **options)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException as error:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        if isinstance(error, OSError):
            raise InputError("output", f"cannot write {str(target)!r}: {one_line(error)}") from error
        raise
    return target


class ProtectedFiles:
    """The files a run reads, by resolved path and by (device, inode): the run never writes or deletes them.

    The one rule behind every write and clean-up of a run (outputs, reports, temporaries): a path that
    names an input, directly, through a symbolic link or as a hard link, is left alone. Lookups are
    constant-time, so a batch of thousands of items checks each path once against all inputs.
    """

    def __init__(self, paths: Iterable[PathLike] = ()) -> None:
        self._inputs: dict[object, pathlib.Path] = {}
        for path in paths:
            self.add(path)

    @staticmethod
    def _keys(path: pathlib.Path) -> tuple[str, tuple[int, int] | None]:
        resolved = path.resolve()
        try:
            stat = resolved.stat()
        except OSError:  # does not exist (yet): only its path identifies it
            return os.path.normcase(resolved), None
        return os.path.normcase(resolved), (stat.st_dev, stat.st_ino)

    def add(self, path: PathLike) -> None:
        """Protect ``path`` (kept as given, for messages)."""
        path = pathlib.Path(path)
        name, inode = self._keys(path)
        self._inputs.setdefault(name, path)
        if inode is not None:
            self._inputs.setdefault(inode, path)

    def find(self, path: PathLike) -> pathlib.Path | None:
        """The protected file that ``path`` names (by resolved path or inode), or ``None``."""
        name, inode = self._keys(pathlib.Path(path))
        found = self._inputs.get(name)
        if found is None and inode is not None:
            found = self._inputs.get(inode)
        return found

    def __contains__(self, path: object) -> bool:
        return isinstance(path, (str, os.PathLike)) and self.find(path) is not None

    def __len__(self) -> int:
        return len(set(self._inputs.values()))


def stale_temporaries(
    target: PathLike, *, protect: Iterable[PathLike] | ProtectedFiles = ()
) -> list[pathlib.Path]:
    """Temporary files :func:`save_image` left beside ``target`` when it was killed mid-write.

    A file the run reads (``protect``: by path, link or inode) is never one, whatever its name: an input
    may be called ``.<name>.<12 hex>.tmp`` too.
    """
    target = pathlib.Path(target)
    protected = protect if isinstance(protect, ProtectedFiles) else ProtectedFiles(protect)
    try:
        entries = list(target.parent.iterdir()) if target.parent.is_dir() else []
    except (OSError, ValueError):
        return []
    found = []
    for entry in entries:
        match = _TEMPORARY_NAME.match(entry.name)
        if match is None or match.group("name") != target.name:
            continue
        try:
            if entry.is_file() and entry not in protected:
                found.append(entry)
        except OSError:  # vanished or unreadable meanwhile: not ours to delete
            continue
    return sorted(found)


def remove_stale_temporaries(
    target: PathLike, *, protect: Iterable[PathLike] | ProtectedFiles = ()
) -> list[pathlib.Path]:
    """Delete :func:`stale_temporaries` of ``target``, never a ``protect`` file; returns what was deleted."""
    removed = []
    for leftover in stale_temporaries(target, protect=protect):
        try:
            leftover.unlink()
        except FileNotFoundError:
            continue
        except OSError:
            continue  # not ours to delete after all (permissions): leave it
        removed.append(leftover)
    return removed


def _name_max(folder: pathlib.Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def check_output_path(path: PathLike, *, argument: str = "output", needed_bytes: int = 0) -> pathlib.Path:
    """Refuse, before any work, an output path that :func:`save_image` could not write; writes nothing.

    Checks: every name fits the file system (with room for the temporary file's suffix), no parent is
    a file, the nearest existing folder accepts a new file, and it has ``needed_bytes`` free. Folders
    that do not exist yet are not created here (save_image creates them).
    """
    target = pathlib.Path(path)
    ancestor = target.parent
    while True:
        try:
            if ancestor.exists():
                break
        except OSError as error:
            raise InputError(argument, f"cannot use {str(target)!r}: {one_line(error)}") from error
        if ancestor.parent == ancestor:
            break
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(argument, f"{str(ancestor)!r} is a file, so {str(target)!r} cannot be created in it")
    limit = _name_max(ancestor)
    temporary_extra = len(".") + 1 + 12 + len(".tmp")  # save_image writes ".<name>.<hex>.tmp" first
    for part in target.parts:
        size = len(os.fsencode(part)) + (temporary_extra if part == target.name else 0)
        if size > limit:
            shown = part if len(part) <= 40 else part[:37] + "..."
            raise InputError(
                argument,
                f"the name {shown!r} is too long ({len(os.fsencode(part))} bytes; at most "
                f"{limit - (temporary_extra if part == target.name else 0)} here)",
            )
    probe: pathlib.Path | None = None
    try:
        descriptor = -1
        for _ in range(100):
            probe = ancestor / f".attentive-eraser-probe.{secrets.token_hex(6)}.tmp"
            try:
                descriptor = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                break
            except FileExistsError:
                continue
        os.close(descriptor)
    except OSError as error:
        reason = "read-only" if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM) else error.strerror
        raise InputError(argument, f"cannot write in {str(ancestor)!r} ({reason})") from error
    finally:
        if probe is not None:
            try:
                probe.unlink()
            except OSError:
                pass
    if needed_bytes > 0:
        try:
            free = shutil.disk_usage(ancestor).free
        except OSError:
            free = None
        if free is not None and free < needed_bytes:
            raise InputError(
                argument,
                f"only {free / 2**20:.1f} MiB free in {str(ancestor)!r}; the result needs up to "
                f"{needed_bytes / 2**20:.1f} MiB",
            )
    return target


def _create_temporary(target: pathlib.Path) -> tuple[pathlib.Path, int]:
    """Create a new hidden file beside ``target``; the OS applies the umask, as for a normal file."""
    for _ in range(100):
        candidate = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            descriptor = os.open(candidate, flags, 0o666)
        except FileExistsError:
            continue
        except OSError as error:
            message = f"cannot write in {str(target.parent)!r}: {one_line(error)}"
            raise InputError("output", message) from error
        return candidate, descriptor
    raise InputError("output", f"cannot create a temporary file in {str(target.parent)!r}")
