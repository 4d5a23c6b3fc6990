"""Shared command line of the DP-SGD example scripts (argument parsing and wiring only).

Each script (``mnist.py``, ``cifar10.py``, ``adult.py``, ``imdb.py``, ``movielens.py``) declares
its official defaults as a :class:`Defaults`, adds its dataset flags, loads its data with
:mod:`product_noise.data.dpsgd`, builds its model from :mod:`product_noise.training.models` and
calls :func:`run`, which trains with :func:`product_noise.training.loop.train`, prints one labelled
line per epoch and writes ``<out>/<dataset>_<noise>.json``/``.csv`` (and a PNG with ``--plot``). A
checkpoint ``<out>/<dataset>_<noise>.ckpt.pt`` is written (atomically) after every epoch;
``--resume`` continues an interrupted run from it with the same privacy accounting.

Launched by torchrun (``torchrun --nproc_per_node 2 examples/adult.py ...``; detected by the
``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` variables torchrun sets, with more than one process),
every process joins a gloo process group on CPU and :func:`run` trains with
``train(..., distributed=True)``: ``--batch-size`` is the expected global batch, the noise is
drawn once per step on rank 0 and the privacy accounting is that of one process. Only rank 0
prints and writes results; no checkpoint is written (``--resume`` is refused).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from product_noise.data.dpsgd import DPSGDData  # noqa: E402
from product_noise.training.loop import NOISES, TrainConfig, save_history, train  # noqa: E402
from product_noise.training.models import count_parameters  # noqa: E402
from product_noise.validation import check_output_dir  # noqa: E402

__all__ = ["Defaults", "build_parser", "parse", "run", "format_epoch", "entry", "torchrun_world"]

#: the training loop's noises but ℓ2: the scripts have flags for product noise (ε₀, k) and the
#: Gaussian (σ) only
SCRIPT_NOISES = tuple(n for n in NOISES if n != "l2")


@dataclass(frozen=True)
class Defaults:
    """The official script's defaults for one dataset (``product_noise_paper.md`` §8)."""

    dataset: str
    epochs: int
    batch_size: int
    lr: float
    optimizer: str
    max_grad_norm: float
    epsilon0: float
    k: float
    sigma: float
    momentum: float = 0.0
    lr_schedule: str | None = None
    metric: str = "accuracy"
    data_root: str = "data"


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, except for flags whose default depends on the noise (None) or is off."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False):
            return action.help
        return super()._get_help_string(action)


def build_parser(defaults: Defaults, description: str) -> argparse.ArgumentParser:
    """Opacus-style flags with ``defaults`` filled in; scripts add their dataset flags."""
    d = defaults
    p = argparse.ArgumentParser(description=description, formatter_class=_HelpFormatter)
    p.add_argument(
        "--noise",
        choices=SCRIPT_NOISES,
        default=None,
        help="noise added to the summed clipped gradients (default product); 'none' trains "
        "without DP",
    )
    p.add_argument("--disable-dp", action="store_true", help="alias for --noise none")
    p.add_argument(
        "--epsilon0",
        type=float,
        default=None,
        help=f"product noise: the paper's per-step ε₀ (default {d.epsilon0})",
    )
    p.add_argument(
        "-k",
        type=float,
        default=None,
        help=(
            "product noise: the constant k of the paper's theorem, which sets t(M, k) and the "
            f"claimed per-step δ₀ (not a sample count; default {d.k:g})"
        ),
    )
    p.add_argument(
        "--sigma",
        type=float,
        default=None,
        help=f"Gaussian noise: Opacus' noise multiplier σ/C (default {d.sigma})",
    )
    p.add_argument(
        "--sensitivity",
        choices=("paper", "add_remove"),
        default="paper",
        help="product noise: Δ = 2C as the official code ('paper') or Δ = C ('add_remove')",
    )
    p.add_argument(
        "-c",
        "--max-per-sample-grad-norm",
        "--max-per-sample-grad_norm",
        dest="max_grad_norm",
        type=float,
        default=d.max_grad_norm,
        help="clip norm C",
    )
    p.add_argument("--lr", type=float, default=d.lr, help="learning rate")
    p.add_argument(
        "--optimizer", choices=("sgd", "adam"), default=d.optimizer, help="base optimizer"
    )
    p.add_argument("--momentum", type=float, default=d.momentum, help="SGD momentum")
    p.add_argument("-n", "--epochs", type=int, default=d.epochs, help="epochs")
    p.add_argument(
        "-b",
        "--batch-size",
        type=int,
        default=d.batch_size,
        help="expected (Poisson) batch size",
    )
    p.add_argument("--delta", type=float, default=1e-5, help="target δ of the reported ε")
    p.add_argument(
        "--data-root", default=d.data_root, help="directory of the upstream files (no download)"
    )
    gpu = torch.cuda.is_available() and torchrun_world()[1] == 1  # torchrun: gloo on CPU
    p.add_argument("--device", default="cuda" if gpu else "cpu", help="torch device")
    p.add_argument("--seed", type=int, default=0, help="seed of init, sampling, noise, splits")
    p.add_argument("--out", default=f"runs/{d.dataset}", help="directory for JSON/CSV results")
    p.add_argument(
        "--privacy-every",
        type=int,
        default=1,
        help="compute the privacy figures every N epochs (and at the last epoch)",
    )
    p.add_argument(
        "--plot",
        action="store_true",
        help="after training, draw <out>/<dataset>.png from every result JSON in --out",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from <out>/<dataset>_<noise>.ckpt.pt (written after every epoch) with "
        "the same settings: finished epochs and their privacy accounting are kept",
    )
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    return p


def parse(
    parser: argparse.ArgumentParser, defaults: Defaults, argv: Sequence[str] | None
) -> argparse.Namespace:
    """Parse ``argv`` and resolve the noise choice (errors exit with code 2)."""
    args = parser.parse_args(argv)
    try:
        torch.device(args.device)
    except (RuntimeError, ValueError):
        parser.error(f"--device {args.device}: not a torch device (e.g. cpu, cuda, cuda:0)")
    if str(args.device).startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: no CUDA device is available here (use --device cpu)")
    try:
        check_output_dir(args.out)
    except ValueError as exc:
        parser.error(str(exc))
    if args.disable_dp:
        if args.noise not in (None, "none"):
            parser.error(f"--disable-dp contradicts --noise {args.noise}")
        args.noise = "none"
    elif args.noise is None:
        args.noise = "product"
    if args.noise == "product":
        if args.sigma is not None:
            parser.error(
                "--sigma is Opacus' Gaussian noise multiplier and does not apply to product "
                "noise, which is calibrated by --epsilon0 and -k (use --noise gaussian --sigma)"
            )
        args.epsilon0 = defaults.epsilon0 if args.epsilon0 is None else args.epsilon0
        args.k = defaults.k if args.k is None else args.k
        if args.epsilon0 <= 0:
            parser.error(f"--epsilon0 must be > 0, got {args.epsilon0}")
        if args.k <= 1:
            parser.error(f"-k must be > 1, got {args.k}")
    else:
        for flag, value in (("--epsilon0", args.epsilon0), ("-k", args.k)):
            if value is not None:
                parser.error(f"{flag} applies to product noise only (got --noise {args.noise})")
        args.epsilon0, args.k = defaults.epsilon0, defaults.k
        if args.noise == "gaussian":
            args.sigma = defaults.sigma if args.sigma is None else args.sigma
            if args.sigma <= 0:
                parser.error(f"--sigma must be > 0, got {args.sigma}")
        elif args.sigma is not None:
            parser.error("--sigma applies to Gaussian noise only (got --noise none)")
    for flag, value in (
        ("--epochs", args.epochs),
        ("--batch-size", args.batch_size),
        ("--privacy-every", args.privacy_every),
    ):
        if value < 1:
            parser.error(f"{flag} must be ≥ 1, got {value}")
    for flag, value in (("--lr", args.lr), ("-c", args.max_grad_norm)):
        if not value > 0:
            parser.error(f"{flag} must be > 0, got {value}")
    if not 0 < args.delta < 1:
        parser.error(f"--delta must be in (0, 1), got {args.delta}")
    _check_torchrun(parser, args)
    return args


def torchrun_world() -> tuple[int, int]:
    """This process's rank and the number of processes, as torchrun sets them.

    Returns
    -------
    rank, world_size : int
        ``RANK`` and ``WORLD_SIZE`` when torchrun set ``WORLD_SIZE``, ``RANK`` and
        ``LOCAL_RANK``; ``(0, 1)`` otherwise (a plain ``python`` run).
    """
    if not all(v in os.environ for v in ("WORLD_SIZE", "RANK", "LOCAL_RANK")):
        return 0, 1
    return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])


def _check_torchrun(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Under torchrun with several processes, refuse what a distributed run does not do."""
    if torchrun_world()[1] == 1:
        return
    if args.noise == "none":
        parser.error("torchrun: the distributed runs are DP-SGD only (not --noise none)")
    if args.resume:
        parser.error("torchrun: distributed runs write no checkpoint, so --resume is refused")
    if torch.device(args.device).type != "cpu":
        parser.error(f"torchrun: distributed runs use gloo on CPU (got --device {args.device})")


@contextmanager
def torchrun_group(world_size: int) -> Iterator[None]:
    """The gloo process group of a torchrun launch for the block (nothing for one process).

    Parameters
    ----------
    world_size : int
        The number of processes (:func:`torchrun_world`); with more than one, every process
        joins the group through torchrun's environment (``env://``: ``MASTER_ADDR``,
        ``MASTER_PORT``, ``RANK``, ``WORLD_SIZE``) and leaves it after the block.
    """
    if world_size == 1:
        yield
        return
    torch.distributed.init_process_group("gloo")
    try:
        yield
    finally:
        torch.distributed.destroy_process_group()


def make_config(args: argparse.Namespace, defaults: Defaults) -> TrainConfig:
    """The :class:`TrainConfig` of the parsed arguments."""
    return TrainConfig(
        noise=args.noise,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        optimizer=args.optimizer,
        momentum=args.momentum,
        lr_schedule=defaults.lr_schedule,
        max_grad_norm=args.max_grad_norm,
        sigma=args.sigma if args.noise == "gaussian" else None,
        epsilon0=args.epsilon0,
        k=args.k,
        sensitivity=args.sensitivity,
        delta=args.delta,
        metric=defaults.metric,
        seed=args.seed,
        device=args.device,
        poisson_sampling=True,
        privacy_every=args.privacy_every,
    )


def _fmt_eps(x: Any) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    return f"{x:.4g}"


def format_epoch(row: dict[str, Any], metric: str, epochs: int) -> str:
    """One line per epoch: metrics, time, and every privacy figure with its label."""
    m = "acc" if metric == "accuracy" else "RMSE"
    parts = [
        f"epoch {row['epoch']}/{epochs}",
        f"train {m} {row[f'train_{metric}']:.4f} loss {row['train_loss']:.4f}",
        f"test {m} {row[f'test_{metric}']:.4f} loss {row['test_loss']:.4f}",
        f"{row['seconds']:.1f} s",
    ]
    if row["noise"] == "none":
        parts.append("non-private (no privacy guarantee)")
    elif "verified_epsilon" in row:
        delta = row.get("verified_delta", row.get("delta"))
        if row["noise"] == "product":
            c_eps, c_delta = row.get("claimed_epsilon"), row.get("claimed_delta")
            if c_eps is None or (isinstance(c_eps, float) and math.isnan(c_eps)):
                claimed = "claimed ε' n/a (paper's composition undefined this early)"
            else:
                claimed = f"claimed ε'={_fmt_eps(c_eps)} δ'={c_delta:.3g} (paper, unsound)"
            parts.append(
                f"{claimed}; verified ε={_fmt_eps(row['verified_epsilon'])} at δ={delta:g}"
            )
        else:
            parts.append(f"verified ε={_fmt_eps(row['verified_epsilon'])} at δ={delta:g}")
    else:
        parts.append("privacy not computed this epoch (--privacy-every)")
    return " | ".join(parts)


def run(
    args: argparse.Namespace,
    defaults: Defaults,
    data: DPSGDData,
    model_fn: Callable[[], nn.Module],
    *,
    model_name: str,
) -> dict[str, Any]:
    """Train, print, save; return ``{"history", "json", "csv", "dim", "info", "png"}``.

    The saved JSON's ``config.extra.accountant_history`` is what the engine's accountant
    composed (for joint noise ``[family, dim, noise_multiplier, sample_rate, steps]`` runs,
    for Opacus' Gaussian accountants ``[noise_multiplier, sample_rate, steps]``). Under
    torchrun (:func:`torchrun_world`) the processes train together and only rank 0 prints and
    writes: the other ranks return their history with ``json``, ``csv`` and ``png`` None.
    """
    from product_noise.opacus import PrivacyEngine

    rank, world = torchrun_world()
    config = make_config(args, defaults)
    config.extra = {
        "dataset": defaults.dataset,
        "data": data.name,
        "model": model_name,
        "n_train": data.n_train,
        "n_test": data.n_test,
        "data_info": data.info,
    }
    torch.manual_seed(args.seed)
    model = model_fn()
    dim = count_parameters(model)
    config.extra["dim"] = dim
    say = (lambda *_a, **_k: None) if args.quiet or rank != 0 else print
    _announce(args, defaults, data, model_name, dim, say, world)
    name = f"{defaults.dataset}_{args.noise}"
    ckpt = None if world > 1 else Path(args.out) / f"{name}.ckpt.pt"
    if args.resume and ckpt is not None:
        say(
            f"resuming from {ckpt}"
            if ckpt.exists()
            else f"--resume: no checkpoint {ckpt} yet; starting at epoch 1"
        )
    with warnings.catch_warnings(), torchrun_group(world):
        # Opacus' hooks on a first layer whose input needs no gradient: expected, harmless
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        warnings.filterwarnings("ignore", message="Secure RNG turned off")
        engine = None if args.noise == "none" else PrivacyEngine()
        history = train(
            model,
            data.train,
            data.test,
            config,
            progress=not args.no_progress and rank == 0,
            on_epoch=lambda row: say(format_epoch(row, defaults.metric, args.epochs)),
            engine=engine,
            checkpoint=ckpt,
            resume=args.resume,
            distributed=world > 1,
        )
    if engine is not None:
        config.extra["accountant_history"] = [list(h) for h in engine.accountant.history]
    result: dict[str, Any] = dict(
        history=history, json=None, csv=None, dim=dim, info=data.info, png=None
    )
    if rank != 0:
        return result
    result["json"], result["csv"] = save_history(history, args.out, name, config)
    say(f"results: {result['json']} {result['csv']}")
    if args.plot:
        from product_noise.training.plots import plot_three_panels

        files = sorted(Path(args.out).glob(f"{defaults.dataset}_*.json"))
        result["png"] = plot_three_panels(files, Path(args.out) / f"{defaults.dataset}.png")
        say(f"plot: {result['png']}")
    return result


def _announce(
    args: argparse.Namespace,
    defaults: Defaults,
    data: DPSGDData,
    model_name: str,
    dim: int,
    say: Callable[..., None],
    world_size: int,
) -> None:
    """The lines printed before training: model, data, noise and (torchrun) processes."""
    say(
        f"{defaults.dataset}: {model_name} with M = {dim:,} parameters; "
        f"{data.n_train:,} train / {data.n_test:,} test ({data.info.get('source', '')})"
    )
    if data.info.get("note"):
        say(f"NOTE: {data.info['note']}")
    if args.noise == "product":
        say(
            f"noise: product (paper's calibration ε₀={args.epsilon0:g}, k={args.k:g}, "
            f"sensitivity {args.sensitivity}); 'claimed' = the paper's composition (unsound), "
            "'verified' = exact accountant of the noise actually added"
        )
    elif args.noise == "gaussian":
        say(f"noise: Gaussian, σ = {args.sigma:g} (Opacus' accountant, 'verified')")
    else:
        say("noise: none (non-private baseline)")
    if world_size > 1:
        say(
            f"torchrun: {world_size} processes (gloo, CPU); --batch-size {args.batch_size} is "
            "the expected global batch, the noise is drawn on rank 0 only: the same accounting "
            "as one process"
        )


def entry(main: Callable[[Sequence[str] | None], Any]) -> None:
    """Run ``main`` as a command, with the package's exit-code policy: a missing or malformed
    data file or a checkpoint of other settings is bad input (one ``error:`` line, exit 2); NaN
    in training exits 1 with its message; Ctrl-C exits 130 and says how to resume."""
    from product_noise.data.loaders import DatasetNotFoundError

    try:
        main(None)
    except (DatasetNotFoundError, ValueError) as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        raise SystemExit(2) from None
    except FloatingPointError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        print(
            "\ninterrupted: the finished epochs are in the checkpoint in --out; run the same "
            "command with --resume to continue",
            file=sys.stderr,
        )
        raise SystemExit(130) from None
