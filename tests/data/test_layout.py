import numpy as np
import torch

from dfsweep.data import gather_rows, images_to_tensor


def _pixels(n=12, size=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_images_to_tensor_is_a_channels_first_view_of_the_pixels():
    pixels = _pixels()
    images = images_to_tensor(pixels)
    assert images.shape == (12, 3, 16, 16) and images.is_contiguous(memory_format=torch.channels_last)
    assert images.data_ptr() == torch.from_numpy(pixels).data_ptr()          # no copy
    assert images[4, 2, 5, 7].item() == pixels[4, 5, 7, 2]


def test_read_only_pixels_give_a_view_without_a_warning(recwarn):
    pixels = _pixels()
    pixels.flags.writeable = False          # as Ray's object store hands it over
    images_to_tensor(pixels)
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_gather_rows_is_indexing_for_the_decoded_layout_and_for_plain_batches():
    images = images_to_tensor(_pixels())             # an N×3×H×W view of N×H×W×3 pixels
    idx = torch.tensor([5, 0, 11, 5])
    assert torch.equal(gather_rows(images, idx), images[idx])
    plain = images.contiguous()
    assert torch.equal(gather_rows(plain, idx), plain[idx])
