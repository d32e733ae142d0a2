"""Mask file formats: DAVIS indexed PNGs, SA-V per-object PNG folders and masklet JSON, COCO RLE and
COCO JSON, YOLO segmentation polygons. Readers raise `FormatError` (a ValueError) naming the file
and the field; writers write atomically (temporary file + os.replace) and check every id or name that
becomes part of a path (`safe_name`). Image files open within a pixel limit (`max_image_pixels`)."""
from .atomic import atomic_write_bytes, atomic_write_text
from .coco import CocoFile, mask_to_annotation, read_coco_json, segmentation_to_mask, write_coco_json
from .coco_polygon import polygons_to_mask, polygons_to_rle
from .errors import FormatError
from .folders import (
    frame_name,
    list_pngs,
    list_subdirs,
    object_name,
    read_davis_sequence,
    read_sav_video,
    safe_name,
    write_davis_sequence,
    write_sav_video,
)
from .images import MAX_IMAGE_PIXELS, check_image_size, max_image_pixels, open_image
from .palette import davis_palette
from .png import encode_label_png, read_binary_png, read_label_png, write_binary_png, write_image_png, write_label_png
from .rle import (
    compress_rle,
    counts_to_string,
    decode_counts,
    decode_rle,
    encode_counts,
    encode_rle,
    merge_rles,
    rle_area,
    rle_bbox,
    rle_counts,
    string_to_counts,
)
from .sav import SAV_ANNOTATION_STRIDE, SavMasklets, export_sav_folders, load_sav_json, parse_sav_dict, save_sav_json
from .yolo import (
    fill_polygons,
    format_yolo_labels,
    mask_to_polygons,
    mask_to_yolo,
    read_yolo_labels,
    read_yolo_masks,
    write_yolo_labels,
    write_yolo_masks,
    yolo_to_mask,
)

__all__ = [
    "FormatError",
    "atomic_write_bytes", "atomic_write_text",
    "davis_palette",
    "read_label_png", "write_label_png", "encode_label_png", "read_binary_png", "write_binary_png", "write_image_png",
    "MAX_IMAGE_PIXELS", "max_image_pixels", "check_image_size", "open_image",
    "list_pngs", "list_subdirs", "frame_name", "object_name", "safe_name",
    "read_davis_sequence", "write_davis_sequence", "read_sav_video", "write_sav_video",
    "encode_counts", "decode_counts", "counts_to_string", "string_to_counts", "encode_rle", "decode_rle",
    "rle_counts", "compress_rle", "rle_area", "rle_bbox", "merge_rles",
    "polygons_to_rle", "polygons_to_mask",
    "CocoFile", "mask_to_annotation", "segmentation_to_mask", "read_coco_json", "write_coco_json",
    "SAV_ANNOTATION_STRIDE", "SavMasklets", "load_sav_json", "parse_sav_dict", "save_sav_json", "export_sav_folders",
    "mask_to_polygons", "fill_polygons", "mask_to_yolo", "yolo_to_mask", "format_yolo_labels",
    "read_yolo_labels", "write_yolo_labels", "read_yolo_masks", "write_yolo_masks",
]
