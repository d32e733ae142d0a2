"""Evaluation: VOS J / F / J&F exactly as the DAVIS 2017 toolkit and the SA-V evaluator compute
them (per frame, per object, per sequence, global), and click simulation for interactive image
segmentation (mIoU@k, NoC@85/90)."""
from .boundary import boundary_radius, dilate_disk, dilation_at, disk, seg2bmap
from .clicks import (
    Click,
    ClickTrace,
    evaluate_clicks,
    farthest_from_boundary,
    first_click,
    mask_iou,
    next_click,
    number_of_clicks,
    simulate_clicks,
    summarize_clicks,
)
from .dataset import SequenceScores, SequenceTask, detect_layout, evaluate_sequence, read_labels, resolve_mask_root
from .errors import EvaluationError
from .events import SUBSETS, add_subsets, find_events, read_events, score_subsets, subset_members
from .image import (
    CocoImageSamples,
    DavisImageSamples,
    ImageClickResults,
    coco_image_samples,
    davis_image_samples,
    evaluate_image_clicks,
    format_click_table,
    plot_click_curve,
    sam_click_predictor,
    write_click_json,
)
from .metrics import boundary_precision_recall, db_statistics, decay_bounds, f_measure, jaccard
from .report import format_table, plot_sequences, results_csv, write_csv, write_json
from .results import ObjectResult, VOSResults
from .sequence import FrameScores, score_davis_protocol, score_sav_protocol, split_void
from .vos import evaluate_vos, plan_tasks

__all__ = [
    "seg2bmap", "disk", "dilate_disk", "dilation_at", "boundary_radius",
    "jaccard", "f_measure", "boundary_precision_recall", "db_statistics", "decay_bounds",
    "FrameScores", "split_void", "score_davis_protocol", "score_sav_protocol",
    "SequenceTask", "SequenceScores", "evaluate_sequence", "detect_layout", "resolve_mask_root", "read_labels",
    "ObjectResult", "VOSResults", "evaluate_vos", "plan_tasks", "EvaluationError",
    "SUBSETS", "read_events", "find_events", "subset_members", "score_subsets", "add_subsets",
    "results_csv", "write_csv", "write_json", "format_table", "plot_sequences",
    "Click", "ClickTrace", "first_click", "next_click", "farthest_from_boundary", "mask_iou",
    "simulate_clicks", "number_of_clicks", "summarize_clicks", "evaluate_clicks",
    "evaluate_image_clicks", "sam_click_predictor", "ImageClickResults", "DavisImageSamples", "CocoImageSamples",
    "davis_image_samples", "coco_image_samples", "format_click_table", "write_click_json", "plot_click_curve",
]
