"""The benchmarks' data root: ``--data-root`` or ``$PRODUCT_NOISE_DATA``, the folders of
:mod:`product_noise.data.roots` (one table for the benchmarks and ``compare --preset``)."""

from product_noise.data.roots import (
    DATASETS,
    ENV,
    add_data_root_argument,
    data_root,
    dataset_dir,
)

__all__ = ["ENV", "DATASETS", "add_data_root_argument", "data_root", "dataset_dir"]
