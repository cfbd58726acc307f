r"""DYNAP-SE2 bias generator: currents ↔ (coarse, fine) codes, the bias-name table, parameter sets.

**Bias table** (Çakal et al. 2024: simulator name ↔ chip bias name ↔ transistor type ↔ scale factor): :data:`BIASES` holds the 23 simulated biases as :class:`Bias` records
(simulator name, chip bias name, transistor type = last letter of the chip name, scale factor).

**Bias generator** (Çakal et al. 2024: bias generator: (coarse, fine) → current, Çakal et al. 2024: data the project may not copy). The chip delivers I(c, f) = scale(bias)·G_type(c, f) for coarse
c ∈ 0..5, fine f ∈ 0..255, type ∈ {N, P}. The default G is the three-point parametric model P3,
fitted to the 36 published endpoints E0(c) = G(c, 0), E1(c) = G(c, 1), E255(c) = G(c, 255) per type::

    P3:  G(c, 0) = E0(c);   G(c, f) = E1(c) + (E255(c) − E1(c))·(f − 1)/254   for f ≥ 1
    P2:  G(c, f) = E0(c) + (E255(c) − E0(c))·f/255                            (baseline, opt-in)

Fit: per (type, coarse) P3 has 3 free values (offset at f = 0, intercept and slope for f ≥ 1) and is
solved exactly through the 3 published points (zero residual); P2 is the line through f = 0 and 255.
Both are strictly monotone in f and injective over all 2 × 6 × 256 codes. The reference's measured
3072-value table is *not* used or copied (Çakal et al. 2024: data the project may not copy); the non-monotone steps at multiples of 32 are not
modelled (a user calibration table captures them).

**Analog → digital** (the reference rule). The code for a request I ≥ 0 is
argmin over all 1536 codes of ``|scale·G(c, f) − I| / I`` — for a fixed request the same ordering as
the reference's absolute error, so a reference-equivalent table gives the reference's codes. Ties go to
the lexicographically smallest (coarse, fine), i.e. the first minimum in (coarse, fine) order, as the
reference's two-stage first-index argmin does. (Nearest in log distance would move the crossover
between two neighbouring codes from their arithmetic to their geometric mean; not used.)

**Saturation policy** (documented choice). Let [I_lo, I_hi] = scale·[min G, max G] of the active
generator and type. Requests inside the range get the nearest code. Requests *below* I_lo (including
I = 0, "off", e.g. Iw_ahp before 2023) are clamped to the smallest code and *flagged*
(``BiasCode.saturated``, ``BiasTranslation.saturated``): the DAC cannot go lower, and the Io-level
defaults (Idc = If_nmda = Iw_ahp = Io = 0.5 pA) sit at or below the floor of many biases and chips —
e.g. If_nmda lies below 1.05·0.4936 pA and becomes (0, 0), 3.7 % off. Requests *above* I_hi are
clamped to the largest code and flagged only within a relative margin ``max_overrange`` (default
0.25: I ≤ 1.25·I_hi); anything beyond (typically a unit error) raises :class:`ConfigError` naming the
bias, the requested current and the achievable range. ``max_overrange=math.inf`` reproduces the
reference (always clamp); ``0`` raises on any request above the range.

**Measured errors of P3** (this implementation; they reproduce the reference measurements [M] of
Çakal et al. 2024: data the project may not copy to the printed digits). E2(a): each of the 1536 codes round-trips exactly, N and P, any scale.
E2(b), 1000 log-spaced currents in [1e-13, 1e-5] A, scale 1, excluding results at the min/max code:
N: n = 824, mean 0.895 %, max 16.72 % (criterion < 25 %), max 5.55 % for I ≥ 2 pA (criterion < 7 %);
P: n = 836, mean 0.928 %, max 16.41 %, max 5.36 % for I ≥ 2 pA. (P2, N: n = 818, mean 0.844 %,
max 20.07 %, max 6.37 % for I ≥ 2 pA.) E3, default core (:func:`core_currents`), read-back vs target:
max 1.06 % (Ipulse_ahp) over the 20 non-Io biases (criterion 5 %); Idc 0.29 %, If_nmda 3.66 %
(saturated → (0, 0)), Iw_ahp 9.18 % ((0, 0)) (criterion 10 %). P3 picks the reference's codes for
Idc (0, 4), If_nmda/Iw_ahp (0, 0), Igain_mem (0, 71), Ipulse_ahp (5, 42), Itau_ahp (1, 67), Iw_1 (3, 67);
elsewhere it is 1–4 fine steps away (Ispkthr (4, 242) vs (4, 243), Itau_mem (0, 30) vs (0, 29),
Iref (2, 56) vs (2, 53), Igain_ampa (3, 94) vs (3, 92)) or in the adjacent coarse range (Iw_0 (4, 4) vs
(3, 31), Iw_3 (5, 4) vs (4, 31)). Evaluated at the reference's own codes, P3 lies within 9.2 % of every
default target (Iw_0 7.4 %, Iw_3 6.7 %, others ≤ 4.9 % except Iw_ahp 9.2 %), i.e. the model and the
reference table agree there to that level; bit-exact reference codes need a reference-equivalent
calibration table.

**Calibration tables** (user-supplied, replacing the model; precedence per-core > per-chip > global >
P3) are loaded, validated and selected by :mod:`spikefleet.hardware.dynapse2.calibration`; every
:class:`BiasGenerator` and :class:`BiasTranslation` carries the ``provenance`` of its model or table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Mapping, Optional

import numpy as np

from spikefleet.errors import expect, is_finite_number
from spikefleet.neurons import dynapse2 as d2

__all__ = [
    "Bias", "BIASES", "UNSIMULATED_SCALES", "TYPES", "N_COARSE", "N_FINE", "ENDPOINTS", "MODELS",
    "get_bias", "bias_by_sim_name", "bias_by_chip_name", "parametric_current", "BiasGenerator",
    "BiasCode", "parametric_generator", "core_currents", "BiasTranslation", "currents_to_codes",
    "codes_to_currents",
]

#: transistor types of the bias generator
TYPES = ("N", "P")
#: number of coarse (0..5) and fine (0..255) codes
N_COARSE, N_FINE = 6, 256
#: parametric bias-generator models (module docstring)
MODELS = ("P3", "P2")


@dataclass(frozen=True)
class Bias:
    """One simulated bias: simulator current name, chip bias name, transistor type, scale factor."""

    sim_name: str
    chip_name: str
    type: str
    scale: float


def _b(sim: str, chip: str, scale: float) -> Bias:
    return Bias(sim, chip, chip[-1], scale)


#: The 23 simulated biases (Çakal et al. 2024: simulator name ↔ chip bias name ↔ transistor type ↔ scale factor); the type is the last letter of the chip name.
BIASES: tuple[Bias, ...] = (
    _b("Idc", "SOIF_DC_P", 0.38), _b("If_nmda", "DENM_NMREV_N", 1.05),
    _b("Igain_ahp", "SOAD_GAIN_P", 0.68), _b("Igain_ampa", "DEAM_EGAIN_P", 0.68),
    _b("Igain_gaba", "DEGA_IGAIN_P", 0.68), _b("Igain_nmda", "DENM_EGAIN_P", 0.68),
    _b("Igain_shunt", "DESC_IGAIN_P", 0.68), _b("Igain_mem", "SOIF_GAIN_N", 1.05),
    _b("Ipulse_ahp", "SOAD_PWTAU_N", 0.92), _b("Ipulse", "SYPD_EXT_N", 0.92),
    _b("Iref", "SOIF_REFR_N", 1.05), _b("Ispkthr", "SOIF_SPKTHR_P", 0.38),
    _b("Itau_ahp", "SOAD_TAU_P", 0.2), _b("Itau_ampa", "DEAM_ETAU_P", 0.2),
    _b("Itau_gaba", "DEGA_ITAU_P", 0.2), _b("Itau_nmda", "DENM_ETAU_P", 0.2),
    _b("Itau_shunt", "DESC_ITAU_P", 0.2), _b("Itau_mem", "SOIF_LEAK_N", 0.61),
    *(_b(f"Iw_{i}", f"SYAM_W{i}_P", 0.22) for i in range(4)), _b("Iw_ahp", "SOAD_W_N", 0.92),
)
_BY_SIM = MappingProxyType({b.sim_name: b for b in BIASES})
_BY_CHIP = MappingProxyType({b.chip_name: b for b in BIASES})

#: Scale factors of non-simulated biases (Çakal et al. 2024: simulator name ↔ chip bias name ↔ transistor type ↔ scale factor; wildcard/ranged entries SOHO_*, NCCF_* omitted).
UNSIMULATED_SCALES: Mapping[str, float] = MappingProxyType({
    "LBWR_VB_P": 0.57, "SOIF_CC_N": 0.66, "SOAD_CASC_P": 0.385, "SOCA_W_N": 0.92, "SOCA_GAIN_P": 0.68,
    "SOCA_TAU_P": 0.2, "DEAM_VRES_P": 0.385, "DEAM_HRES_P": 0.385, "DEAM_NRES_P": 0.385,
    "SYSA_VRES_N": 1.9, "SYSA_VB_P": 1.9, "SYPD_DYL0_P": 0.22, "SYPD_DYL1_P": 0.22, "SYPD_DYL2_P": 1.6,
    "SYAW_STDSTR_N": 0.2, "SYAM_STDW_N": 0.67, "SYAM_STDWCCB": 1.7, "R2R_BUFFER_CCB": 1.7,
})


def bias_by_sim_name(name: str) -> Bias:
    """The :class:`Bias` of simulator current ``name`` (e.g. ``"Itau_mem"``)."""
    expect(name in _BY_SIM, "bias simulator name", f"one of {sorted(_BY_SIM)}", name)
    return _BY_SIM[name]


def bias_by_chip_name(name: str) -> Bias:
    """The :class:`Bias` of chip bias ``name`` (e.g. ``"SOIF_LEAK_N"``)."""
    expect(name in _BY_CHIP, "chip bias name", f"one of {sorted(_BY_CHIP)}", name)
    return _BY_CHIP[name]


def get_bias(name: str) -> Bias:
    """The :class:`Bias` named by a simulator name or a chip bias name."""
    b = _BY_SIM.get(name) or _BY_CHIP.get(name)
    expect(b is not None, "bias name", "a simulator name (e.g. 'Itau_mem') or chip name (e.g. 'SOIF_LEAK_N')",
           name)
    return b


#: Published raw endpoints (A, scale 1), Çakal et al. 2024: bias generator: (coarse, fine) → current: ENDPOINTS[type][coarse] = (G(c,0), G(c,1), G(c,255)).
ENDPOINTS: Mapping[str, tuple[tuple[float, float, float], ...]] = MappingProxyType({
    "N": ((0.4936e-12, 0.6568e-12, 71.77e-12), (0.9351e-12, 2.687e-12, 572.8e-12),
          (1.061e-12, 20.79e-12, 4.568e-9), (1.078e-12, 171.5e-12, 36.42e-9),
          (1.080e-12, 1.418e-9, 290.4e-9), (1.081e-12, 10.76e-9, 2.276e-6)),
    "P": ((0.3728e-12, 0.5280e-12, 66.91e-12), (0.6591e-12, 2.457e-12, 536.3e-12),
          (0.7470e-12, 19.34e-12, 4.300e-9), (0.7588e-12, 160.2e-12, 34.45e-9),
          (0.7603e-12, 1.331e-9, 277.4e-9), (0.7607e-12, 10.15e-9, 2.245e-6)),
})


def _type(type) -> str:
    t = type.upper() if isinstance(type, str) else type
    expect(t in TYPES, "transistor type", "'N' or 'P'", type)
    return t


def _check_code(coarse, fine) -> tuple[np.ndarray, np.ndarray]:
    c, f = np.asarray(coarse), np.asarray(fine)
    for name, a, hi in (("coarse", c, N_COARSE - 1), ("fine", f, N_FINE - 1)):
        ok = a.dtype.kind in "iu" and bool(np.all((a >= 0) & (a <= hi)))
        expect(ok, name, f"integer(s) in 0..{hi}", a.tolist())
    return c, f


def parametric_current(coarse, fine, type="N", model: str = "P3"):
    """Raw generator current G(c, f) in A (scale 1) of the parametric model (array-valued).

    P3: G(c,0) = E0(c), G(c,f) = E1(c) + (E255(c) − E1(c))·(f − 1)/254 for f ≥ 1.
    P2: G(c,f) = E0(c) + (E255(c) − E0(c))·f/255.
    """
    expect(model in MODELS, "bias-generator model", f"one of {MODELS}", model)
    c, f = _check_code(coarse, fine)
    e = np.asarray(ENDPOINTS[_type(type)], np.float64)[c]
    e0, e1, e255 = e[..., 0], e[..., 1], e[..., 2]
    if model == "P2":
        g = e0 + (e255 - e0) * f / 255.0
    else:
        g = np.where(f == 0, e0, e1 + (e255 - e1) * (f - 1) / 254.0)
    return float(g) if g.ndim == 0 else g


@dataclass(frozen=True)
class BiasCode:
    """Result of current → code: the code, the current it gives back, the error and a saturation flag."""

    coarse: int
    fine: int
    current: float  # scale·G(coarse, fine), A
    requested: float  # A
    rel_error: float  # |current − requested| / requested (0 for a request of 0)
    saturated: bool  # request outside [I_lo, I_hi]; clamped to the end code


@dataclass(frozen=True, eq=False)
class BiasGenerator:
    """An active bias-generator table ``grid[type, coarse, fine]`` (A, scale 1; type 0 = N, 1 = P).

    Built by :func:`parametric_generator` or by the loaders of :mod:`.calibration`; ``provenance``
    records which model or table it is.
    """

    grid: np.ndarray
    provenance: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self):
        g = np.array(self.grid, np.float64)
        expect(g.shape == (2, N_COARSE, N_FINE), "bias grid shape", (2, N_COARSE, N_FINE), g.shape)
        expect(bool(np.all(np.isfinite(g) & (g > 0))), "bias grid", "finite currents > 0", "other values")
        g.flags.writeable = False
        object.__setattr__(self, "grid", g)
        object.__setattr__(self, "provenance", MappingProxyType(dict(self.provenance)))

    @property
    def source(self) -> str:
        """Short label: ``"parametric:P3"`` or ``"table:<file>"``."""
        return str(self.provenance.get("label", "unknown"))

    def current(self, coarse, fine, type="N", scale: float = 1.0):
        """Digital → analog: I = scale·G_type(coarse, fine) in A (array-valued)."""
        c, f = _check_code(coarse, fine)
        g = scale * self.grid[TYPES.index(_type(type))][c, f]
        return float(g) if np.ndim(g) == 0 else g

    def range(self, type="N", scale: float = 1.0) -> tuple[float, float]:
        """Achievable currents [I_lo, I_hi] = scale·[min G, max G] for ``type`` (A)."""
        g = self.grid[TYPES.index(_type(type))]
        return float(scale * g.min()), float(scale * g.max())

    def nearest(self, currents, type="N", scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Vectorised analog → digital without range checks: (coarse, fine) arrays minimising
        |scale·G(c, f) − I| (= relative error for fixed I); ties → smallest (coarse, fine)."""
        flat = scale * self.grid[TYPES.index(_type(type))].ravel()
        i = np.asarray(currents, np.float64).ravel()
        idx = np.concatenate([np.argmin(np.abs(flat[None, :] - i[k:k + 4096, None]), axis=1)
                              for k in range(0, max(i.size, 1), 4096)])[:i.size]  # chunks bound the memory
        idx = idx.reshape(np.shape(currents))
        return idx // N_FINE, idx % N_FINE

    def code(self, current, type="N", scale: float = 1.0, *, name: str = "current",
             max_overrange: float = 0.25) -> BiasCode:
        """Analog → digital for one request I ≥ 0 (A): the code minimising |scale·G(c, f) − I|, ties to the
        smallest (coarse, fine); ``saturated`` when I ∉ [I_lo, I_hi] (clamped to an end code).

        Raises :class:`ConfigError` naming ``name``, the request and [I_lo, I_hi] when
        I > I_hi·(1 + max_overrange), or I is negative or not finite.
        """
        expect(is_finite_number(current) and current >= 0, name, "a finite current >= 0 A", current)
        lo, hi = self.range(type, scale)
        ok = current <= hi * (1 + max_overrange)
        expect(ok, name, f"a current within the DAC range [{lo:.4g}, {hi:.4g}] A (type {_type(type)}, scale "
               f"{scale:g}, generator {self.source}; max_overrange {max_overrange:g})", current)
        c, f = (int(x) for x in self.nearest(current, type, scale))
        back = self.current(c, f, type, scale)
        err = abs(back - current) / current if current > 0 else 0.0
        return BiasCode(c, f, back, float(current), err, not lo <= current <= hi)


@lru_cache(maxsize=None)
def parametric_generator(model: str = "P3") -> BiasGenerator:
    """The parametric bias generator (default P3, see module docstring) as a :class:`BiasGenerator`."""
    expect(model in MODELS, "bias-generator model", f"one of {MODELS}", model)
    c, f = np.meshgrid(np.arange(N_COARSE), np.arange(N_FINE), indexing="ij")
    grid = np.stack([parametric_current(c, f, t, model) for t in TYPES])
    return BiasGenerator(grid, {"source": "parametric", "model": model, "label": f"parametric:{model}",
                                "endpoints": "spikefleet Çakal et al. 2024: bias generator: (coarse, fine) → current (published endpoint table)"})


# ---------------------------------------------------------------------------- parameter sets

def core_currents(*, layout: Optional[Mapping] = None, weight_bits=None, **high_level) -> dict:
    """The 23 bias currents (A, simulator names of :data:`BIASES`) of a core from high-level values.

    τ and gain of the synapse apply to all four dendrites, each with its own capacitance
    (``DENDRITE_CAPACITANCE``): I_τ,d = (U_T/κ)·C_d/τ_syn, I_gain,d = r_syn·I_τ,d. The rest come from
    ``high_level_to_currents`` (Itau/Igain mem and ahp, Ipulse, Ipulse_ahp, Iref), the fixed currents
    of ``CURRENT_DEFAULTS`` (Ispkthr, Idc, If_nmda, Iw_ahp) and ``weight_bits`` (Iw_0..Iw_3, default
    ``WEIGHT_BITS`` = 1, 2, 4, 8 nA).
    """
    lay = dict(d2.LAYOUT_DEFAULTS, **(layout or {}))
    cur = d2.high_level_to_currents(layout=lay, **high_level)
    hl = dict(d2.HIGH_LEVEL_DEFAULTS, **{k: v for k, v in high_level.items() if v is not None})
    out = {k: cur[k] for k in ("Itau_mem", "Igain_mem", "Itau_ahp", "Igain_ahp", "Ipulse", "Ipulse_ahp", "Iref")}
    for dend, cap in d2.DENDRITE_CAPACITANCE.items():
        itau = d2.tau_to_current(hl["tau_syn"], cap, Ut=lay["Ut"], kappa_n=lay["kappa_n"], kappa_p=lay["kappa_p"])
        out[f"Itau_{dend}"], out[f"Igain_{dend}"] = itau, d2.gain_to_current(hl["gain_syn"], itau)
    out.update({k: d2.CURRENT_DEFAULTS[k] for k in ("Ispkthr", "Idc", "If_nmda", "Iw_ahp")})
    bits = d2.WEIGHT_BITS if weight_bits is None else tuple(weight_bits)
    expect(len(bits) == 4, "weight_bits", "4 currents Iw_0..Iw_3", bits)
    out.update({f"Iw_{i}": float(w) for i, w in enumerate(bits)})
    return {b.sim_name: float(out[b.sim_name]) for b in BIASES}


@dataclass(frozen=True)
class BiasTranslation:
    """Codes for a parameter set plus what they read back to, and which generator produced them."""

    codes: Mapping[str, tuple[int, int]]  # chip bias name -> (coarse, fine)
    currents: Mapping[str, float]  # simulator name -> read-back current scale·G(code), A
    requested: Mapping[str, float]  # simulator name -> requested current, A
    rel_errors: Mapping[str, float]  # simulator name -> |read-back − requested| / requested
    saturated: tuple[str, ...]  # simulator names clamped to an end code
    provenance: Mapping[str, object]

    def to_dict(self) -> dict:
        """A JSON-serialisable dict (codes as [coarse, fine] lists)."""
        return {"codes": {k: list(v) for k, v in self.codes.items()}, "currents": dict(self.currents),
                "requested": dict(self.requested), "rel_errors": dict(self.rel_errors),
                "saturated": list(self.saturated), "provenance": dict(self.provenance)}


def currents_to_codes(currents: Mapping[str, float], *, generator: Optional[BiasGenerator] = None,
                      max_overrange: float = 0.25, require_all: bool = False,
                      ignore_unknown: bool = False) -> BiasTranslation:
    """Translate {simulator name: current (A)} into {chip bias name: (coarse, fine)}.

    Each current I uses its bias's type and scale: code = argmin |scale·G_type(c, f) − I| (see
    :meth:`BiasGenerator.code` for ties and saturation). ``generator`` defaults to P3.
    """
    gen = generator if generator is not None else parametric_generator("P3")
    unknown = sorted(k for k in currents if k not in _BY_SIM)
    expect(ignore_unknown or not unknown, "current names", f"simulator bias names {sorted(_BY_SIM)} (per-dendrite "
           "Itau_/Igain_ampa/gaba/nmda/shunt; see core_currents)", unknown)
    missing = sorted(k for k in _BY_SIM if k not in currents)
    expect(not (require_all and missing), "currents", "all 23 simulated biases", f"missing {missing}")
    codes, back, req, errs, sat = {}, {}, {}, {}, []
    for b in BIASES:
        if b.sim_name not in currents:
            continue
        value = currents[b.sim_name]
        if np.ndim(value) == 0 and not isinstance(value, (bool, str)) and np.isrealobj(value):
            value = float(value)  # NumPy/JAX scalars; arrays (per-neuron values) are rejected by code()
        r = gen.code(value, b.type, b.scale, name=f"{b.sim_name} ({b.chip_name})", max_overrange=max_overrange)
        codes[b.chip_name], back[b.sim_name], req[b.sim_name], errs[b.sim_name] = \
            (r.coarse, r.fine), r.current, r.requested, r.rel_error
        if r.saturated:
            sat.append(b.sim_name)
    mp = MappingProxyType
    return BiasTranslation(mp(codes), mp(back), mp(req), mp(errs), tuple(sat), gen.provenance)


def codes_to_currents(codes: Mapping[str, tuple[int, int]], *, generator: Optional[BiasGenerator] = None,
                      ignore_unknown: bool = False) -> dict:
    """Translate {chip bias name: (coarse, fine)} into {simulator name: scale·G_type(coarse, fine) (A)}.

    Non-simulated chip biases raise :class:`ConfigError` unless ``ignore_unknown``.
    """
    gen = generator if generator is not None else parametric_generator("P3")
    unknown = sorted(k for k in codes if k not in _BY_CHIP)
    expect(ignore_unknown or not unknown, "chip bias names", f"simulated biases {sorted(_BY_CHIP)}", unknown)
    out = {}
    for name, code in codes.items():
        if name not in _BY_CHIP:
            continue
        b = _BY_CHIP[name]
        ok = isinstance(code, (tuple, list)) and len(code) == 2 and \
            all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in code)
        expect(ok, f"code of {name}", "a (coarse, fine) pair of integers", code)
        out[b.sim_name] = gen.current(int(code[0]), int(code[1]), b.type, b.scale)
    return out
