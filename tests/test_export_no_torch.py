"""samstream.runtime runs an export in a fresh process where torch cannot be imported at all."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from samstream.export import export_model
from tests.helpers import small_model

SCRIPT = textwrap.dedent("""
    import sys

    class NoTorch:  # any import of torch fails, as if it were not installed
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError("torch is blocked in this test")
            return None

    sys.meta_path.insert(0, NoTorch())
    import numpy as np
    from samstream.runtime import ImagePredictor, VideoPredictor

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (4, 48, 64, 3), dtype=np.uint8)
    vp = VideoPredictor(sys.argv[1], frames)
    vp.add_points(0, 1, [[20, 20]])
    vp.add_box(2, 2, [5, 5, 40, 30])
    n = sum(1 for _ in vp.propagate(direction="both"))  # forward 0..3; backward from 0 has no frames
    ip = ImagePredictor(sys.argv[1])
    ip.set_image(frames[0])
    masks, scores, _ = ip.predict(points=[[20, 20]])
    assert masks.shape == (3, 48, 64)
    loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
    print("frames", n, "torch modules", loaded)
""")


def test_runtime_without_torch(tmp_path):
    folder = tmp_path / "export"
    export_model(small_model(), folder)
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(folder)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "frames 4 torch modules []" in r.stdout
