"""``product-noise audit-training``: canary audits of real DP-SGD and DPMix runs, an ε lower
bound (and a labelled estimate) next to the verified and claimed ε (:mod:`product_noise.audit`).

``--method multi-run`` (default) trains thousands of times per world (Clopper–Pearson bounds,
:func:`~product_noise.audit.audit_training`); ``--method one-run`` trains once per row with many
gradient canaries (Steinke, Nasr, Jagielski, NeurIPS 2023;
:func:`~product_noise.audit.audit_training_one_run`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from ..audit.bounds import MIN_TRIALS
from ..audit.result import DIGITS_ROWS, METHODS, audit_mechanisms
from ..audit.training import DPSGD_THREAT_MODELS
from ..audit.training_one_run import (
    DEFAULT_CANARIES,
    DEFAULT_RECORDS,
    DEFAULT_SAMPLE_RATE,
    ONE_RUN_DIM,
    ONE_RUN_THREAT_MODELS,
    check_one_run,
)
from ..mechanisms.registry import REGISTRY, get_mechanism
from ..validation import (
    check_confidence,
    check_delta,
    check_epsilon,
    check_output_dir,
    check_positive_int,
)
from .command import CLIError, Command
from .types import DELTA, EPSILON, SEED, confidence, number, positive_int

#: the standard report: (mechanism, steps, epsilon, threat model) per row; epsilon is the
#: calibration target (verified ε, or the claimed ε for product-paper)
STANDARD_PLAN: tuple[tuple[str, int, float, str], ...] = (
    ("gaussian", 1, 2.0, "white-box"),
    ("gaussian", 1, 8.0, "white-box"),
    ("gaussian", 3, 4.0, "white-box"),
    ("gaussian", 1, 8.0, "final-model"),
    ("gaussian", 1, 8.0, "final-model-worst-case"),
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
_DEFAULT_RECORDS = 32  # multi-run: audit_training's default n_records
#: one-run: steps per run (--quick: fewer); the task's other settings are
#: :mod:`product_noise.audit.training_one_run`'s defaults (650 canaries, q = 0.025, 400 digits)
_ONE_RUN_STEPS, _ONE_RUN_QUICK_STEPS = 400, 200


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
        "--method",
        choices=METHODS,
        default="multi-run",
        help="multi-run (default): thousands of runs per world, Clopper-Pearson bounds; "
        "one-run: one run per row with many canaries (Steinke et al. 2023): gradient "
        "canaries (white-box) or input canaries (final-model)",
    )
    p.add_argument(
        "--trials",
        type=positive_int("trials", minimum=MIN_TRIALS),
        default=None,
        help=f"multi-run: runs per world (default {_DEFAULT_TRIALS}; --quick: {_QUICK_TRIALS})",
    )
    p.add_argument(
        "--canaries",
        type=positive_int("canaries", minimum=0),
        default=None,
        help=f"one-run: canaries (default {DEFAULT_CANARIES}); white-box: at most {ONE_RUN_DIM} "
        f"(the model's coordinates), final-model: at most {DIGITS_ROWS - DEFAULT_RECORDS} (the "
        "digits left after the training records)",
    )
    p.add_argument(
        "--sample-rate",
        type=number,
        default=None,
        help=f"one-run: Poisson rate q in (0, 1] (default {DEFAULT_SAMPLE_RATE:g}, an expected "
        f"batch of 10 of {DEFAULT_RECORDS} digits); q·T must be ≥ 1".replace("%", "%%"),
    )
    p.add_argument(
        "--steps",
        type=positive_int("steps"),
        default=None,
        help="steps per run for every row (default: multi-run standard; one-run "
        f"{_ONE_RUN_STEPS}, --quick {_ONE_RUN_QUICK_STEPS})",
    )
    p.add_argument(
        "--epsilon",
        type=EPSILON,
        default=None,
        help="calibration target for every row (default: standard)",
    )
    p.add_argument(
        "--threat-model",
        choices=DPSGD_THREAT_MODELS,
        default=None,
        help="keep only the DP-SGD rows of this threat model (default: all); "
        "final-model-worst-case is the final-model adversary from worst-case initial "
        "parameters (Annamalai & De Cristofaro 2024)",
    )
    p.add_argument(
        "--n-records",
        type=positive_int("n_records", minimum=2),
        default=None,
        help=f"multi-run: digits each run trains on, 2 to {DIGITS_ROWS} (default "
        f"{_DEFAULT_RECORDS}; DP-SGD adds the canary, DPMix replaces its last record)",
    )
    p.add_argument("--delta", type=DELTA, default=1e-5, help="δ of every figure (default 1e-5)")
    p.add_argument("--confidence", type=confidence, default=0.95, help="default 0.95")
    p.add_argument("--seed", type=SEED, default=0, help="default 0")
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"multi-run: {_QUICK_TRIALS} trials per world; one-run: {_ONE_RUN_QUICK_STEPS} steps",
    )
    p.add_argument("--out", default=None, help="output directory (default runs/audit-training-*)")


def _plan(args: Any) -> list[tuple[str, int, float, str]]:
    """The rows to run: the standard ones of the chosen mechanisms, :data:`USER_ROWS` for the
    others, with the overrides of ``--steps``/``--epsilon``/``--threat-model`` applied."""
    chosen = audit_mechanisms() if args.mechanisms is None else tuple(args.mechanisms)
    standard = {m for m, *_ in STANDARD_PLAN}
    rows = [r for r in STANDARD_PLAN if r[0] in chosen]
    rows += [(m, *r) for m in chosen if m not in standard for r in USER_ROWS]
    tm = args.threat_model
    plan = [
        (m, args.steps or s, args.epsilon or e, t)
        for m, s, e, t in rows
        if tm is None or t in (tm, "release")
    ]
    if tm is not None:  # a DP-SGD mechanism without a row of that threat model: its first row
        first: dict[str, tuple] = {}
        for r in rows:
            first.setdefault(r[0], r)
        have = {m for m, *_ in plan}
        plan += [
            (m, args.steps or s, args.epsilon or e, tm)
            for m, s, e, t in first.values()
            if m not in have and t != "release"
        ]
    if not plan:
        raise CLIError(f"no row to audit: --threat-model {tm} does not apply to the mechanisms")
    return list(dict.fromkeys(plan))  # overrides can make rows equal


def _one_run_plan(args: Any) -> list[tuple[str, int, float, str]]:
    """The one-run rows: the DP-SGD rows of :func:`_plan` of the threat model (white-box by
    default, or final-model; DPMix has no gradient to put a canary in), each at ``--steps`` or
    the default T."""
    if args.threat_model not in (None, *ONE_RUN_THREAT_MODELS):
        raise CLIError(
            f"--method one-run audits the threat models {', '.join(ONE_RUN_THREAT_MODELS)}; "
            f"{args.threat_model} needs --method multi-run"
        )
    if args.mechanisms is not None and "dpmix" in args.mechanisms:
        raise CLIError(
            "--method one-run does not apply to dpmix (no gradient to put a canary in); "
            "audit dpmix with --method multi-run"
        )
    steps = args.steps or (_ONE_RUN_QUICK_STEPS if args.quick else _ONE_RUN_STEPS)
    tm = args.threat_model or "white-box"
    rows = [(m, steps, e, t) for m, _, e, t in _plan(args) if m != "dpmix" and t == tm]
    return list(dict.fromkeys(rows))


def _check_method_options(args: Any) -> None:
    """Options of the other method are an error, not silently ignored; so is an
    ``--n-records`` beyond the digits data set."""
    if args.method == "one-run" and args.trials is not None:
        raise CLIError(
            "--trials applies to --method multi-run (runs per world); a one-run audit trains "
            "once per row: set --canaries and --steps instead"
        )
    if args.method == "one-run" and args.n_records is not None:
        raise CLIError(
            f"--n-records applies to --method multi-run (one-run trains on {DEFAULT_RECORDS} "
            "digits)"
        )
    if args.n_records is not None and args.n_records > DIGITS_ROWS:
        raise CLIError(f"--n-records must be at most {DIGITS_ROWS} (digits), got {args.n_records}")
    if args.method == "multi-run":
        for flag, value in (("--canaries", args.canaries), ("--sample-rate", args.sample_rate)):
            if value is not None:
                raise CLIError(f"{flag} applies to --method one-run")


def _run(args: Any) -> int:
    import torch

    torch.set_num_threads(1)
    _check_method_options(args)
    check_delta(args.delta)
    check_confidence(args.confidence)
    if args.steps is not None:
        check_positive_int("steps", args.steps)
    if args.epsilon is not None:
        check_epsilon(args.epsilon)
    if args.method == "one-run":
        plan = _one_run_plan(args)
        canaries = DEFAULT_CANARIES if args.canaries is None else args.canaries
        q = DEFAULT_SAMPLE_RATE if args.sample_rate is None else args.sample_rate
        for _, steps, _, t in plan:  # every row checked before any training
            check_one_run(canaries, steps, q, confidence=args.confidence, threat_model=t)
        run = _one_run_rows(plan, args, canaries, q)
    else:
        trials = args.trials
        if trials is None:
            trials = _QUICK_TRIALS if args.quick else _DEFAULT_TRIALS
        check_positive_int("trials", trials, minimum=MIN_TRIALS)
        plan = _plan(args)
        run = _multi_run_rows(plan, args, trials)
    out = check_output_dir(args.out or f"runs/audit-training-{time.strftime('%Y%m%d-%H%M%S')}")
    return _report(run, out)  # rows run (lazily) and print one by one


def _multi_run_rows(plan: list, args: Any, trials: int) -> Iterator[Any]:
    from ..audit import audit_training

    for m, s, e, t in plan:
        yield audit_training(
            m,
            trials=trials,
            steps=s,
            epsilon=e,
            threat_model=t,
            delta=args.delta,
            confidence=args.confidence,
            seed=args.seed,
            n_records=args.n_records or _DEFAULT_RECORDS,
            progress=True,
        )


def _one_run_rows(plan: list, args: Any, canaries: int, q: float) -> Iterator[Any]:
    from ..audit import audit_training_one_run

    for m, s, e, t in plan:
        yield audit_training_one_run(
            m,
            threat_model=t,
            canaries=canaries,
            steps=s,
            sample_rate=q,
            epsilon=e,
            delta=args.delta,
            confidence=args.confidence,
            seed=args.seed,
        )


def _report(results_iter: Iterator[Any], out: Any) -> int:
    from ..audit import format_markdown, write_report

    results = []
    for res in results_iter:
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
        "--method multi-run (default): train many times with and without a canary (DP-SGD\n"
        "through product_noise's PrivacyEngine with a white-box Dirac gradient canary, or a\n"
        "final-model input canary, from zero or from worst-case initial parameters\n"
        "(final-model-worst-case: Annamalai & De Cristofaro, NeurIPS 2024); DPMix with an\n"
        "outlier canary) on --n-records digits (default 32) and turn the attack's\n"
        "TPR/FPR into a Clopper-Pearson lower bound on ε at δ.\n"
        "--method one-run: train once per row (same 64->10 logistic regression, 650\n"
        "coordinates, on 400 digits, Poisson q = 0.025) with --canaries Dirac gradient\n"
        "canaries, each included with probability 1/2; the white-box adversary sees every\n"
        "noisy gradient and knows the other records (data subtracted, as in multi-run). Its\n"
        "guesses give the one-run lower bound of Steinke, Nasr, Jagielski (NeurIPS 2023),\n"
        "for Gaussian noise also the f-DP one. --threat-model final-model: mislabelled\n"
        "digits as input canaries, only the final model seen (black box). No DPMix; a\n"
        "product-paper row's ε is the paper's per-step ε0, its claimed ε\n"
        "the paper's composition over the T steps. Weaker than multi-run, far cheaper.\n"
        "Both print the bound next to the verified and claimed ε, with a verdict per row,\n"
        "and a Gaussian-fit ε estimate (Nasr et al., USENIX Security 2023), which is NOT a\n"
        "bound, and write audit_training.csv/.md/.png (columns method, estimated_epsilon).\n"
        "A user's unverified mechanism (a sampler only) runs at the verified Gaussian's\n"
        "noise for the target and gets the lower bound only: its verified ε column is\n"
        "empty and labelled unverified."
    ),
    epilog=(
        "examples:\n"
        "  product-noise audit-training --quick\n"
        "  product-noise audit-training --mechanisms gaussian product-paper --trials 2000\n"
        "  product-noise audit-training --method one-run --quick\n"
        "  product-noise audit-training --method one-run --mechanisms product-paper \\\n"
        "      --canaries 650 --steps 400 --sample-rate 0.025"
    ),
    add_arguments=_add_arguments,
    run=_run,
)
