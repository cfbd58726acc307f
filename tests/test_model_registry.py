"""The model-kind registry: the built-in kinds, a new kind stored without touching the checkpoint
module, and the per-model recurrent-compensation hook."""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spikefleet import checkpoint
from spikefleet.errors import ConfigError
from spikefleet.models import registry
from spikefleet.models.ads import ADSConfig, ads_recurrent_scale, build_ads
from spikefleet.models.base import Model, recurrent_compensation
from spikefleet.models.rate import RateConfig, RateNetwork, init_rate
from spikefleet.models.spiking import SpikingConfig, SpikingNetwork, init_spiking


def test_builtin_kinds_are_registered_with_their_types():
    assert registry.kind_names() == ["ads", "dynapse2", "force", "rate", "spiking"]
    kind = registry.get_kind("rate")
    assert kind.model is RateNetwork and kind.config is RateConfig
    net = init_spiking(SpikingConfig(n_in=1, n_hidden=3, n_out=1), jax.random.PRNGKey(0))
    assert registry.kind_of(net).name == "spiking" and registry.kind_of(net).model is SpikingNetwork
    with pytest.raises(KeyError, match="known kinds"):
        registry.get_kind("transformer")
    with pytest.raises(TypeError, match="known model kinds"):
        registry.kind_of(object())


@dataclasses.dataclass(frozen=True)
class _LeakConfig:
    n: int
    dt: float = 1e-3

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "_LeakConfig":
        return cls(**d)


class _Leak(Model):
    """A new network type: ``n`` leaky units with recurrent weights ``w [n, n]`` and per-unit decay."""

    w: jax.Array
    decay: jax.Array
    config: _LeakConfig = eqx.field(static=True)

    @classmethod
    def skeleton(cls, config: _LeakConfig) -> "_Leak":
        n = config.n
        return cls(w=jnp.zeros((n, n), jnp.float32), decay=jnp.zeros((n,), jnp.float32), config=config)


def test_a_new_kind_round_trips_through_checkpoints(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "MODEL_KINDS", dict(registry.MODEL_KINDS))  # undone after the test
    with pytest.raises(TypeError, match="cannot checkpoint"):
        checkpoint.save(tmp_path / "leak.sfc", _Leak.skeleton(_LeakConfig(n=3)))
    registry.register("leak", _Leak, _LeakConfig)
    net = _Leak(w=jnp.arange(9.0, dtype=jnp.float32).reshape(3, 3), decay=jnp.asarray([0.5, 0.25, 0.125], jnp.float32),
                config=_LeakConfig(n=3, dt=2e-3))
    path = checkpoint.save(tmp_path / "leak.sfc", net, {"method": "none"})
    loaded = checkpoint.load(path, kind="leak")
    assert loaded.meta["kind"] == "leak" and loaded.model.config == net.config
    np.testing.assert_array_equal(loaded.model.decay, net.decay)
    np.testing.assert_array_equal(loaded.model.w, net.w)
    with pytest.raises(ConfigError, match="not yet registered"):
        registry.register("leak2", _Leak, _LeakConfig)


def test_recurrent_compensation_is_supplied_by_the_model():
    teacher = init_rate(RateConfig(n_in=1, n_hidden=4, n_out=1), jax.random.PRNGKey(0))
    ads = build_ads(teacher, ADSConfig(n=8), jax.random.PRNGKey(1))
    spiking = init_spiking(SpikingConfig(n_in=1, n_hidden=3, n_out=1), jax.random.PRNGKey(0))
    for sweep, level in (("mismatch", 0.2), ("quant", 4), ("noise", 0.05), ("dead", 0.1)):
        assert recurrent_compensation(ads, sweep, level) == ads_recurrent_scale(sweep, level)
        assert recurrent_compensation(spiking, sweep, level) == 1.0
        assert recurrent_compensation(object(), sweep, level) == 1.0
    assert recurrent_compensation(ads, "mismatch", 0.2) == 0.5
