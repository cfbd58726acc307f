r"""What a DYNAP-SE2 configuration holds, validated and described: the summary that ``spikefleet deploy`` and
``spikefleet inspect`` print (Çakal et al. 2024, NCE, "DYNAP-SE2": cores, CAM/SRAM, tags, bias DACs).

:func:`summarize` validates a :class:`~spikefleet.hardware.dynapse2.config.HardwareConfig` (structure, then
every hardware limit on the recovered masks, signs, addresses, base currents and bias codes; reverse mapping
:func:`~spikefleet.hardware.dynapse2.reverse.recover`) and describes it as a JSON-ready dict;
:func:`format_summary` renders that dict as text; :func:`quantization_errors` adds the errors of a
deployment's quantised weights against the float design.

**Bias read-back** (:func:`bias_rows`). For each of the 23 biases of a used core: the code, the current
the DAC gives for it (``scale·G(code)`` of the core's generator: calibration tables, else P3), the
requested current (configuration metadata) and the relative error. Two flags explain errors above
:data:`BIAS_TOLERANCE` (2 %): ``saturated`` — the request lies outside the DAC range (below its floor,
e.g. If_nmda = Io = 0.5 pA < 1.05·0.4936 pA), so the end code is used; ``coarse`` — the request lies
where neighbouring DAC codes are more than 2·tolerance apart (relative to the request), so no code can
come within the tolerance (e.g. Iw_ahp = 0.5 pA between the codes (0, 0) = 0.454 pA and (0, 1) = 0.604 pA).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from spikefleet.errors import ConfigError
from spikefleet.hardware.dynapse2.biases import BIASES, TYPES
from spikefleet.hardware.dynapse2.calibration import select_generator
from spikefleet.hardware.dynapse2.constraints import raise_if, validate
from spikefleet.hardware.dynapse2.reverse import recover
from spikefleet.neurons.dynapse2 import I_SCALE, WEIGHT_BITS

__all__ = ["summarize", "format_summary", "bias_rows", "quantization_errors", "BIAS_TOLERANCE"]

#: Relative read-back tolerance of a bias current (the issue's round-trip criterion).
BIAS_TOLERANCE = 0.02


# ---------------------------------------------------------------------------------- summaries


def quantization_errors(dep, net) -> dict:
    """Errors of the quantised weights against ``net``'s float weights, with the requested base currents
    (``quantized``) and with the currents the DAC realises (``deployed``); the fields that matter of
    :meth:`~.hardware.dynapse2.quantize.CoreQuantization.errors`."""
    q = dep.quantization
    w_in = np.asarray(net.w_in, np.float64)
    w_rec = np.asarray(net.w_rec, np.float64) if net.config.recurrent else np.zeros(q.masks_rec.shape)
    iw = np.array(q.base_currents)
    for g, t in dep.translations.items():
        iw[g] = [t.currents[f"Iw_{b}"] for b in range(4)]
    keys = ("loss", "loss_per_core", "max_abs_in", "max_abs_rec", "rel_fro", "mean_rel", "n_synapses", "n_allocated")
    out = {}
    for name, qq in (("quantized", q), ("deployed", dataclasses.replace(q, base_currents=iw))):
        e = qq.errors(w_in, w_rec)
        out[name] = {k: list(e[k]) if isinstance(e[k], tuple) else e[k] for k in keys}
    return out


def _stats(counts) -> dict:
    c = np.asarray(counts)
    return {"min": int(c.min()), "median": float(np.median(c)), "max": int(c.max()), "total": int(c.sum())}


def _generator_for(tables, spec):
    return lambda g: select_generator(tables, chip=g // spec.cores_per_chip, core=g % spec.cores_per_chip)


def bias_rows(codes, generator, requested=None, tol: float = BIAS_TOLERANCE) -> list[dict]:
    """One row per simulated bias (module docstring: bias read-back): ``sim``, ``chip``, ``type``, ``code``, ``read_back``
    (A), ``requested`` (A or None), ``rel_error``, ``saturated``, ``coarse`` and ``resolution`` (half the
    relative gap between the DAC codes around the request: the best error any code could guarantee)."""
    requested = requested or {}
    rows = []
    for b in BIASES:
        code = tuple(int(x) for x in codes[b.chip_name])
        read = generator.current(*code, b.type, b.scale)
        req = requested.get(b.sim_name)
        lo, hi = generator.range(b.type, b.scale)
        target = read if req is None else float(req)
        levels = np.unique(generator.grid[TYPES.index(b.type)]) * b.scale
        k = int(np.searchsorted(levels, target))
        below, above = levels[max(k - 1, 0)], levels[min(k, levels.size - 1)]
        resolution = float((above - below) / (2 * target)) if target > 0 else 0.0
        saturated = req is not None and not lo <= req <= hi
        rel = abs(read - req) / req if req else (0.0 if req == 0 else None)
        rows.append({"sim": b.sim_name, "chip": b.chip_name, "type": b.type, "code": list(code), "read_back": read,
                     "requested": None if req is None else float(req), "rel_error": rel, "saturated": saturated,
                     "coarse": bool(not saturated and resolution > tol), "resolution": resolution})
    return rows


def summarize(hc, *, tables=(), source: str = "<configuration>", maps: bool = False) -> dict:
    """Validate a :class:`~.hardware.dynapse2.config.HardwareConfig` and describe it (JSON-ready dict).

    Validation: every hardware limit of :func:`~.hardware.dynapse2.constraints.validate` on the recovered
    design (raises ``HardwareLimitError`` listing all). ``maps``: include the full channel maps.
    """
    spec, meta = hc.spec, hc.metadata
    gen_for = _generator_for(tables, spec)
    try:
        d = recover(hc, generator=gen_for(0))
    except ConfigError as exc:
        raise ConfigError(str(exc) if str(exc).startswith(f"{source}:") else f"{source}: {exc}") from None
    c, n = d.masks_in.shape
    used = sorted({int(g) for g in d.global_core})
    cpc = spec.cores_per_chip
    cores = {g: hc.configuration.chips[g // cpc].cores[g % cpc] for g in used}
    codes = {g: cores[g].codes() for g in used}
    rows = {}
    for g in used:
        requested = meta.get("bias_translation", {}).get(str(g), {}).get("requested")
        rows[g] = bias_rows(codes[g], gen_for(g), requested)
    iw = np.tile(np.asarray(WEIGHT_BITS, np.float64), (spec.n_cores, 1))
    for g in used:
        iw[g] = [next(r["read_back"] for r in rows[g] if r["sim"] == f"Iw_{b}") for b in range(4)]
    raise_if(validate(spec, n_in=c, n_neurons=n, placement=(d.chip, d.core, d.neuron), masks=(d.masks_in, d.masks_rec),
                      signs=(d.signs_in, d.signs_rec), base_currents=iw,
                      bias_codes={g: {k: v for k, v in codes[g].items() if k in {b.chip_name for b in BIASES}}
                                  for g in used}), f"{source}")
    notes = []
    calibration = {}
    for g in used:
        prov = dict(meta.get("calibration", {}).get(str(g), {}))
        active = dict(gen_for(g).provenance)
        calibration[str(g)] = {"recorded": prov, "read_back_with": active.get("label")}
        if prov and prov.get("label") != active.get("label"):
            notes.append(f"chip {g // cpc} core {g % cpc}: codes were made with {prov.get('label')} but are read back "
                         f"with {active.get('label')}; pass that table with --calibration to read them back exactly")
        recorded = meta.get("bias_translation", {}).get(str(g), {}).get("codes", {})
        edited = sorted(k for k, v in recorded.items() if tuple(v) != tuple(codes[g].get(k, v)))
        if edited:
            notes.append(f"chip {g // cpc} core {g % cpc}: codes of {edited} differ from the deployment metadata "
                         "(edited after deployment?)")
    cam = (d.masks_in != 0).sum(0) + (d.masks_rec != 0).sum(0)
    same_core = d.global_core[:, None] == d.global_core[None, :]
    sram = [sum(not x.empty for x in cores[int(g)].neurons[int(j)].destinations)
            for g, j in zip(d.global_core, d.neuron)]
    q = meta.get("quantization", {})
    out = {
        "source": source, "format_version": meta.get("version"), "spikefleet_version": meta.get("spikefleet_version"),
        "mode": meta.get("mode"), "spec": spec.to_dict(),
        "network": {"n_in": int(c), "n_neurons": int(n), "recurrent": meta.get("recurrent", True),
                    "i_scale": meta.get("i_scale", I_SCALE), "dt": meta.get("dt", 1e-3)},
        "cores": {"used": [[g // cpc, g % cpc] for g in used],
                  "per_chip": {str(ch): [g % cpc for g in used if g // cpc == ch] for ch in range(spec.n_chips)},
                  "neurons_per_core": {f"{g // cpc}.{g % cpc}": int((d.global_core == g).sum()) for g in used}},
        "cam": {**_stats(cam), "limit": spec.cam_per_neuron, "input": int((d.masks_in != 0).sum()),
                "recurrent_same_core": int(((d.masks_rec != 0) & same_core).sum()),
                "recurrent_other_core": int(((d.masks_rec != 0) & ~same_core).sum())},
        "sram": {**_stats(sram), "limit": spec.sram_per_neuron},
        "tags": {"input": _span(d.input_tags[d.input_tags >= 0]), "recurrent": _span(d.neuron_tags[d.neuron_tags >= 0]),
                 "reserved_output": [spec.n_tags - n, spec.n_tags - 1] if c + 2 * n <= spec.n_tags else [],
                 "n_tags": spec.n_tags, "layout": "global" if c + 2 * n <= spec.n_tags else "per chip"},
        "quantization": {"method": q.get("method"), "notes": q.get("notes", []),
                         "loss_per_core": {f"{g // cpc}.{g % cpc}": q["loss"][g] for g in used
                                           if g < len(q.get("loss", []))}},
        "biases": {str(g): {"chip": g // cpc, "core": g % cpc, "rows": rows[g],
                            "latch_so_dc": bool(d.latch_so_dc[d.global_core == g].any())} for g in used},
        "calibration": calibration,
        "notes": notes,
    }
    if maps:
        out["input_channel_map"] = {str(k): [{"core": list(x.core), "x_hop": x.x_hop, "y_hop": x.y_hop, "tag": x.tag}
                                             for x in v] for k, v in sorted(hc.input_channel_map.items())}
        out["output_channel_map"] = {str(k): v._asdict() for k, v in sorted(hc.output_channel_map.items())}
    return out


def _span(a) -> list:
    a = np.asarray(a)
    return [int(a.min()), int(a.max())] if a.size else []


# -------------------------------------------------------------------------------- formatting


def _ranges(keys: list[int], signature) -> list[tuple[int, int, object]]:
    """Runs of consecutive keys whose ``signature(key)`` is equal: [(first, last, signature)]."""
    runs = []
    for k in keys:
        s = signature(k)
        if runs and runs[-1][1] == k - 1 and runs[-1][2] == s:
            runs[-1] = (runs[-1][0], k, s)
        else:
            runs.append((k, k, s))
    return runs


def _span_text(a: int, b: int) -> str:
    return f"{a}" if a == b else f"{a}–{b}"


def _amps(x) -> str:
    return "—" if x is None else f"{x:.4g} A"


def _bias_table(rows, indent="    ") -> list[str]:
    lines = [f"{indent}{'bias':<12}{'chip bias':<15}{'code':>10}  {'requested':>12}  {'read back':>12}  "
             f"{'error':>7}  flags"]
    for r in rows:
        err = "—" if r["rel_error"] is None else f"{100 * r['rel_error']:.2f}%"
        flags = ("saturated (outside the DAC range)" if r["saturated"] else
                 f"coarse DAC steps here (±{100 * r['resolution']:.0f}%)" if r["coarse"] else "")
        lines.append(f"{indent}{r['sim']:<12}{r['chip']:<15}{str(tuple(r['code'])):>10}  {_amps(r['requested']):>12}  "
                     f"{_amps(r['read_back']):>12}  {err:>7}  {flags}".rstrip())
    return lines


def format_summary(s: dict, *, title: str = "", maps: bool = False) -> str:
    """Human-readable text of a :func:`summarize` dict (plus deploy's quantisation errors)."""
    net, cam, sram, tags = s["network"], s["cam"], s["sram"], s["tags"]
    L = [title] if title else []
    kind = "recurrent" if net["recurrent"] else "feed-forward"
    L.append(f"network: {net['n_in']} inputs → {net['n_neurons']} neurons ({kind}), "
             f"I_scale {net['i_scale']:g} A, dt {net['dt']:g} s; configuration format v{s['format_version']}, "
             f"mode {s['mode']}")
    per_chip = "; ".join(f"chip {ch}: cores {', '.join(map(str, cs))}" for ch, cs in s["cores"]["per_chip"].items()
                         if cs)
    total = s["spec"]["n_chips"] * s["spec"]["cores_per_chip"]
    L.append(f"cores used: {len(s['cores']['used'])} of {total} ({per_chip})")
    L.append("neurons per core: " + ", ".join(f"chip {k.split('.')[0]} core {k.split('.')[1]}: {v}"
                                             for k, v in s["cores"]["neurons_per_core"].items()))
    L.append(f"synapses (CAM entries) per neuron: min {cam['min']} / median {cam['median']:g} / max {cam['max']} "
             f"(limit {cam['limit']}), total {cam['total']}: {cam['input']} input, {cam['recurrent_same_core']} "
             f"recurrent within a core, {cam['recurrent_other_core']} recurrent across cores")
    L.append(f"SRAM entries per neuron: min {sram['min']} / median {sram['median']:g} / max {sram['max']} "
             f"(limit {sram['limit']}: 1 monitor + 1 per destination chip), total {sram['total']}")
    span = lambda t: f"{t[0]}–{t[1]}" if t else "none"  # noqa: E731
    if tags.get("layout", "global") == "global":
        L.append(f"tags: input {span(tags['input'])}, recurrent {span(tags['recurrent'])}, reserved for outputs "
                 f"{span(tags['reserved_output'])} (of {tags['n_tags']})")
    else:
        L.append(f"tags: allocated per chip (the sources heard on each chip are numbered 0, 1, …; "
                 f"{tags['n_tags']} per chip)")
    q = s["quantization"]
    losses = ", ".join(f"chip {k.split('.')[0]} core {k.split('.')[1]}: {x:.3g}" for k, x in q["loss_per_core"].items())
    L.append(f"quantisation: method {q['method']}" + (f", seed {q['seed']}" if "seed" in q else "")
             + f"; normalised loss (Çakal et al. 2024: algorithm) {losses}")
    for name, label in (("quantized", "quantised (requested Iw)"), ("deployed", "deployed (read-back Iw)")):
        if name in q:
            e = q[name]
            L.append(f"  {label}: loss {e['loss']:.3g}, max |ΔW_in| {e['max_abs_in']:.3g}, max |ΔW_rec| "
                     f"{e['max_abs_rec']:.3g}, relative Frobenius error {e['rel_fro']:.3g}, mean relative error "
                     f"{e['mean_rel']:.3g}; {e['n_allocated']} of {e['n_synapses']} non-zero weights allocated")
    L.extend(f"  note: {x}" for x in q["notes"])
    L.append(f"bias codes (chip bias → (coarse, fine); tolerance {100 * BIAS_TOLERANCE:g}%):")
    cores = list(s["biases"].values())
    key = lambda r: (r["sim"], tuple(r["code"]), r["requested"])  # noqa: E731
    shared = set.intersection(*(set(map(key, c["rows"])) for c in cores)) if len(cores) > 1 else set()
    if shared:
        L.append(f"  shared by all {len(cores)} used cores:")
        L.extend(_bias_table([r for r in cores[0]["rows"] if key(r) in shared]))
    for c in cores:
        rest = [r for r in c["rows"] if key(r) not in shared]
        latch = "on" if c["latch_so_dc"] else "off: no DC injected"
        L.append(f"  chip {c['chip']} core {c['core']} (latch_so_dc {latch})"
                 + (":" if rest else ": no other biases"))
        if rest:
            L.extend(_bias_table(rest))
    cpc = s["spec"]["cores_per_chip"]
    L.append("calibration: " + "; ".join(
        f"chip {int(g) // cpc} core {int(g) % cpc}: {c['recorded'].get('label', 'unrecorded')}"
        + (f" — {c['recorded'].get('file')}, sha256 {str(c['recorded'].get('sha256'))[:12]}…"
           if c["recorded"].get("file") else f" — {c['recorded'].get('endpoints', c['recorded'].get('source', ''))}")
        for g, c in s["calibration"].items()))
    L.extend(f"note: {x}" for x in s["notes"])
    if maps:
        L.extend(_format_maps(s))
    return "\n".join(L)


def _chip_at(spec: dict, x: int, y: int):
    """The chip that input events with hop (x, y) reach (hops count from ``input_origin_chip``)."""
    ox, oy = spec["chip_positions"][spec["input_origin_chip"]]
    pos = [tuple(p) for p in spec["chip_positions"][:spec["n_chips"]]]
    return pos.index((ox + x, oy + y)) if (ox + x, oy + y) in pos else "?"


def _format_maps(s: dict) -> list[str]:
    imap, omap = s["input_channel_map"], s["output_channel_map"]
    L = [f"input channel map ({len(imap)} channels; the tag each destination chip matches):"]

    def isig(k):
        return tuple((tuple(d["core"]), d["x_hop"], d["y_hop"], d["tag"] - k) for d in imap[str(k)])

    for a, b, sig in _ranges(sorted(int(k) for k in imap), isig):
        if not sig:
            L.append(f"  channels {_span_text(a, b)}: no destination (all-zero input rows)")
            continue
        dests = "; ".join(f"chip {_chip_at(s['spec'], x, y)} cores {[i for i, on in enumerate(core) if on]} "
                          f"(hop {x:+d}, {y:+d}), tags {_span_text(a + off, b + off)}" for core, x, y, off in sig)
        L.append(f"  channels {_span_text(a, b)} → {dests}")
    L.append(f"output channel map ({len(omap)} neurons; spikes arrive as monitor events with these tags):")

    def osig(k):
        o = omap[str(k)]
        return o["tag"] - k, o["chip"], o["core"], o["local"] - k

    for a, b, (t, ch, co, lo) in _ranges(sorted(int(k) for k in omap), osig):
        L.append(f"  neurons {_span_text(a, b)} → chip {ch} core {co} neurons {_span_text(a + lo, b + lo)}, "
                 f"monitor tag {_span_text(a + t, b + t)}")
    return L


