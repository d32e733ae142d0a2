"""Downloads against a fake checkpoint server on 127.0.0.1 that drops connections, serves web pages, stalls and
sends wrong files: each gives a clear CheckpointError, only a proven checkpoint gets its hash pinned, and a cut
transfer resumes on the next run."""
from __future__ import annotations

import hashlib
import http.server
import threading
import time

import pytest
import torch

from samstream import CheckpointError, load_model, save_model
from samstream import download as dl
from samstream.cli import main
from samstream.model import OFFICIAL_CONFIGS
from tests.helpers import send_ranged_headers, small_model

NAME = "sam2_hiera_testmini"  # a tiny model registered as an official 2.0 name: 2.0 files have no published hash
FILE = NAME + ".pt"
TIMEOUT = 0.3
HTML = b"<!DOCTYPE html><html><body>Please sign in to continue</body></html>"


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves `server.files` with Range support; each request takes the next behaviour from `server.plan`."""

    def log_message(self, *a):
        pass

    def do_GET(self):
        srv = self.server
        mode = srv.plan.pop(0) if srv.plan else "good"
        srv.ranges.append(self.headers.get("Range"))
        data = srv.files.get(self.path.lstrip("/"))
        if mode == "404" or data is None:
            self.send_error(404)
            return
        if mode == "416":  # a range past the end: the client already has every byte
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if mode == "stall-headers":
            time.sleep(4 * TIMEOUT)
            return
        if mode in ("html", "html-as-binary"):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8" if mode == "html" else
                             "application/octet-stream")
            self.send_header("Content-Length", str(len(HTML)))
            self.end_headers()
            self.wfile.write(HTML)
            return
        if mode == "no-length":  # HTTP/1.0, the body ends when the connection closes: its size is unknown
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            return
        body = send_ranged_headers(self, data)
        if mode == "drop":  # announce everything, send a third, hang up
            self.wfile.write(body[: len(body) // 3])
        elif mode == "stall-body":
            self.wfile.write(body[: len(body) // 3])
            self.wfile.flush()
            time.sleep(4 * TIMEOUT)
        else:
            self.wfile.write(body)


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # the client hanging up on a stalled response is the point of those tests


@pytest.fixture
def server(monkeypatch, tmp_path):
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.plan, srv.ranges, srv.files = [], [], {}
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    monkeypatch.setitem(dl.CHECKPOINT_FILES, NAME, (f"http://127.0.0.1:{srv.server_port}/{FILE}", None, None))
    monkeypatch.setattr(dl, "TIMEOUT_S", TIMEOUT)
    monkeypatch.setenv("SAMSTREAM_CACHE", str(tmp_path / "cache"))
    yield srv
    srv.shutdown()
    srv.server_close()


def _register(monkeypatch, name: str, seed: int = 0, **kw):
    m = small_model(seed, name=name, **kw)
    monkeypatch.setitem(OFFICIAL_CONFIGS, name, m.cfg)
    return m


@pytest.fixture
def good(monkeypatch, tmp_path, server):
    """A small checkpoint of NAME in the official layout, served as FILE. -> its bytes."""
    m = _register(monkeypatch, NAME, no_obj_embed_spatial=False)
    data = save_model(m, tmp_path / "src" / FILE).read_bytes()
    assert set(torch.load(tmp_path / "src" / FILE, weights_only=True)) == {"model"}  # nothing but the weights
    server.files[FILE] = data
    return data


def _cache(tmp_path):
    return tmp_path / "cache"


def _leftovers(tmp_path) -> list[str]:
    return sorted(p.name for p in _cache(tmp_path).glob("*")) if _cache(tmp_path).exists() else []


def test_a_cut_transfer_keeps_its_part_and_the_rerun_resumes(server, good, tmp_path):
    n = len(good)
    server.plan = ["drop", "drop", "good"]
    first = n // 3
    with pytest.raises(CheckpointError, match=rf"cut off at {first} of {n} bytes.*run again to resume"):
        dl.download_checkpoint(NAME, progress=False)
    assert _leftovers(tmp_path) == [FILE + ".part"]  # no checkpoint, no pinned hash
    second = first + (n - first) // 3  # the resumed transfer is cut too: the size comes from its Content-Range
    with pytest.raises(CheckpointError, match=rf"cut off at {second} of {n} bytes"):
        dl.download_checkpoint(NAME, progress=False)
    assert (_cache(tmp_path) / (FILE + ".part")).stat().st_size == second
    path = dl.download_checkpoint(NAME, progress=False)
    assert server.ranges == [None, f"bytes={first}-", f"bytes={second}-"]
    assert path.read_bytes() == good
    assert (_cache(tmp_path) / (FILE + ".sha256")).read_text().strip() == hashlib.sha256(good).hexdigest()
    assert _leftovers(tmp_path) == [FILE, FILE + ".sha256"]
    model = load_model(NAME)  # through the cache, held to the pinned hash
    assert model.cfg.name == NAME and len(server.ranges) == 3


@pytest.mark.parametrize("mode, message", [("html", "web page or text .Content-Type text/html"),
                                           ("html-as-binary", "not a PyTorch checkpoint")])
def test_a_web_page_is_refused_and_nothing_is_kept(server, good, tmp_path, mode, message):
    server.plan = [mode]
    with pytest.raises(CheckpointError, match=message):
        dl.download_checkpoint(NAME, progress=False)
    assert _leftovers(tmp_path) == []
    assert dl.download_checkpoint(NAME, progress=False).read_bytes() == good  # the next run starts clean


@pytest.mark.parametrize("mode", ["stall-headers", "stall-body"])
def test_a_stalled_server_gives_a_clear_error(server, good, tmp_path, mode):
    server.plan = [mode]
    url = dl.CHECKPOINT_FILES[NAME][0]
    with pytest.raises(CheckpointError, match=rf"{url}: the server sent nothing for {TIMEOUT:g} s.*run again"):
        dl.download_checkpoint(NAME, progress=False)
    kept = [FILE + ".part"] if mode == "stall-body" else []
    assert _leftovers(tmp_path) == kept
    assert dl.download_checkpoint(NAME, progress=False).read_bytes() == good
    assert server.ranges[-1] == (f"bytes={len(good) // 3}-" if kept else None)


def test_a_stall_through_the_cli_is_one_line(server, good, tmp_path, capsys):
    from PIL import Image

    Image.new("RGB", (32, 32)).save(tmp_path / "img.png")
    server.plan = ["stall-headers"]
    code = main(["segment", str(tmp_path / "img.png"), "--point", "5,5", "--model", NAME, "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1
    assert "sent nothing for 0.3 s" in err


def test_an_http_error_is_named(server, good, tmp_path):
    server.plan = ["404"]
    with pytest.raises(CheckpointError, match="answered HTTP 404"):
        dl.download_checkpoint(NAME, progress=False)
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("bad", ["truncated", "other model", "nan weights"])
def test_a_complete_transfer_of_a_bad_file_is_removed_not_pinned(server, monkeypatch, tmp_path, bad):
    """No size announced and no published hash: the file itself must prove it is a checkpoint of NAME."""
    _register(monkeypatch, NAME, no_obj_embed_spatial=False)
    if bad == "other model":  # a good checkpoint, of the 2.1 variant
        served = _register(monkeypatch, "sam2.1_hiera_testmini", no_obj_embed_spatial=True)
        message = "holds a sam2.1_hiera_testmini model, not sam2_hiera_testmini"
    else:
        served = small_model(0, name=NAME, no_obj_embed_spatial=False)
        message = "cannot be read as a PyTorch checkpoint"
    if bad == "nan weights":
        with torch.no_grad():
            served.no_obj_ptr.fill_(float("nan"))
        message = "tensor 'no_obj_ptr' holds NaN"
    server.files[FILE] = save_model(served, tmp_path / "src" / FILE).read_bytes()
    server.plan = ["no-length" if bad == "truncated" else "good"]
    with pytest.raises(CheckpointError, match=f"not usable and was removed: .*{message}"):
        dl.download_checkpoint(NAME, progress=False)
    assert _leftovers(tmp_path) == []


def test_a_pinned_hash_names_its_record(server, good, monkeypatch, tmp_path):
    path = dl.download_checkpoint(NAME, progress=False)
    record = path.with_name(FILE + ".sha256")
    replacement = save_model(small_model(1, name=NAME, no_obj_embed_spatial=False), tmp_path / "other.pt")
    path.write_bytes(replacement.read_bytes())  # a good copy of other weights, put there by hand
    with pytest.raises(CheckpointError, match=rf"pinned in {record} .*delete {record}"):
        load_model(NAME)
    record.unlink()  # as the message says: the file is checked and pinned again
    assert load_model(NAME).cfg.name == NAME
    assert record.read_text().strip() == hashlib.sha256(replacement.read_bytes()).hexdigest()
    assert len(server.ranges) == 1  # the replacement was never downloaded over


def test_a_bad_file_pinned_by_an_older_version_says_how_to_download_again(server, good, tmp_path):
    cache = _cache(tmp_path)
    cache.mkdir()
    cut = good[: len(good) // 3]
    (cache / FILE).write_bytes(cut)
    (cache / (FILE + ".sha256")).write_text(hashlib.sha256(cut).hexdigest() + "\n")
    with pytest.raises(CheckpointError, match=rf"cannot be read as a PyTorch checkpoint.*cached download of {NAME}: "
                                              rf"delete {cache / FILE} and {cache / FILE}.sha256"):
        load_model(NAME)
    (cache / FILE).unlink()
    (cache / (FILE + ".sha256")).unlink()
    assert load_model(NAME).cfg.name == NAME and (cache / FILE).read_bytes() == good


def test_a_whole_part_left_by_a_stopped_run_is_checked_not_refetched(server, good, tmp_path):
    """The server answers 416 to a range past the end: the part is complete and only needs its checks."""
    cache = _cache(tmp_path)
    cache.mkdir()
    (cache / (FILE + ".part")).write_bytes(good)
    server.plan = ["416"]
    assert dl.download_checkpoint(NAME, progress=False).read_bytes() == good
    assert server.ranges == [f"bytes={len(good)}-"] and _leftovers(tmp_path) == [FILE, FILE + ".sha256"]
