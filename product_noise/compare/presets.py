"""Real-data presets: the product-noise paper's experiments on the data that can be had offline.

``product-noise compare --preset NAME --data-root DIR`` runs one experiment (``paper``: all of
them). Each is a comparison at the paper's own figure, the ε its official code claims at its
default settings:

* ``dpsgd-product-paper``: product noise at the paper's calibration, its *claimed* ε hitting
  the paper's figure, with its *verified* ε beside it;
* ``dpsgd-gaussian``: Gaussian DP-SGD at that same ε, *verified* (Opacus' PRV accountant);
* ``dpsgd-product`` and ``dpsgd-l2``: product noise and the ℓ2 mechanism calibrated honestly,
  so that their *verified* ε is that figure;
* ``dpmix-global``, ``dpmix-class``: DPMix at that verified ε, where the data have the bounded
  features DPMix needs (images);
* ``nonprivate-nn`` / ``nonprivate-logreg``: the non-private reference.

The paper's settings (model, optimiser, learning rate, batch, epochs, clip norm, k) and its
claimed figures are those of the official code's defaults (Liu, Ji, Fang, Wei and Li, "Product
noise", SIGMOD 2026, arXiv 2512.06253; code ``issleepgroup/Product_Noise-ERM``); the paper's
accuracy tables could not be read, so no paper accuracy is quoted anywhere.

The data root (``--data-root`` or ``$PRODUCT_NOISE_DATA``) holds one folder per data set
(:mod:`product_noise.data.roots`). A preset whose files are missing is reported with the files
and where they come from; the other presets still run. ``--quick`` runs every preset on a
seeded few hundred rows for one epoch (CI, on fixture files).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial  # models as picklable factories: runs go to worker processes
from pathlib import Path
from typing import Any

from .config import ConfigError

__all__ = ["PaperSetting", "Preset", "PRESETS", "PAPER_PRESETS", "get_preset", "preset_names"]

#: the mechanisms of every DP-SGD preset
DPSGD_ROWS = (
    "dpsgd-product-paper",
    "dpsgd-gaussian",
    "dpsgd-product",
    "dpsgd-l2",
    "nonprivate-nn",
)
#: ... and of the image presets, where DPMix applies (pixels in [0, 1] bound its features)
IMAGE_ROWS = DPSGD_ROWS[:-1] + ("dpmix-global", "dpmix-class", "nonprivate-nn")
#: the mechanisms of the convex-ERM presets: output, objective and AMP perturbation with each
#: built-in noise, and the non-private logistic regression minimising the same objective
ERM_ROWS = ("erm", "nonprivate-logreg")
#: training rows (and test rows) of the ``--quick`` form
QUICK_TRAIN, QUICK_TEST = 512, 256
#: steps of the ``--quick`` form's one epoch: enough for the paper's composition (which has no
#: finite claimed ε below about 37 steps)
QUICK_STEPS = 64


@dataclass(frozen=True)
class PaperSetting:
    """What the paper's official code runs for one experiment, and what it claims.

    Attributes
    ----------
    dataset : str
        The paper's data set (e.g. ``"MNIST (60,000 / 10,000)"``).
    model : str
        The paper's model and its number of parameters M.
    settings : str
        Optimiser, learning rate, batch, epochs, clip norm C, per-step ε₀ and k.
    claimed_epsilon, claimed_delta : float or None
        The (ε', δ') the code's composition claims at its defaults (``None`` for convex ERM,
        which sweeps an ε grid).
    """

    dataset: str
    model: str
    settings: str
    claimed_epsilon: float | None = None
    claimed_delta: float | None = None


@dataclass(frozen=True)
class Preset:
    """One real-data experiment of ``compare --preset``.

    Attributes
    ----------
    name : str
        The preset's name (``--preset NAME``).
    title : str
        One line for the results page.
    folder : str
        Its folder under the data root (:data:`product_noise.data.roots.DATASETS`).
    paper : PaperSetting
        The paper's experiment it stands for.
    here : str
        What runs here instead, when the paper's data are not available (else empty).
    epsilons, seeds : tuple
        Target ε (the paper's figure) and seeds.
    mechanisms : tuple of str
        Mechanisms or groups of ``compare``.
    build : callable
        ``build(folder, quick) -> (tasks, config overrides)``.
    large : bool
        A network big enough that its runs train on every usable core (the calibrations are
        done before training starts), not on one thread.
    """

    name: str
    title: str
    folder: str
    paper: PaperSetting
    here: str
    epsilons: tuple[float, ...]
    seeds: tuple[int, ...]
    mechanisms: tuple[str, ...]
    build: Callable[[Path, bool], tuple[list[Any], dict[str, Any]]] = field(repr=False)
    large: bool = False


# ====================================================================== task builders
def _subset(ds: Any, n: int) -> Any:
    """The first ``n`` items of a TensorDataset (the loaders' splits are already shuffled)."""
    from torch.utils.data import TensorDataset

    return TensorDataset(*(t[:n] for t in ds.tensors))


def _quick(data: Any, quick: bool, batch: int) -> tuple[Any, Any, int]:
    """``(train, test, batch size)``: the data and the paper's batch, or for ``--quick`` the
    first rows and a batch giving :data:`QUICK_STEPS` steps per epoch."""
    if not quick:
        return data.train, data.test, batch
    train = _subset(data.train, QUICK_TRAIN)
    return train, _subset(data.test, QUICK_TEST), max(1, len(train) // QUICK_STEPS)


def _normalised_convnet() -> Any:
    """The paper's MNIST ``SampleConvNet`` (26,010 parameters) behind the paper's input
    normalisation ((x − 0.1307)/0.3081, no parameters), so the data stay pixels in [0, 1]
    for DPMix while the network sees exactly the paper's inputs."""
    from torch import nn
    from torchvision.transforms import v2

    from ..data.dpsgd import MNIST_MEAN_STD
    from ..training.models import SampleConvNet

    mean, std = MNIST_MEAN_STD
    return nn.Sequential(v2.Normalize([mean], [std]), SampleConvNet())


def _dpsgd_task(
    name: str,
    data: Any,
    model: Callable[[], Any],
    model_name: str,
    quick: bool,
    *,
    batch: int,
    epochs: int,
    **settings: Any,
) -> tuple[list[Any], dict[str, Any]]:
    """One preset's :class:`~product_noise.compare.tasks.DPSGDTask` (δ = 1e-5, the paper's
    batch and epochs; ``--quick``: its first rows, one epoch of :data:`QUICK_STEPS` steps)."""
    from .tasks import DPSGDTask

    train, test, b = _quick(data, quick, batch)
    epochs = 1 if quick else epochs
    task = DPSGDTask(name, train, test, model, batch_size=b, epochs=epochs, delta=1e-5, **settings)
    task.model_name = model_name
    return [task], {}


def _mnist_task(name: str, *, test_split: bool) -> Callable[[Path, bool], Any]:
    def build(folder: Path, quick: bool) -> tuple[list[Any], dict[str, Any]]:
        import torch
        from torchvision.transforms import v2

        from ..data.dpsgd import load_mnist_dpsgd

        pixels = v2.ToDtype(torch.float32, scale=True)  # uint8 → [0, 1]
        data = load_mnist_dpsgd(folder, train_on_test_split=test_split, transform=pixels)
        return _dpsgd_task(
            name, data, _normalised_convnet, "SampleConvNet", quick, batch=256, epochs=50,
            lr=0.15, momentum=0.0, max_grad_norm=1.0, image_shape=(1, 28, 28),
        )  # fmt: skip

    return build


def _adult_task(folder: Path, quick: bool) -> tuple[list[Any], dict[str, Any]]:
    from ..data.dpsgd import load_adult_dpsgd
    from ..training.models import AdultMLP

    data = load_adult_dpsgd(folder)
    d = int(data.info["in_features"])
    return _dpsgd_task(
        "adult", data, partial(AdultMLP, d), "AdultMLP", quick, batch=256, epochs=40,
        lr=0.15, momentum=0.0, max_grad_norm=1.0,
    )  # fmt: skip


def _imdb_task(folder: Path, quick: bool) -> tuple[list[Any], dict[str, Any]]:
    from ..data.dpsgd import load_imdb
    from ..training.models import ImdbNet

    data = load_imdb(folder)
    vocab = int(data.info["vocab_size"])
    return _dpsgd_task(
        "imdb", data, partial(ImdbNet, vocab), "ImdbNet", quick, batch=512, epochs=60,
        optimizer="adam", lr=0.02, max_grad_norm=1.0,
    )  # fmt: skip


def _movielens_task(folder: Path, quick: bool) -> tuple[list[Any], dict[str, Any]]:
    from ..data.dpsgd import load_movielens
    from ..training.models import NeuMF

    data = load_movielens(folder)
    users, items = int(data.info["num_users"]), int(data.info["num_items"])
    return _dpsgd_task(
        "movielens-100k", data, partial(NeuMF, users, items), "NeuMF", quick, batch=10_000,
        epochs=20, optimizer="adam", lr=0.01, max_grad_norm=5.0,
    )  # fmt: skip


def _erm_data(name: str, lam: float) -> Callable[[Path, bool], Any]:
    """Convex ERM on a built-in dataset with the paper's λ for it (one λ for every row, the
    non-private reference included; :data:`~product_noise.compare.config.SETTINGS_RULE`)."""

    def build(folder: Path, quick: bool) -> tuple[list[Any], dict[str, Any]]:
        cfg: dict[str, Any] = {"erm_dataset": name, "data_root": folder, "erm_lam": lam}
        if quick:
            cfg["max_train"] = QUICK_TRAIN
        return [], cfg

    return build


# ====================================================================== the presets
_MNIST_PAPER = PaperSetting(
    dataset="MNIST (60,000 train / 10,000 test)",
    model="Opacus' SampleConvNet, M = 26,010",
    settings="SGD lr 0.15, no momentum, Poisson batches of 256, 50 epochs, C = 1, Δ = 2C, "
    "ε₀ = 0.3, k = 40,000 (claimed δ₀ = 1.98e-7 per step)",
    claimed_epsilon=0.992,
    claimed_delta=9.87e-6,
)

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "fashion-mnist",
            "Fashion-MNIST with the paper's MNIST network and settings",
            "fashion-mnist",
            _MNIST_PAPER,
            "the MNIST training images are not available here; the full Fashion-MNIST "
            "(60,000 / 10,000 IDX images of the same format) stands in",
            (0.992,),
            (0,),
            IMAGE_ROWS,
            _mnist_task("fashion-mnist", test_split=False),
            large=True,
        ),
        Preset(
            "mnist-test-split",
            "MNIST's 10,000 real test images split 80/20, the paper's MNIST settings",
            "mnist",
            _MNIST_PAPER,
            "the MNIST training images are not available here; a seeded 80/20 split of the "
            "10,000 real test images (8,000 / 2,000) stands in",
            (0.992,),
            (0, 1, 2),
            IMAGE_ROWS,
            _mnist_task("mnist-test-split", test_split=True),
            large=True,
        ),
        Preset(
            "adult",
            "UCI Adult, the paper's MLP and settings",
            "adult",
            PaperSetting(
                dataset="UCI Adult adult.data, 80/20 split (seed 42), one-hot, standardised",
                model="MLP d→16→2",
                settings="SGD lr 0.15, Poisson batches of 256, 40 epochs, C = 1, Δ = 2C, "
                "ε₀ = 0.8, k = 150,000",
                claimed_epsilon=4.909,
                claimed_delta=1.08e-5,
            ),
            "the same data; DPMix does not apply (standardised features have no declared bound)",
            (4.909,),
            (0, 1, 2),
            DPSGD_ROWS,
            _adult_task,
        ),
        Preset(
            "imdb",
            "IMDB sentiment: the 1,000 labelled sentences, the paper's bag-of-embeddings net",
            "imdb",
            PaperSetting(
                dataset="IMDB reviews (25,000 train / 25,000 test), bert-base-cased tokens, "
                "length 256",
                model="Embedding(28,996, 16) → mean → 16 → 2, M = 464,242",
                settings="Adam lr 0.02, batches of 512 (not Poisson), 60 epochs, C = 1, "
                "Δ = 2C, ε₀ = 1, k = 40,000",
                claimed_epsilon=12.99,
                claimed_delta=6.5e-6,
            ),
            "the full IMDB reviews are not available here; the 1,000 IMDB labelled sentences "
            "(UCI Sentiment Labelled Sentences, 800 / 200) stand in, tokenised by words with "
            "the paper's vocabulary size, Poisson-sampled; DPMix does not apply (token ids)",
            (12.99,),
            (0, 1, 2),
            DPSGD_ROWS,
            _imdb_task,
            large=True,
        ),
        Preset(
            "movielens-100k",
            "MovieLens ratings as 5-class prediction, the paper's NeuMF-like net",
            "movielens-100k",
            PaperSetting(
                dataset="MovieLens-1M (800,000 train ratings)",
                model="NeuMF-like (MF dim 5, MLP dim 10), M = 146,320 on ML-1M",
                settings="Adam lr 0.01, Poisson batches of 10,000, 20 epochs, C = 5, Δ = 2C, "
                "ε₀ = 0.8, k = 20,000; the paper reports RMSE",
                claimed_epsilon=3.876,
                claimed_delta=5.9e-6,
            ),
            "MovieLens-1M is not available here; MovieLens 100K (80,000 / 20,000 ratings, "
            "seeded split) stands in; the metric is the 5-class accuracy; DPMix does not apply "
            "(user and item ids); one seed: per-example gradients of the embeddings at batch "
            "10,000 make a run take minutes on a CPU",
            (3.876,),
            (0,),
            DPSGD_ROWS,
            _movielens_task,
            large=True,
        ),
        Preset(
            "adult-erm",
            "Convex ERM on UCI Adult: output, objective and AMP perturbation",
            "adult",
            PaperSetting(
                dataset="UCI Adult, rows of norm ≤ 1",
                model="ℓ2-regularised logistic regression (λ = 1e-4 for every data set "
                "but KDD Cup 99 in the paper's code; its Adult pipeline is not in it)",
                settings="output perturbation (k = 1,000) and AMP with product noise, "
                "ε swept over a grid, δ = 1/n²",
            ),
            "",
            (0.1, 1.0),
            (0, 1, 2),
            ERM_ROWS,
            _erm_data("adult", 1e-4),
        ),
        Preset(
            "kddcup99-erm",
            "Convex ERM on KDD Cup 99 (10%): output, objective and AMP perturbation",
            "kddcup99",
            PaperSetting(
                dataset="KDD Cup 99 10%, 70,000 rows sampled, one-hot",
                model="ℓ2-regularised logistic regression (λ = 0.01 in the paper's code)",
                settings="output perturbation (k = 1,000) and AMP with product noise, "
                "ε swept over a grid, δ = 1/n²",
            ),
            "",
            (0.1, 1.0),
            (0, 1, 2),
            ERM_ROWS,
            _erm_data("kddcup99", 1e-2),
        ),
    )
}
#: what ``--preset paper`` runs, in order: the full-size image set, the tabular sets (DP-SGD,
#: then convex ERM), then the stand-ins of the sets not available here
PAPER_PRESETS = (
    "fashion-mnist",
    "adult",
    "adult-erm",
    "kddcup99-erm",
    "mnist-test-split",
    "imdb",
    "movielens-100k",
)


def preset_names() -> tuple[str, ...]:
    """Every name ``--preset`` accepts (``paper``: all of them)."""
    return (*PRESETS, "paper")


def get_preset(name: str) -> list[Preset]:
    """The presets ``--preset name`` runs.

    Raises
    ------
    ConfigError
        For an unknown name (one line listing the known ones).
    """
    if name == "paper":
        return [PRESETS[n] for n in PAPER_PRESETS]
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(preset_names())}")
    return [PRESETS[name]]
