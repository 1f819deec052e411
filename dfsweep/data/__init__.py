"""Reading data folders and CSVs, the decoded-image cache and its tensor layout, splits (leave-one-domain-out
too), samplers and the demo set."""
from .dataset import DecodedSet, load_labelled, load_unlabelled, load_val_sets
from .decode import FORMAT_VERSION, decode_image, decode_images
from .demo import ensure_demo, generate_demo
from .domains import hold_out_domain
from .layout import gather_rows, images_to_tensor
from .sampler import balanced_sampler
from .sources import CLASS_NAMES, IMAGE_EXTENSIONS, Listing, list_labelled, list_unlabelled
from .split import split_indices, stratified_fraction

__all__ = [
    "CLASS_NAMES", "DecodedSet", "FORMAT_VERSION", "IMAGE_EXTENSIONS", "Listing",
    "balanced_sampler", "decode_image", "decode_images", "ensure_demo", "gather_rows", "generate_demo",
    "hold_out_domain", "images_to_tensor", "list_labelled", "list_unlabelled", "load_labelled", "load_unlabelled",
    "load_val_sets", "split_indices", "stratified_fraction",
]
