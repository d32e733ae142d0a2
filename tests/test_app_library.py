"""The app's data root: refused paths, symlinks, listing, probing and uploads."""
from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from samstream.app.library import CHUNK, Library, PathError, UploadError, sanitise_filename
from samstream.video.sources import VideoFileSource
from tests.helpers import TRAVERSAL_ATTEMPTS, write_mp4


def png_bytes(w=20, h=10) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((h, w, 3), 99, np.uint8)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def tree(tmp_path):
    """root/ with clips, a frames folder, private files, and outside/ beside it."""
    root = tmp_path / "root"
    (root / "clips").mkdir(parents=True)
    (root / "clips" / "a.mp4").write_bytes(b"x")
    (root / "clips" / "clip10.mp4").write_bytes(b"x")
    (root / "clips" / "clip2.mp4").write_bytes(b"x")
    (root / "clips" / "notes.txt").write_text("not listed")
    (root / "clips" / "still.png").write_bytes(png_bytes())
    (root / "clips" / ".hidden.mp4").write_bytes(b"x")
    (root / "frames").mkdir()
    (root / "frames" / "00000.png").write_bytes(png_bytes())
    (root / "empty").mkdir()
    (root / ".samstream").mkdir()
    (root / ".samstream" / "app.db").write_bytes(b"db")
    (root / ".git").mkdir()
    (root / ".env").write_text("SECRET=1")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (tmp_path / "secret.txt").write_text("secret")
    return root, outside


@pytest.mark.parametrize("rel", TRAVERSAL_ATTEMPTS)
def test_traversal_attempts_are_refused_naming_only_the_given_path(tree, rel):
    root, _ = tree
    lib = Library(root)
    with pytest.raises(PathError) as e:
        lib.resolve(rel)
    assert str(root) not in str(e.value) and str(root.parent) not in str(e.value)
    with pytest.raises(PathError):
        lib.list(rel)
    with pytest.raises(PathError):
        lib.probe(rel)


def test_percent_is_an_ordinary_character(tree):
    root, _ = tree
    lib = Library(root)
    # '%2e%2e' reaches us already decoded once by the server; we must not decode it again
    with pytest.raises(FileNotFoundError) as e:
        lib.resolve("%2e%2e/secret.txt")
    assert "%2e%2e/secret.txt" in str(e.value) and str(root) not in str(e.value)
    (root / "%2e%2e").mkdir()
    (root / "%2e%2e" / "x.mp4").write_bytes(b"x")
    assert lib.resolve("%2e%2e/x.mp4") == root / "%2e%2e" / "x.mp4"
    (root / "%252e%252e").mkdir()  # double-encoded: decoded once by the server, still just a name here
    assert lib.resolve("%252e%252e") == root / "%252e%252e"
    # fullwidth dots are just a name
    (root / "\uff0e\uff0e").mkdir()
    assert lib.resolve("\uff0e\uff0e") == root / "\uff0e\uff0e"


def test_valid_paths_resolve_inside_the_root(tree):
    root, _ = tree
    lib = Library(root)
    assert lib.resolve("") == root
    assert lib.resolve("clips/a.mp4") == root / "clips" / "a.mp4"
    assert lib.resolve("clips//a.mp4") == root / "clips" / "a.mp4"
    assert lib.resolve("clips/") == root / "clips"
    assert lib.relative(root / "clips" / "a.mp4") == "clips/a.mp4"
    assert lib.relative(root) == ""
    with pytest.raises(PathError):
        lib.relative(root.parent / "outside")
    with pytest.raises(FileNotFoundError) as e:
        lib.resolve("clips/missing.mp4")
    assert "clips/missing.mp4" in str(e.value) and str(root) not in str(e.value)
    with pytest.raises(PathError):
        lib.resolve(None)


def test_symlinks_out_are_refused_inside_allowed(tree):
    root, outside = tree
    lib = Library(root)
    os.symlink(outside / "secret.txt", root / "clips" / "out.mp4")  # file
    os.symlink(outside, root / "outdir")  # folder
    os.symlink(root.parent, root / "up")  # folder above the root
    os.symlink(root / ".samstream" / "app.db", root / "db.mp4")  # inside, but to private files
    os.symlink(root / "clips" / "a.mp4", root / "alias.mp4")  # inside: fine
    os.symlink(root / "frames", root / "frames2")
    for rel in ["clips/out.mp4", "outdir", "outdir/secret.txt", "up/secret.txt", "db.mp4"]:
        with pytest.raises(PathError) as e:
            lib.resolve(rel)
        assert str(outside) not in str(e.value) and str(root) not in str(e.value)
    assert lib.resolve("alias.mp4") == root / "clips" / "a.mp4"
    assert lib.resolve("up/root/clips/a.mp4") == root / "clips" / "a.mp4"  # out and back in: judged by the result
    assert lib.resolve("frames2/00000.png") == root / "frames" / "00000.png"
    names = {e["name"] for e in lib.list("")}
    assert {"alias.mp4", "frames2"} <= names
    assert not names & {"outdir", "up", "db.mp4"}
    assert "out.mp4" not in {e["name"] for e in lib.list("clips")}


def test_listing_order_kinds_and_what_is_hidden(tree):
    root, _ = tree
    lib = Library(root)
    (root / "uploads").mkdir()
    (root / "clips" / "sub").mkdir()
    os.symlink(root / "nowhere", root / "dangling.mp4")
    top = lib.list("")
    # clips holds an image, so it also opens as a video ("frames"); folders come first either way
    assert [(e["name"], e["kind"]) for e in top] == [("clips", "frames"), ("empty", "dir"), ("frames", "frames"),
                                                    ("uploads", "dir")]
    clips = lib.list("clips")
    assert [(e["name"], e["path"], e["kind"]) for e in clips] == [
        ("sub", "clips/sub", "dir"), ("a.mp4", "clips/a.mp4", "video"), ("clip2.mp4", "clips/clip2.mp4", "video"),
        ("clip10.mp4", "clips/clip10.mp4", "video"), ("still.png", "clips/still.png", "image")]
    with pytest.raises(PathError):
        lib.list("clips/a.mp4")  # not a folder
    with pytest.raises(FileNotFoundError):
        lib.list("nope")


def test_probe_video_folder_and_image(tmp_path):
    lib = Library(tmp_path)
    write_mp4(tmp_path / "v.mp4", n=5, h=32, w=48)
    info = lib.probe("v.mp4")
    assert info == {"path": "v.mp4", "name": "v.mp4", "num_frames": 5, "width": 48, "height": 32, "fps": 25.0}
    (tmp_path / "seq").mkdir()
    for i in range(3):
        (tmp_path / "seq" / f"{i:05d}.png").write_bytes(png_bytes(20, 10))
    assert lib.probe("seq/") == {"path": "seq", "name": "seq", "num_frames": 3, "width": 20, "height": 10,
                                 "fps": None}
    assert lib.probe("seq/00001.png")["num_frames"] == 1
    (tmp_path / "bad.mp4").write_text("hello, not a video")
    with pytest.raises(ValueError, match=r"bad\.mp4: not a video or image") as e:
        lib.probe("bad.mp4")
    assert str(tmp_path) not in str(e.value)


# ------------------------------------------------------------------------------------------ uploads
class CountingStream:
    """An endless stream of bytes that counts what was read from it."""

    def __init__(self):
        self.read_bytes = 0

    def read(self, n=-1):
        n = CHUNK if n is None or n < 0 else n
        self.read_bytes += n
        return b"\0" * n


def uploads_left(root):
    return sorted(os.listdir(root / "uploads")) if (root / "uploads").exists() else []


def test_upload_over_the_limit_stops_while_streaming(tmp_path):
    lib = Library(tmp_path, max_upload_bytes=3 * CHUNK + 5)
    stream = CountingStream()
    with pytest.raises(UploadError) as e:
        lib.save_upload("big.mp4", stream)
    assert e.value.status == 413
    assert stream.read_bytes <= lib.max_upload_bytes + CHUNK
    assert uploads_left(tmp_path) == []
    # max_bytes overrides the library's limit; an iterable of chunks works too
    with pytest.raises(UploadError) as e:
        lib.save_upload("a.png", iter([png_bytes()] * 3), max_bytes=10)
    assert e.value.status == 413 and uploads_left(tmp_path) == []


def test_uploads_that_do_not_decode_are_refused(tmp_path):
    lib = Library(tmp_path)
    good = write_mp4(tmp_path / "good.mp4", n=30)
    data = good.read_bytes()
    fast = write_mp4(tmp_path / "fast.mp4", n=30, faststart=True).read_bytes()
    cases = {"text.mp4": b"I am a text file, not a video\n" * 10,
             "empty.mp4": b"",
             "cut.mp4": data[: len(data) // 2],  # index at the end: it does not open
             "cutfast.mp4": fast[: len(fast) * 9 // 10],  # index first: opens, but its last frames are gone
             "fake.png": b"\x89PNG\r\n\x1a\n" + b"junk" * 10,
             "notes.txt": b"hello"}
    (tmp_path / "cutfast.mp4").write_bytes(cases["cutfast.mp4"])
    src = VideoFileSource(tmp_path / "cutfast.mp4")
    assert src.read(0).shape == (32, 48, 3)  # frame 0 alone would pass: only the last frame shows the cut
    src.close()
    for name, blob in cases.items():
        with pytest.raises(UploadError) as e:
            lib.save_upload(name, io.BytesIO(blob))
        assert e.value.status == 415, name
        assert "not a video or image samstream can open" in str(e.value)
        assert str(tmp_path) not in str(e.value)
        assert uploads_left(tmp_path) == [], name


def test_real_uploads_are_accepted_with_unique_names(tmp_path):
    lib = Library(tmp_path)
    mp4 = write_mp4(tmp_path / "src.mp4", n=4).read_bytes()
    assert lib.save_upload("clip.mp4", io.BytesIO(mp4)) == "uploads/clip.mp4"
    assert lib.save_upload("clip.mp4", io.BytesIO(mp4)) == "uploads/clip-2.mp4"
    assert lib.save_upload("C:\\fakepath\\clip.mp4", io.BytesIO(mp4)) == "uploads/clip-3.mp4"
    assert (tmp_path / "uploads" / "clip-2.mp4").read_bytes() == mp4
    assert lib.save_upload("photo.png", io.BytesIO(png_bytes())) == "uploads/photo.png"
    assert lib.save_upload("../../evil name;rm.png", io.BytesIO(png_bytes())) == "uploads/evil name_rm.png"
    (tmp_path / "uploads" / "dir.png").mkdir()  # a folder takes the name too
    assert lib.save_upload("dir.png", io.BytesIO(png_bytes())) == "uploads/dir-2.png"
    assert lib.probe("uploads/clip-3.mp4")["num_frames"] == 4
    assert not [n for n in uploads_left(tmp_path) if n.startswith(".")]  # no temp file left
    assert [e["name"] for e in lib.list("uploads")] == ["dir.png", "clip-2.mp4", "clip-3.mp4", "clip.mp4",
                                                         "dir-2.png", "evil name_rm.png", "photo.png"]


def test_uploads_folder_linked_outside_is_refused(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", root / "uploads")
    with pytest.raises(PathError):
        Library(root).save_upload("a.png", io.BytesIO(png_bytes()))
    assert os.listdir(tmp_path / "elsewhere") == []


@pytest.mark.parametrize("given, safe", [("a.mp4", "a.mp4"), ("/x/y/b c.MOV", "b c.MOV"), ("..mp4", "mp4"),
                                         (".hidden.png", "hidden.png"), ("", "upload"), ("é<>.png", "é__.png"),
                                         ("x" * 300 + ".mp4", "x" * 116 + ".mp4")])
def test_sanitise_filename(given, safe):
    assert sanitise_filename(given) == safe
