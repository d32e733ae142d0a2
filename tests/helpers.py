"""Helpers shared by the tests: data paths, small random models, synthetic frames and video files, PNG
writing with PIL directly (not through samstream.io), mask perturbations and optional imports."""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from samstream.model import HieraConfig, SAM2Config, SAM2Model

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DAVIS16 = DATA / "davis2016"
DAVIS16_ANN = DAVIS16 / "Annotations" / "480p"
SAV_EXAMPLE = DATA / "sav-example"
BLACKSWAN = DAVIS16 / "JPEGImages" / "480p" / "blackswan"
BEDROOM_MP4 = DATA / "sam2-assets" / "videos" / "bedroom.mp4"
GROCERIES = DATA / "sam2-assets" / "images" / "groceries.jpg"


# ------------------------------------------------------------------------------------------ small models
def small_config() -> SAM2Config:
    """A 256 px SAM 2 config for image prediction, evaluation and training tests."""
    return SAM2Config(name="test-mini", image_size=256, hidden_dim=64, mem_dim=32, mem_attn_ffn_dim=128,
                      decoder_mlp_dim=128, trunk=HieraConfig(embed_dim=16, num_heads=1, stages=(1, 1, 2, 1),
                                                             global_att_blocks=(3,),
                                                             window_pos_embed_bkg_spatial_size=(4, 4)))


def _tracking_config(**kw) -> SAM2Config:
    """A SAM 2.1-shaped model small enough to track thousands of frames in seconds on a CPU."""
    trunk = HieraConfig(embed_dim=8, num_heads=1, stages=(1, 1, 1, 1), global_att_blocks=(2, 3),
                        window_spec=(4, 4, 4, 4), window_pos_embed_bkg_spatial_size=(4, 4))
    base = dict(name="test-small", trunk=trunk, image_size=64, hidden_dim=32, mem_dim=16, mem_attn_layers=1,
                mem_attn_ffn_dim=32, decoder_mlp_dim=32, decoder_heads=1, decoder_depth=1)
    base.update(kw)
    return SAM2Config(**base)


def small_model(seed: int = 0, obj_bias: float = 1.0, **kw) -> SAM2Model:
    """A 64 px tracking model (`kw` overrides its config) with random weights; the object-score bias decides
    whether objects are seen (> 0) or absent."""
    torch.manual_seed(seed)
    m = SAM2Model(_tracking_config(**kw)).eval()
    with torch.no_grad():
        for p in m.parameters():  # perturb constant-initialised tensors so every parameter matters
            p.add_(0.02 * torch.randn_like(p))
        m.sam_mask_decoder.pred_obj_score_head.layers[-1].bias.fill_(obj_bias)
    return m


def random_official(name: str = "sam2.1_hiera_tiny", size: int | None = 128, seed: int = 0) -> SAM2Model:
    """An official architecture (at `size` px; None: its own) with random weights, perturbed so every parameter
    matters, object scores biased to "present" (so masks are non-trivial)."""
    import dataclasses

    from samstream.model import official_config

    torch.manual_seed(seed)
    cfg = official_config(name)
    m = SAM2Model(dataclasses.replace(cfg, image_size=size) if size else cfg).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.02 * torch.randn_like(p))
        m.sam_mask_decoder.pred_obj_score_head.layers[-1].bias.fill_(1.0)
    return m


@contextlib.contextmanager
def torch_threads(n: int):
    """Small models run much faster on one thread (per-op overhead dominates); restores the setting."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


# ------------------------------------------------------------------------------------------ frames and videos
def synthetic_frames(n: int, h: int = 48, w: int = 64, seed: int = 0) -> list[np.ndarray]:
    """A textured background with a bright square moving right, one pixel per frame."""
    rng = np.random.default_rng(seed)
    bg = rng.integers(0, 120, (h, w, 3), dtype=np.uint8)
    frames = []
    for i in range(n):
        f = bg.copy()
        x = 8 + i % (w - 24)
        f[12:28, x: x + 16] = (240, 200, 40)
        frames.append(f)
    return frames


def copy_frames(src: Path, dst: Path, n: int, rename=None) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(sorted(src.glob("*.jpg"))[:n]):
        shutil.copy(f, dst / (rename(i) if rename else f.name))
    return dst


def remux_faststart(src: Path, dst: Path, max_frames: int | None = None) -> Path:
    """Copy a video's packets into an mp4 whose index comes first (as streaming files are laid out), so
    that a truncated copy still opens and decodes up to where it was cut."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w", options={"movflags": "faststart"}) as out:
        s = inp.streams.video[0]
        o = out.add_stream_from_template(s)
        n = 0
        for pk in inp.demux(s):
            if pk.dts is None:
                continue
            pk.stream = o
            out.mux(pk)
            n += 1
            if max_frames is not None and n >= max_frames:
                break
    return dst


def truncated_mp4(tmp: Path, keep: float = 0.4) -> Path:
    """bedroom.mp4 (200 frames) cut after `keep` of its bytes: the first ~80 frames decode, then it fails."""
    full = remux_faststart(BEDROOM_MP4, tmp / "full.mp4")
    data = full.read_bytes()
    out = tmp / "cut.mp4"
    out.write_bytes(data[: int(len(data) * keep)])
    return out


# ------------------------------------------------------------------------------------------ masks and PNGs
# A few colours are enough for the tests' own palette PNGs.
TEST_PALETTE = [0, 0, 0, 200, 30, 30, 30, 200, 30, 30, 30, 200, 200, 200, 30] + [255] * (768 - 15)


def save_indexed(path, labels) -> None:
    """Write (H, W) uint8 labels as a palette PNG with PIL directly."""
    a = np.ascontiguousarray(labels, dtype=np.uint8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img = Image.frombytes("P", (a.shape[1], a.shape[0]), a.tobytes())
    img.putpalette(TEST_PALETTE)
    img.save(path)


def load_davis16(seq: str, frame: int) -> np.ndarray:
    """(480, 854) bool ground truth of a DAVIS 2016 frame (the files hold 0/255)."""
    return np.array(Image.open(DAVIS16_ANN / seq / f"{frame:05d}.png")) > 0


def shift(mask, dy: int, dx: int) -> np.ndarray:
    """Shift a mask, filling with background (no wrap-around)."""
    out = np.zeros_like(mask)
    h, w = mask.shape
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = mask[ys, xs]
    return out


def perturb(mask, kind: int, rng: np.random.Generator) -> np.ndarray:
    """One of seven perturbations of a bool mask: eroded, dilated, shifted, empty, identical,
    salt-and-pepper, or with an extra false-positive block."""
    from scipy import ndimage as ndi

    kind %= 7
    if kind == 0:
        return ndi.binary_erosion(mask, iterations=3)
    if kind == 1:
        return ndi.binary_dilation(mask, iterations=2)
    if kind == 2:
        return shift(mask, -3, 5)
    if kind == 3:
        return np.zeros_like(mask)
    if kind == 4:
        return mask.copy()
    if kind == 5:
        return mask ^ (rng.random(mask.shape) < 0.01)
    out = mask.copy()
    out[10:40, 20:90] = True
    return out


def optional_import(name: str):
    """Import an optional cross-check dependency, or skip the test when it is missing or broken
    (pytest.importorskip only skips on ModuleNotFoundError in recent pytest)."""
    import importlib

    import pytest

    try:
        return importlib.import_module(name)
    except ImportError as e:  # includes a binary wheel that fails to load
        pytest.skip(f"{name} not importable: {e}")


# ------------------------------------------------------------------------------------------ the app
#: Paths a client might send to escape the data root or reach private files; every one must be refused with a
#: PathError (the library and server tests expect 400 for each).
TRAVERSAL_ATTEMPTS = [
    "/etc/passwd",
    "//etc/passwd",
    "C:\\Windows\\win.ini",
    "C:/Windows/win.ini",
    "c:x",
    "\\\\server\\share",
    "..",
    "../secret.txt",
    "clips/../../secret.txt",
    "clips/..",
    "a/b/../../..",
    "..\\secret.txt",
    "clips\\..\\..\\secret.txt",
    "clips/a.mp4\0.png",
    "\0",
    ".samstream/app.db",
    ".samstream",
    "clips/.git/config",
    ".env",
    ".",
    "./clips",
    "clips/./a.mp4",
    "...",
    "clips/\n",
]


def write_mp4(path, n=6, h=32, w=48, faststart=False):
    """A small H.264 mp4 written with PyAV: frame i is flat grey level 20 * i (mod 250)."""
    import av

    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", format="mp4", options=options) as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for i in range(n):
            rgb = np.full((h, w, 3), 20 * i % 250, np.uint8)
            c.mux(s.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        c.mux(s.encode())
    return path


def demo_clip(folder, n: int = 4, step: int = 2):
    """The first n frames of samstream/assets/demo.mp4, every `step`-th pixel (160x120 at 2), as a PNG folder."""
    from samstream.video.sources import open_source

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    src = open_source(Path(__file__).resolve().parents[1] / "samstream" / "assets" / "demo.mp4")
    try:
        for i in range(n):
            Image.fromarray(src.read(i)[::step, ::step]).save(folder / f"{i:05d}.png")
    finally:
        src.close()
    return folder


def send_ranged_headers(handler, data: bytes) -> bytes:
    """An HTTP handler's answer to a GET of `data` honouring a `Range: bytes=N-` header: status (200 or 206) and
    headers sent -> the body to write."""
    start = int(handler.headers["Range"].split("=")[1].split("-")[0]) if "Range" in handler.headers else 0
    body = data[start:]
    handler.send_response(206 if start else 200)
    handler.send_header("Content-Type", "application/octet-stream")
    handler.send_header("Content-Length", str(len(body)))
    if start:
        handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
    handler.end_headers()
    return body


class FileServer:
    """A local HTTP server on 127.0.0.1 for fake downloads: serves `files` (name -> bytes) in `chunks` pieces with
    `delay` seconds between them (so progress can be watched and a transfer cancelled). A context manager."""

    def __init__(self, files: dict, chunks: int = 1, delay: float = 0.0):
        import http.server
        import threading
        import time

        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                data = outer.files.get(self.path.lstrip("/"))
                if data is None:
                    self.send_error(404)
                    return
                body = send_ranged_headers(self, data)
                step = max(1, -(-len(body) // outer.chunks))
                try:
                    for i in range(0, len(body), step):
                        self.wfile.write(body[i: i + step])
                        self.wfile.flush()
                        if i + step < len(body):
                            time.sleep(outer.delay)
                except OSError:
                    pass  # the client hung up (a cancelled download)

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass

        self.files, self.chunks, self.delay = files, chunks, delay
        self._server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()


@contextlib.contextmanager
def live_server(app, timeout: float = 30.0):
    """A FastAPI app served by uvicorn on 127.0.0.1 in a thread -> its base URL."""
    import socket
    import threading
    import time

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        srv.should_exit = True
        thread.join(10)
        sock.close()
