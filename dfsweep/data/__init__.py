"""Reading data folders and CSVs, the decoded-image cache (shards read in place) and its tensor layout, splits
(leave-one-domain-out too), samplers and the demo set.

Names are imported on first use (PEP 562): a Ray task that only decodes images (`cluster_cache`) imports Pillow
and numpy, not torch, and stays a fraction of a trial's size."""
from importlib import import_module

_WHERE = {
    "DecodedSet": "dataset", "load_labelled": "dataset", "load_unlabelled": "dataset", "load_val_sets": "dataset",
    "decode_images": "cache",
    "FORMAT_VERSION": "decode", "decode_image": "decode",
    "ensure_demo": "demo", "generate_demo": "demo",
    "hold_out_domain": "domains",
    "CachedRows": "layout", "gather_rows": "layout", "images_to_tensor": "layout", "pixels_on": "layout",
    "ShardedImages": "shards",
    "balanced_sampler": "sampler",
    "CLASS_NAMES": "sources", "IMAGE_EXTENSIONS": "sources", "Listing": "sources", "list_labelled": "sources",
    "list_unlabelled": "sources",
    "split_indices": "split", "stratified_fraction": "split",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
