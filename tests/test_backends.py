"""The local backend when its process pool breaks between two waits (a worker killed while another unit
finished): ``submit`` must not raise, but hand back a finished handle carrying the error, which ``wait``
reports like the failure of a running unit (the runner then stops submitting and raises ``UnitFailed``).
Found by the acceptance lane's killed-worker test, which failed about one run in three before."""

from __future__ import annotations

from concurrent.futures.process import BrokenProcessPool

from spikefleet.experiments.backends import LocalBackend


class _BrokenPool:
    def submit(self, fn, payload):
        raise BrokenProcessPool("A child process terminated abruptly, the process pool is not usable anymore")


def test_submit_to_a_broken_pool_gives_a_failed_handle():
    backend = LocalBackend.__new__(LocalBackend)  # no real pool: only submit/wait are under test
    backend.pool, backend.fn, backend.workers = _BrokenPool(), print, 1
    handle = backend.submit({"unit": "x"})
    assert handle.done()
    ((got, result),) = backend.wait([handle], timeout=0)
    assert got is handle and isinstance(result, BrokenProcessPool)
    assert "process pool is not usable" in str(result)
