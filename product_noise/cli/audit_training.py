"""``product-noise audit-training``: canary audits of real DP-SGD and DPMix runs, an ε lower
bound next to the verified and claimed ε (:mod:`product_noise.audit`)."""

from __future__ import annotations

import time
from typing import Any

from ..audit.bounds import MIN_TRIALS
from ..audit.result import audit_mechanisms
from ..mechanisms.registry import REGISTRY, get_mechanism
from ..validation import (
    check_confidence,
    check_delta,
    check_epsilon,
    check_output_dir,
    check_positive_int,
)
from .command import Command
from .types import DELTA, EPSILON, SEED, confidence, positive_int

#: the standard report: (mechanism, steps, epsilon, threat model) per row; epsilon is the
#: calibration target (verified ε, or the claimed ε for product-paper)
STANDARD_PLAN: tuple[tuple[str, int, float, str], ...] = (
    ("gaussian", 1, 2.0, "white-box"),
    ("gaussian", 1, 8.0, "white-box"),
    ("gaussian", 3, 4.0, "white-box"),
    ("gaussian", 1, 8.0, "final-model"),
    ("product-paper", 1, 0.3, "white-box"),
    ("product-paper", 3, 1.5, "white-box"),
    ("product-paper", 1, 0.3, "final-model"),
    ("product", 1, 2.0, "white-box"),
    ("l2", 1, 2.0, "white-box"),
    ("dpmix", 16, 8.0, "release"),
)
#: the rows of a mechanism without standard settings (a user's): (steps, epsilon, threat model)
USER_ROWS: tuple[tuple[int, float, str], ...] = ((1, 2.0, "white-box"), (1, 8.0, "final-model"))
_DEFAULT_TRIALS, _QUICK_TRIALS = 3000, 500


def _dash_name(text: str) -> str:
    """An argparse ``type=``: a registered spelling → the audit's dash spelling (``my-l2``)."""
    return get_mechanism(text).dash if text in REGISTRY else text


def _mechanisms_help() -> str:
    labels = {s.dash: s.calibration for s in REGISTRY}
    listed = ", ".join(f"{m} ({labels.get(m, 'verified')})" for m in audit_mechanisms())
    return (
        f"mechanisms to audit: {listed}; user mechanisms with --plugin before the command "
        "(default: all, built-ins in the standard settings, user ones at T = 1, ε = 2 white box "
        "and ε = 8 final model)"
    ).replace("%", "%%")


def _add_arguments(p: Any) -> None:
    p.add_argument(
        "--mechanisms",
        nargs="+",
        type=_dash_name,
        choices=audit_mechanisms(),
        default=None,
        help=_mechanisms_help(),
    )
    p.add_argument(
        "--trials",
        type=positive_int("trials", minimum=MIN_TRIALS),
        default=None,
        help=f"runs per world (default {_DEFAULT_TRIALS}; --quick: {_QUICK_TRIALS})",
    )
    p.add_argument(
        "--steps",
        type=positive_int("steps"),
        default=None,
        help="steps per run for every row (default: standard)",
    )
    p.add_argument(
        "--epsilon",
        type=EPSILON,
        default=None,
        help="calibration target for every row (default: standard)",
    )
    p.add_argument(
        "--threat-model",
        choices=("white-box", "final-model"),
        default=None,
        help="keep only the DP-SGD rows of this threat model (default: both)",
    )
    p.add_argument("--delta", type=DELTA, default=1e-5, help="δ of every figure (default 1e-5)")
    p.add_argument("--confidence", type=confidence, default=0.95, help="default 0.95")
    p.add_argument("--seed", type=SEED, default=0, help="default 0")
    p.add_argument("--quick", action="store_true", help=f"{_QUICK_TRIALS} trials per world")
    p.add_argument("--out", default=None, help="output directory (default runs/audit-training-*)")


def _plan(args: Any) -> list[tuple[str, int, float, str]]:
    """The rows to run: the standard ones of the chosen mechanisms, :data:`USER_ROWS` for the
    others, with the overrides of ``--steps``/``--epsilon``/``--threat-model`` applied."""
    chosen = audit_mechanisms() if args.mechanisms is None else tuple(args.mechanisms)
    standard = {m for m, *_ in STANDARD_PLAN}
    rows = [r for r in STANDARD_PLAN if r[0] in chosen]
    rows += [(m, *r) for m in chosen if m not in standard for r in USER_ROWS]
    plan = [
        (m, args.steps or s, args.epsilon or e, t)
        for m, s, e, t in rows
        if args.threat_model is None or t in (args.threat_model, "release")
    ]
    return list(dict.fromkeys(plan))  # overrides can make rows equal


def _run(args: Any) -> int:
    import torch

    from ..audit import audit_training, format_markdown, write_report

    torch.set_num_threads(1)
    trials = args.trials
    if trials is None:
        trials = _QUICK_TRIALS if args.quick else _DEFAULT_TRIALS
    check_positive_int("trials", trials, minimum=MIN_TRIALS)
    check_delta(args.delta)
    check_confidence(args.confidence)
    if args.steps is not None:
        check_positive_int("steps", args.steps)
    if args.epsilon is not None:
        check_epsilon(args.epsilon)
    plan = _plan(args)
    out = check_output_dir(args.out or f"runs/audit-training-{time.strftime('%Y%m%d-%H%M%S')}")
    results = []
    for m, s, e, t in plan:
        res = audit_training(
            m,
            trials=trials,
            steps=s,
            epsilon=e,
            threat_model=t,
            delta=args.delta,
            confidence=args.confidence,
            seed=args.seed,
            progress=True,
        )
        print(res, flush=True)
        results.append(res)
    paths = write_report(results, out)
    print()
    print(format_markdown(results))
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


COMMAND = Command(
    name="audit-training",
    help="empirical lower bounds on ε from canary audits of real training runs",
    description=(
        "Train many times with and without a canary (DP-SGD through product_noise's\n"
        "PrivacyEngine with a white-box Dirac gradient canary; DPMix with an outlier\n"
        "canary) and turn the attack's TPR/FPR into a Clopper-Pearson lower bound on ε at\n"
        "δ. Prints it next to the verified ε and the claimed ε, with a verdict per row,\n"
        "and writes audit_training.csv/.md/.png. A user's unverified mechanism (a\n"
        "sampler only) runs at the verified Gaussian's noise for the target and gets the\n"
        "lower bound only: its verified ε column is empty and labelled unverified."
    ),
    epilog=(
        "examples:\n"
        "  product-noise audit-training --quick\n"
        "  product-noise audit-training --mechanisms gaussian product-paper --trials 2000"
    ),
    add_arguments=_add_arguments,
    run=_run,
)
