"""Reading data folders and CSVs, the decoded-image cache, splits, samplers and the demo set."""
from .dataset import DecodedSet, load_labelled, load_unlabelled
from .decode import FORMAT_VERSION, decode_image, decode_images
from .demo import ensure_demo, generate_demo
from .sampler import balanced_sampler
from .sources import CLASS_NAMES, IMAGE_EXTENSIONS, Listing, list_labelled, list_unlabelled
from .split import split_indices, stratified_fraction

__all__ = [
    "CLASS_NAMES", "DecodedSet", "FORMAT_VERSION", "IMAGE_EXTENSIONS", "Listing",
    "balanced_sampler", "decode_image", "decode_images", "ensure_demo", "generate_demo",
    "list_labelled", "list_unlabelled", "load_labelled", "load_unlabelled", "split_indices", "stratified_fraction",
]
