"""Acceptance numbers of the foundation issue (slow: trains to full accuracy).

Run with ``python3 dev.py test-slow``.
"""

import pytest

from spikefleet.tasks import get_task
from spikefleet.train.api import train_and_test

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("method, minimum", [("teacher", 0.98), ("bptt", 0.95)])
def test_xor_accuracy_on_200_fresh_trials(method, minimum):
    out = train_and_test(get_task("xor"), method, 0, test_trials=200, progress=False)
    assert out.info["test"]["trials"] == 200
    assert out.info["test"]["accuracy"] >= minimum
    if method == "bptt":
        assert 1.0 <= out.info["test"]["rate_hz"] <= 100.0
