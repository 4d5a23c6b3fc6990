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
``default`` (everything except the slow DP generator; the default), ``all``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..mechanisms.registry import mechanism_names
from ..privacy import CLAIMED, VERIFIED
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
    "target_label",
]


class ConfigError(InputError):
    """A comparison is misconfigured; raised before anything is trained (exit status 2)."""


#: ``dpsgd-<name>`` for the registry's DP-SGD mechanisms, in harness order
DPSGD_MECHANISMS = tuple(
    f"dpsgd-{n}" for n in mechanism_names("dpsgd", spelling="dash", order="harness")
)
DPMIX_MECHANISMS = ("dpmix-global", "dpmix-class")
ERM_METHODS = ("output", "objective", "amp", "ppssgd")
#: the registry's ERM noises, in harness order
ERM_NOISES = mechanism_names("erm", spelling="dash", order="harness")
#: ERM noises run only when named (not in the ``erm``/``default`` groups)
_OPT_IN_ERM_NOISES = ("l2", "classic-gaussian")
NONPRIVATE_MECHANISMS = ("nonprivate-nn", "nonprivate-logreg")
BASELINE_MECHANISMS = ("adlm-paper", "adlm", "ldp-paper", "ldp", "dpgen-paper", "dpgen")
#: baseline families (see :mod:`product_noise.compare.runners.baselines`); ``IMAGE_FAMILIES``
#: need images
BASELINE_FAMILIES = ("adlm", "ldp", "dpgen")
IMAGE_FAMILIES = ("adlm", "dpgen")
_DEFAULT_ERM = tuple(
    f"erm-{m}-{n}"
    for m in ("output", "objective", "amp")
    for n in ERM_NOISES
    if n not in _OPT_IN_ERM_NOISES
)
ALL_ERM = tuple(f"erm-{m}-{n}" for m in ERM_METHODS for n in ERM_NOISES)
GROUPS: dict[str, tuple[str, ...]] = {
    "dpsgd": DPSGD_MECHANISMS,
    "dpmix": DPMIX_MECHANISMS,
    "erm": _DEFAULT_ERM,
    "baselines": BASELINE_MECHANISMS,
    "nonprivate": NONPRIVATE_MECHANISMS,
}
GROUPS["all"] = (
    DPSGD_MECHANISMS + DPMIX_MECHANISMS + _DEFAULT_ERM + BASELINE_MECHANISMS + NONPRIVATE_MECHANISMS  # type: ignore
)
#: the default: everything but the DP generator (minutes per run)
GROUPS["default"] = tuple(m for m in GROUPS["all"] if not m.startswith("dpgen"))
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
#: network datasets with an image shape (AdLM and the DP generator need one)
IMAGE_DATASETS = ("digits", "mnist")


def family_of(mechanism: str) -> str:
    """``"dpsgd"``, ``"dpmix"``, ``"erm"``, ``"nonprivate"`` or a baseline family."""
    return mechanism.split("-", 1)[0]


def target_label(mechanism: str) -> str | None:
    """Which privacy figure a mechanism is calibrated to hit: ``claimed`` or ``verified``.

    ``None`` for the non-private references.
    """
    if family_of(mechanism) == "nonprivate":
        return None
    if mechanism.endswith("-paper") or mechanism.endswith("classic-gaussian"):
        return CLAIMED
    return VERIFIED


def expand_mechanisms(names: list[str] | tuple[str, ...]) -> list[str]:
    """Expand groups, keep the first occurrence of each name, reject unknown names."""
    out: list[str] = []
    for name in names:
        if not isinstance(name, str):
            raise ConfigError(f"mechanism names must be strings, got {name!r}")
        key = name.strip().lower().replace("_", "-")
        expanded = GROUPS.get(key, (key,))
        for m in expanded:
            if m not in KNOWN_MECHANISMS:
                raise ConfigError(
                    f"unknown mechanism {name!r}; choose from the groups "
                    f"{', '.join(GROUPS)} or: {', '.join(KNOWN_MECHANISMS)}"
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
        Processes for calibration and accounting (0: automatic, 1: none).
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
    def validate(self) -> CompareConfig:
        """Check every setting; raise :class:`ConfigError` naming the first bad one."""
        self._validate_mechanisms()
        self._validate_epsilons()
        self._validate_seeds()
        self._validate_settings()
        self._validate_data()
        return self

    def _validate_mechanisms(self) -> None:
        """Expand the groups; drop (from a group) or refuse (named) the image-only mechanisms
        on a dataset without images."""
        explicit = {str(m).strip().lower().replace("_", "-") for m in self.mechanisms}
        self.mechanisms = expand_mechanisms(self.mechanisms)
        if self.nn_data not in IMAGE_DATASETS:
            # AdLM and the DP generator need images: named explicitly → error; from a group →
            # left out (listed in ``dropped``)
            imaging = [m for m in self.mechanisms if family_of(m) in IMAGE_FAMILIES]
            named = [m for m in imaging if m in explicit]
            if named:
                raise ConfigError(
                    f"{named[0]} needs image data; dataset {self.nn_data!r} is not one of "
                    f"{', '.join(IMAGE_DATASETS)}"
                )
            self.dropped = imaging
            self.mechanisms = [m for m in self.mechanisms if m not in imaging]
            if not self.mechanisms:
                raise ConfigError("no mechanism selected for this dataset")

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

    def _validate_settings(self) -> None:
        """δ, the model and the training, DPMix, ERM and worker settings."""
        if not 0 < float(self.delta) < 1:
            raise ConfigError(f"delta must lie strictly between 0 and 1, got {self.delta!r}")
        if self.erm_delta is not None and not 0 < float(self.erm_delta) < 1:
            raise ConfigError(
                f"erm_delta must lie strictly between 0 and 1, got {self.erm_delta!r}"
            )
        if self.model not in MODELS:
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
        if not (isinstance(self.momentum, (int, float)) and 0 <= self.momentum < 1):
            raise ConfigError(f"momentum must lie in [0, 1), got {self.momentum!r}")
        if not (isinstance(self.erm_product_k, (int, float)) and self.erm_product_k > 1):
            raise ConfigError(f"erm_product_k must be > 1, got {self.erm_product_k!r}")
        if self.paper_sensitivity not in ("paper", "add_remove"):
            raise ConfigError(
                f"paper_sensitivity must be 'paper' or 'add_remove', got {self.paper_sensitivity!r}"
            )
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 0:
            raise ConfigError(f"workers must be an integer >= 0, got {self.workers!r}")

    def _validate_data(self) -> None:
        """The datasets the selected families train on, and the data root of local ones."""
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
    for key in ("epsilons", "seeds", "mechanisms"):
        if key in flat and not isinstance(flat[key], list):
            flat[key] = [flat[key]]
    if "data_root" in flat and flat["data_root"] is not None:
        flat["data_root"] = Path(flat["data_root"]).expanduser()
        if not flat["data_root"].is_absolute():
            flat["data_root"] = (path.parent / flat["data_root"]).resolve()
    if "name" not in flat:
        flat["name"] = path.stem
    return replace(base or default_config(), **flat)
