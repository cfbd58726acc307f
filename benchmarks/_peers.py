"""Peer simulators for the benchmark suite; runs in the separate ``.bench-venv`` (never imports spikefleet).

A line-oriented JSON worker driven by ``benchmarks/suite.py``: every request is one JSON line on
stdin, every answer one JSON line on stdout (anything the peers print goes to stderr).

    {"cmd": "versions"}                                  -> {"rockpool": ..., "jax": ..., "torch": ..., ...}
    {"cmd": "setup", "peer": P, "mode": "fwd"|"bwd", "data": "case.npz"}
                                                         -> {"ok": true, "warmup_s": s, "rate_hz": r}
    {"cmd": "run", "peer": P}                            -> {"seconds": s}   (one timed call of P's last setup)
    {"cmd": "quit"}

Peers (``P``), all on the work that spikefleet runs in the same suite (same inputs, weights, N, B,
T, dt = 1 ms): ``rockpool-lif`` (LinearJax → LIFJax with recurrence → LinearJax readout),
``rockpool-dynapsim`` (LinearJax → DynapSim with recurrence; output = spike raster),
``snntorch-rleaky`` (Linear → RLeaky all-to-all recurrence → Linear readout, a Python loop over
time as snnTorch is used) and ``rockpool-quantize`` (Rockpool's DYNAP-SE2 autoencoder weight
quantisation). ``fwd`` is the forward pass; ``bwd`` the gradient of the output MSE (target 1)
with respect to the weights only. JAX peers are jitted, and the warm-up call (compilation) is
excluded from the timed calls, which end with ``block_until_ready``.

The peers' APIs were read only to call them; no peer code is copied here.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings

_OUT = sys.stdout
sys.stdout = sys.stderr  # peers log on import; keep the protocol channel clean

warnings.filterwarnings("ignore")


def _send(obj):
    _OUT.write(json.dumps(obj) + "\n")
    _OUT.flush()


def _versions():
    out = {"python": sys.version.split()[0]}
    for name in ("rockpool", "jax", "jaxlib", "torch", "snntorch", "numpy"):
        try:
            mod = __import__(name)
            out[name] = getattr(mod, "__version__", "?")
        except Exception as exc:  # pragma: no cover - optional peer missing
            out[name] = f"unavailable ({type(exc).__name__})"
    try:
        import torch
        out["torch_threads"] = torch.get_num_threads()
        out["torch_cuda"] = bool(torch.version.cuda)
    except Exception:
        pass
    return out


# ------------------------------------------------------------------------------------- Rockpool


def _rockpool_lif(d, mode):
    import jax.numpy as jnp
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFJax, LinearJax

    a = float(d["membrane_factor"])  # LIFJax integrates v <- alpha v + I: scale weights to the same drive
    c, n = d["w_in"].shape
    o = d["w_out"].shape[1]
    net = Sequential(
        LinearJax((c, n), weight=jnp.asarray(a * d["w_in"]), has_bias=False),
        LIFJax((n, n), tau_mem=float(d["tau_mem"]), tau_syn=float(d["tau_syn"]), has_rec=True,
               w_rec=jnp.asarray(a * d["w_rec"]), dt=float(d["dt"])),
        LinearJax((n, o), weight=jnp.asarray(d["w_out"]), has_bias=False),
    )
    return _rockpool_jobs(net, d, mode, ("weight", "w_rec"), spikes_of="lif")


def _rockpool_dynapsim(d, mode):
    import jax.numpy as jnp
    from rockpool.devices.dynapse import DynapSim
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LinearJax

    c, n = d["w_in"].shape
    net = Sequential(
        LinearJax((c, n), weight=jnp.asarray(d["w_in"]), has_bias=False),
        DynapSim((n, n), has_rec=True, w_rec=jnp.asarray(d["w_rec"]), dt=float(d["dt"]),
                 Iscale=float(d["i_scale"]), percent_mismatch=None),
    )
    return _rockpool_jobs(net, d, mode, ("weight", "w_rec"), spikes_of=None)


def _rockpool_jobs(net, d, mode, trainable, spikes_of):
    import jax
    import jax.numpy as jnp

    x = jnp.asarray(d["x"])
    params = net.parameters()
    weights = {k: {n: v for n, v in sub.items() if n in trainable} for k, sub in params.items()}

    def outputs(w, x):
        out, _, rec = net.set_attributes(w)(x)
        return out, rec

    if mode == "fwd":
        fn = jax.jit(lambda w, x: outputs(w, x)[0])
    else:
        fn = jax.jit(jax.grad(lambda w, x: jnp.mean((outputs(w, x)[0] - 1.0) ** 2)))

    def rate():
        out, _, rec = net.set_attributes(weights)(x, record=spikes_of is not None)
        spikes = out if spikes_of is None else rec["1_LIFJax_output"]
        return float(jnp.mean(spikes)) / float(d["dt"])

    return (lambda: jax.block_until_ready(fn(weights, x))), rate


# ------------------------------------------------------------------------------------- snnTorch


def _snntorch_rleaky(d, mode):
    import numpy as np
    import snntorch as snn
    import torch

    torch.manual_seed(0)
    # RLeaky integrates mem <- beta mem + I without a synaptic filter: scale the weights by the membrane
    # factor and by the synaptic filter's DC gain 1 / (1 - e^(-dt/tau_syn)) for the same mean drive
    a = float(d["membrane_factor"]) / float(-np.expm1(-float(d["dt"]) / float(d["tau_syn"])))
    c, n = d["w_in"].shape
    o = d["w_out"].shape[1]
    fc_in = torch.nn.Linear(c, n, bias=False)
    fc_out = torch.nn.Linear(n, o, bias=False)
    lif = snn.RLeaky(beta=float(np.exp(-float(d["dt"]) / float(d["tau_mem"]))), linear_features=n, all_to_all=True,
                     reset_mechanism="subtract")
    with torch.no_grad():
        fc_in.weight.copy_(torch.from_numpy(a * d["w_in"].T))
        fc_out.weight.copy_(torch.from_numpy(d["w_out"].T))
        lif.recurrent.weight.copy_(torch.from_numpy(a * d["w_rec"].T))
        lif.recurrent.bias.zero_()
    x = torch.from_numpy(np.ascontiguousarray(np.swapaxes(d["x"], 0, 1)))  # [T, B, C]

    def run():
        spk, mem = lif.init_rleaky()
        drive = fc_in(x)
        spikes = []
        for t in range(x.shape[0]):
            spk, mem = lif(drive[t], spk, mem)
            spikes.append(spk)
        s = torch.stack(spikes)
        return fc_out(s), s

    def fwd():
        with torch.no_grad():
            return run()

    def bwd():
        for p in (fc_in.weight, fc_out.weight, lif.recurrent.weight):
            p.grad = None
        y, _ = run()
        loss = torch.mean((y - 1.0) ** 2)
        loss.backward()
        return loss.item()

    def rate():
        _, s = fwd()
        return float(s.mean()) / float(d["dt"])

    return (fwd if mode == "fwd" else bwd), rate


def _rockpool_quantize(d, mode):
    import numpy as np
    from rockpool.devices.dynapse.quantization import autoencoder_quantization

    core = np.asarray(d["core"]).astype(int)  # an array: Rockpool selects a core with core_map == k
    epochs = int(d["epochs"])

    def run():
        return autoencoder_quantization(int(d["n_cores"]), core, np.asarray(d["w_in"]), np.asarray(d["w_rec"]),
                                        float(d["i_scale"]), fixed_epoch=True, num_epoch=epochs,
                                        num_epoch_checkpoint=epochs, record_loss=False)

    return run, lambda: 0.0


PEERS = {
    "rockpool-lif": _rockpool_lif,
    "rockpool-dynapsim": _rockpool_dynapsim,
    "snntorch-rleaky": _snntorch_rleaky,
    "rockpool-quantize": _rockpool_quantize,
}


def main():
    import numpy as np

    jobs = {}
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            if req["cmd"] == "quit":
                break
            if req["cmd"] == "versions":
                _send(_versions())
            elif req["cmd"] == "setup":
                with np.load(req["data"]) as f:
                    d = {k: f[k] for k in f.files}
                jobs.pop(req["peer"], None)  # free the previous case first
                job, rate = PEERS[req["peer"]](d, req["mode"])
                jobs[req["peer"]] = job
                start = time.perf_counter()
                job()
                warmup = time.perf_counter() - start
                _send({"ok": True, "warmup_s": warmup, "rate_hz": rate() if req.get("rate") else None})
            elif req["cmd"] == "run":
                job = jobs[req["peer"]]
                start = time.perf_counter()
                job()
                _send({"seconds": time.perf_counter() - start})
            else:
                _send({"error": f"unknown command {req['cmd']!r}"})
        except Exception as exc:  # report, keep serving
            _send({"error": f"{type(exc).__name__}: {exc}"[:2000]})
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
