"""Where a comparison's jobs run: in this process, in a pool of local worker processes, or on a
Dask cluster.

Every executor has the same small interface: :meth:`~Executor.submit` returns a
:class:`concurrent.futures.Future`; :meth:`~Executor.set_context` sends one object (the
comparison's settings and tasks, never its data) to every worker once, and a job submitted with
``with_context=True`` receives it as its first argument; :meth:`~Executor.close` ends the
workers (``cancel=True``: now, running jobs included). A job whose worker process dies (killed,
out of memory) fails with :class:`WorkerDied`, naming the signal or exit code; the other jobs go
on, on a replacement worker.

The jobs are deterministic in their arguments (each run seeds itself), so where they run does
not change their results.
"""

from __future__ import annotations

import heapq
import itertools
import multiprocessing as mp
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from multiprocessing.connection import Connection, wait
from typing import Any

__all__ = [
    "Executor",
    "InlineExecutor",
    "ProcessExecutor",
    "DaskExecutor",
    "WorkerDied",
    "RemoteError",
    "SchedulerError",
    "make_executor",
    "init_worker_process",
    "usable_cores",
]


class WorkerDied(RuntimeError):
    """The worker process running a job ended before the job did (killed, out of memory)."""


class RemoteError(RuntimeError):
    """An exception raised by a job in a worker process (its type, message and traceback)."""

    def __init__(self, type_name: str, message: str, remote_traceback: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.remote_traceback = remote_traceback


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# ================================================================= worker processes' set-up
#: ``prctl`` option: the signal the kernel sends this process when its parent dies
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """End this worker process when the process ``parent`` ends, even by SIGKILL.

    On Linux the kernel sends SIGKILL at the parent's death (``prctl(PR_SET_PDEATHSIG)``);
    elsewhere a daemon thread checks every second whether the process was re-parented (POSIX;
    on Windows, where orphans keep their parent's pid, it never fires). If the parent is
    already gone, the worker exits at once.
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0:
                if os.getppid() != parent:  # the parent died before prctl
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


@contextmanager
def sigint_blocked() -> Iterator[None]:
    """Block SIGINT in this thread within the block (POSIX; elsewhere do nothing).

    Processes started within it inherit the blocked signal, so Ctrl-C never reaches the
    workers, not even while they import (before :func:`init_worker_process`); a Ctrl-C
    meanwhile is delivered to this process at the end of the block.
    """
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not (
        threading.main_thread()
    ):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def init_worker_process(parent: int, threads: int = 1) -> None:
    """Set up a worker process: it ends with ``parent``, ignores Ctrl-C (the parent alone
    decides, and ends the workers) and computes on ``threads`` threads (torch and BLAS)."""
    import torch
    from threadpoolctl import threadpool_limits
    from tqdm import tqdm

    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)
    threadpool_limits(threads)
    # tqdm's default lock is a multiprocessing one, left behind at exit ("leaked semaphore");
    # a worker runs one job at a time, so a thread lock does
    tqdm.set_lock(threading.RLock())


def _worker_main(conn: Connection, parent: int, threads: int) -> None:
    """A worker's loop: receive ``(job id, fn, args, with_context)``, send back
    ``(job id, ok, value)``; ``("context", obj)`` replaces the context; ``None`` ends it."""
    init_worker_process(parent, threads)
    context: Any = None
    while True:
        try:
            msg = _recv(conn)
        except (EOFError, OSError):
            return
        if msg is None:
            return
        if msg[0] == "context":
            context = msg[1]
            continue
        job_id, fn, args, with_context = msg
        try:
            value = fn(context, *args) if with_context else fn(*args)
            reply = (job_id, True, value)
        except BaseException as err:  # sent back whole: the parent decides
            reply = (job_id, False, (type(err).__name__, str(err), traceback.format_exc()))
        try:
            _send(conn, reply)
        except Exception as err:  # an unpicklable result: say so instead of hanging
            _send(conn, (job_id, False, (type(err).__name__, str(err), traceback.format_exc())))


def _send(conn: Connection, obj: Any) -> None:
    """Send ``obj`` pickled by value: not :class:`multiprocessing.connection.Connection`'s
    own pickler, with which torch shares tensors through file descriptors that a dying
    process can leave half-sent."""
    conn.send_bytes(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


def _recv(conn: Connection) -> Any:
    return pickle.loads(conn.recv_bytes())


def _death_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (killed; out of memory?)" if -exitcode == signal.SIGKILL else ""
        return f"the worker process died of {name}{hint}"
    return f"the worker process exited with status {exitcode}"


# ======================================================================== the executors
class Executor:
    """Runs jobs; see the module's docstring. ``workers`` is how many run at once."""

    workers: int = 1
    #: where the jobs run, for the report (``"this process"``, ``"2 local processes"``, ...)
    where: str = "this process"

    def set_context(self, context: Any) -> None:
        raise NotImplementedError

    def submit(
        self, fn: Callable[..., Any], *args: Any, with_context: bool = False, priority: int = 0
    ) -> Future:
        """Run ``fn(*args)`` (``fn(context, *args)`` with ``with_context``); of the jobs
        waiting for a worker, those of higher ``priority`` start first, then the older."""
        raise NotImplementedError

    def close(self, cancel: bool = False) -> None:
        """End the workers; ``cancel``: drop pending jobs and end running ones now."""


class InlineExecutor(Executor):
    """Runs each job in this process when it is submitted (the future is done on return).

    ``KeyboardInterrupt`` (Ctrl-C, or SIGTERM raised as one) is not caught: it stops the
    comparison, as before any executor existed.
    """

    def __init__(self) -> None:
        self._context: Any = None

    def set_context(self, context: Any) -> None:
        self._context = context

    def submit(
        self, fn: Callable[..., Any], *args: Any, with_context: bool = False, priority: int = 0
    ) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(self._context, *args) if with_context else fn(*args))
        except KeyboardInterrupt:
            raise
        except Exception as err:
            fut.set_exception(err)
        return fut


class _Worker:
    def __init__(self, ctx: Any, threads: int, context: bytes | None) -> None:
        self.conn, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(
            target=_worker_main, args=(child, os.getpid(), threads), daemon=True
        )
        with sigint_blocked():
            self.proc.start()
        child.close()
        self.job: int | None = None
        if context is not None:  # ``("context", obj)`` pickled once by set_context
            try:
                self.conn.send_bytes(context)
            except OSError:
                self.proc.kill()
                self.proc.join()
                self.conn.close()
                raise


class ProcessExecutor(Executor):
    """A pool of ``workers`` local processes (``spawn``), each running one job at a time.

    Unlike :class:`concurrent.futures.ProcessPoolExecutor`, a worker that dies fails only the
    job it was running (with :class:`WorkerDied`) and is replaced; the pool stays usable. Jobs
    start by priority, then in submission order. The workers ignore Ctrl-C, compute on
    ``threads`` threads each and end when this process ends, even by SIGKILL.
    """

    def __init__(self, workers: int, threads: int = 1) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self.where = f"{workers} local worker processes"
        self._threads = threads
        self._mp = mp.get_context("spawn")
        self._lock = threading.Lock()
        self._queue: list[tuple[int, int, Future, Callable, tuple, bool]] = []  # a heap
        self._running: dict[int, Future] = {}
        self._pool: list[_Worker] = []
        self._ids = itertools.count()
        self._context: bytes | None = None  # ("context", obj), pickled once
        self._wake_r, self._wake_w = self._mp.Pipe(duplex=False)
        self._thread: threading.Thread | None = None
        self._closing = False
        self._failed_starts = 0

    def set_context(self, context: Any) -> None:
        """Pickle ``context`` once, here (an unpicklable one fails in the caller), for every
        worker to receive as it starts."""
        payload = pickle.dumps(("context", context), protocol=pickle.HIGHEST_PROTOCOL)
        with self._lock:
            if self._pool:
                raise RuntimeError("set_context after the workers started")
            self._context = payload

    def submit(
        self, fn: Callable[..., Any], *args: Any, with_context: bool = False, priority: int = 0
    ) -> Future:
        fut: Future = Future()
        with self._lock:
            if self._closing:
                raise RuntimeError("submit after close")
            job_id = next(self._ids)
            heapq.heappush(self._queue, (-priority, job_id, fut, fn, args, with_context))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="executor", daemon=True)
                self._thread.start()
        self._wake_w.send_bytes(b"")
        return fut

    # ------------------------------------------------------------------ dispatcher thread
    def _loop(self) -> None:
        try:
            self._serve()
        except BaseException as err:  # a bug here must fail the jobs, not leave them waiting
            with self._lock:
                self._closing = True
                futs = list(self._running.values()) + [job[2] for job in self._queue]
                self._queue.clear()
            for fut in futs:
                if not fut.done():
                    fut.set_exception(RuntimeError(f"the executor failed: {err!r}"))
            raise

    def _serve(self) -> None:
        if hasattr(signal, "pthread_sigmask"):  # the workers it starts inherit the mask
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        while True:
            with self._lock:
                if self._closing:
                    return
                self._dispatch()
                waitables: list[Any] = [self._wake_r]
                for w in self._pool:
                    waitables += [w.conn, w.proc.sentinel]
            for ready in wait(waitables, timeout=1.0):
                if ready is self._wake_r:
                    while self._wake_r.poll():
                        self._wake_r.recv_bytes()
                    continue
                with self._lock:
                    self._handle(ready)

    def _dispatch(self) -> None:
        """Start workers for the queued jobs and give each idle worker the next job."""
        while self._queue and len(self._pool) < self.workers:
            if not self._start_worker():
                break
        for w in self._pool:
            while w.job is None and self._queue and w.proc.is_alive():
                item = heapq.heappop(self._queue)
                _, job_id, fut, fn, args, with_context = item
                if not (fut.running() or fut.set_running_or_notify_cancel()):
                    continue
                try:
                    _send(w.conn, (job_id, fn, args, with_context))
                except OSError:  # the worker just died: the job waits for another one
                    heapq.heappush(self._queue, item)
                    break
                except Exception as err:  # could not be pickled: that job fails, not the pool
                    fut.set_exception(err)
                    continue
                w.job = job_id
                self._running[job_id] = fut

    def _start_worker(self) -> bool:
        """Start one worker; after 3 starts in a row that die before they take the context,
        fail the queued jobs (a context too large for the memory, say) instead of looping."""
        try:
            worker = _Worker(self._mp, self._threads, self._context)
        except OSError as err:  # died before it read the context
            self._failed_starts += 1
            if self._failed_starts >= 3:
                why = f"3 worker processes died as they started ({err!r})"
                for *_, fut, _fn, _args, _wc in self._queue:
                    if not fut.done():
                        fut.set_exception(WorkerDied(why))
                self._queue.clear()
                self._failed_starts = 0
            return False
        self._failed_starts = 0
        self._pool.append(worker)
        return True

    def _handle(self, ready: Any) -> None:
        worker = next((w for w in self._pool if ready in (w.conn, w.proc.sentinel)), None)
        if worker is None:  # its connection and its sentinel were both ready: handled
            return
        try:
            while worker.conn.poll():  # a reply sent just before dying still counts
                self._receive(worker)
        except (EOFError, OSError):
            pass
        except Exception as err:  # a reply that cannot be read: fail its job, end the worker
            if worker.job is not None:
                fut = self._running.pop(worker.job)
                worker.job = None
                fut.set_exception(RemoteError(type(err).__name__, str(err), ""))
            worker.proc.kill()
        if ready is worker.proc.sentinel or not worker.proc.is_alive():
            worker.proc.join()
            self._pool.remove(worker)
            if worker.job is not None:
                fut = self._running.pop(worker.job)
                fut.set_exception(WorkerDied(_death_reason(worker.proc.exitcode)))

    def _receive(self, worker: _Worker) -> None:
        job_id, ok, value = _recv(worker.conn)
        fut = self._running.pop(job_id)
        worker.job = None
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(RemoteError(*value))

    # ------------------------------------------------------------------------- closing
    def close(self, cancel: bool = False) -> None:
        """End the workers. Without ``cancel``, call it when no job runs: a worker's
        parent-death signal is bound to the dispatcher thread, which ends here, so a job still
        running then fails with :class:`WorkerDied`."""
        with self._lock:
            self._closing = True
            queued = list(self._queue)
            self._queue.clear()
            pool = list(self._pool)
        for _, _, fut, *_rest in queued:
            fut.cancel()
        if cancel:  # first, so that a worker the dispatcher is busy with cannot hold it up
            for w in pool:
                w.proc.terminate()
        self._wake_w.send_bytes(b"")
        if self._thread is not None:
            self._thread.join()
        pool, self._pool = self._pool, []
        for w in pool:
            if not cancel:
                try:
                    _send(w.conn, None)
                except OSError:
                    pass
        for w in pool:
            w.proc.join(5.0 if cancel else None)
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join()
            w.conn.close()
        for fut in self._running.values():
            fut.cancel() or fut.done() or fut.set_exception(WorkerDied("the executor was closed"))
        self._running.clear()
        self._wake_r.close()
        self._wake_w.close()


# ================================================================================ Dask
_DASK_MISSING = (
    "--executor dask needs Dask's distributed scheduler: pip install 'product-noise[dask]' "
    "(distributed; dask-jobqueue for Slurm/PBS/SGE/LSF)"
)


class SchedulerError(RuntimeError):
    """The Dask scheduler cannot be used: unreachable, no worker joined, or workers of more
    than one thread (bad input: the user's cluster, not a bug)."""


def _limited(threads: int, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` on ``threads`` torch and BLAS threads (a Dask worker's job)."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    with threadpool_limits(threads):
        return fn(*args)


def _with_context(threads: int, fn: Callable[..., Any], context: Any, *args: Any) -> Any:
    return _limited(threads, fn, context, *args)


class DaskExecutor(Executor):
    """Jobs on a Dask distributed cluster: ``scheduler`` is an address
    (``tcp://host:8786``, a scheduler file's ``.json`` path) or ``"local"`` (a
    :class:`distributed.LocalCluster` of ``workers`` processes, one thread each, started here
    and closed by :meth:`close`).

    Every worker must have one thread: runs seed process-global random generators, so two
    runs in one process at once would not give the results of one process. The executor
    waits up to ``wait_seconds`` for a first worker (batch jobs may still be queued) and runs
    as many jobs at once as the cluster has worker threads, re-read as workers join or
    leave. The context is scattered once to every worker (``broadcast=True``); a job is
    submitted with ``pure=False`` and, on a local cluster, Dask's own retries off (the
    comparison retries, ``--retries``). A worker lost while it ran a job fails that job with
    :class:`WorkerDied` (Dask's ``KilledWorker``; on a local cluster after the first loss,
    elsewhere after the scheduler's ``distributed.scheduler.allowed-failures``).
    """

    def __init__(
        self, scheduler: str, workers: int = 2, threads: int = 1, wait_seconds: float = 120.0
    ) -> None:
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError as err:
            if err.name in ("dask", "distributed"):
                raise ImportError(_DASK_MISSING) from None
            raise
        self._cluster = None
        self._threads = threads
        if scheduler == "local":
            dask.config.set({"distributed.scheduler.allowed-failures": 0})
            self._cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                env={"OMP_NUM_THREADS": str(threads)},
            )
            self._client = Client(self._cluster)
        else:
            self._client = _connect(Client, scheduler)
        try:
            self._client.wait_for_workers(1, timeout=wait_seconds)
        except (TimeoutError, OSError):
            self.close()
            raise SchedulerError(
                f"--scheduler {scheduler}: no worker joined within {wait_seconds:.0f} s"
            ) from None
        several = {w: n for w, n in self._client.nthreads().items() if n != 1}
        if several:
            self.close()
            raise SchedulerError(
                f"--scheduler {scheduler}: workers with more than one thread ({several}); start "
                "them with one thread each (dask worker --nthreads 1; dask-jobqueue: processes "
                "equal to cores), since two runs in one process would share its random state"
            )
        self._checked = (0.0, 1)
        self.where = f"a Dask cluster ({scheduler}, {self.workers} worker threads)"
        self._context: Any = None
        self._futures: set[Any] = set()

    @property  # type: ignore[override]
    def workers(self) -> int:
        """The cluster's worker threads now (re-read at most every 2 s; at least 1)."""
        t, n = self._checked
        if time.monotonic() - t > 2.0:
            n = max(1, sum(self._client.nthreads().values()))
            self._checked = (time.monotonic(), n)
        return n

    def set_context(self, context: Any) -> None:
        self._context = self._client.scatter(context, broadcast=True, hash=False)

    def submit(
        self, fn: Callable[..., Any], *args: Any, with_context: bool = False, priority: int = 0
    ) -> Future:
        from distributed import KilledWorker

        kw = {"pure": False, "priority": priority}
        if with_context:
            remote = self._client.submit(
                _with_context, self._threads, fn, self._context, *args, **kw
            )
        else:
            remote = self._client.submit(_limited, self._threads, fn, *args, **kw)
        self._futures.add(remote)
        fut: Future = Future()
        fut.set_running_or_notify_cancel()

        def done(r: Any) -> None:
            self._futures.discard(r)
            try:
                fut.set_result(r.result())
            except KilledWorker as err:
                fut.set_exception(WorkerDied(f"the Dask worker running it was lost ({err})"))
            except BaseException as err:
                fut.set_exception(err)

        remote.add_done_callback(done)
        return fut

    def close(self, cancel: bool = False) -> None:
        if cancel and self._futures:
            self._client.cancel(list(self._futures), force=True)
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def _connect(client: Callable[..., Any], scheduler: str) -> Any:
    """A client of the scheduler at ``scheduler`` (an address or a ``.json`` scheduler file);
    :class:`SchedulerError` when it does not answer."""
    try:
        if scheduler.endswith(".json"):
            return client(scheduler_file=scheduler, timeout="30s")
        return client(scheduler, timeout="30s")
    except (OSError, TimeoutError, ValueError) as err:
        raise SchedulerError(f"--scheduler {scheduler}: cannot connect ({err})") from None


def make_executor(kind: str, workers: int, threads: int = 1, scheduler: str | None = None):
    """The executor of ``--executor kind``: ``"local"`` (``workers`` ≤ 1: this process, else a
    :class:`ProcessExecutor`) or ``"dask"`` (a :class:`DaskExecutor` on ``scheduler``)."""
    if kind == "dask":
        return DaskExecutor(scheduler or "local", workers=max(1, workers), threads=threads)
    if kind != "local":
        raise ValueError(f"unknown executor {kind!r} (local, dask)")
    return InlineExecutor() if workers <= 1 else ProcessExecutor(workers, threads)
