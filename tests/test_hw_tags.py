"""DYNAP-SE2 tags per chip (issue 21): a CAM matches the tags of the events routed to its chip, so the
single 2048-tag space (n_in + 2N ≤ 2048, i.e. at most 1023 neurons) is lifted by numbering the sources
heard on each chip. Expected tags are derived here from the connectivity by hand (which neurons a chip
hears), not from the routing code.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from spikefleet.hardware.dynapse2.config import HardwareConfig, deploy
from spikefleet.hardware.dynapse2.constraints import HardwareSpec, validate
from spikefleet.hardware.dynapse2.reverse import recover
from spikefleet.hardware.dynapse2.routing import route
from spikefleet.models.dynapse2 import DynapSE2Config, DynapSE2Network
from spikefleet.neurons.dynapse2 import DynapSE2

C, N, PER = 16, 4096, 1024  # 4 chips × 1024 neurons


def _signed(rng, size):
    """Weights bounded away from 0 (every synapse gets a non-zero mask), mixed signs."""
    return rng.choice([-1.0, 1.0], size) * rng.uniform(1.0, 3.0, size)


def local_network(seed=0):
    """Neuron j: input channel j % C; recurrent j → next neuron of its own chip; the first half of every
    chip's neurons also → the same local neuron on the next chip (chip 3 → chip 0)."""
    rng = np.random.default_rng(seed)
    w_in, w_rec = np.zeros((C, N)), np.zeros((N, N))
    j = np.arange(N)
    w_in[j % C, j] = _signed(rng, N)
    w_rec[j, (j // PER) * PER + (j % PER + 1) % PER] = _signed(rng, N)
    src = j[j % PER < PER // 2]
    w_rec[src, (src + PER) % N] = _signed(rng, src.size)
    return w_in, w_rec


@pytest.fixture(scope="module")
def four_chip():
    w_in, w_rec = local_network()
    net = DynapSE2Network(w_in=jnp.asarray(w_in, jnp.float32), w_rec=jnp.asarray(w_rec, jnp.float32),
                          neurons=DynapSE2.create(N), config=DynapSE2Config(C, N))
    return w_in, w_rec, deploy(net, key=0, spec=HardwareSpec(n_chips=4), n_cores=16)


def test_4096_neurons_on_4_chips_map_and_route_with_tags_per_chip(four_chip):
    w_in, w_rec, dep = four_chip
    q, r = dep.quantization, dep.routing
    assert np.array_equal(dep.placement.chip, np.arange(N) // PER)
    assert np.array_equal(q.masks_in != 0, w_in != 0) and np.array_equal(q.masks_rec != 0, w_rec != 0)
    assert r.layout is None  # 16 + 2·4096 > 2048: no global layout
    # chip b hears all 16 channels, its own 1024 neurons and the first 512 of chip b − 1: 1552 ≤ 2048
    in_tag, rec_tag = r.tags
    assert in_tag.tolist() == [list(range(C))] * 4
    for b in range(4):
        prev = (b - 1) % 4
        heard = sorted(list(range(b * PER, (b + 1) * PER)) + list(range(prev * PER, prev * PER + PER // 2)))
        expected = np.full(N, -1)
        expected[heard] = C + np.arange(len(heard))
        np.testing.assert_array_equal(rec_tag[b], expected)
    assert rec_tag[0, 0] == 16 and rec_tag[0, 3072] == 16 + 1024 and rec_tag[1, 1024] == 16 + 512
    # CAM of neuron 1024 (chip 1): input channel 0, then pre 0 (chip 0: tag 16 on chip 1) and pre 2047
    # (chip 1: after the 512 heard neurons of chip 0 and 1023 of chip 1)
    assert [e.tag for e in r.cam[1024]] == [0, 16, 16 + 512 + 1023]
    # neuron 0: monitor, chip 0 (its neighbour 1, tag 16) and chip 1 (neuron 1024, tag 16 on chip 1)
    assert [(d.x_hop, d.y_hop, d.tag) for d in r.sram[0]] == [(-7, -7, 0), (0, 0, 16), (1, 0, 16)]
    assert r.sram[N - 1][0].tag == N - 1  # monitor tag = network index (12-bit field)
    assert max(r.sram_counts()) == 3 and max(r.cam_counts()) == 3


def test_4096_neuron_config_reverse_maps_exactly(four_chip):
    _, _, dep = four_chip
    q = dep.quantization
    back = HardwareConfig.from_json(dep.config.to_json())  # through the file format and its checks
    d = recover(back)
    np.testing.assert_array_equal(d.masks_in, q.masks_in)
    np.testing.assert_array_equal(d.masks_rec, q.masks_rec)
    np.testing.assert_array_equal(d.signs_in, np.where(q.masks_in != 0, q.signs_in, 0))
    np.testing.assert_array_equal(d.signs_rec, np.where(q.masks_rec != 0, q.signs_rec, 0))
    np.testing.assert_array_equal(d.chip, np.arange(N) // PER)
    assert validate(dep.config.spec, n_in=C, n_neurons=N, placement=(d.chip, d.core, d.neuron),
                    masks=(d.masks_in, d.masks_rec), signs=(d.signs_in, d.signs_rec)) == []


def test_one_neuron_more_than_4_chips_is_a_capacity_violation_only():
    vs = validate(HardwareSpec(n_chips=4), n_in=C, n_neurons=N + 1)
    assert [v.code for v in vs] == ["neurons_exceed_capacity"]
    assert (vs[0].limit, vs[0].value) == (4096, 4097) and "use more chips" in vs[0].hint
    assert validate(HardwareSpec(n_chips=4), n_in=C, n_neurons=N) == []


def test_a_chip_hearing_more_than_2048_sources_is_named():
    # 2 chips: chip 1's neurons each hear their own input channel (1024) and their chip-1 neighbour
    # (1024 sources), plus neuron 0 of chip 0: 2049 sources on chip 1; chip 0 hears 1024 neurons only
    c, n = 1100, 2048
    m_in, m_rec = np.zeros((c, n), np.int64), np.zeros((n, n), np.int64)
    j = np.arange(1024, 2048)
    m_in[j - 1024, j] = 3
    m_rec[j, 1024 + (j + 1) % 1024] = 5
    k = np.arange(1024)
    m_rec[k, (k + 1) % 1024] = 1
    m_rec[0, 1024] = 7
    spec = HardwareSpec(n_chips=2)
    place = (np.arange(n) // 1024, (np.arange(n) % 1024) // 256, np.arange(n) % 256)
    vs = validate(spec, n_in=c, n_neurons=n, placement=place, masks=(m_in, m_rec))
    assert [v.code for v in vs] == ["tags_exhausted"]
    assert vs[0].location == {"chip": 1} and (vs[0].limit, vs[0].value) == (2048, 2049)
    assert "chip 1" in vs[0].where and "1024 input channels + 1025 pre-synaptic neurons" in vs[0].where
    assert "more chips" in vs[0].hint
    m_rec[0, 1024] = 0  # 2048 sources: fits, and routes with tags 0..2047 on chip 1
    assert validate(spec, n_in=c, n_neurons=n, placement=place, masks=(m_in, m_rec)) == []
    r = route(place, m_in, m_rec, np.sign(m_in), np.sign(m_rec), spec)
    assert sorted(e.tag for jj in range(1024, 2048) for e in r.cam[jj]) == list(range(2048))
