"""Datasets as in-memory tensors: digits (embedded), Fashion-MNIST (IDX files), CIFAR-10 (python batches).

``load_dataset(name, data_dir=None, split_seed=0, subset=None, resize=None)`` gives a ``Dataset`` with
seeded train/validation/test ``Split``s, normalised with the training split's statistics;
``dataset_info(name)`` gives its input shape and classes without reading any file. ``load_dense_dataset`` gives
segmentation/detection data (masks, boxes): built-in multi-scale canvases or a user's COCO / mask files.
"""

from __future__ import annotations

from nasforge.data._dataset import Dataset
from nasforge.data._dense import DenseDataset, DenseSplit, list_dense_datasets, load_dense_dataset
from nasforge.data._loaders import dataset_info, list_datasets, load_dataset

__all__ = ["Dataset", "DenseDataset", "DenseSplit", "dataset_info", "list_datasets", "list_dense_datasets",
           "load_dataset", "load_dense_dataset"]
