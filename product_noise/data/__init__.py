"""Benchmark datasets of the convex-ERM experiments, read from local upstream files.

Every loader takes the directory holding the upstream files (nothing is downloaded), applies the
preprocessing of Chaudhuri et al. (JMLR 2011) and the dpml benchmark (Iyengar et al., IEEE S&P
2019) with a fixed seed, splits the first 80 % for
training, and optionally caches the result (``cache_dir=``). A missing file raises
:class:`DatasetNotFoundError` naming the expected file and where the upstream data comes from.
"""

from .loaders import (
    LOADERS,
    Dataset,
    DatasetNotFoundError,
    column_max_normalize,
    load_adult,
    load_dataset,
    load_kddcup99,
    load_mnist,
    load_rcv1,
    load_realsim,
    load_synthetic_h,
    load_synthetic_l,
    normalize_rows,
    read_idx,
)

__all__ = [
    "LOADERS",
    "Dataset",
    "DatasetNotFoundError",
    "column_max_normalize",
    "load_adult",
    "load_dataset",
    "load_kddcup99",
    "load_mnist",
    "load_rcv1",
    "load_realsim",
    "load_synthetic_h",
    "load_synthetic_l",
    "normalize_rows",
    "read_idx",
]
