"""``product-noise compare``: the comparison harness from the command line.

Heavy modules (torch, opacus, the harness) are imported only when the subcommand runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from .command import Command
from .types import DELTA, EPSILON, SEED, nonnegative_int, positive_int

__all__ = ["NAME", "add_arguments", "run", "COMMAND"]

NAME = "compare"
HELP = "DP-SGD, DPMix and convex ERM at equal target ε: accuracy with claimed vs verified ε"
DESCRIPTION = textwrap.dedent(
    """\
    Train and evaluate every mechanism at a grid of target ε, each repeated over seeds, and
    report accuracy next to the claimed and the verified ε (δ = 1e-5 for DP-SGD and DPMix,
    1/n² for convex ERM):

      dpsgd-gaussian       Gaussian noise calibrated by Opacus (verified)
      dpsgd-product-paper  product noise at the paper's calibration: the CLAIMED ε hits the
                           target; its verified ε beside it (typically inf)
      dpsgd-product        product noise calibrated so the VERIFIED ε hits the target
      dpsgd-l2             ℓ2 mechanism at the verified target
      dpmix-global/-class  DPMix at the verified target
      erm-<method>-<noise> logistic regression: output, objective, AMP perturbation with
                           gaussian, gamma (pure ε), product-paper, product noise
      nonprivate-nn/-logreg  references
      dpsgd-<name>, erm-<method>-<name>  a registered user mechanism (--plugin; group
                           "user"); a sampler-only one is reported unverified, never verified

    With no arguments: digits (1,797 8×8 images) for the networks and DPMix, breast cancer
    (569 × 30) for convex ERM (both ship with scikit-learn), ε ∈ {1, 3, 8}, seeds {0, 1, 2};
    about 4 minutes on 2 CPU cores. --quick (ε = 3, 2 seeds, short training) takes about a
    minute. Writes results.csv (one row per run, appended as runs finish), epochs.csv,
    report.md and PNG plots into --out and prints the summary table."""
)
EPILOG = textwrap.dedent(
    """\
    examples:
      product-noise compare
      product-noise compare --quick --out runs/ci
      product-noise compare --mechanisms dpsgd nonprivate-nn --epsilons 0.5 2 --seeds 0 1 2 3
      product-noise compare --dataset adult --data-root ~/data/adult --mechanisms erm
      product-noise compare --config my_comparison.toml --out runs/mine --resume
      product-noise compare --preset adult --data-root ~/data
      product-noise compare --preset paper --report docs/      # $PRODUCT_NOISE_DATA holds the data

    presets (--preset; the paper's experiments, its official code's models and settings, at the
    ε its code claims): fashion-mnist, mnist-test-split, adult, imdb, movielens-100k (DP-SGD),
    adult-erm, kddcup99-erm (convex ERM), paper (all). The data root (--data-root or
    $PRODUCT_NOISE_DATA) holds one folder per data set (fashion-mnist/, mnist/, adult/, imdb/,
    movielens-100k/, kddcup99/); a preset without its files is reported and the others run.
    Each preset is a comparison in <out>/<preset>/; --report DIR writes DIR/results.md.

    TOML config (--config): keys are the option names (epsilons, seeds, mechanisms, dataset,
    model, epochs, batch_size, lr, erm_lam, dpmix_l, ...), at top level or in [dpsgd], [dpmix],
    [erm] tables; command-line options override the file. A user's own task and mechanisms:
    task = "package.module:callable" (returns a DPSGDTask and/or an ERMTask of
    product_noise.compare) and plugins = ["module", "module:callable"] (register mechanisms;
    then dpsgd-<name>, erm-<method>-<name>, or the group "user"); the Python API is
    product_noise.compare.run_comparison.

    exit status:
      0    every run finished
      1    some runs failed (listed in report.md; the others finished)
      2    bad input, before anything is trained
      130  interrupted by Ctrl-C (SIGINT)
      143  stopped by SIGTERM (sent by Slurm, and by `timeout`, which itself then exits 124
           unless --preserve-status)
    Interrupted (130, 143), the runs finished so far stay in results.csv, report.md covers them
    and says the run was interrupted, and the worker processes are ended; --resume with the
    same --out trains the rest. The workers also end if this process is killed (SIGKILL).

    runs in parallel: independent runs go to --workers processes (default: the usable cores),
    each run seeded by its own seed, so results.csv's accuracies and ε are the same as with
    --workers 1 (row order aside). A run whose worker dies (killed, out of memory) is recorded
    as failed, with the reason in results.csv's notes, and the others go on (--retries K runs
    it again; --resume too). --executor dask --scheduler ADDRESS sends the runs to a Dask
    cluster instead; its workers read the data from --data-root (a shared filesystem). On
    Slurm/PBS/SGE/LSF, start the cluster with dask-jobqueue (see the README)."""
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``product-noise compare``."""
    p.add_argument("--quick", action="store_true", help="the CI preset (under a minute)")
    p.add_argument(
        "--preset",
        metavar="NAME",
        help="a real-data experiment of the paper (fashion-mnist, mnist-test-split, adult, "
        "imdb, movielens-100k, adult-erm, kddcup99-erm; paper: all), read from --data-root "
        "or $PRODUCT_NOISE_DATA; with --quick: a few hundred rows, one epoch",
    )
    p.add_argument(
        "--report",
        type=Path,
        metavar="DIR",
        help="with --preset: write DIR/results.md and its figures (runs in DIR/results/ "
        "unless --out)",
    )
    p.add_argument("--config", type=Path, metavar="FILE", help="TOML file describing the run")
    p.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="output directory (default: a new runs/compare-<timestamp>)",
    )
    p.add_argument(
        "--resume", action="store_true", help="skip the runs already in --out/results.csv"
    )
    p.add_argument(
        "--mechanisms",
        nargs="+",
        metavar="M",
        help="mechanisms or groups (dpsgd, dpmix, erm, baselines, nonprivate, user, all; "
        "default: everything but the DP generator)",
    )
    p.add_argument("--epsilons", nargs="+", type=EPSILON, metavar="E", help="target ε grid")
    p.add_argument("--seeds", nargs="+", type=SEED, metavar="S", help="seeds")
    p.add_argument(
        "--dataset",
        metavar="NAME",
        help="one dataset for every family (digits, breast_cancer, adult, kddcup99, mnist, "
        "synthetic_l, synthetic_h, realsim, rcv1)",
    )
    p.add_argument("--nn-dataset", metavar="NAME", help="dataset of DP-SGD and DPMix (digits)")
    p.add_argument("--erm-dataset", metavar="NAME", help="dataset of convex ERM (breast_cancer)")
    p.add_argument(
        "--data-root",
        type=Path,
        metavar="DIR",
        help="directory of upstream files (with --preset: the folder holding one folder per "
        "data set; default $PRODUCT_NOISE_DATA)",
    )
    p.add_argument("--model", choices=["mlp", "cnn"], help="network (default mlp)")
    p.add_argument(
        "--task",
        metavar="MODULE:CALLABLE",
        help="a user's task: a callable returning a DPSGDTask and/or an ERMTask (replaces "
        "the built-in datasets and their training settings)",
    )
    p.add_argument(
        "--plugin",
        action="append",
        metavar="MODULE[:CALLABLE]",
        help="import a module that registers mechanisms (repeatable); then dpsgd-<name>, "
        "erm-<method>-<name> and the group 'user' select them",
    )
    p.add_argument("--epochs", type=positive_int("epochs"), help="DP-SGD epochs")
    p.add_argument("--delta", type=DELTA, help="δ of DP-SGD and DPMix (1e-5)")
    p.add_argument(
        "--max-train",
        type=positive_int("max-train"),
        metavar="N",
        help="use at most N training rows",
    )
    p.add_argument(
        "--workers",
        type=nonnegative_int("workers"),
        help="runs at once, each in a worker process (0 = automatic: the usable cores divided "
        "by the threads of a run; 1 = every run in this process); the results do not depend "
        "on it",
    )
    p.add_argument(
        "--executor",
        choices=("local", "dask"),
        help="where the runs go: local worker processes (default) or a Dask cluster "
        "(pip install 'product-noise[dask]')",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="with --executor dask: the scheduler (tcp://host:8786, a scheduler file .json, "
        "or 'local' for a local Dask cluster of --workers processes; default local)",
    )
    p.add_argument(
        "--retries",
        type=nonnegative_int("retries"),
        help="re-run a failed run (an error, or its worker died) up to K times (0)",
    )
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def build_config(args: argparse.Namespace) -> tuple[Any, list[Any]]:
    """The :class:`~product_noise.compare.config.CompareConfig` the options describe
    (plugins imported, checked) and the user's tasks it names."""
    from ..compare.config import ConfigError, default_config, load_toml, quick_config
    from ..compare.harness import prepare

    cfg = quick_config() if args.quick else default_config()
    if args.config is not None:
        cfg = load_toml(args.config, cfg)
    overrides: dict[str, Any] = {}
    for name in ("mechanisms", "epsilons", "seeds", "dataset", "nn_dataset", "erm_dataset"):
        v = getattr(args, name)
        if v is not None:
            overrides[name] = list(v) if isinstance(v, list) else v
    names = ("data_root", "model", "epochs", "delta", "max_train", "workers", "task")
    for name in (*names, "executor", "scheduler", "retries"):
        v = getattr(args, name)
        if v is not None:
            overrides[name] = v
    if args.plugin:
        overrides["plugins"] = [*cfg.plugins, *args.plugin]
    cfg = dataclasses.replace(cfg, **overrides)
    if args.resume and args.out is None:
        raise ConfigError("--resume needs --out DIR (the directory of the run to continue)")
    return cfg, prepare(cfg)


def run(args: argparse.Namespace) -> int:
    """Run ``product-noise compare``; returns the exit status.

    0 when every run finished, 1 when some failed, 130 (SIGINT) or 143 (SIGTERM) when a signal
    stopped the runs; bad input raises before anything is trained (status 2 in ``main``).
    """
    from ..compare.harness import run_compare

    if args.preset is not None or args.report is not None:
        return run_presets_command(args)
    cfg, tasks = build_config(args)
    out = args.out or Path("runs") / f"compare-{time.strftime('%Y%m%d-%H%M%S')}"
    result = run_compare(
        cfg,
        out,
        resume=args.resume,
        progress=not args.no_progress,
        plots=not args.no_plots,
        tasks=tasks,
    )
    print()
    print(result.summary_table)
    print()
    print(
        "Labels: verified = exact privacy of the noise actually added (inf: no finite ε at that "
        "δ); claimed = what a paper or textbook formula states (not a guarantee); unverified = "
        "a user's noise without a proof (no verified ε; run at the Gaussian's noise multiplier)."
    )
    skipped = f", {result.skipped} skipped (--resume)" if result.skipped else ""
    print(f"{result.finished} runs finished{skipped} of {result.planned} planned")
    for p in [out / "results.csv", out / "report.md", *result.plots]:
        print(f"wrote {p}")
    t = result.timings
    print(
        f"total {t['total']:.1f} s: train {t['train']:.1f} s, waiting for calibration/accounting "
        f"{t['accounting (waiting + checks)']:.1f} s, harness {t['harness (per-run overhead)']:.1f}"
        f" s, report {t['report and plots']:.1f} s"
    )
    if result.interrupted is not None:
        print(
            f"error: interrupted ({result.interrupted}); the report covers the finished runs "
            f"(continue with --resume --out {out})",
            file=sys.stderr,
        )
    elif result.status:
        print("error: some runs failed (see report.md)", file=sys.stderr)
    return result.status


#: options a preset sets itself
_PRESET_SETS = (
    "config",
    "mechanisms",
    "epsilons",
    "seeds",
    "dataset",
    "nn_dataset",
    "erm_dataset",
    "model",
    "task",
    "epochs",
    "delta",
    "max_train",
)


def run_presets_command(args: argparse.Namespace) -> int:
    """``compare --preset NAME [--report DIR]``: run the presets, print one line each, write
    the results page; returns the exit status (0 all done, 1 some failed or lacked data,
    2 none had data, 130/143 interrupted)."""
    from ..compare.config import ConfigError
    from ..compare.preset_runner import run_presets
    from ..compare.presets import get_preset
    from ..compare.results_page import write_results_page

    if args.preset is None:
        raise ConfigError("--report DIR needs --preset NAME (the page is of the presets)")
    given = [n for n in _PRESET_SETS if getattr(args, n, None) is not None]
    if given:
        flag = "--" + given[0].replace("_", "-")
        raise ConfigError(f"--preset {args.preset} sets {flag} itself; drop {flag}")
    presets = get_preset(args.preset)
    out = args.out or (
        args.report / "results" if args.report else Path("runs") / f"preset-{args.preset}"
    )
    if not args.resume:
        for p in presets:
            if (out / p.name / "results.csv").exists():
                raise ConfigError(
                    f"{out / p.name / 'results.csv'} exists: pass --resume to continue, or "
                    "choose another --out"
                )
    t0 = time.perf_counter()

    def say(o: Any) -> None:
        where = f" -> {o.out}" if o.out else ""
        extra = f": {o.message}" if o.message else ""
        print(f"preset {o.preset.name}: {o.status} ({o.seconds / 60:.1f} min){where}{extra}")

    outcomes = run_presets(
        presets,
        args.data_root,
        out,
        quick=args.quick,
        resume=args.resume,
        progress=not args.no_progress,
        plots=not args.no_plots,
        workers=args.workers or 0,
        on_done=say,
    )
    if args.report is not None:
        cmd = "product-noise compare --preset " + args.preset + (" --quick" if args.quick else "")
        cmd += " --resume" if args.resume else ""
        page = write_results_page(
            outcomes,
            args.report,
            command=f"{cmd} --report {args.report}",
            seconds=time.perf_counter() - t0,
        )
        print(f"wrote {page}")
    return _presets_status(outcomes)


def _presets_status(outcomes: list[Any]) -> int:
    from ..compare.config import ConfigError
    from ..compare.preset_runner import NOT_RUN

    interrupted = [o for o in outcomes if o.status == "interrupted"]
    if interrupted:
        print(f"error: {interrupted[0].message}; continue with --resume", file=sys.stderr)
        return 143 if "SIGTERM" in interrupted[0].message else 130
    if all(o.status in NOT_RUN for o in outcomes):
        raise ConfigError(outcomes[0].message)
    bad = [o.preset.name for o in outcomes if o.status != "done"]
    if bad:
        print(f"error: not every preset finished ({', '.join(bad)})", file=sys.stderr)
        return 1
    return 0


COMMAND = Command(
    name=NAME,
    help=HELP,
    description=DESCRIPTION,
    add_arguments=add_arguments,
    run=run,
    epilog=EPILOG,
)
