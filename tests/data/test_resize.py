"""A searched resolution: the shared decoded set resized once per trial."""
import numpy as np

from tinydata import bright_patch_set


def test_a_searched_resolution_resizes_the_decoded_set_once():
    from dfsweep.data.resize import at_size
    data = bright_patch_set(size=64)
    assert at_size(data, 64) is data
    small = at_size(data, 32)
    assert small.images.shape == (len(data), 32, 32, 3) and small.images.dtype == np.uint8
    assert (small.labels == data.labels).all() and small.ids == data.ids
    # antialiased: a 2x down-scale of a flat region keeps its value, and the bright patches stay bright
    assert abs(float(small.images.mean()) - float(data.images.mean())) < 1.0
    assert small.images[data.labels == 1].max() >= 240
