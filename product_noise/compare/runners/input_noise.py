"""The local-DP input-noise adapter: one run at a target ε for the comparison."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ...baselines.input_noise import (
    GaussianInputPerturbation,
    _check_labels,
    _check_matrix,
    _default_model,
    train_classifier,
)
from ...privacy import CLAIMED, VERIFIED, PrivacyFigure, PrivacyWarning
from ...validation import check_delta, check_epsilon, check_positive_int


def run_for_compare(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    *,
    image_shape: tuple[int, ...],
    epsilon: float,
    delta: float,
    target: str,
    seed: int,
    model_factory: Callable[[int, int], Any] | None = None,
    epochs: int | None = None,
    label_share: float = 0.5,
    batch_size: int = 64,
    lr: float = 1e-3,
    progress: bool = False,
) -> dict[str, Any]:
    """One input-perturbation run for the comparison harness.

    ``target="claimed"``: the blog's recipe (classic formula, Δ = 1, clip at 0) so that its
    *claimed* ε equals ``epsilon``; labels public, as in its IIC pipeline. ``target=
    "verified"``: analytic calibration with Δ = √2 and labels by K-ary randomized response at
    ``label_share·epsilon``, the image noise chosen so that the composed *verified* ε equals
    ``epsilon``; the classifier is trained with the forward loss correction for the known RR
    transition matrix.

    The records are released once (noise drawn once per record). The classifier
    (``model_factory(n_features, n_classes)``, default an MLP ``d → 64 → K``; Adam, seeded) is
    trained on the noisy training records and evaluated on the *clean* test records, scaled to
    unit norm the same way (no noise: the test set is not released).

    Returns ``{"accuracy", "claimed", "verified", "noise_scale", "steps", "notes"}``;
    ``noise_scale`` is σ per coordinate of a unit-norm record.
    """

    epsilon, delta, seed, epochs = _check_settings(
        epsilon, delta, target, seed, label_share, epochs
    )
    Xtr, ytr, Xte, yte = _check_data(X_train, y_train, X_test, y_test, image_shape)
    n_classes = int(max(ytr.max(), yte.max()) + 1)

    if target == "claimed":
        tr, notes = _claimed_perturbation(Xtr, epsilon, delta, seed)
    else:
        tr, notes = _verified_perturbation(Xtr, ytr, epsilon, delta, seed, label_share, n_classes)
    Xn, yn = tr.privatize(Xtr, ytr)
    notes.append(
        f"noise drawn once per record (one release); σ = {tr.sigma_:.4g} per coordinate of a "
        f"unit-norm record (E‖noise‖ ≈ {tr.sigma_ * math.sqrt(Xtr.shape[1]):.3g})"
    )
    notes.append("evaluated on the clean test records scaled to unit norm (not released)")

    t0 = time.perf_counter()

    torch.manual_seed(seed)  # the model's initialisation: a run is reproducible from its seed
    model = (model_factory or _default_model)(Xtr.shape[1], n_classes)
    acc, steps = train_classifier(
        model,
        Xn,
        yn,
        tr.normalized(Xte),
        yte,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        transition=tr.label_transition_matrix() if target == "verified" else None,
        progress=progress,
        desc=f"input noise ({target})",
    )
    verified = tr.privacy_[VERIFIED]
    if target == "claimed":
        images = verified
        verified = _record_figure(images)
        notes.append(f"verified ε of the images alone: {images.epsilon:.4g}")
    return {
        "accuracy": acc,
        "claimed": tr.privacy_[CLAIMED],
        "verified": verified,
        "noise_scale": tr.sigma_,
        "steps": steps,
        "notes": notes,
        "train_seconds": time.perf_counter() - t0,
    }


def _check_settings(
    epsilon: float,
    delta: float,
    target: str,
    seed: int,
    label_share: float,
    epochs: int | None,
) -> tuple[float, float, int, int]:
    """The checked (ε, δ, seed, epochs) of a run; ``epochs=None`` is 30."""
    epsilon = check_epsilon(epsilon)
    delta = check_delta(delta)
    seed = check_positive_int("seed", seed, minimum=0)
    if target not in ("claimed", "verified"):
        raise ValueError(f"target must be 'claimed' or 'verified', got {target!r}")
    if not 0.0 < float(label_share) < 1.0:
        raise ValueError(f"label_share must lie strictly between 0 and 1, got {label_share!r}")
    epochs = 30 if epochs is None else check_positive_int("epochs", epochs)
    return epsilon, delta, seed, epochs


def _check_data(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    image_shape: tuple[int, ...],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The checked (X_train, y_train, X_test, y_test): matrices in [0, 1] of ``image_shape``
    records, with labels."""
    Xtr = _check_matrix(X_train, "X_train")
    Xte = _check_matrix(X_test, "X_test")
    shape = tuple(int(s) for s in image_shape)
    if not shape or any(s < 1 for s in shape) or math.prod(shape) != Xtr.shape[1]:
        raise ValueError(
            f"image_shape {image_shape!r} does not match X_train's {Xtr.shape[1]} features"
        )
    if Xte.shape[1] != Xtr.shape[1]:
        raise ValueError(f"X_test has {Xte.shape[1]} features, X_train {Xtr.shape[1]}")
    for name, arr in (("X_train", Xtr), ("X_test", Xte)):
        if arr.min() < 0.0 or arr.max() > 1.0:
            raise ValueError(f"{name} must lie in [0, 1]")
    ytr = _check_labels(y_train, Xtr.shape[0], None, "y_train")
    yte = _check_labels(y_test, Xte.shape[0], None, "y_test")
    return Xtr, ytr, Xte, yte


def _claimed_perturbation(
    Xtr: np.ndarray, epsilon: float, delta: float, seed: int
) -> tuple[GaussianInputPerturbation, list[str]]:
    """The blog's recipe fitted on ``Xtr`` (its claimed ε is ``epsilon``) and its notes."""
    tr = GaussianInputPerturbation(
        epsilon,
        delta,
        sensitivity="nonnegative",
        calibration="classic",
        claimed_sensitivity=1.0,
        clip_min=0.0,
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrivacyWarning)
        tr.fit(Xtr)
    notes = [
        "blog recipe: unit-norm images, classic σ with Δ = 1 (true Δ = √2), clip at 0; "
        "labels public, so the record's verified ε is infinite"
    ]
    return tr, notes


def _verified_perturbation(
    Xtr: np.ndarray,
    ytr: np.ndarray,
    epsilon: float,
    delta: float,
    seed: int,
    label_share: float,
    n_classes: int,
) -> tuple[GaussianInputPerturbation, list[str]]:
    """Images and randomized-response labels calibrated to a verified ε of ``epsilon``, fitted
    on (``Xtr``, ``ytr``), and its notes."""
    label_eps = label_share * epsilon
    tr = GaussianInputPerturbation(
        epsilon,
        delta,
        sensitivity="nonnegative",
        calibration="analytic",
        clip_min=0.0,
        label_epsilon=label_eps,
        n_classes=n_classes,
        random_state=seed,
    )
    tr.fit(Xtr, ytr)
    notes = [
        f"budget split: labels by {n_classes}-ary randomized response at ε_L = "
        f"{label_eps:.4g} ({label_share:g}·ε), images analytic Gaussian with Δ = √2 "
        "calibrated so the composed verified ε (dp_accounting PLD) equals the target",
        "classifier trained with the forward correction for the RR label noise",
    ]
    return tr, notes


def _record_figure(images: PrivacyFigure) -> PrivacyFigure:
    """The verified figure of a record (image, label) whose label is released unperturbed:
    infinite; the image-only figure ``images`` is kept beside it."""
    # the comparison's privacy unit is the record (image, label): an unperturbed label
    # leaves no finite ε for it; the image-only figure is kept beside it
    return PrivacyFigure(
        math.inf,
        images.delta,
        VERIFIED,
        "record = (image, label): the label is released unperturbed (the blog's unary "
        "encoding with q = 1e-17 never flips a label in float64), so no finite ε holds for "
        f"the record; images alone: ε = {images.epsilon:.4g} ({images.source})",
        extra={"images_only": images},
    )
