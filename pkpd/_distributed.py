"""Beyond one machine: a dask.distributed cluster as the executor of chunks and replicates.

``simulate``, ``simulate_summary`` and ``trial`` take any object with a
``map(fn, *iterables)`` method (a :class:`concurrent.futures.Executor`, for
instance) and send it their chunks of subjects or of replicate trials; this
module adapts a ``dask.distributed`` Client to that method (an existing
scheduler, or a ``LocalCluster`` started here). Only the command line imports
it, for ``--workers`` / ``--scheduler``.

Every subject's random numbers are drawn before its chunk is sent, and a trial
replicate's depend only on (seed, subject id), so a chunk computed on any worker
gives the numbers of the single-process run, whatever the number of workers or
the chunk size. Tasks are pure functions of their inputs: when a worker dies,
the scheduler reruns its tasks elsewhere and nothing is lost or counted twice.
A model travels without its compiled module; a worker imports that once per
process from the on-disk cache (keyed by the model's hash).
"""

import collections
import contextlib

from ._errors import PkpdError


def _require():
    try:
        import distributed  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the installation
        raise PkpdError("the distributed backend needs dask.distributed: pip install 'pkpd[distributed]'") from None


@contextlib.contextmanager
def cluster(scheduler=None, workers=None, threads_per_worker=1):
    """A dask Client: to `scheduler` (``tcp://HOST:PORT``), or to a LocalCluster of `workers` processes."""
    _require()
    from distributed import Client, LocalCluster

    if scheduler:
        client = Client(scheduler)
        try:
            yield client
        finally:
            client.close()
        return
    local = LocalCluster(n_workers=workers or 2, threads_per_worker=threads_per_worker, processes=True,
                         dashboard_address=None, host="127.0.0.1")
    client = Client(local)
    try:
        yield client
    finally:
        client.close()
        local.close()


class DaskExecutor:
    """A dask Client as a map-like executor: ``map(fn, *iterables)`` yields the results in order.

    Tasks are submitted as the results are taken, at most `ahead` of them not yet
    taken (by default twice the cluster's threads), so the inputs of a large run
    are never all in memory at once.
    """

    def __init__(self, client, ahead=None):
        self.client = client
        self.ahead = ahead or max(2, 2 * sum(client.nthreads().values()))

    def map(self, fn, *iterables):
        pending = collections.deque()
        for arguments in zip(*iterables):
            pending.append(self.client.submit(fn, *arguments, pure=False))
            if len(pending) >= self.ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
