"""The cache's shards read in place: the same rows as the array they hold, views that copy no pixels, small
pickles, digests from the shards' own records."""
import pickle

import numpy as np
import pytest
import torch

from dfsweep.data import ShardedImages, gather_rows, images_to_tensor
from dfsweep.data.shards import CACHE_ENV, Shard, read_meta, shard_dir, write_shard
from tinydata import bright_patch_set, in_cache


@pytest.fixture
def pair(tmp_path):
    """(an in-memory set of 40 images, the same set in 6 shards of 7 rows and one of 5)"""
    data = bright_patch_set(n_real=30, n_fake=10, size=32, patch=8, margin=4)
    return data, in_cache(data, tmp_path / "cache")


def test_rows_read_from_the_shards_are_the_array_rows(pair):
    data, cached = pair
    images = cached.images
    assert isinstance(images, ShardedImages) and len(images.shards) == 6 and images.shape == data.images.shape
    np.testing.assert_array_equal(np.asarray(images), data.images)
    rows = np.random.default_rng(0).permutation(40)[:17]
    np.testing.assert_array_equal(images[rows], data.images[rows])
    np.testing.assert_array_equal(images[5:33], data.images[5:33])
    np.testing.assert_array_equal(images[39], data.images[39])
    np.testing.assert_array_equal(images[3, 0, 1], data.images[3, 0, 1])


def test_views_and_concatenations_read_the_same_shards(pair):
    data, cached = pair
    sub = cached.subset(np.arange(40) % 3 == 0)
    assert isinstance(sub.images, ShardedImages) and sub.images.shards == cached.images.shards
    np.testing.assert_array_equal(np.asarray(sub.images), data.images[::3])
    assert sub.ids == data.ids[::3]
    twice = ShardedImages.concat([sub.images, cached.images.take([4, 2])])
    np.testing.assert_array_equal(np.asarray(twice), np.concatenate([data.images[::3], data.images[[4, 2]]]))


def test_a_pickled_set_names_its_shards_and_holds_no_pixels(pair):
    _, cached = pair
    blob = pickle.dumps(cached.images)
    assert len(blob) < 2000 < cached.images.nbytes
    again = pickle.loads(blob)
    np.testing.assert_array_equal(np.asarray(again), np.asarray(cached.images))


def test_batches_gathered_from_the_cache_equal_those_from_memory(pair):
    data, cached = pair
    mem, disk = images_to_tensor(data.images), images_to_tensor(cached.images)
    assert disk.shape == mem.shape
    rows = torch.tensor([39, 0, 7, 8, 21, 21])
    got, want = gather_rows(disk, rows), gather_rows(mem, rows)
    assert torch.equal(got, want) and got.stride() == want.stride()      # the same channels-last layout
    assert torch.equal(disk[10:18], mem[10:18])


def test_the_digest_follows_the_pixels_not_the_files(tmp_path, pair):
    data, cached = pair
    moved = in_cache(data, tmp_path / "elsewhere", rows_per_shard=7)
    assert moved.images.digest() == cached.images.digest()
    changed = data.images.copy()
    changed[12, 3, 3, 0] ^= 1
    other = in_cache(type(data)(changed, data.labels, None, data.ids), tmp_path / "third")
    assert other.images.digest() != cached.images.digest()
    assert cached.subset([1, 2]).images.digest() != cached.subset([2, 1]).images.digest()


def test_a_node_with_its_own_cache_folder_reads_it_there(tmp_path, pair, monkeypatch):
    _, cached = pair
    images = cached.images
    assert images.missing() == []
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "node-local"))
    assert images.missing() == list(range(6))          # that folder is empty: every shard is to be fetched


def test_a_shard_is_complete_only_with_both_files_and_the_right_size(tmp_path):
    rows = np.zeros((3, 8, 8, 3), np.uint8)
    meta = write_shard(tmp_path, 8, "k", rows, files=4, bad={2: "empty file"})
    assert meta.rows == 3 and meta.kept().tolist() == [True, True, False, True]
    assert read_meta(tmp_path, 8, "k") == meta
    npy = shard_dir(tmp_path, 8) / "k.npy"
    npy.write_bytes(npy.read_bytes()[:-10])                 # cut short
    assert read_meta(tmp_path, 8, "k") is None
    write_shard(tmp_path, 8, "k", rows, files=4, bad={2: "empty file"})
    (shard_dir(tmp_path, 8) / "k.json").unlink()           # the record gone
    assert read_meta(tmp_path, 8, "k") is None
    assert not list(shard_dir(tmp_path, 8).glob("*.tmp"))
    assert ShardedImages(tmp_path, 8, [Shard("k", 3)]).missing() == []
