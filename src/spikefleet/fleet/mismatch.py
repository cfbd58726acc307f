r"""Device mismatch: per-parameter relative sigma profiles and their sampler.

A chip is a frozen random realisation of a design. For every parameter ``p`` a profile
touches, each element (each neuron for per-neuron parameters, each synapse for weight
matrices) is drawn independently:

=============  ===================================================================
kind           realised value (ξ ~ N(0, 1) per element, σ the profile's relative sigma)
=============  ===================================================================
``weight``     ``w · (1 + σ ξ)``                   (may change sign, as in the paper)
``positive``   ``fold``:  ``max(|θ (1 + σ ξ)|, 0.01 θ)``  (Network ADS: ``|N(θ, (σθ)²)|``)
               ``lognormal``: ``θ · exp(σ ξ − σ²/2)``  (mean-preserving, always > 0)
``gap``        the threshold: ``V_reset + g'`` with ``g' = `` the ``positive`` rule applied
               to the threshold–reset gap ``g = V_th − V_reset`` (for ``V_reset = 0`` this is
               exactly ``|N(V_th, (σ V_th)²)|``)
``additive``   ``b + σ · (V_th − V_reset) · ξ``       (absolute, in units of the gap; biases)
=============  ===================================================================

The noise ``ξ`` of parameter ``p`` on chip ``key`` is drawn from ``fold_in(key, id(p))`` with
a fixed id per parameter name. Hence the same chip key gives the same chip, parameters are
independent of each other, and a profile at level 2σ moves the *same* chip twice as far as at
σ (common random numbers: comparisons across levels and designs are paired).

Built-in profiles (``spikefleet profiles`` lists them):

* ``uniform`` (level σ): the Network ADS protocol — per-neuron ``tau_mem``, ``tau_syn``
  (slow) and ``threshold``; per-element ``w_in``, ``w_rec`` (Ω^s), ``w_out`` and a composite
  design's on-chip feedback weights ``w_feedback`` (FORCE's ``E``), all at σ.
  Not perturbed: fast weights ``w_fast`` (Ω^f), their time constant ``tau_syn_fast`` (τ_f)
  and the readout filter ``tau_out`` (τ_r).
* ``dynapse1-measured`` (scaled by ``level``, default 1): coefficients of variation measured
  on DYNAP-SE (Büchel et al. 2021, 256 neurons of core 0): ``tau_mem`` 12 % (measured
  5.8–18.5 %), slow synaptic weights ``w_in``/``w_rec`` 17.5 % (8.1–27.2 %), fast weights
  ``w_fast`` 31 % (26–36 %) — the mid-points of the measured ranges. Not measured and set by
  us: ``tau_syn``/``tau_syn_fast`` 12 % (like ``tau_mem``: same DPI leak circuit type) and
  ``threshold`` 10 %. The readout ``w_out``/``tau_out`` is computed off-chip: not perturbed.
* ``dynapse2-frozen`` (level = the reference's ``percent_deviation``, default 0.30): every
  one of the 24 DynapSim circuit parameters (Çakal et al. 2024: prototypes) of a
  :class:`~spikefleet.models.dynapse2.DynapSE2Network`, per neuron, ``p (1 + σ ξ)`` with
  ``σ = level / 3`` (unbounded, as the reference generator). Weights and ``I_scale`` untouched.
* ``dynapse2-dynamic`` (same level convention): the trainable weights ``w_in`` and ``w_rec``,
  ``w (1 + σ ξ)``, ``σ = level / 3`` — the reference's weight-noise-injection prototype.
* user-defined from a TOML or JSON table (:func:`load_profile`)::

      name = "my-chip"            # optional
      positive_rule = "fold"      # or "lognormal"; optional
      [sigmas]
      tau_mem = 0.1
      w_rec = 0.2

A profile must fit the model (:func:`check_profile`, run by
:func:`~spikefleet.fleet.chip.prepare`, so by every fleet evaluation): naming no parameter of the
model is a :class:`ProfileNotApplicableError` (it would perturb nothing: ``dynapse2-frozen`` on a
LIF network); naming some it lacks issues a :class:`ProfilePartlyAppliedWarning` listing them.
Built-in profiles that span model kinds declare those names ``optional`` (skipped silently).
"""

from __future__ import annotations

import math
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp

from spikefleet.errors import ConfigError, SpikefleetWarning, expect, shown
from spikefleet.models.base import core_of, map_core
from spikefleet.models.rate import RateNetwork
from spikefleet.models.spiking import SpikingNetwork
from spikefleet.models.dynapse2 import DynapSE2Network
from spikefleet.models.registry import kind_of
from spikefleet.neurons.dynapse2 import FROZEN_MISMATCH_PARAMETERS
from spikefleet.io import parse_json, parse_toml, read_text

__all__ = ["MismatchProfile", "PARAMETERS", "ProfileNotApplicableError", "ProfilePartlyAppliedWarning",
           "perturbable_parameters", "profile_coverage", "check_profile",
           "builtin_profile", "load_profile", "get_profile", "apply_mismatch", "max_level", "MAX_SIGMA",
           "BUILTIN_PROFILES", "parameters_of", "mismatch_targets", "perturb_relative", "outer_weights", "OUTER_WEIGHT_NAMES"]

POSITIVE_RULES = ("fold", "lognormal")


@dataclass(frozen=True)
class Param:
    """Where a mismatchable parameter lives in a model and how it varies."""

    get: Callable  # model -> array
    kind: str  # "weight", "positive", "gap" or "additive"
    description: str


#: model class -> parameter name -> Param
PARAMETERS: dict[type, dict[str, Param]] = {
    SpikingNetwork: {
        "w_in": Param(lambda m: m.w_in, "weight", "input weights, per synapse"),
        "w_rec": Param(lambda m: m.w_rec, "weight", "slow recurrent weights (Ω^s), per synapse"),
        "w_fast": Param(lambda m: m.w_fast, "weight", "fast recurrent weights (Ω^f), per synapse"),
        "w_out": Param(lambda m: m.w_out, "weight", "readout weights, per synapse"),
        "tau_mem": Param(lambda m: m.neurons.tau_mem, "positive", "membrane time constant, per neuron"),
        "tau_syn": Param(lambda m: m.neurons.tau_syn[0], "positive", "slow synaptic time constant, per neuron"),
        "tau_syn_fast": Param(lambda m: m.neurons.tau_syn[1] if m.neurons.n_synapses > 1 else None, "positive", "fast synaptic time constant (τ_f)"),
        "tau_out": Param(lambda m: m.tau_out, "positive", "readout filter time constant (τ_r), per neuron"),
        "threshold": Param(lambda m: m.neurons.threshold, "gap", "firing threshold (via the threshold-reset gap)"),
        "bias": Param(lambda m: m.neurons.bias, "additive", "bias current, absolute, in units of the gap"),
    },
    RateNetwork: {
        "w_in": Param(lambda m: m.w_in, "weight", "input weights (F̂)"),
        "w_rec": Param(lambda m: m.w_rec, "weight", "recurrent weights (Ω̂)"),
        "w_out": Param(lambda m: m.w_out, "weight", "readout weights (D̂)"),
        "tau": Param(lambda m: m.units.tau, "positive", "unit time constants"),
        "bias": Param(lambda m: m.units.bias, "additive", "unit biases (absolute)"),
    },
    DynapSE2Network: {
        "w_in": Param(lambda m: m.w_in, "weight", "input weights, per synapse"),
        "w_rec": Param(lambda m: m.w_rec, "weight", "recurrent weights, per synapse"),
        **{name: Param((lambda m, _n=name: getattr(m.neurons, _n)), "weight",
                       f"DynapSim {name}, per neuron (relative, unbounded as the reference)")
           for name in FROZEN_MISMATCH_PARAMETERS},
    },
}


def parameters_of(model) -> dict[str, Param]:
    """The mismatchable-parameter table (:data:`PARAMETERS`) of ``model``'s core; ``ConfigError`` for an unknown class."""
    model = core_of(model)
    for cls, params in PARAMETERS.items():
        if isinstance(model, cls):
            return params
    raise ConfigError(f"mismatch: no parameter table for a {type(model).__name__}; known: "
                      f"{[c.__name__ for c in PARAMETERS]}")


def _param_id(name: str) -> int:
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


@dataclass(frozen=True)
class MismatchProfile:
    """Relative sigma per parameter name (``sigmas``) and the rule for positive parameters."""

    name: str
    sigmas: tuple = ()  # ((parameter, sigma), ...)
    positive_rule: str = "fold"
    description: str = field(default="", compare=False)
    #: names a model may lack without a warning (a built-in profile spanning several model kinds)
    optional: tuple = field(default=(), compare=False)
    #: the profile's name before :meth:`scaled` (warnings name it once for all levels)
    source: str = field(default="", compare=False)

    def __post_init__(self):
        sigmas = tuple(sorted((str(k), float(v)) for k, v in dict(self.sigmas).items()))
        object.__setattr__(self, "sigmas", sigmas)
        expect(self.positive_rule in POSITIVE_RULES, "positive_rule", f"one of {POSITIVE_RULES}", self.positive_rule)
        known = set().union(*(p.keys() for p in PARAMETERS.values())) | set(OUTER_WEIGHT_NAMES)
        for name, sigma in sigmas:
            expect(name in known, f"profile {self.name!r}: parameter", f"one of {sorted(known)}", name)
            expect(0.0 <= sigma < 10.0, f"profile {self.name!r}: sigma of {name}", "a number in [0, 10)", sigma)

    def as_dict(self) -> dict:
        return dict(self.sigmas)

    def scaled(self, factor: float) -> "MismatchProfile":
        """The same profile with every sigma multiplied by ``factor``."""
        expect(factor >= 0, "factor", "a non-negative number", factor)
        return MismatchProfile(f"{self.name}x{factor:g}", tuple((k, v * factor) for k, v in self.sigmas),
                               self.positive_rule, self.description, self.optional, self.source or self.name)


#: names of on-chip weights that composite designs keep outside their core (see :func:`outer_weights`)
OUTER_WEIGHT_NAMES = ("w_feedback",)
_UNIFORM_PARAMS = ("w_in", "w_rec", "w_out", "w_feedback", "tau_mem", "tau_syn", "threshold", "tau")
_DYNAPSE1 = {"tau_mem": 0.12, "tau_syn": 0.12, "tau_syn_fast": 0.12, "w_in": 0.175, "w_rec": 0.175,
             "w_fast": 0.31, "threshold": 0.10}

#: parameters a built-in profile may find missing silently: ``uniform`` is "whichever of these the
#: model has" (spiking, rate and composite designs); DYNAP-SE1 fast synapses exist only in some nets
_BUILTIN_OPTIONAL = {"uniform": _UNIFORM_PARAMS, "dynapse1-measured": ("w_fast", "tau_syn_fast")}

_DYNAPSE2_SIGMA_RULE = 3.0  # σ = percent_deviation / sigma_rule (reference defaults 0.30 / 3)

#: built-in profile name -> one-line description (module docstring; ``spikefleet profiles``)
BUILTIN_PROFILES = {
    "uniform": "Network ADS protocol: tau_mem, tau_syn, threshold, w_in, w_rec, w_out (and a rate net's tau) "
               "at sigma = level; w_fast, tau_syn_fast, tau_out exempt",
    "dynapse1-measured": "DYNAP-SE measured CVs (tau 12%, slow weights 17.5%, fast weights 31%, threshold 10%), "
                         "times level; readout off-chip",
    "dynapse2-frozen": "DYNAP-SE2 frozen mismatch: the 24 DynapSim circuit parameters per neuron, "
                       "sigma = level/3 (level = percent deviation, e.g. 0.3)",
    "dynapse2-dynamic": "DYNAP-SE2 weight noise: w_in and w_rec per synapse, sigma = level/3",
}


def builtin_profile(name: str, level: float = 1.0, *, positive_rule: str = "fold") -> MismatchProfile:
    """A built-in profile at ``level`` (``uniform``: the sigma itself; others: a scale factor)."""
    expect(name in BUILTIN_PROFILES, "profile", f"one of {sorted(BUILTIN_PROFILES)} or a .toml/.json file", name)
    expect(isinstance(level, (int, float)) and level >= 0, "level", "a non-negative number", level)
    if name == "uniform":
        sigmas = {p: float(level) for p in _UNIFORM_PARAMS}
    elif name == "dynapse2-frozen":
        sigmas = {p: float(level) / _DYNAPSE2_SIGMA_RULE for p in FROZEN_MISMATCH_PARAMETERS}
    elif name == "dynapse2-dynamic":
        sigmas = {p: float(level) / _DYNAPSE2_SIGMA_RULE for p in ("w_in", "w_rec")}
    else:
        sigmas = {p: v * level for p, v in _DYNAPSE1.items()}
    return MismatchProfile(name, tuple(sigmas.items()), positive_rule, BUILTIN_PROFILES[name],
                           _BUILTIN_OPTIONAL.get(name, ()))


def load_profile(path: str | Path) -> MismatchProfile:
    """A user profile from a TOML or JSON file (see the module docstring for the format).

    Raises :class:`ConfigError` naming the file for unreadable files, syntax errors, a missing
    ``[sigmas]`` table, unknown keys or parameters, and sigmas that are not numbers in [0, 10).
    """

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"profile file {path}: no such file")
    text = read_text(path, "profile file")
    source = f"profile file {path}"
    try:
        data = parse_toml(text, source) if path.suffix.lower() == ".toml" else parse_json(text, source)
    except ConfigError as exc:
        raise ConfigError(str(exc).replace(f"{source}: ", f"{source}: cannot parse: ", 1)) from None
    if not isinstance(data, dict) or not isinstance(data.get("sigmas"), dict):
        raise ConfigError(f"profile file {path}: expected a table with a [sigmas] section mapping parameter "
                          f"names to relative sigmas, got {type(data).__name__} with keys "
                          f"{sorted(map(str, data)) if isinstance(data, dict) else []}")
    unknown = set(data) - {"name", "sigmas", "positive_rule", "description"}
    if unknown:
        raise ConfigError(f"profile file {path}: unknown keys {sorted(unknown)}; allowed: name, sigmas, "
                          "positive_rule, description")
    for key in ("name", "positive_rule", "description"):
        if key in data and not isinstance(data[key], str):
            raise ConfigError(f"profile file {path}: {key}: expected a string, got {shown(data[key])}")
    for k, v in data["sigmas"].items():
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not -1e300 < v < 1e300:
            raise ConfigError(f"profile file {path}: sigma of {k!r}: expected a number in [0, 10), got {shown(v)}")
    try:
        return MismatchProfile(str(data.get("name", path.stem)), tuple(data["sigmas"].items()),
                               data.get("positive_rule", "fold"), str(data.get("description", "")))
    except ConfigError as exc:
        raise ConfigError(f"profile file {path}: {exc}") from None


def get_profile(spec: str, level: float = 1.0) -> MismatchProfile:
    """A built-in profile by name, or a user profile from a ``.toml``/``.json`` path scaled by ``level``."""
    if spec in BUILTIN_PROFILES:
        return builtin_profile(spec, level)
    if spec.endswith((".toml", ".json")):
        return load_profile(spec).scaled(level)
    raise ConfigError(f"profile: expected one of {sorted(BUILTIN_PROFILES)} or a .toml/.json file, got {spec!r}")


#: the largest relative sigma a mismatch level may give a parameter: beyond 1 a chip's parameter would
#: scatter by more than its own nominal value, which no fabricated chip does
MAX_SIGMA = 1.0


def max_level(spec: str) -> float:
    """The largest meaningful level of the profile ``spec`` (name or file): the level at which its largest
    sigma reaches :data:`MAX_SIGMA`, rounded down to 3 decimals. ``uniform``: 1 (the level is the sigma);
    ``dynapse2-frozen``/``dynapse2-dynamic``: 3 (σ = level/3); ``dynapse1-measured``: 3.225 (fast weights
    31 % × level); a file: 1 / its largest sigma; ``inf`` if all its sigmas are 0. The command line and
    experiment files refuse mismatch levels above it."""
    largest = max((sigma for _, sigma in get_profile(spec, 1.0).sigmas), default=0.0)
    return math.floor(MAX_SIGMA / largest * 1000 + 1e-9) / 1000 if largest > 0 else math.inf


def _positive(value, sigma, xi, rule):
    if rule == "lognormal":
        return value * jnp.exp(sigma * xi - 0.5 * sigma**2)
    return jnp.maximum(jnp.abs(value * (1.0 + sigma * xi)), 0.01 * jnp.abs(value))


def _gap(model):
    if isinstance(model, SpikingNetwork):
        return model.neurons.threshold - model.neurons.v_reset
    return 1.0


def apply_mismatch(model, profile: MismatchProfile | None, key: jax.Array):
    """The model as the chip ``key`` realises it under ``profile`` (pure; differentiable in ``model``)."""
    if profile is None:
        return model
    if core_of(model) is not model:
        out = map_core(model, lambda core: apply_mismatch(core, profile, key))
        return _perturb_outer(out, profile, key)
    table = parameters_of(model)
    sigmas = dict(profile.sigmas)
    getters, values = [], []
    gap = _gap(model)
    # parameters absent from this model (e.g. w_fast without fast weights) are skipped
    for name, value in mismatch_targets(model, profile).items():
        param, sigma = table[name], sigmas[name]
        xi = jax.random.normal(jax.random.fold_in(key, _param_id(name)), value.shape, value.dtype)
        if param.kind == "weight":
            new = value * (1.0 + sigma * xi)
        elif param.kind == "positive":
            new = _positive(value, sigma, xi, profile.positive_rule)
        elif param.kind == "gap":
            reset = model.neurons.v_reset
            new = reset + _positive(value - reset, sigma, xi, profile.positive_rule)
        else:
            new = value + sigma * gap * xi
        getters.append(param.get)
        values.append(new)
    if not getters:
        return model
    return _replace_all(model, getters, values)


def outer_weights(model) -> dict:
    """On-chip weight matrices a composite design keeps outside its core (``{name: getter}``).

    A composite class declares them in ``CHIP_WEIGHTS`` (e.g. FORCE's feedback encoders ``E``:
    ``{"w_feedback": lambda m: m.e}``); they are perturbed like weights (``w (1 + σ ξ)``) with the
    profile's sigma of that name and quantised like the core's matrices.
    """
    return dict(getattr(type(model), "CHIP_WEIGHTS", {}))


def _perturb_outer(model, profile: MismatchProfile, key):
    sigmas = dict(profile.sigmas)
    getters, values = [], []
    for name, get in outer_weights(model).items():
        sigma = sigmas.get(name, 0.0)
        if sigma:
            value = get(model)
            xi = jax.random.normal(jax.random.fold_in(key, _param_id(name)), value.shape, value.dtype)
            getters.append(get)
            values.append(value * (1.0 + sigma * xi))
    if not getters:
        return model
    return eqx.tree_at(lambda m: tuple(g(m) for g in getters), model, tuple(values))


def mismatch_targets(model, profile: MismatchProfile) -> dict:
    """``{name: array}`` of the parameters of ``model`` that ``profile`` perturbs (sigma > 0)."""
    model = core_of(model)
    table = parameters_of(model)
    out = {}
    for name, sigma in profile.sigmas:
        if name not in table or sigma == 0.0:
            continue
        value = table[name].get(model)
        if value is not None:
            out[name] = value
    return out


class ProfileNotApplicableError(ConfigError):
    """A mismatch profile names no parameter the model has: it would perturb nothing (every chip nominal)."""


class ProfilePartlyAppliedWarning(SpikefleetWarning):
    """A mismatch profile names parameters the model does not have; those are skipped."""


def perturbable_parameters(model) -> list[str]:
    """Names of the parameters of ``model`` a mismatch profile can perturb (its core's table entries
    present in this model, e.g. no ``w_fast`` without fast weights, plus :func:`outer_weights`)."""
    core = core_of(model)
    names = [name for name, param in parameters_of(core).items() if param.get(core) is not None]
    return names + [name for name in outer_weights(model) if name not in names]


def profile_coverage(model, profile: MismatchProfile) -> tuple[list[str], list[str]]:
    """``(applied, skipped)``: the profile's parameter names that ``model`` has / does not have."""
    present = set(perturbable_parameters(model))
    names = [name for name, _ in profile.sigmas]
    return [n for n in names if n in present], [n for n in names if n not in present]


def _model_kind(model) -> str:
    try:
        kind = f"model kind {kind_of(model).name!r} ({type(model).__name__})"
    except TypeError:
        kind = f"a {type(model).__name__}"
    core = core_of(model)
    return kind if core is model else f"{kind} with a {type(core).__name__} core"


def check_profile(model, profile: MismatchProfile | None) -> list[str]:
    """Refuse a profile that perturbs nothing of ``model``; warn about the parameters it skips.

    Raises :class:`ProfileNotApplicableError` (a :class:`ConfigError`) when none of the profile's
    parameters exists in ``model`` (e.g. ``dynapse2-frozen``, the DynapSim circuit parameters, on a
    LIF network): every chip would be the nominal network. Otherwise issues one
    :class:`ProfilePartlyAppliedWarning` naming the skipped parameters that have a sigma > 0 (names
    the profile lists as optional, e.g. ``uniform``'s rate-network ``tau`` on a spiking net, are
    skipped silently). Returns the skipped names. ``None`` (no mismatch) passes.
    """
    if profile is None:
        return []
    applied, skipped = profile_coverage(model, profile)
    name = profile.source or profile.name
    if not applied:
        raise ProfileNotApplicableError(
            f"mismatch profile {name!r}: none of its parameters {[n for n, _ in profile.sigmas]} exists in "
            f"{_model_kind(model)}, so it would perturb nothing; this model's perturbable parameters are "
            f"{perturbable_parameters(model)} (e.g. use profile 'uniform', or a profile file naming those)")
    sigmas = dict(profile.sigmas)
    loud = [n for n in skipped if sigmas[n] > 0 and n not in profile.optional]
    if loud:
        warnings.warn(f"mismatch profile {name!r}: {_model_kind(model)} has no parameter(s) {loud}; they are "
                      f"not perturbed (applied: {applied})", ProfilePartlyAppliedWarning, stacklevel=2)
    return skipped


def perturb_relative(model, deltas: dict):
    """``θ · (1 + δ)`` for each named parameter (``|·|`` for positive ones; gap rule for the threshold).

    ``deltas`` maps parameter names to arrays of the parameter's shape (e.g. an adversarial
    attack within a relative ε ball).
    """
    if core_of(model) is not model:
        return map_core(model, lambda core: perturb_relative(core, deltas))
    table = parameters_of(model)
    getters, values = [], []
    for name, delta in deltas.items():
        param = table[name]
        value = param.get(model)
        if param.kind == "positive":
            new = jnp.abs(value * (1.0 + delta))
        elif param.kind == "gap":
            reset = model.neurons.v_reset
            new = reset + jnp.abs((value - reset) * (1.0 + delta))
        else:
            new = value * (1.0 + delta)
        getters.append(param.get)
        values.append(new)
    return _replace_all(model, getters, values) if getters else model


def _replace_all(model, getters, values):
    # tau_syn rows are slices of one array: rebuild it from its (possibly perturbed) rows
    if isinstance(model, SpikingNetwork):
        rows = list(model.neurons.tau_syn)
        keep = []
        for get, new in zip(getters, values):
            if get is PARAMETERS[SpikingNetwork]["tau_syn"].get:
                rows[0] = new
            elif get is PARAMETERS[SpikingNetwork]["tau_syn_fast"].get:
                rows[1] = new
            else:
                keep.append((get, new))
        model = eqx.tree_at(lambda m: m.neurons.tau_syn, model, jnp.stack(rows))
        getters, values = [g for g, _ in keep], [v for _, v in keep]
        if not getters:
            return model
    return eqx.tree_at(lambda m: tuple(g(m) for g in getters), model, tuple(values))
