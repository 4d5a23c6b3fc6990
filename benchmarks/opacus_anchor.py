"""Anchor check: the package's Gaussian DP-SGD path against plain Opacus 1.6, same data and loop.

Both engines train Opacus' MNIST ``SampleConvNet`` with the paper's MNIST defaults (σ 1.3,
C 1, SGD lr 0.15, Poisson batches of expected size 256, 50 epochs, δ = 1e-5) on the same
MNIST-format data (the full Fashion-MNIST by default) from the same seed, in one process:
``opacus.PrivacyEngine`` and ``product_noise.PrivacyEngine(noise="gaussian")``. Their epochs are
interleaved (one epoch of each in turn), so a load on the machine slows both alike and the
epoch-time ratio is measured in the same run. ε is Opacus' PRV accountant for both.

Pass criterion (printed): the final test accuracies differ by at most 0.7 percentage points
and the two ε agree to 1e-9. Output: one line per epoch, a summary table and ``--out`` JSON.

Usage::

    PYTHONPATH=. python benchmarks/opacus_anchor.py --data-root /usr/share/datasets \\
        --dataset fashion-mnist --epochs 50 --out docs/opacus_anchor.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import add_data_root_argument, dataset_dir  # noqa: E402

TOLERANCE_PP = 0.7


def _engine(kind: str, model: torch.nn.Module, loader: DataLoader, args: argparse.Namespace):
    """``(model, optimizer, loader, engine)`` made private by ``kind`` ("opacus"/"package")."""
    import opacus

    import product_noise

    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.0)
    if kind == "opacus":
        engine = opacus.PrivacyEngine(accountant="prv")
        extra: dict[str, Any] = {}
    else:
        engine = product_noise.PrivacyEngine(accountant="prv")
        extra = {"noise": "gaussian"}
    m, o, dl = engine.make_private(
        module=model,
        optimizer=opt,
        data_loader=loader,
        noise_multiplier=args.sigma,
        max_grad_norm=args.max_grad_norm,
        poisson_sampling=True,
        **extra,
    )
    return m, o, dl, engine


def _epoch(model, opt, loader) -> None:
    model.train()
    for x, y in loader:
        if len(y) == 0:
            continue
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


@torch.no_grad()
def _accuracy(model, data) -> float:
    model.eval()
    x, y = data.tensors
    correct = sum(
        int((model(x[i : i + 2000]).argmax(1) == y[i : i + 2000]).sum())
        for i in range(0, len(y), 2000)
    )
    return correct / len(y)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_root_argument(p)
    p.add_argument("--dataset", default="fashion-mnist", help="folder under the data root")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--sigma", type=float, default=1.3)
    p.add_argument("--max-grad-norm", type=float, default=1.0)
    p.add_argument("--lr", type=float, default=0.15)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--delta", type=float, default=1e-5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="JSON file for the results")
    args = p.parse_args(argv)

    from product_noise.data.dpsgd import load_mnist_dpsgd
    from product_noise.training.models import SampleConvNet

    try:
        folder = dataset_dir(args.data_root, args.dataset)
    except FileNotFoundError as err:  # one line, exit 2
        p.error(str(err))
    data = load_mnist_dpsgd(folder)
    runs: dict[str, dict[str, Any]] = {}
    for kind in ("opacus", "package"):
        torch.manual_seed(args.seed)
        model = SampleConvNet()
        loader = DataLoader(data.train, batch_size=args.batch_size, shuffle=False)
        m, o, dl, eng = _engine(kind, model, loader, args)
        runs[kind] = {"model": m, "opt": o, "loader": dl, "engine": eng, "times": [], "acc": []}
    print(
        f"{args.dataset}: {data.n_train} train / {data.n_test} test, SampleConvNet, σ {args.sigma}"
    )
    for epoch in range(1, args.epochs + 1):
        line = [f"epoch {epoch:>3}"]
        for kind, r in runs.items():
            torch.manual_seed(args.seed * 1000 + epoch)
            t0 = time.perf_counter()
            _epoch(r["model"], r["opt"], r["loader"])
            r["times"].append(time.perf_counter() - t0)
            r["acc"].append(_accuracy(r["model"], data.test))
            line.append(f"{kind} acc {r['acc'][-1]:.4f} ({r['times'][-1]:.1f} s)")
        print(" | ".join(line), flush=True)
    return _summary(runs, args)


def _summary(runs: dict[str, dict[str, Any]], args: argparse.Namespace) -> int:
    out: dict[str, Any] = {"settings": {k: str(v) for k, v in vars(args).items()}}
    for kind, r in runs.items():
        times = sorted(r["times"])
        out[kind] = {
            "accuracy": float(r["acc"][-1]),
            "epsilon_prv": float(r["engine"].get_epsilon(args.delta)),
            "median_epoch_s": float(times[len(times) // 2]),
            "accuracy_per_epoch": r["acc"],
        }
    diff_pp = 100 * (out["package"]["accuracy"] - out["opacus"]["accuracy"])
    ratio = out["package"]["median_epoch_s"] / out["opacus"]["median_epoch_s"]
    eps_gap = abs(out["package"]["epsilon_prv"] - out["opacus"]["epsilon_prv"])
    ok = bool(abs(diff_pp) <= TOLERANCE_PP and eps_gap <= 1e-9)
    out.update(difference_pp=float(diff_pp), epoch_time_ratio=float(ratio), passed=ok)
    print(f"\n| engine | test accuracy | ε (PRV, δ = {args.delta:g}) | median s/epoch |")
    print("|---|---|---|---|")
    for kind in ("opacus", "package"):
        o = out[kind]
        print(
            f"| {kind} | {o['accuracy']:.4f} | {o['epsilon_prv']:.3f} | {o['median_epoch_s']:.2f} |"
        )
    print(
        f"\naccuracy difference {diff_pp:+.2f} pp (tolerance ±{TOLERANCE_PP}); epoch-time ratio "
        f"package/opacus {ratio:.3f}; {'PASS' if ok else 'FAIL'}"
    )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=1))
        print(f"wrote {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
