"""The data root: the one folder the app may read, its listing, and uploads into it.

Every path the browser sends is a relative posix path ("clips/a.mp4"); `Library.resolve` is the only way from one
to a file. It refuses anything that could leave the root or reach what the app keeps private: absolute paths and
drive letters, '..' parts, backslashes, NUL and control characters, hidden parts ('.samstream', '.git', '.env'),
and symlinks whose target (resolved) lies outside the root or in a hidden folder. '%' is an ordinary character
here: the server decodes a URL once, and decoding again would let '%252e%252e' become '..'.

Error messages name the path as it was given, never the server's absolute path.
"""
from __future__ import annotations

import contextlib
import os
import re
import unicodedata
from pathlib import Path

from ..io.atomic import ensure_folder, temp_path
from ..io.folders import safe_name
from ..video.sources import IMAGE_EXTENSIONS, FrameSource, ImageFileSource, VideoFileSource, natural_key, open_source

#: File suffixes listed as videos (an animated GIF is one too, though PIL reads it).
VIDEO_EXTENSIONS = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".gif", ".mpg", ".mpeg", ".ts", ".mts",
                    ".m2ts", ".wmv", ".flv", ".3gp", ".ogv", ".y4m", ".h264", ".h265", ".hevc"}
STILL_EXTENSIONS = IMAGE_EXTENSIONS - VIDEO_EXTENSIONS
UPLOADS = "uploads"
CHUNK = 1 << 20  # bytes read from an upload stream at a time
MAX_PATH_CHARS = 4096
_DRIVE = re.compile(r"^[A-Za-z]:")  # C:\x, C:x, c:/x
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class PathError(ValueError):
    """A refused path; the message says what is wrong with the path as given (relative), nothing more."""


class UploadError(ValueError):
    """A refused upload: `status` 413 (over the size limit) or 415 (not a video or image samstream can decode)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _shown(rel) -> str:
    """The given path for a message: quoted, escapes visible, long ones cut."""
    text = repr(rel)
    return text if len(text) <= 200 else text[:197] + "..."


def _decode_detail(e: Exception, path: Path, shown: str, root: Path) -> str:
    """An error's message with the server's paths replaced by the name the user knows."""
    text = str(e).replace(str(path), shown).replace(str(root) + os.sep, "").replace(str(root), ".")
    return text[:300]


def _open_file_or_folder(path: Path, suffix: str) -> FrameSource:
    """The source for `path`, chosen by `suffix` (an upload's temp file has its own name)."""
    if path.is_dir():
        return open_source(path)
    return ImageFileSource(path) if suffix.lower() in IMAGE_EXTENSIONS else VideoFileSource(path)


def _check_decodes(src: FrameSource) -> dict:
    """Frame 0 and the last frame decoded (a cut file fails at its end) -> {"num_frames","width","height","fps"}.

    A video without timestamps could only reach its last frame by decoding all of it: there frame 0 must do.
    """
    n = src.num_frames
    if not n:
        raise ValueError("it has no frames")
    for _ in src.fetch(0):
        pass
    if n > 1 and getattr(src, "timed", True):
        for _ in src.fetch(n - 1):
            pass
    h, w = src.frame_size
    return {"num_frames": int(src.num_frames), "width": int(w), "height": int(h),
            "fps": None if src.fps is None else float(src.fps)}


def sanitise_filename(filename: str) -> str:
    """An uploaded file's name made safe as one file name: the last part of any client path ('C:\\fakepath\\a.mp4'
    -> 'a.mp4'), unusual characters as '_', no leading dots or spaces, at most 120 characters."""
    name = unicodedata.normalize("NFC", str(filename or "")).replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[^\w.\- ]", "_", name).strip(" .") or "upload"
    stem, suffix = os.path.splitext(name)
    if len(suffix) > 12:
        stem, suffix = name, ""
    stem = stem[: 120 - len(suffix)].rstrip(" .") or "upload"
    return safe_name(stem + suffix, "upload file name")


class Library:
    """The data root: safe paths below it, its listing, probing videos, uploads into `uploads/`."""

    def __init__(self, root: str | os.PathLike, max_upload_bytes: int = 2 * 1024**3):
        root = Path(root).resolve()
        if not root.is_dir():
            raise NotADirectoryError(f"the data folder {root} is not a folder")
        self.root = root
        self.max_upload_bytes = int(max_upload_bytes)

    # -- paths
    def _parts(self, rel: str) -> list[str]:
        """The parts of a given relative path, checked by their text alone."""
        if not isinstance(rel, str):
            raise PathError(f"path {_shown(rel)}: expected a string")
        shown = _shown(rel)
        if len(rel) > MAX_PATH_CHARS:
            raise PathError(f"path {shown}: longer than {MAX_PATH_CHARS} characters")
        if "\0" in rel:
            raise PathError(f"path {shown}: NUL characters are not allowed")
        if _CONTROL.search(rel):
            raise PathError(f"path {shown}: control characters are not allowed")
        if "\\" in rel:
            raise PathError(f"path {shown}: backslashes are not allowed; separate folders with '/'")
        if rel.startswith("/") or _DRIVE.match(rel):
            raise PathError(f"path {shown}: absolute paths are not allowed; give a path relative to the data folder")
        parts = [p for p in rel.split("/") if p]  # "a//b/" is "a/b"
        for p in parts:
            if p == "..":
                raise PathError(f"path {shown}: '..' parts are not allowed")
            if p.startswith("."):
                raise PathError(f"path {shown}: hidden files and folders (names starting with '.') are not allowed")
        return parts

    def _inside(self, real: Path) -> bool:
        """`real` (symlinks resolved) is the root or below it, and not in a hidden part of it."""
        if real != self.root and not real.is_relative_to(self.root):
            return False
        return not any(p.startswith(".") for p in real.relative_to(self.root).parts)

    def normalise(self, rel: str) -> str:
        """The given path checked by its text and written canonically ('a//b/' -> 'a/b'); '' is the root."""
        return "/".join(self._parts(rel))

    def resolve(self, rel: str) -> Path:
        """The real path of `rel` below the root. PathError for a path that is refused (see the module docstring),
        FileNotFoundError (naming `rel`) if nothing is there."""
        parts = self._parts(rel)
        real = Path(os.path.realpath(self.root.joinpath(*parts)))
        if not self._inside(real):
            # say which: outside the root, or a link into the app's private (hidden) files
            where = "outside the data folder" if not real.is_relative_to(self.root) else "to a hidden file or folder"
            raise PathError(f"path {_shown(rel)}: it leads {where}")
        if not os.path.exists(real):
            raise FileNotFoundError(f"not found: {_shown(rel)}")
        return real

    def relative(self, path: str | os.PathLike) -> str:
        """`path` (below the root, absolute or relative to it) as a relative posix path; '' for the root."""
        p = Path(path)
        p = p if p.is_absolute() else self.root / p
        try:
            rel = p.relative_to(self.root).as_posix()
        except ValueError:
            raise PathError("the path is not inside the data folder") from None
        return "" if rel == "." else rel

    # -- listing
    def _entry_kind(self, entry: os.DirEntry) -> str | None:
        """'dir' | 'frames' | 'video' | 'image' for a listed entry, None to leave it out."""
        if entry.name.startswith(".") or "\\" in entry.name or _CONTROL.search(entry.name):
            return None  # hidden, or a name resolve() would refuse
        try:
            if entry.is_symlink() and not self._inside(Path(os.path.realpath(entry.path))):
                return None
            if entry.is_dir():
                return "frames" if self._has_image(entry.path) else "dir"
            if not entry.is_file():
                return None  # dangling links, sockets, devices
        except OSError:
            return None
        suffix = os.path.splitext(entry.name)[1].lower()
        if suffix in VIDEO_EXTENSIONS:
            return "video"
        return "image" if suffix in STILL_EXTENSIONS else None

    @staticmethod
    def _has_image(folder: str) -> bool:
        """The folder holds at least one (non-hidden) image file: it opens as a video."""
        try:
            with os.scandir(folder) as it:
                return any(not e.name.startswith(".") and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS
                           and e.is_file() for e in it)
        except OSError:
            return False

    def list(self, rel: str = "") -> list[dict]:
        """The folder `rel`: [{"name", "path", "kind": "dir"|"frames"|"video"|"image"}], folders first, in natural
        order. Hidden entries, symlinks leading outside, and files that are neither video nor image are left out."""
        base = self.normalise(rel)
        folder = self.resolve(base)
        if not folder.is_dir():
            raise PathError(f"path {_shown(rel)}: not a folder")
        entries = []
        with os.scandir(folder) as it:
            for entry in it:
                kind = self._entry_kind(entry)
                if kind is not None:
                    path = f"{base}/{entry.name}" if base else entry.name
                    entries.append({"name": entry.name, "path": path, "kind": kind})
        entries.sort(key=lambda e: (e["kind"] not in ("dir", "frames"), natural_key(e["name"])))
        return entries

    # -- videos
    def probe(self, rel: str) -> dict:
        """Open `rel` as a video (a file, a folder of images, an image) and decode its first and last frames ->
        {"path", "name", "num_frames", "width", "height", "fps"}; ValueError naming `rel` if it cannot be decoded."""
        base = self.normalise(rel)
        path = self.resolve(base)
        shown = base or "."
        try:
            src = _open_file_or_folder(path, path.suffix)
            try:
                info = _check_decodes(src)
            finally:
                src.close()
        except (ValueError, OSError, EOFError) as e:  # FrameReadError, FormatError are ValueErrors
            raise ValueError(f"{shown}: not a video or image samstream can open "
                             f"({_decode_detail(e, path, shown, self.root)})") from None
        name = base.rsplit("/", 1)[-1] if base else self.root.name
        return {"path": base, "name": name, **info}

    # -- uploads
    def _unique_target(self, folder: Path, name: str, tmp: Path) -> Path:
        """Move `tmp` to `folder/name`, or `name-2`, `name-3`, ... where taken; a hard link refuses to replace
        an existing file, so two uploads of one name at once cannot overwrite each other."""
        stem, suffix = os.path.splitext(name)
        for k in range(1, 10_000):
            target = folder / (name if k == 1 else f"{stem}-{k}{suffix}")
            try:
                os.link(tmp, target)
            except FileExistsError:
                continue
            except OSError:  # a filesystem without hard links: check, then rename
                if os.path.lexists(target):
                    continue
                os.replace(tmp, target)
                return target
            os.unlink(tmp)
            return target
        raise UploadError(415, f"{name}: too many uploads of this name")

    @staticmethod
    def _chunks(stream):
        """Byte chunks of a file-like object (read in CHUNKs) or of an iterable of bytes."""
        if hasattr(stream, "read"):
            while chunk := stream.read(CHUNK):
                yield chunk
        else:
            yield from stream

    def save_upload(self, filename: str, stream, max_bytes: int | None = None) -> str:
        """Copy `stream` (a binary file object or an iterable of bytes) to `uploads/<sanitised filename>` -> its
        relative path. UploadError 413 as soon as it passes the size limit, 415 unless it decodes as a video or
        image samstream opens (first and last frame, whatever its name says); a refused upload leaves no file.
        Written to a hidden temp file first, then moved; a taken name gets '-2', '-3', ..."""
        limit = self.max_upload_bytes if max_bytes is None else int(max_bytes)
        try:
            name = sanitise_filename(filename)
        except ValueError:
            name = "upload"
        suffix = os.path.splitext(name)[1].lower()
        if suffix not in VIDEO_EXTENSIONS | IMAGE_EXTENSIONS:
            raise UploadError(415, f"{name}: not a video or image samstream can open (expected a file ending in "
                                   f"{', '.join(sorted(VIDEO_EXTENSIONS | IMAGE_EXTENSIONS))})")
        ensure_folder(self.root / UPLOADS)
        folder = self.resolve(UPLOADS)  # uploads/ itself must not be a link out of the root
        tmp = temp_path(folder / name)  # hidden: never listed while it is written
        try:
            total = 0
            with open(tmp, "xb") as f:
                for chunk in self._chunks(stream):
                    total += len(chunk)
                    if total > limit:
                        raise UploadError(413, f"{name}: the upload is larger than the limit of {_size(limit)}")
                    f.write(chunk)
            try:
                src = _open_file_or_folder(tmp, suffix)
                try:
                    _check_decodes(src)
                finally:
                    src.close()
            except (ValueError, OSError, EOFError) as e:
                raise UploadError(415, f"{name}: not a video or image samstream can open "
                                       f"({_decode_detail(e, tmp, name, self.root)})") from None
            return self.relative(self._unique_target(folder, name, tmp))
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _size(n: int) -> str:
    """Bytes as a short human size for messages."""
    for unit, f in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= f:
            return f"{n / f:.3g} {unit}"
    return f"{n} bytes"
