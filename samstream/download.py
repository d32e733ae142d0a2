"""Downloading the official checkpoints into the cache: a resumable transfer, checked before it is trusted.

A transfer must deliver every byte the server announced (Content-Length, or Content-Range when resuming);
one cut short keeps its `.part` file for the next run to resume. A web page or other non-checkpoint body is
refused before anything is saved. The 2.1 files have recorded SHA-256 hashes; the 2.0 files have none, so
their hash is pinned in a `<file>.sha256` record at first download, and only once the file has proved to be a
complete, finite checkpoint of the model it is named for. Every later use of the cached file is held to it.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path

from .checkpoint import CheckpointError, detect_config, load_into, read_checkpoint
from .model import SAM2Model, official_config

_BASE_21 = "https://dl.fbaipublicfiles.com/segment_anything_2/092824/"
_BASE_20 = "https://dl.fbaipublicfiles.com/segment_anything_2/072824/"
# name -> (url, size in bytes, sha256). The 2.1 hashes were recorded by third parties who downloaded the
# files (Meta publishes none); the 2.0 files have neither.
CHECKPOINT_FILES: dict[str, tuple[str, int | None, str | None]] = {
    "sam2.1_hiera_tiny": (_BASE_21 + "sam2.1_hiera_tiny.pt", 156_008_466,
                          "7402e0d864fa82708a20fbd15bc84245c2f26dff0eb43a4b5b93452deb34be69"),
    "sam2.1_hiera_small": (_BASE_21 + "sam2.1_hiera_small.pt", 184_416_285,
                           "6d1aa6f30de5c92224f8172114de081d104bbd23dd9dc5c58996f0cad5dc4d38"),
    "sam2.1_hiera_base_plus": (_BASE_21 + "sam2.1_hiera_base_plus.pt", 323_606_802,
                               "a2345aede8715ab1d5d31b4a509fb160c5a4af1970f199d9054ccfb746c004c5"),
    "sam2.1_hiera_large": (_BASE_21 + "sam2.1_hiera_large.pt", 898_083_611,
                           "2647878d5dfa5098f2f8649825738a9345572bae2d4350a2468587ece47dd318"),
    "sam2_hiera_tiny": (_BASE_20 + "sam2_hiera_tiny.pt", None, None),
    "sam2_hiera_small": (_BASE_20 + "sam2_hiera_small.pt", None, None),
    "sam2_hiera_base_plus": (_BASE_20 + "sam2_hiera_base_plus.pt", None, None),
    "sam2_hiera_large": (_BASE_20 + "sam2_hiera_large.pt", None, None),
}
TIMEOUT_S = 30.0  # seconds without a byte from the server before a transfer is given up
_CHUNK = 1 << 20


def cache_dir() -> Path:
    return Path(os.environ.get("SAMSTREAM_CACHE", Path.home() / ".cache" / "samstream"))


def record_path(path: Path) -> Path:
    """The `.sha256` record that pins a downloaded file's hash."""
    return path.with_name(path.name.removesuffix(".part") + ".sha256")


def download_checkpoint(name: str, directory: Path | None = None, progress: bool = True,
                        timeout: float | None = None, on_bytes=None) -> Path:
    """Fetch an official checkpoint into the cache (resuming a partial download) and verify it. Raises
    CheckpointError saying what went wrong and what to do. on_bytes(done, total or None) is called as bytes
    arrive; an exception it raises stops the transfer, keeping the received bytes for a resume."""
    name = official_config(name).name
    url, size, sha = CHECKPOINT_FILES[name]
    directory = Path(directory) if directory else cache_dir()
    target = directory / url.rsplit("/", 1)[1]
    record = record_path(target)
    if target.is_file():
        pin = _check(target, record, name, size, sha)
    else:
        directory.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".part")
        transfer = _Transfer(name, url, part, target, size, TIMEOUT_S if timeout is None else timeout, progress)
        transfer.on_bytes = on_bytes
        transfer.run()
        try:
            pin = _check(part, record, name, size, sha)
        except CheckpointError as e:  # complete but wrong: resuming cannot mend it
            part.unlink()
            raise CheckpointError(f"the download of {name} from {url} is not usable and was removed: {e}") from e
        os.replace(part, target)
    if pin:  # after the file is in place, so an interrupted run leaves a file that is checked again, never a record
        tmp = record.with_name(record.name + ".tmp")
        tmp.write_text(pin + "\n")
        os.replace(tmp, record)
    return target


class _Transfer:
    """One HTTP transfer of `url` into `part`, resuming the bytes it already holds."""

    def __init__(self, name: str, url: str, part: Path, target: Path, size: int | None, timeout: float,
                 progress: bool):
        self.name, self.url, self.part, self.target = name, url, part, target
        self.size, self.timeout, self.progress = size, timeout, progress
        self.on_bytes = None  # callback(done, total)
        self.manual = (f"download the file elsewhere and put it at {target} (or set SAMSTREAM_CACHE), or pass its "
                       f"path to load_model()")

    def fail(self, what: str, keep: bool) -> CheckpointError:
        done = self.part.stat().st_size if keep and self.part.exists() else 0
        if not done:
            self.part.unlink(missing_ok=True)
        then = (f"the {done} bytes received are kept in {self.part}: run again to resume, or {self.manual}" if done
                else f"nothing was kept; run again, or {self.manual}")
        return CheckpointError(f"download of {self.name} from {self.url}: {what}; {then}")

    def stalled(self) -> CheckpointError:
        return self.fail(f"the server sent nothing for {self.timeout:g} s (stalled connection or very slow "
                         f"network)", keep=True)

    def run(self) -> None:
        have = self.part.stat().st_size if self.part.exists() else 0
        req = urllib.request.Request(self.url, headers={"Range": f"bytes={have}-"} if have else {})
        try:
            resp = urllib.request.urlopen(req, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            if e.code == 416 and have and _range_total(e.headers.get("Content-Range")) == have:
                return  # the part is already whole (a run stopped before checking it): the checks decide
            raise self.fail(f"the server answered HTTP {e.code} {e.reason}", keep=e.code != 416) from None
        except (urllib.error.URLError, OSError) as e:
            if isinstance(e, TimeoutError) or isinstance(getattr(e, "reason", None), TimeoutError):
                raise self.stalled() from None
            raise CheckpointError(f"cannot download {self.name} from {self.url} ({e}). Offline? Then {self.manual}"
                                  ) from e
        with resp:
            have, total = self.announced(resp, have)
            self.receive(resp, have, total)

    def announced(self, resp, have: int) -> tuple[int, int | None]:
        """-> (offset the body starts at, total file size the server announced or None); refuses a web page
        and a file of another size than the one recorded."""
        ctype = resp.headers.get("Content-Type", "")
        if ctype.startswith("text/"):
            raise self.fail(f"the server sent a web page or text (Content-Type {ctype}), not the checkpoint; the "
                            f"address may have moved, or a proxy or login page answered", keep=True)
        length = resp.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if resp.status == 206:
            start = _range_start(resp.headers.get("Content-Range"))
            if start is not None and start != have:
                raise self.fail(f"the server resumed at byte {start}, not at byte {have} as asked", keep=False)
            total = _range_total(resp.headers.get("Content-Range"))
            if total is None and length is not None:
                total = have + length
        else:  # a whole file: the server ignored the range, or there was none
            have, total = 0, length
        if total is not None and self.size is not None and total != self.size:
            raise self.fail(f"the server sends a file of {total} bytes, expected {self.size}", keep=False)
        return have, total

    def receive(self, resp, have: int, total: int | None) -> None:
        from tqdm import tqdm

        got = have
        with open(self.part, "ab" if have else "wb") as f, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, desc=self.target.name,
                disable=not self.progress) as bar:
            while True:
                try:
                    chunk = resp.read1(_CHUNK)  # what has arrived: a stall then loses nothing received
                except TimeoutError:
                    raise self.stalled() from None
                except (OSError, http.client.HTTPException) as e:
                    raise self.fail(f"the connection broke at {got} of {total or '?'} bytes ({e!r})", keep=True) from e
                if not chunk:
                    break
                if got == 0 and not _looks_like_checkpoint(chunk):
                    raise self.fail(f"the server sent {chunk[:32]!r}..., which is not a PyTorch checkpoint (a zip or "
                                    f"pickle file)", keep=False)
                try:
                    f.write(chunk)
                except OSError as e:
                    raise CheckpointError(f"cannot write {self.part} ({e.strerror}); free some space or set "
                                          f"SAMSTREAM_CACHE to another folder, and run again to resume") from e
                got += len(chunk)
                bar.update(len(chunk))
                if self.on_bytes is not None:
                    self.on_bytes(got, total)
        if total is not None and got != total:
            raise self.fail(f"the transfer was cut off at {got} of {total} bytes", keep=True)


def _looks_like_checkpoint(head: bytes) -> bool:
    """How a torch.save file starts: a zip archive, or a pickle (the legacy format)."""
    return head[:1] == b"\x80" or b"PK\x03\x04".startswith(head[:4])


def _range_start(content_range: str | None) -> int | None:
    """'bytes 100-199/200' -> 100."""
    try:
        return int(content_range.split()[1].split("-")[0])
    except (AttributeError, IndexError, ValueError):
        return None


def _range_total(content_range: str | None) -> int | None:
    """'bytes 100-199/200' or 'bytes */200' -> 200; None when absent or '*'."""
    try:
        return int(content_range.rsplit("/", 1)[1])
    except (AttributeError, IndexError, ValueError):
        return None


# ------------------------------------------------------------------------------------------ checks
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _check(path: Path, record: Path, name: str, size: int | None, sha: str | None) -> str | None:
    """Raise CheckpointError unless `path` is the file of `name`: its recorded size and hash, else the hash pinned
    in `record`. -> the hash to pin when nothing vouched for the file yet (then it was proved to load)."""
    if size is not None and path.stat().st_size != size:
        raise CheckpointError(f"{path}: {path.stat().st_size} bytes, expected {size}: incomplete or wrong file; "
                              f"delete it and download again")
    digest = _sha256(path)
    if sha is not None:
        if digest != sha:
            raise CheckpointError(f"{path}: SHA-256 {digest} does not match the expected {sha}; the file is corrupt: "
                                  f"delete it and download again")
        return None
    if record.is_file():
        pinned = record.read_text().strip()
        if digest != pinned:
            raise CheckpointError(
                f"{path}: SHA-256 {digest} does not match {pinned}, the hash pinned in {record} when {name} was "
                f"first downloaded. If you replaced the file with a good copy on purpose, delete {record} (the file "
                f"is then checked and its hash pinned again); otherwise delete both files to download it again")
        return None
    check_loadable(path, name)
    return digest


def check_loadable(path: Path, name: str) -> None:
    """Raise CheckpointError unless `path` is a complete checkpoint of the official model `name`: readable, of
    that configuration, every tensor present with its shape, all finite."""
    sd, stored, _ = read_checkpoint(path)
    got = stored or detect_config(sd, str(path))
    if got.name != name:
        raise CheckpointError(f"{path} holds a {got.name} model, not {name}")
    load_into(SAM2Model(official_config(name)), sd, str(path))
