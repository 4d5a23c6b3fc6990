"""A user's task for the scale-out tests, importable by worker processes (``cfg.task``).

``killing_digits`` is the digits task with a linear model whose first forward pass in a worker
process kills that process with SIGKILL, once per marker file (``$SCALEOUT_KILL_MARKER``): the
first run to train dies as if the kernel's out-of-memory killer had ended it; every later run
trains normally. Without the variable nothing is killed.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import torch
from torch import nn

from product_noise.compare import DPSGDTask
from product_noise.compare.data import load_nn_data


class KillOnce(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        marker = os.environ.get("SCALEOUT_KILL_MARKER")
        # only in a worker process: the comparison itself checks the task with a forward pass
        if marker and multiprocessing.parent_process() is not None:
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass
            else:
                os.close(fd)
                Path(marker).write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)
        return self.fc(x)


def digits_task(name: str, model: type[nn.Module] | object) -> DPSGDTask:
    """scikit-learn's digits (the built-in split) as a user's task: ``model()`` builds the
    network; lr 0.2, one epoch."""
    d = load_nn_data("digits")
    return DPSGDTask(
        name,
        train=(torch.from_numpy(d.X_train), torch.from_numpy(d.y_train)),
        test=(torch.from_numpy(d.X_test), torch.from_numpy(d.y_test)),
        model=model,
        lr=0.2,
        epochs=1,
    )


def killing_digits() -> DPSGDTask:
    return digits_task("digits-kill-once", KillOnce)
