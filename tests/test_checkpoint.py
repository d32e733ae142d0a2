"""Official checkpoint layout: strict loading both ways for all eight configs, detection, errors, download."""
from __future__ import annotations

import hashlib
import http.server
import threading
from functools import partial

import pytest
import torch

from samstream import CheckpointError, SAM2Model, download, load, load_model, official_config, save_model
from samstream import checkpoint as ckpt
from samstream.checkpoint import detect_config, load_into, read_state_dict
from tests.oracle import YAML, reference_state_dict


@pytest.mark.oracle
@pytest.mark.parametrize("name", list(YAML))
def test_official_layout_round_trip(name, tmp_path):
    from sam2.build_sam import build_sam2

    sd = reference_state_dict(name)
    assert detect_config(sd).name == name
    ours = SAM2Model(official_config(name))
    missing, unexpected = ours.load_state_dict(sd, strict=False)
    assert missing == [] and unexpected == []
    # ours -> file -> the reference, strictly (build_sam2 loads with strict=True and raises otherwise)
    path = save_model(ours, tmp_path / f"{name}.pt")
    ref = build_sam2(YAML[name], ckpt_path=str(path), device="cpu")
    for k, v in ref.state_dict().items():
        assert torch.equal(v, sd[k]), k
    # and through our own loader, detecting the config from the tensors
    loaded = load_model(path)
    assert loaded.cfg.name == name
    assert torch.equal(loaded.state_dict()["no_obj_ptr"], sd["no_obj_ptr"])


def test_safetensors_round_trip_keeps_custom_config(tmp_path):
    from samstream.model import HieraConfig, SAM2Config

    cfg = SAM2Config(name="mini", image_size=256, hidden_dim=64, mem_dim=32, mem_attn_ffn_dim=128,
                     decoder_mlp_dim=128,
                     trunk=HieraConfig(embed_dim=16, num_heads=1, stages=(1, 1, 2, 1), global_att_blocks=(3,),
                                       window_pos_embed_bkg_spatial_size=(4, 4)))
    m = SAM2Model(cfg)
    path = save_model(m, tmp_path / "mini.safetensors")
    back = load_model(path)
    assert back.cfg.hidden_dim == 64 and back.cfg.trunk.stages == (1, 1, 2, 1)
    for k, v in m.state_dict().items():
        assert torch.equal(v, back.state_dict()[k]), k
    # the .pt form of a custom model carries its config too
    back_pt = load_model(save_model(m, tmp_path / "mini.pt"))
    assert back_pt.cfg.trunk.embed_dim == 16


def test_inference_defaults_travel_with_the_weights(tmp_path):
    """A model's inference defaults (output settings, not architecture) are written beside its config and read
    back by load_model, in both file forms; an official .pt holds them only when they are not all off."""
    from samstream.postprocess import MaskPostprocess

    m = SAM2Model(official_config("sam2.1_hiera_tiny"))
    assert m.inference_defaults == MaskPostprocess()
    m.inference_defaults = MaskPostprocess(edge_refine_radius=0.5, min_region_area=7)
    for suffix in ("safetensors", "pt"):
        assert load_model(save_model(m, tmp_path / f"m.{suffix}")).inference_defaults == m.inference_defaults
    m.inference_defaults = MaskPostprocess()
    assert set(torch.load(save_model(m, tmp_path / "off.pt"), weights_only=True)) == {"model"}  # Meta's layout


def test_files_with_edge_refinement_in_the_config_still_load(tmp_path):
    """Files written when the edge refinement was a config field: its values become inference defaults."""
    import json

    from safetensors.torch import save_file

    from samstream.model import SAM2Config

    m = SAM2Model(official_config("sam2.1_hiera_tiny"))
    old = {**json.loads(m.cfg.to_json()), "edge_refine_radius": 0.75, "edge_refine_eps": 0.002}
    sd = {k: v.contiguous() for k, v in m.state_dict().items()}
    save_file(sd, str(tmp_path / "old.safetensors"), metadata={ckpt.CONFIG_METADATA_KEY: json.dumps(old)})
    back = load_model(tmp_path / "old.safetensors")
    assert back.cfg == m.cfg and SAM2Config.from_json(json.dumps(old)) == m.cfg
    assert (back.inference_defaults.edge_refine_radius, back.inference_defaults.edge_refine_eps) == (0.75, 0.002)
    torch.save({"model": sd, ckpt.CONFIG_METADATA_KEY: json.dumps(old)}, tmp_path / "old.pt")
    assert load_model(tmp_path / "old.pt").inference_defaults.edge_refine_radius == 0.75


def test_not_a_checkpoint(tmp_path):
    bad = tmp_path / "notes.pt"
    bad.write_text("hello")
    with pytest.raises(CheckpointError, match="cannot be read as a PyTorch checkpoint"):
        load_model(bad)


def test_truncated_checkpoint(tmp_path):
    path = save_model(SAM2Model(official_config("sam2.1_hiera_tiny")), tmp_path / "t.pt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_model(path)


def test_truncated_safetensors(tmp_path):
    from samstream.model import HieraConfig, SAM2Config

    cfg = SAM2Config(image_size=256, trunk=HieraConfig(embed_dim=16, stages=(1, 1, 1, 1), global_att_blocks=()))
    path = save_model(SAM2Model(cfg), tmp_path / "t.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_model(path)


def test_sam1_checkpoint_is_named(tmp_path):
    path = tmp_path / "sam_vit_b.pth"
    torch.save({"image_encoder.patch_embed.proj.weight": torch.zeros(768, 3, 16, 16),
                "image_encoder.blocks.0.attn.qkv.weight": torch.zeros(2304, 768)}, path)
    with pytest.raises(CheckpointError, match="Segment Anything 1"):
        load_model(path)


@pytest.mark.oracle
def test_missing_and_misshaped_tensors_are_listed():
    sd = reference_state_dict("sam2.1_hiera_tiny")
    del sd["no_obj_ptr"]
    sd["maskmem_tpos_enc"] = torch.zeros(5, 1, 1, 64)
    with pytest.raises(CheckpointError, match=r"1 missing.*no_obj_ptr.*other shapes.*maskmem_tpos_enc"):
        load_into(SAM2Model(official_config("sam2.1_hiera_tiny")), sd)


@pytest.mark.oracle
def test_wrong_model_for_config(tmp_path):
    from samstream.compat import build_sam2

    path = tmp_path / "small.pt"
    torch.save({"model": reference_state_dict("sam2.1_hiera_small")}, path)
    with pytest.raises(ValueError, match=r"holds a sam2.1_hiera_small model, but the config asks for "
                                          "sam2.1_hiera_tiny"):
        build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", str(path), device="cpu")
    assert build_sam2("configs/sam2.1/sam2.1_hiera_s.yaml", str(path), device="cpu").cfg.name == "sam2.1_hiera_small"


def test_official_names():
    assert official_config("facebook/sam2.1-hiera-base-plus").name == "sam2.1_hiera_base_plus"
    assert official_config("configs/sam2/sam2_hiera_l.yaml").name == "sam2_hiera_large"
    assert official_config("sam2.1_hiera_t").name == "sam2.1_hiera_tiny"
    with pytest.raises(ValueError, match="unknown model name"):
        official_config("sam3_hiera_tiny")


# ------------------------------------------------------------------------------------ download
class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files with HTTP Range support, as the checkpoint host does."""

    def log_message(self, *a):
        pass

    def do_GET(self):
        path = self.translate_path(self.path)
        with open(path, "rb") as f:
            data = f.read()
        start = 0
        if "Range" in self.headers:
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
            self.send_response(206)
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_RangeHandler, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_port}/"
    httpd.shutdown()


@pytest.mark.oracle
def test_download_resume_and_checksum(server, tmp_path, monkeypatch):
    root, base = server
    sd = reference_state_dict("sam2.1_hiera_tiny")
    src = root / "sam2.1_hiera_tiny.pt"
    torch.save({"model": sd}, src)
    data = src.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    monkeypatch.setitem(download.CHECKPOINT_FILES, "sam2.1_hiera_tiny", (base + src.name, len(data), sha))
    cache = tmp_path / "cache"
    monkeypatch.setenv("SAMSTREAM_CACHE", str(cache))
    cache.mkdir()
    (cache / (src.name + ".part")).write_bytes(data[:1000])  # an interrupted earlier download
    model = load_model("sam2.1-hiera-tiny")
    assert model.cfg.name == "sam2.1_hiera_tiny"
    assert (cache / src.name).read_bytes() == data
    assert not (cache / (src.name + ".part")).exists()
    # a corrupted cached file is refused, with the reason
    corrupt = bytearray(data)
    corrupt[len(data) // 2] ^= 0xFF
    (cache / src.name).write_bytes(bytes(corrupt))
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_model("sam2.1-hiera-tiny")


def test_download_size_mismatch(server, tmp_path, monkeypatch):
    root, base = server
    (root / "sam2_hiera_tiny.pt").write_bytes(b"x" * 100)
    monkeypatch.setitem(download.CHECKPOINT_FILES, "sam2_hiera_tiny", (base + "sam2_hiera_tiny.pt", 99, None))
    with pytest.raises(CheckpointError, match="100 bytes, expected 99"):
        download.download_checkpoint("sam2_hiera_tiny", tmp_path / "c", progress=False)


def test_offline_error_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setitem(download.CHECKPOINT_FILES, "sam2.1_hiera_large",
                        ("http://127.0.0.1:9/sam2.1_hiera_large.pt", 1, None))
    monkeypatch.setenv("SAMSTREAM_CACHE", str(tmp_path))
    with pytest.raises(CheckpointError, match=f"put it at {tmp_path}/sam2.1_hiera_large.pt"):
        load_model("sam2.1-hiera-large")


def test_read_state_dict_bare(tmp_path):
    sd = SAM2Model(official_config("sam2_hiera_tiny")).state_dict()
    torch.save(sd, tmp_path / "bare.pt")
    got, cfg = read_state_dict(tmp_path / "bare.pt")
    assert cfg is None and detect_config(got).name == "sam2_hiera_tiny"


def test_unknown_name_or_missing_file():
    with pytest.raises(FileNotFoundError, match="not an official model name"):
        load_model("/no/such/dir/model.pt")
    with pytest.raises(FileNotFoundError, match="checkpoint not found: sam3-huge"):
        load_model("sam3-huge")


def test_hub_style_names_download(tmp_path, monkeypatch):
    """"facebook/sam2.1-hiera-tiny" is a name to download, not a relative path."""
    seen = []
    monkeypatch.setattr(load, "download_checkpoint", lambda name: seen.append(name) or (_ for _ in ()).throw(
        CheckpointError("stop")))
    with pytest.raises(CheckpointError, match="stop"):
        load_model("facebook/sam2.1-hiera-tiny")
    assert seen == ["facebook/sam2.1-hiera-tiny"]


# ------------------------------------------------------------------------------------ weights and devices
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(tmp_path, value):
    """NaN weights load and every mask comes out empty: refuse them, naming the file and the tensor."""
    from tests.helpers import small_model

    m = small_model()
    with torch.no_grad():
        m.sam_mask_decoder.iou_token.weight[0, 3] = value
        m.no_obj_ptr.fill_(value)
    for suffix in ("pt", "safetensors"):
        path = save_model(m, tmp_path / f"bad.{suffix}")
        with pytest.raises(CheckpointError, match=rf"{path}: tensor '\S+' \(and 1 more\) holds NaN or infinite"):
            load_model(path)
    sd = {**m.state_dict(), "no_obj_ptr": torch.zeros_like(m.no_obj_ptr)}  # one bad tensor left
    with pytest.raises(CheckpointError, match=r"x\.pt: tensor 'sam_mask_decoder\.iou_token\.weight' holds NaN"):
        load_into(small_model(), sd, "x.pt")


def test_an_unknown_or_absent_device_is_named(tmp_path, monkeypatch):
    from tests.helpers import small_model

    path = save_model(small_model(), tmp_path / "m.pt")
    with pytest.raises(ValueError, match="unknown device 'foo'; available here: cpu"):
        load_model(path, device="foo")
    with pytest.raises(ValueError, match="unknown device 'foo'"):  # checked before any download
        load_model("sam2.1-hiera-large", device="foo")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    with pytest.raises(ValueError, match=r"device 'cuda': CUDA is not available \(.*\); available here: cpu"):
        load_model(path, device="cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ValueError, match="device 'cuda:3': there is no GPU 3; available here: cpu, cuda:0"):
        load_model(path, device="cuda:3")
    assert load_model(path, device=torch.device("cpu")).no_obj_ptr.device.type == "cpu"
