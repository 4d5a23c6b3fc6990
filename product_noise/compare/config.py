"""What a comparison runs: mechanisms, ε grid, seeds, datasets and training settings.

A :class:`CompareConfig` is built from defaults (:func:`default_config`), the ``--quick`` preset
(:func:`quick_config`), a TOML file (:func:`load_toml`) and command-line overrides, then checked
as a whole by :meth:`CompareConfig.validate` before anything is trained.

Mechanism names
---------------
``dpsgd-gaussian``        DP-SGD, Gaussian noise calibrated by Opacus (PRV; verified)
``dpsgd-product-paper``   DP-SGD, product noise at the paper's calibration: the *claimed* ε hits
                          the target; its verified ε is reported beside it (often inf)
``dpsgd-product``         DP-SGD, product noise calibrated so the *verified* ε hits the target
``dpsgd-l2``              DP-SGD, ℓ2 mechanism at the verified target
``dpmix-global``          DPMix (global mixing, noisy soft labels) at the verified target
``dpmix-class``           DPMix (class-conditional mixing, public labels) at the verified target
``erm-<method>-<noise>``  private logistic regression; method ``output``, ``objective``,
                          ``amp``, ``ppssgd``; noise ``gaussian``, ``gamma`` (pure ε),
                          ``product-paper`` (claimed target), ``product`` (verified target),
                          ``l2``, ``classic-gaussian`` (claimed target)
``adlm-paper``            AdLM as its code runs it: the *claimed* ε₁+ε₂+ε₃ hits the target
``adlm``                  AdLM's honest variant at the verified target
``ldp-paper``             local-DP input noise, the blog's calibration (claimed target)
``ldp``                   local-DP input noise, Δ = √2, analytic, labels by randomized response
``dpgen-paper``           DP image generator (error-feedback DP-SGD) at the lineage's claimed ε
``dpgen``                 DP image generator at the joint per-step (verified) target
``nonprivate-nn``         the DP-SGD/DPMix network trained without noise (reference)
``nonprivate-logreg``     non-private logistic regression (reference)

Groups: ``dpsgd``, ``dpmix``, ``erm`` (output/objective/AMP × gaussian/gamma/product-paper/
product), ``baselines`` (AdLM, local-DP input noise, DP generator), ``nonprivate``,
``default`` (everything except the slow DP generator; the default), ``all``, and ``user``.

How λ and the training settings are chosen
------------------------------------------
One rule, the same for private and non-private rows (:data:`SETTINGS_RULE`, repeated in every
``report.md``):

* **Convex ERM.** One λ (``erm_lam``, default 1e-2) for every ERM row, private and the
  non-private ``nonprivate-logreg`` alike, fixed before looking at the data: it is never tuned
  on the private training rows (a data-dependent choice is a release no privacy figure
  accounts for) nor on the test set. Every ERM row sees the same rows, preprocessed alike
  (:mod:`product_noise.compare.data`: for ``breast_cancer``, standardised with a declared
  public split's statistics and clipped to the data norm), and the reference minimises the
  very objective the private rows perturb (intercept regularised, one-vs-rest).
* **Networks.** DP-SGD rows and ``nonprivate-nn`` share the model, optimiser (SGD with
  ``momentum``), learning rate ``lr``, batch size and ``epochs``; the non-private network only
  drops the noise and the per-example clipping (``optimizer``: SGD, or Adam where a
  preset follows the paper's Adam settings). DPMix and the baselines train the same kind
  of network on their already-private releases with their own settings (``dpmix_lr`` with
  Adam, ``dpmix_epochs``; ``baseline_epochs``), because they fit a different data set.

User mechanisms
---------------
A mechanism registered with :func:`product_noise.register_mechanism` (or by a plugin) is
accepted as ``dpsgd-<name>`` and ``erm-<method>-<name>`` as soon as it is registered: the names
are read from the registry when they are checked (:func:`known_mechanisms`, :func:`groups`),
not at import. User mechanisms are not in the built-in groups (``default`` compares what the
package ships); the group ``user`` selects every one of them in DP-SGD and in output,
objective and AMP perturbation. A *sampler-only* (unverified) mechanism is run at the noise
multiplier of the verified Gaussian for the same target
(:data:`~product_noise.mechanisms.custom.MATCHED_TO_GAUSSIAN`): its target is labelled
``unverified`` and it has no verified figure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..mechanisms.registry import get_mechanism, mechanism_specs
from ..privacy import CLAIMED, UNVERIFIED, VERIFIED
from ..validation import InputError

__all__ = [
    "CompareConfig",
    "ConfigError",
    "DPSGD_MECHANISMS",
    "DPMIX_MECHANISMS",
    "ERM_METHODS",
    "ERM_NOISES",
    "BASELINE_MECHANISMS",
    "NONPRIVATE_MECHANISMS",
    "GROUPS",
    "NN_DATASETS",
    "ERM_DATASETS",
    "default_config",
    "quick_config",
    "load_toml",
    "expand_mechanisms",
    "family_of",
    "noise_of",
    "is_unverified",
    "target_label",
    "dpsgd_mechanisms",
    "erm_noises",
    "all_erm",
    "groups",
    "known_mechanisms",
    "SETTINGS_RULE",
]

#: the rule choosing λ and the training settings (printed in every report)
SETTINGS_RULE = (
    "One rule for private and non-private rows alike. Convex ERM: one λ (erm_lam) for every "
    "ERM row, the non-private logistic regression included, fixed before looking at the data "
    "(never tuned on the private training rows, which would be an unaccounted release, nor on "
    "the test set); the same rows and preprocessing for every ERM row, and the reference "
    "minimises the very objective the private rows perturb (rows clipped to the data norm, "
    "intercept regularised, one-vs-rest). Networks: the DP-SGD rows and nonprivate-nn share "
    "the model, the optimizer (SGD with momentum, or Adam), the learning rate lr, batch size "
    "and epochs; the "
    "non-private network only drops the noise and the per-example clipping. DPMix and the "
    "baselines train on their already-private releases with their own settings (dpmix_lr "
    "with Adam, dpmix_epochs; baseline_epochs)."
)


class ConfigError(InputError):
    """A comparison is misconfigured; raised before anything is trained (exit status 2)."""


DPMIX_MECHANISMS = ("dpmix-global", "dpmix-class")
ERM_METHODS = ("output", "objective", "amp", "ppssgd")
#: ERM methods of the ``erm`` group (and of the ``user`` group's ERM runs)
_DEFAULT_ERM_METHODS = ("output", "objective", "amp")
#: ERM noises run only when named (not in the ``erm``/``default`` groups)
_OPT_IN_ERM_NOISES = ("l2", "classic-gaussian")
NONPRIVATE_MECHANISMS = ("nonprivate-nn", "nonprivate-logreg")
BASELINE_MECHANISMS = ("adlm-paper", "adlm", "ldp-paper", "ldp", "dpgen-paper", "dpgen")
#: baseline families (see :mod:`product_noise.compare.runners.baselines`); ``IMAGE_FAMILIES``
#: need images
BASELINE_FAMILIES = ("adlm", "ldp", "dpgen")
IMAGE_FAMILIES = ("adlm", "dpgen")


def _noises(consumer: str, *, user: bool) -> tuple[str, ...]:
    """The registry's ``consumer`` noises now (dash spelling, harness order): the built-in
    ones, or (``user=True``) those a user or a plugin registered."""
    return tuple(s.dash for s in mechanism_specs(consumer, order="harness") if s.user == user)


def dpsgd_mechanisms(*, user: bool | None = None) -> tuple[str, ...]:
    """``dpsgd-<name>`` for every mechanism registered *now* for DP-SGD, in harness order.

    ``user=False``: the built-in ones only; ``True``: the user's only; ``None``: both.
    """
    kinds = (False, True) if user is None else (user,)
    return tuple(f"dpsgd-{n}" for k in kinds for n in _noises("dpsgd", user=k))


def erm_noises(*, user: bool | None = None) -> tuple[str, ...]:
    """The noises registered *now* for convex ERM (dash spelling, harness order)."""
    kinds = (False, True) if user is None else (user,)
    return tuple(n for k in kinds for n in _noises("erm", user=k))


def all_erm() -> tuple[str, ...]:
    """Every ``erm-<method>-<noise>`` name accepted now."""
    return tuple(f"erm-{m}-{n}" for m in ERM_METHODS for n in erm_noises())


def groups() -> dict[str, tuple[str, ...]]:
    """The mechanism groups, from the registry as it is now.

    ``dpsgd``, ``erm``, ``default`` and ``all`` hold the built-in mechanisms only; ``user``
    holds every user (or plugin) mechanism: ``dpsgd-<name>`` and
    ``erm-{output,objective,amp}-<name>``. A user mechanism therefore runs when it is named,
    alone or through ``user``, never as a surprise inside ``default``.
    """
    dpsgd = dpsgd_mechanisms(user=False)
    erm = tuple(
        f"erm-{m}-{n}"
        for m in _DEFAULT_ERM_METHODS
        for n in erm_noises(user=False)
        if n not in _OPT_IN_ERM_NOISES
    )
    user = dpsgd_mechanisms(user=True) + tuple(
        f"erm-{m}-{n}" for m in _DEFAULT_ERM_METHODS for n in erm_noises(user=True)
    )
    out = {
        "dpsgd": dpsgd,
        "dpmix": DPMIX_MECHANISMS,
        "erm": erm,
        "baselines": BASELINE_MECHANISMS,
        "nonprivate": NONPRIVATE_MECHANISMS,
        "user": user,
    }
    out["all"] = dpsgd + DPMIX_MECHANISMS + erm + BASELINE_MECHANISMS + NONPRIVATE_MECHANISMS
    #: the default: everything but the DP generator (minutes per run)
    out["default"] = tuple(m for m in out["all"] if not m.startswith("dpgen"))
    return out


def known_mechanisms() -> tuple[str, ...]:
    """Every mechanism name accepted now (user mechanisms included)."""
    return (
        dpsgd_mechanisms()
        + DPMIX_MECHANISMS
        + all_erm()
        + BASELINE_MECHANISMS
        + NONPRIVATE_MECHANISMS
    )


#: the built-in names at import (kept for existing code; validation uses the functions above,
#: which also see the mechanisms registered later)
DPSGD_MECHANISMS = dpsgd_mechanisms(user=False)
ERM_NOISES = erm_noises(user=False)
ALL_ERM = tuple(f"erm-{m}-{n}" for m in ERM_METHODS for n in ERM_NOISES)
GROUPS: dict[str, tuple[str, ...]] = {k: v for k, v in groups().items() if k != "user"}
KNOWN_MECHANISMS = (
    DPSGD_MECHANISMS + DPMIX_MECHANISMS + ALL_ERM + BASELINE_MECHANISMS + NONPRIVATE_MECHANISMS
)

#: datasets for the networks (DP-SGD, DPMix); ``digits`` ships with scikit-learn
NN_DATASETS = ("digits", "breast_cancer", "adult", "kddcup99", "mnist", "synthetic_l")
#: datasets for convex ERM; ``breast_cancer`` ships with scikit-learn
ERM_DATASETS = (
    "breast_cancer",
    "digits",
    "adult",
    "kddcup99",
    "mnist",
    "synthetic_l",
    "synthetic_h",
    "realsim",
    "rcv1",
)
#: datasets read from --data-root
NEEDS_ROOT = ("adult", "kddcup99", "mnist", "realsim", "rcv1")
MODELS = ("mlp", "cnn")
#: base optimizers of the networks
OPTIMIZERS = ("sgd", "adam")
#: network datasets with an image shape (AdLM and the DP generator need one)
IMAGE_DATASETS = ("digits", "mnist")


def family_of(mechanism: str) -> str:
    """``"dpsgd"``, ``"dpmix"``, ``"erm"``, ``"nonprivate"`` or a baseline family."""
    return mechanism.split("-", 1)[0]


def noise_of(mechanism: str) -> str | None:
    """The registry name of a ``dpsgd-<noise>`` or ``erm-<method>-<noise>`` mechanism's noise
    (underscore spelling), else ``None``."""
    fam = family_of(mechanism)
    if fam == "dpsgd":
        return mechanism.split("-", 1)[1].replace("-", "_")
    if fam == "erm":
        return mechanism.split("-", 2)[2].replace("-", "_")
    return None


def target_label(mechanism: str) -> str | None:
    """Which privacy figure a mechanism is calibrated to hit: ``claimed``, ``verified`` or, for
    a user's unverified noise run at the Gaussian's noise multiplier
    (:data:`~product_noise.mechanisms.custom.MATCHED_TO_GAUSSIAN`), ``unverified``.

    ``None`` for the non-private references. An unverified ERM noise with a claimed formula
    is calibrated on that claim (``claimed``); in DP-SGD a one-release claim does not
    compose, so there it is always ``unverified``.
    """
    fam = family_of(mechanism)
    if fam == "nonprivate":
        return None
    noise = noise_of(mechanism)
    if noise is None:
        return CLAIMED if mechanism.endswith("-paper") else VERIFIED
    spec = get_mechanism(noise)
    if spec.calibration == UNVERIFIED:
        return CLAIMED if fam == "erm" and spec.claim else UNVERIFIED
    return CLAIMED if spec.calibration == CLAIMED else VERIFIED


def is_unverified(mechanism: str) -> bool:
    """Whether a mechanism's noise is a user's unverified one (no verified figure, ever)."""
    noise = noise_of(mechanism)
    return noise is not None and get_mechanism(noise).calibration == UNVERIFIED


def expand_mechanisms(names: list[str] | tuple[str, ...]) -> list[str]:
    """Expand groups, keep the first occurrence of each name, reject unknown names.

    Names are checked against the registry as it is now: a mechanism registered after
    import is accepted as ``dpsgd-<name>`` and ``erm-<method>-<name>``.
    """
    out: list[str] = []
    grp = groups()
    known = set(known_mechanisms())
    for name in names:
        if not isinstance(name, str):
            raise ConfigError(f"mechanism names must be strings, got {name!r}")
        key = name.strip().lower().replace("_", "-")
        for m in grp.get(key, (key,)):
            if m not in known:
                raise ConfigError(
                    f"unknown mechanism {name!r}; choose from the groups "
                    f"{', '.join(grp)} or: {', '.join(known_mechanisms())}"
                )
            if m not in out:
                out.append(m)
    if not out:
        raise ConfigError("no mechanism selected")
    return out


@dataclass
class CompareConfig:
    """Everything a comparison needs; see the module docstring for the mechanism names.

    Attributes
    ----------
    epsilons : list of float
        Target ε grid (each > 0, finite).
    seeds : list of int
        Seeds; each private run is repeated for every seed (mean ± std in the report).
    mechanisms : list of str
        Mechanism names or groups.
    dataset : str, optional
        One dataset for every family; ``None`` uses ``nn_dataset`` and ``erm_dataset``.
    nn_dataset, erm_dataset : str
        Datasets of the networks (DP-SGD, DPMix) and of convex ERM.
    data_root : Path, optional
        Directory with the upstream files of ``adult``, ``kddcup99``, ``mnist``, ...
    delta : float
        δ of DP-SGD and DPMix.
    erm_delta : float, optional
        δ of convex ERM; ``None`` means ``1/n²`` with ``n`` the training-set size.
    model : {"mlp", "cnn"}
        Network of DP-SGD, DPMix and ``nonprivate-nn`` (``cnn`` needs square images).
    hidden : int
        Hidden width of the MLP.
    epochs, batch_size, lr, momentum, max_grad_norm :
        DP-SGD (and non-private network) training.
    optimizer : {"sgd", "adam"}
        Base optimizer of DP-SGD and of the non-private network: SGD with ``momentum``, or
        Adam (the paper's IMDB and MovieLens settings).
    paper_sensitivity : {"paper", "add_remove"}
        Sensitivity convention of the paper's product-noise calibration (``"paper"``: Δ = 2C,
        as the official code).
    dpmix_l, dpmix_T, dpmix_epochs, dpmix_lr :
        DPMix mixture size, releases (``None``: twice the training-set size) and the training
        of the network on the release.
    erm_lam, erm_product_k :
        Convex ERM regularisation λ (averaged objective) and the paper's ``k`` for
        ``product-paper`` noise.
    baseline_epochs : int, optional
        Training epochs of AdLM and of the classifier trained on input-noised records (``None``:
        each baseline's own default, 30).
    dpgen_steps : int, optional
        Generator steps of the DP image generator (``None``: its own default).
    max_train : int, optional
        Use at most this many training examples (a seeded subset; for large datasets).
    workers : int
        Runs (and calibrations) at once, each in its own worker process (0: automatic, the
        usable cores divided by ``threads``; 1: every run in this process, one after
        another). Each run seeds itself, so the results do not depend on ``workers``.
    threads : int
        Torch threads of each training run (0: one, the fastest for small models; the
        presets of large networks use every usable core). Floating-point results can change
        with the thread count.
    executor : str
        ``"local"`` (worker processes on this machine) or ``"dask"`` (a Dask cluster, see
        ``scheduler``).
    scheduler : str, optional
        With ``executor="dask"``: the scheduler's address, a scheduler file (``.json``), or
        ``"local"`` (a local Dask cluster of ``workers`` processes; the default).
    retries : int
        Re-run a failed run (an error, or its worker died) up to this many times.
    task : str, optional
        ``"package.module:callable"`` returning a user's
        :class:`~product_noise.compare.tasks.DPSGDTask` and/or
        :class:`~product_noise.compare.tasks.ERMTask` (or a list of both): they replace the
        built-in datasets, and their own training settings replace the ones here.
    plugins : list of str
        Modules (``"module"`` or ``"module:callable"``) that register user mechanisms,
        imported before the mechanism names are checked.
    """

    epsilons: list[float] = field(default_factory=lambda: [1.0, 3.0, 8.0])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    mechanisms: list[str] = field(default_factory=lambda: ["default"])
    dataset: str | None = None
    nn_dataset: str = "digits"
    erm_dataset: str = "breast_cancer"
    data_root: Path | None = None
    delta: float = 1e-5
    erm_delta: float | None = None
    model: str = "mlp"
    hidden: int = 32
    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.2
    momentum: float = 0.9
    max_grad_norm: float = 1.0
    optimizer: str = "sgd"
    paper_sensitivity: str = "paper"
    dpmix_l: int = 8
    dpmix_T: int | None = None
    dpmix_epochs: int = 15
    dpmix_lr: float = 3e-3
    erm_lam: float = 1e-2
    erm_product_k: float = 1000.0
    baseline_epochs: int | None = None
    dpgen_steps: int | None = None
    max_train: int | None = None
    workers: int = 0
    threads: int = 0
    executor: str = "local"
    scheduler: str | None = None
    retries: int = 0
    task: str | None = None
    plugins: list[str] = field(default_factory=list)
    name: str = "default"
    #: mechanisms a group selected but the dataset cannot run (set by :meth:`validate`)
    dropped: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ derived
    @property
    def nn_data(self) -> str:
        """Dataset of the networks."""
        return self.dataset or self.nn_dataset

    @property
    def erm_data(self) -> str:
        """Dataset of convex ERM."""
        return self.dataset or self.erm_dataset

    def families(self) -> set[str]:
        """Families of the selected mechanisms."""
        fams = {family_of(m) for m in expand_mechanisms(self.mechanisms)}
        if "nonprivate" in fams:
            mechs = expand_mechanisms(self.mechanisms)
            fams.discard("nonprivate")
            if "nonprivate-nn" in mechs:
                fams.add("nn-reference")
            if "nonprivate-logreg" in mechs:
                fams.add("erm-reference")
        return fams

    def needs_nn_data(self) -> bool:
        """Whether a network family is selected."""
        return bool(self.families() & {"dpsgd", "dpmix", "nn-reference", *BASELINE_FAMILIES})

    def needs_erm_data(self) -> bool:
        """Whether a convex-ERM family is selected."""
        return bool(self.families() & {"erm", "erm-reference"})

    # ------------------------------------------------------------------ checks
    def validate(self, tasks: Sequence[Any] = ()) -> CompareConfig:
        """Check every setting; raise :class:`ConfigError` naming the first bad one.

        ``tasks`` are the user's tasks (:mod:`product_noise.compare.tasks`) that replace the
        built-in datasets: then the mechanisms are checked against what the tasks declare.
        """
        self._validate_mechanisms(tasks)
        self._validate_epsilons()
        self._validate_seeds()
        self._validate_settings(custom_model=_nn_task(tasks) is not None)
        self._validate_data(tasks)
        return self

    def _drop(self, refused: dict[str, str], explicit: set[str]) -> None:
        """Refuse the first of ``refused`` (mechanism → why it cannot run) named explicitly;
        leave out (into :attr:`dropped`) those a group selected."""
        named = [m for m in self.mechanisms if m in refused and m in explicit]
        if named:
            raise ConfigError(f"{named[0]} cannot run: {refused[named[0]]}")
        self.dropped += [m for m in self.mechanisms if m in refused and m not in self.dropped]
        self.mechanisms = [m for m in self.mechanisms if m not in refused]
        if not self.mechanisms:
            raise ConfigError("no mechanism selected that this data can run")

    def _validate_mechanisms(self, tasks: Sequence[Any] = ()) -> None:
        """Expand the groups; drop (from a group) or refuse (named) the mechanisms the data
        cannot run: image-only ones without images, DPMix without a declared feature bound,
        and, when tasks are given, the families no task provides."""
        explicit = {str(m).strip().lower().replace("_", "-") for m in self.mechanisms}
        self.mechanisms = expand_mechanisms(self.mechanisms)
        refused: dict[str, str] = {}
        nn_task = _nn_task(tasks)
        for m in self.mechanisms:
            fam = family_of(m)
            nn = fam in ("dpsgd", "dpmix", *BASELINE_FAMILIES) or m == "nonprivate-nn"
            if tasks and nn and nn_task is None:
                refused[m] = "it trains a network: give a DPSGDTask"
            elif tasks and not nn and not any(_is_erm_task(t) for t in tasks):
                refused[m] = "it is convex ERM: give an ERMTask"
            elif fam in IMAGE_FAMILIES and not self._has_images(nn_task):
                refused[m] = (
                    f"it needs image data; task {nn_task.name!r} declares no image_shape"
                    if nn_task is not None
                    else f"it needs image data; dataset {self.nn_data!r} is not one of "
                    f"{', '.join(IMAGE_DATASETS)}"
                )
            elif (
                fam == "dpmix"
                and nn_task is not None
                and not (nn_task.bound or nn_task.image_shape)
            ):
                refused[m] = (
                    f"DPMix needs a declared feature bound: give task {nn_task.name!r} "
                    "image_shape= (entries in [0, 1]) or bound='pixel' / bound='l2'"
                )
        self._drop(refused, explicit)

    def _has_images(self, nn_task: Any) -> bool:
        if nn_task is not None:
            return nn_task.image_shape is not None
        return self.nn_data in IMAGE_DATASETS

    def _validate_epsilons(self) -> None:
        """The ε grid: finite numbers > 0, sorted, without repeats."""
        if not self.epsilons:
            raise ConfigError("the ε grid is empty")
        eps = []
        for e in self.epsilons:
            try:
                v = float(e)
            except (TypeError, ValueError):
                raise ConfigError(f"target ε must be a number, got {e!r}") from None
            if not (math.isfinite(v) and v > 0):
                raise ConfigError(f"target ε must be finite and > 0, got {e!r}")
            if v not in eps:
                eps.append(v)
        self.epsilons = sorted(eps)

    def _validate_seeds(self) -> None:
        """The seeds: integers ≥ 0, in order, without repeats."""
        if not self.seeds:
            raise ConfigError("no seeds given")
        seeds = []
        for s in self.seeds:
            if isinstance(s, bool) or not isinstance(s, int) or s < 0:
                raise ConfigError(f"seeds must be integers >= 0, got {s!r}")
            if s not in seeds:
                seeds.append(s)
        self.seeds = seeds

    def _validate_settings(self, custom_model: bool = False) -> None:
        """δ, the model (unless a task brings its own) and the training, DPMix, ERM, worker,
        task and plugin settings."""
        if self.task is not None and not isinstance(self.task, str):
            raise ConfigError(f"task must be a 'module:callable' string, got {self.task!r}")
        if not isinstance(self.plugins, list) or not all(isinstance(x, str) for x in self.plugins):
            raise ConfigError(f"plugins must be a list of module names, got {self.plugins!r}")
        if not 0 < float(self.delta) < 1:
            raise ConfigError(f"delta must lie strictly between 0 and 1, got {self.delta!r}")
        if self.erm_delta is not None and not 0 < float(self.erm_delta) < 1:
            raise ConfigError(
                f"erm_delta must lie strictly between 0 and 1, got {self.erm_delta!r}"
            )
        if not custom_model and self.model not in MODELS:
            raise ConfigError(f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        for name in ("hidden", "epochs", "batch_size", "dpmix_l", "dpmix_epochs"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {v!r}")
        for name in ("dpmix_T", "max_train", "baseline_epochs", "dpgen_steps"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ConfigError(f"{name} must be an integer >= 1, got {v!r}")
        for name in ("lr", "max_grad_norm", "dpmix_lr", "erm_lam"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ConfigError(f"{name} must be a finite number > 0, got {v!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}"
            )
        if not (isinstance(self.momentum, (int, float)) and 0 <= self.momentum < 1):
            raise ConfigError(f"momentum must lie in [0, 1), got {self.momentum!r}")
        if not (isinstance(self.erm_product_k, (int, float)) and self.erm_product_k > 1):
            raise ConfigError(f"erm_product_k must be > 1, got {self.erm_product_k!r}")
        if self.paper_sensitivity not in ("paper", "add_remove"):
            raise ConfigError(
                f"paper_sensitivity must be 'paper' or 'add_remove', got {self.paper_sensitivity!r}"
            )
        for name in ("workers", "threads", "retries"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"{name} must be an integer >= 0, got {v!r}")
        if self.executor not in ("local", "dask"):
            raise ConfigError(f"executor must be 'local' or 'dask', got {self.executor!r}")
        if self.scheduler is not None and self.executor != "dask":
            raise ConfigError("scheduler is for executor 'dask' (--executor dask --scheduler ...)")

    def _validate_data(self, tasks: Sequence[Any] = ()) -> None:
        """The datasets the selected families train on, and the data root of local ones (a
        user's task is checked when it is read: :mod:`product_noise.compare.tasks`)."""
        if tasks:
            return
        if self.dataset is not None and self.dataset not in set(NN_DATASETS) | set(ERM_DATASETS):
            raise ConfigError(
                f"unknown dataset {self.dataset!r}; choose one of "
                f"{', '.join(sorted(set(NN_DATASETS) | set(ERM_DATASETS)))}"
            )
        if self.needs_nn_data() and self.nn_data not in NN_DATASETS:
            raise ConfigError(
                f"dataset {self.nn_data!r} cannot train the networks (DP-SGD, DPMix): choose one "
                f"of {', '.join(NN_DATASETS)}, or select only ERM mechanisms (--mechanisms erm)"
            )
        if self.needs_erm_data() and self.erm_data not in ERM_DATASETS:
            raise ConfigError(f"unknown ERM dataset {self.erm_data!r}")
        used = set()
        if self.needs_nn_data():
            used.add(self.nn_data)
        if self.needs_erm_data():
            used.add(self.erm_data)
        rooted = sorted(used & set(NEEDS_ROOT))
        if rooted:
            if self.data_root is None:
                raise ConfigError(
                    f"dataset {rooted[0]!r} is read from local files: give --data-root DIR "
                    "(nothing is downloaded)"
                )
            root = Path(self.data_root)
            if not root.is_dir():
                raise ConfigError(f"data root {str(root)!r} is not a directory")


def _nn_task(tasks: Sequence[Any]) -> Any:
    """The DP-SGD task among ``tasks`` (one with a model factory), if any."""
    return next((t for t in tasks if hasattr(t, "model")), None)


def _is_erm_task(task: Any) -> bool:
    return hasattr(task, "X_train")


def default_config() -> CompareConfig:
    """The default comparison: every mechanism, ε ∈ {1, 3, 8}, three seeds (≤ 5 min)."""
    return CompareConfig()


def quick_config() -> CompareConfig:
    """The ``--quick`` preset (CI): every mechanism at ε = 3, two seeds, short training
    (≤ 1 min on 2 cores; one ε because the verified calibrations dominate the time)."""
    return replace(
        CompareConfig(),
        epsilons=[3.0],
        seeds=[0, 1],
        epochs=2,
        dpmix_epochs=5,
        baseline_epochs=8,
        dpgen_steps=20,
        name="quick",
    )


_TOML_ALIASES = {"epsilon": "epsilons", "seed": "seeds", "mechanism": "mechanisms"}


def load_toml(path: str | Path, base: CompareConfig | None = None) -> CompareConfig:
    """Read a comparison from a TOML file on top of ``base`` (default: :func:`default_config`).

    Keys are the attributes of :class:`CompareConfig`, at top level or in a ``[compare]``
    table; ``[dpsgd]``, ``[dpmix]`` and ``[erm]`` tables are accepted for readability, e.g.::

        mechanisms = ["dpsgd-gaussian", "dpsgd-product", "erm"]
        epsilons = [0.5, 2]
        seeds = [0, 1, 2, 3]

        [dpsgd]
        model = "cnn"
        epochs = 20

        [erm]
        erm_lam = 1e-3

    A user's task and mechanisms (the modules must be importable)::

        task = "my_project.tasks:fashion"        # returns a DPSGDTask and/or an ERMTask
        plugins = ["my_project.noise"]           # registers mechanisms when imported
        mechanisms = ["dpsgd-gaussian", "dpsgd-my-noise", "nonprivate-nn"]

    Unknown keys are an error.
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        raise ConfigError("--config needs Python >= 3.11 (tomllib)") from None
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} not found")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    flat: dict[str, Any] = {}

    def take(table: dict[str, Any], where: str) -> None:
        for key, value in table.items():
            if isinstance(value, dict):
                if where == "" and key in ("compare", "dpsgd", "dpmix", "erm", "data"):
                    take(value, key)
                    continue
                raise ConfigError(f"{path}: unexpected table [{where + '.' if where else ''}{key}]")
            name = _TOML_ALIASES.get(key, key).replace("-", "_")
            if name in flat:
                raise ConfigError(f"{path}: key {key!r} given twice")
            flat[name] = value

    take(data, "")
    known = {f.name for f in fields(CompareConfig)} - {"dropped"}
    unknown = sorted(set(flat) - known)
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(known))}"
        )
    for key in ("epsilons", "seeds", "mechanisms", "plugins"):
        if key in flat and not isinstance(flat[key], list):
            flat[key] = [flat[key]]
    if "data_root" in flat and flat["data_root"] is not None:
        flat["data_root"] = Path(flat["data_root"]).expanduser()
        if not flat["data_root"].is_absolute():
            flat["data_root"] = (path.parent / flat["data_root"]).resolve()
    if "name" not in flat:
        flat["name"] = path.stem
    return replace(base or default_config(), **flat)
