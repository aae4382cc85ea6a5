"""Where the work runs: Dask's local schedulers, a local (CUDA) cluster, or a running
Dask scheduler elsewhere; and whether chunks go to the workers' GPUs.

Dask (its threaded and process schedulers, and ``distributed``) does all scheduling;
this module only picks and starts one.  It imports ``distributed`` and ``dask_cuda``
inside functions, so that ``import numbadask`` stays light, and it decides whether a
GPU is there through NVML (:mod:`numbadask.engine.dispatch`), which creates no CUDA context:
a context made in the client before ``LocalCUDACluster`` starts would pin every worker
to GPU 0 (dask-cuda #719).
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from numbadask.engine import dispatch
from numbadask.main.pools import process_pool, run_in_every_process

if TYPE_CHECKING:
    import dask.array as da
    from distributed import Client

#: ``--scheduler`` values besides a scheduler address.
SCHEDULERS: tuple[str, ...] = ("auto", "threads", "processes", "local", "local-cuda")
ADDRESS = re.compile(r"(tcp|tls|ucx|ws|wss)://[^\s/]+:\d+/?")
CONNECT_TIMEOUT_S = 5.0
CHUNK_SHARE = 16  # see Runtime.chunk_bytes_cap
CUDA_HINT = "pip install 'numbadask[cuda12]' (or [cuda13]), which brings dask-cuda"


class SchedulerError(ConnectionError):
    """A scheduler that cannot be named, reached or started."""


def cuda_cluster_unavailable_reason() -> str | None:
    """Why a ``LocalCUDACluster`` cannot start here, or None when it can.

    Examples
    --------
    >>> reason = cuda_cluster_unavailable_reason()
    >>> reason is None or "dask-cuda" in reason or "GPU" in reason
    True
    """
    if importlib.util.find_spec("dask_cuda") is None:
        return f"dask-cuda is not installed: {CUDA_HINT}"
    count = dispatch.visible_gpu_count()
    if not count:
        why = "NVML (nvidia-ml-py) is not installed" if count is None else "NVML sees none (CUDA_VISIBLE_DEVICES?)"
        return f"no visible NVIDIA GPU: {why}"
    return None


def cluster(device: str = "auto", n_workers: int | None = None, **kwargs: Any) -> Client:
    """Start a local Dask cluster and return a client connected to it.

    A ``dask_cuda.LocalCUDACluster`` (one worker per visible GPU) when GPUs are visible
    and dask-cuda is installed, unless ``device="cpu"``; else a
    ``distributed.LocalCluster``.  Close both with ``client.shutdown()``.

    Parameters
    ----------
    device : {"auto", "cpu", "gpu"}
        "gpu" refuses to fall back to a CPU cluster (except under Numba's CUDA
        simulator, whose workers run the CUDA kernels on the CPU).
    n_workers : int, optional
        Workers to start (default: one per GPU, or Dask's choice for CPUs).
    **kwargs
        Passed to the cluster: e.g. ``CUDA_VISIBLE_DEVICES``, ``device_memory_limit``,
        ``rmm_pool_size`` for ``LocalCUDACluster``; ``threads_per_worker``,
        ``memory_limit``, ``dashboard_address`` for either.

    Raises
    ------
    GPUUnavailableError
        ``device="gpu"`` where no CUDA cluster can start.

    Examples
    --------
    >>> client = cluster(device="cpu", n_workers=1, threads_per_worker=1,
    ...                  processes=False, dashboard_address=None)
    >>> len(client.scheduler_info()["workers"])
    1
    >>> client.shutdown()
    """
    if device not in dispatch.DEVICES:
        raise ValueError(f"device must be one of {dispatch.DEVICES}, got {device!r}")
    from distributed import Client

    reason = cuda_cluster_unavailable_reason() if device != "cpu" else "device='cpu'"
    if device == "gpu" and reason and not dispatch.simulator_enabled():
        raise dispatch.GPUUnavailableError(f"device='gpu' cannot start a GPU cluster: {reason}")
    if reason is None:
        from dask_cuda import LocalCUDACluster

        return Client(LocalCUDACluster(n_workers=n_workers, **kwargs))
    from distributed import LocalCluster

    return Client(LocalCluster(n_workers=n_workers, **kwargs))


def connect(address: str, timeout: float = CONNECT_TIMEOUT_S) -> Client:
    """A client of the Dask scheduler at ``address``, failing within ``timeout`` seconds.

    Raises
    ------
    SchedulerError
        ``address`` is malformed, or nothing answered there in time.

    Examples
    --------
    >>> connect("localhost:8786")
    Traceback (most recent call last):
    ...
    numbadask.main.clusters.SchedulerError: a scheduler address looks like tcp://HOST:PORT; got 'localhost:8786'
    """
    if not ADDRESS.fullmatch(address):
        raise SchedulerError(f"a scheduler address looks like tcp://HOST:PORT; got {address!r}")
    from distributed import Client

    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise SchedulerError(f"could not reach the Dask scheduler at {address} within {timeout:g} s ({type(exc).__name__})") from None


def check_scheduler(name: str) -> str:
    """``name`` if it is one of :data:`SCHEDULERS` or an address, else a clear error.

    Examples
    --------
    >>> check_scheduler("threads"), check_scheduler("tcp://10.0.0.5:8786")
    ('threads', 'tcp://10.0.0.5:8786')
    """
    if name in SCHEDULERS or ADDRESS.fullmatch(name):
        return name
    raise SchedulerError(f"--scheduler must be one of {', '.join(SCHEDULERS)} or tcp://HOST:PORT; got {name!r}")


def resolve_scheduler(name: str, gpu_count: int | None, has_dask_cuda: bool) -> str:
    """What "auto" means here: a ``LocalCUDACluster`` when several GPUs are visible and
    dask-cuda is installed (one worker per GPU), else Dask's threaded scheduler (our
    kernels release the GIL; it beat a 2-worker LocalCluster 1.8x on 2 cores).

    Examples
    --------
    >>> resolve_scheduler("auto", 4, True), resolve_scheduler("auto", 1, True), resolve_scheduler("local", 0, False)
    ('local-cuda', 'threads', 'local')
    """
    if name != "auto":
        return name
    return "local-cuda" if (gpu_count or 0) >= 2 and has_dask_cuda else "threads"


@dataclass(frozen=True)
class WorkerGPU:
    """What one worker (or this process, for a local scheduler) can do with a GPU."""

    real_gpu: bool  # a visible NVIDIA GPU, with CuPy and numba-cuda installed
    reason: str | None  # why it cannot run the CUDA kernels at all (None: it can)


def worker_gpu() -> WorkerGPU:
    """This process's :class:`WorkerGPU`; run on each worker by ``client.run``.

    Examples
    --------
    >>> here = worker_gpu()
    >>> here.real_gpu == (here.reason is None and not dispatch.simulator_enabled()
    ...                   and bool(dispatch.visible_gpu_count()))
    True
    """
    reason = dispatch.gpu_unavailable_reason()
    real = reason is None and not dispatch.simulator_enabled() and (dispatch.visible_gpu_count() or 0) > 0
    return WorkerGPU(real, reason)


def plan_device(device: str, workers: Sequence[WorkerGPU]) -> tuple[str, bool]:
    """The ``device`` to pass to numbadask and whether to move host chunks to the GPUs.

    Chunks read from host files are NumPy arrays.  They are moved to the workers' GPUs
    (``map_blocks(cupy.asarray)``) for ``device="gpu"``, and for ``"auto"`` when every
    worker has a real GPU; never under the CUDA simulator, whose kernels read NumPy.

    Raises
    ------
    GPUUnavailableError
        ``device="gpu"`` where a worker cannot run the CUDA kernels.

    Examples
    --------
    >>> gpu, cpu = WorkerGPU(True, None), WorkerGPU(False, "no GPU")
    >>> plan_device("auto", [gpu, gpu]), plan_device("auto", [gpu, cpu]), plan_device("cpu", [gpu])
    (('auto', True), ('auto', False), ('cpu', False))
    """
    if device not in dispatch.DEVICES:
        raise ValueError(f"--device must be one of {', '.join(dispatch.DEVICES)}; got {device!r}")
    every_gpu = bool(workers) and all(w.real_gpu for w in workers)
    if device == "cpu":
        return "cpu", False
    if device == "gpu":
        reasons = [w.reason for w in workers if w.reason]
        if reasons or not workers:
            why = reasons[0] if reasons else "there are no workers"
            where = f"{len(reasons)} of {len(workers)} workers" if len(workers) > 1 else "this machine"
            raise dispatch.GPUUnavailableError(f"--device gpu: {where} cannot run the CUDA kernels: {why}")
        return "gpu", every_gpu
    return "auto", every_gpu


def _chunk_to_gpu(chunk: Any) -> Any:
    """One chunk copied to this worker's GPU (CuPy imported here, on the worker)."""
    import cupy

    return cupy.asarray(chunk)


def to_gpus(x: da.Array) -> da.Array:
    """``x`` with each chunk made a CuPy array on the worker that computes it.

    The meta stays ``x``'s (NumPy), so the client needs no CuPy and makes no CUDA
    context; the reductions dispatch on the chunks' real type at run time.

    Examples
    --------
    >>> import dask.array as da
    >>> to_gpus(da.ones(4, chunks=2)).numblocks    # lazy: nothing moves until computed
    (2,)
    """
    return x.map_blocks(_chunk_to_gpu, dtype=x.dtype, meta=x._meta)


@dataclass
class Runtime:
    """A running scheduler: its name, its client (None for threads/processes) and
    what its workers can do with GPUs."""

    scheduler: str
    client: Client | None = None
    workers: list[WorkerGPU] = field(default_factory=list)
    held: list[Any] = field(default_factory=list)  # persisted on the workers: released at the end
    pool: Any = None  # the process pool of the "processes" scheduler (see process_pool)

    def size(self) -> tuple[int, str]:
        """How many run tasks at once, and what they are: ``(2, "threads")``,
        ``(4, "processes")`` or ``(3, "workers")``.

        Examples
        --------
        >>> Runtime("threads").size()[1]
        'threads'
        """
        if self.client is not None:
            return len(self.workers), "workers"
        from numbadask.engine.graph import local_thread_count

        return local_thread_count(), self.scheduler

    def chunk_bytes_cap(self) -> int | None:
        """The largest chunk the smallest worker can hold a few of per thread, or None
        where workers set no memory limit (threads, processes, unlimited workers).

        A sixteenth of a thread's share of the worker's ``memory_limit``: room for the
        chunk being reduced, the reader's buffers and the next chunk on every thread,
        on top of the ~200 MiB a worker process holds before any data.
        """
        if self.client is None:
            return None
        caps = [
            w["memory_limit"] // (max(1, w.get("nthreads", 1)) * CHUNK_SHARE)
            for w in self.client.scheduler_info()["workers"].values()
            if w.get("memory_limit")
        ]
        return min(caps) if caps else None

    def _local_config(self) -> Any:
        """Dask's config for a local compute: the scheduler, and the pool if we hold one."""
        import dask

        return dask.config.set(scheduler=self.scheduler, **({} if self.pool is None else {"pool": self.pool}))

    def run_everywhere(self, func: Any, *args: Any) -> list[Any]:
        """``func(*args)`` once in each process that will run tasks, and their results:
        this one for threads, every worker of a cluster, every process of the pool
        (all started by then) for processes."""
        if self.client is not None:
            return list(self.client.run(func, *args).values())
        if self.pool is not None:
            return run_in_every_process(self.pool, func, *args)
        return [func(*args)]

    def persist(self, x: da.Array, progress: bool = False) -> da.Array:
        """``x`` loaded into memory: the workers' for a cluster, this process's else
        (with a progress bar as :meth:`compute` shows one)."""
        if self.client is None:
            with _local_progress(progress), self._local_config():
                return x.persist()
        x = self.client.persist(x)
        self.held.append(x)
        _wait_with_progress(x, progress)
        return x

    def release(self) -> None:
        """Let go of what :meth:`persist` put on the workers (before a shutdown, which
        otherwise logs the loss of computed tasks)."""
        if self.client is not None and self.held:
            self.client.cancel(self.held)
        self.held.clear()

    def compute(self, arrays: Sequence[Any], progress: bool) -> list[Any]:
        """Compute ``arrays`` together (one pass over shared inputs), with a progress
        bar when ``progress`` and the work outlasts a second."""
        if self.client is None:
            import dask

            with _local_progress(progress), self._local_config():
                return list(dask.compute(*arrays))
        futures = self.client.compute(list(arrays))
        _wait_with_progress(futures, progress)
        try:
            return self.client.gather(futures)
        finally:
            # Let go of the results on the workers before any shutdown: a cluster
            # stopped while the client still wants them logs "lost computed tasks".
            self.client.cancel(futures)


def _local_progress(progress: bool) -> Any:
    """Dask's local ProgressBar, shown once work has run a second; or nothing."""
    if not progress:
        return contextlib.nullcontext()
    from dask.diagnostics import ProgressBar

    return ProgressBar(minimum=1.0)


def _wait_with_progress(futures: Any, progress: bool) -> None:
    """Wait for distributed work, showing ``distributed.progress`` after a second."""
    from distributed import progress as show_progress
    from distributed import wait

    try:
        wait(futures, timeout=1.0 if progress else None)
    except TimeoutError:
        show_progress(futures)


@contextlib.contextmanager
def runtime(scheduler: str, device: str = "auto", n_workers: int | None = None) -> Iterator[Runtime]:
    """Start (or join) the scheduler named by ``--scheduler``; stop what was started.

    ``device="cpu"`` keeps "auto" from choosing a ``LocalCUDACluster``.

    Examples
    --------
    >>> import dask.array as da
    >>> with runtime("threads") as rt:
    ...     rt.scheduler, rt.client, rt.compute([da.ones(4, chunks=2).sum()], progress=False)
    ('threads', None, [np.float64(4.0)])
    """
    gpus = 0 if device == "cpu" else dispatch.visible_gpu_count()  # --device cpu: no CUDA cluster
    scheduler = resolve_scheduler(check_scheduler(scheduler), gpus, importlib.util.find_spec("dask_cuda") is not None)
    if scheduler == "threads":
        yield Runtime(scheduler, None, [worker_gpu()])
        return
    if scheduler == "processes":  # one pool for the whole job: it starts before any timer
        pool = process_pool(n_workers)
        try:
            yield Runtime(scheduler, None, [worker_gpu()], pool=pool)
        finally:
            pool.shutdown(cancel_futures=True)
        return
    if scheduler == "local-cuda":
        reason = cuda_cluster_unavailable_reason()
        if reason:
            raise SchedulerError(f"--scheduler local-cuda cannot start a LocalCUDACluster: {reason}")
        client = cluster("gpu", n_workers)
    elif scheduler == "local":
        client = cluster("cpu", n_workers)
    else:
        client = connect(scheduler, timeout=CONNECT_TIMEOUT_S)
    try:
        _wait_for_a_worker(client, scheduler)
        rt = Runtime(scheduler, client, list(client.run(worker_gpu).values()))
        try:
            yield rt
        finally:
            with contextlib.suppress(Exception):  # the cluster is going anyway
                rt.release()
    finally:
        _close(client, owned=scheduler in ("local", "local-cuda"))


def _wait_for_a_worker(client: Client, scheduler: str) -> None:
    """Fail, rather than wait forever, when the scheduler has no worker to run on."""
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
    except TimeoutError:
        _close(client, owned=False)
        raise SchedulerError(f"the Dask scheduler at {scheduler} has no workers (waited {CONNECT_TIMEOUT_S:g} s)") from None


def _close(client: Client, owned: bool) -> None:
    """Shut down a cluster we started; only disconnect from one we joined."""
    with contextlib.suppress(Exception):  # already gone: nothing left to stop
        if owned:
            client.shutdown()
        else:
            client.close()


def is_terminal(stream: Any = None) -> bool:
    """True when ``stream`` (default stdout) is an interactive terminal.

    Examples
    --------
    >>> import io
    >>> is_terminal(io.StringIO())
    False
    """
    stream = sys.stdout if stream is None else stream
    return bool(getattr(stream, "isatty", lambda: False)())
