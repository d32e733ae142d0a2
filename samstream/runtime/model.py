"""`OnnxModel`: an export folder opened on ONNX Runtime, with one call per graph (numpy in, numpy out)."""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from .manifest import GRAPH_NAMES, ExportFolderError, read_manifest

# the config fields the runtime reads (SAM2Config's names); a manifest without one is refused
CONFIG_FIELDS = ("image_size", "backbone_stride", "hidden_dim", "mem_dim", "num_maskmem", "max_obj_ptrs_in_encoder",
                 "max_cond_frames_in_attn", "memory_temporal_stride_for_eval", "use_signed_tpos_enc_to_obj_ptrs",
                 "multimask_min_pt_num", "multimask_max_pt_num", "dynamic_multimask_via_stability",
                 "dynamic_multimask_stability_delta", "dynamic_multimask_stability_thresh",
                 "binarize_mask_from_pts_for_mem_enc", "fill_hole_area")


@dataclass(frozen=True)
class RuntimeConfig:
    """What the tracking loop needs of a SAM2Config (same field names)."""

    image_size: int
    backbone_stride: int
    hidden_dim: int
    mem_dim: int
    num_maskmem: int
    max_obj_ptrs_in_encoder: int
    max_cond_frames_in_attn: int
    memory_temporal_stride_for_eval: int
    use_signed_tpos_enc_to_obj_ptrs: bool
    multimask_min_pt_num: int
    multimask_max_pt_num: int
    dynamic_multimask_via_stability: bool
    dynamic_multimask_stability_delta: float
    dynamic_multimask_stability_thresh: float
    binarize_mask_from_pts_for_mem_enc: bool
    fill_hole_area: int

    @property
    def embed_size(self) -> int:
        return self.image_size // self.backbone_stride

    @property
    def low_res(self) -> int:
        return 4 * self.embed_size

    @classmethod
    def from_manifest(cls, cfg: dict, where: str) -> RuntimeConfig:
        missing = [f for f in CONFIG_FIELDS if f not in cfg]
        if missing:
            raise ExportFolderError(f"{where}: the config lacks {', '.join(missing)}")
        return cls(**{f.name: cfg[f.name] for f in fields(cls)})


def _session_options(threads: int | None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # errors only: shape-merge notes on the traced graphs are harmless
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    return opts


class OnnxModel:
    """The graphs of an export folder (`samstream export`), checked against its manifest.

    providers: ONNX Runtime execution providers (default CPU). threads: intra-op threads (None: ORT's default).
    """

    def __init__(self, folder: str | os.PathLike, providers: list[str] | None = None, threads: int | None = None):
        import onnxruntime as ort

        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        self.cfg = RuntimeConfig.from_manifest(self.manifest["config"], str(self.folder / "manifest.json"))
        pre = self.manifest["preprocessing"]
        if pre.get("image_size") != self.cfg.image_size:
            raise ExportFolderError(f"{self.folder}: preprocessing image_size {pre.get('image_size')} differs from the "
                                    f"config's {self.cfg.image_size}")
        self.inference_defaults = dict(self.manifest.get("inference_defaults") or {})
        providers = providers or ["CPUExecutionProvider"]
        opts = _session_options(threads)
        self.sessions = {}
        for name in GRAPH_NAMES:
            path = self.folder / self.manifest["graphs"][name]["file"]
            try:
                sess = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
            except Exception as e:  # ORT raises its own classes (InvalidProtobuf, Fail, ...) for a broken file
                raise ExportFolderError(f"graph {name!r}: {path} cannot be loaded by ONNX Runtime: "
                                        f"{str(e).splitlines()[0]}") from None
            self._check_signature(name, sess)
            self.sessions[name] = sess

    def _check_signature(self, name: str, sess) -> None:
        """The graph's inputs and outputs must be those the manifest lists (names, ranks, fixed sizes)."""
        entry = self.manifest["graphs"][name]
        for kind, actual in (("inputs", sess.get_inputs()), ("outputs", sess.get_outputs())):
            listed = entry.get(kind, [])
            got = [(a.name, list(a.shape)) for a in actual]
            want = [(v["name"], list(v["shape"])) for v in listed]
            if [g[0] for g in got] != [w[0] for w in want]:
                raise ExportFolderError(f"graph {name!r}: its {kind} are {[g[0] for g in got]}, the manifest lists "
                                        f"{[w[0] for w in want]}")
            for (n, gs), (_, ws) in zip(got, want):
                # inputs: the fixed sizes must agree; outputs: the rank (their sizes are inferred differently)
                same = len(gs) == len(ws) and (kind == "outputs" or all(
                    g == w for g, w in zip(gs, ws) if isinstance(g, int) and isinstance(w, int)))
                if not same:
                    raise ExportFolderError(f"graph {name!r}: {kind[:-1]} {n!r} has shape {gs}, the manifest says {ws}")
        img = sess.get_inputs()[0].shape if name == "image_encoder" else None
        if img is not None and img[-1] != self.cfg.image_size:
            raise ExportFolderError(f"graph 'image_encoder' takes {img[-1]} px images, the manifest's config says "
                                    f"{self.cfg.image_size}")

    # ------------------------------------------------------------------------------ one call per graph
    def _run(self, name: str, **feeds) -> list[np.ndarray]:
        # a graph may lack an input its config does not use (SAM 2.0's memory encoder ignores the object score)
        sess = self.sessions[name]
        return sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()})

    def encode_image(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """(1, 3, S, S) normalised float32 -> {embed, embed_no_mem, pos, high_res_0, high_res_1} (batch 1)."""
        keys = ("embed", "embed_no_mem", "pos", "high_res_0", "high_res_1")
        return dict(zip(keys, self._run("image_encoder", image=image.astype(np.float32))))

    def decode(self, pix, high_res_0, high_res_1, coords, labels, mask_input=None):
        """-> masks (B, 4, L, L), iou (B, 4), obj_ptr (B, 4, C), object_score_logits (B, 1)."""
        b = coords.shape[0]
        lo = self.cfg.low_res
        has = mask_input is not None
        if mask_input is None:
            mask_input = np.zeros((b, 1, lo, lo), dtype=np.float32)
        return self._run("decoder", pix=pix, high_res_0=high_res_0, high_res_1=high_res_1,
                         point_coords=coords.astype(np.float32), point_labels=labels.astype(np.int32),
                         mask_input=mask_input.astype(np.float32), has_mask_input=np.array(has))

    def mask_prompt(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, 1, S, S) {0, 1} -> decoder mask input (B, 1, L, L), the "no object" pointer (B, C)."""
        mask_input, no_obj_ptr = self._run("mask_prompt", mask=mask.astype(np.float32))
        return mask_input, no_obj_ptr

    def encode_memory(self, embed, low_res_masks, scores, binarize: bool) -> np.ndarray:
        """-> maskmem (B, Cm, E, E) float32."""
        return self._run("memory_encoder", embed=embed, low_res_masks=low_res_masks.astype(np.float32),
                         object_score_logits=scores.astype(np.float32), binarize=np.array(bool(binarize)))[0]

    def attend_memory(self, embed, pos, memory, slots, obj_ptr, tpos) -> np.ndarray:
        """-> memory-conditioned features (B, C, E, E)."""
        return self._run("memory_attention", embed=embed, pos=pos, memory=memory.astype(np.float32),
                         memory_slot=slots.astype(np.int64), obj_ptr=obj_ptr.astype(np.float32),
                         obj_ptr_tpos=tpos.astype(np.float32))[0]
