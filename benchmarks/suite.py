"""The spikefleet benchmark suite: one command, one report (``benchmarks/RESULTS.md``).

    python3 dev.py bench [--quick] [--no-peers] [--sections simulate,fleet,ads,quantize]
    .venv/bin/python benchmarks/suite.py [same options]

Every figure is a ratio to a baseline measured in the same run, on the same work:

* **dense bound** — the dense FLOP rate of this machine, measured with a plain jitted matmul of
  the simulation's own shape (``T`` products ``[B, N] × [N, N]`` in one ``lax.scan``, an
  orthogonal ``N × N`` matrix so nothing over- or underflows), timed interleaved with each case;
  the bound of a simulation is the time its matrix products (recurrent, input and readout) take
  at that rate. The peak rate of one large matmul is reported alongside.
* **peers** — Rockpool (``LIFJax``, ``DynapSim``, its DYNAP-SE2 autoencoder quantiser) and
  snnTorch (``RLeaky``, CPU torch) from the separate environment ``.bench-venv``
  (``python3 dev.py bench-env``), each in a worker subprocess, on the same inputs and weights.

Timing: a warm-up call (compilation) first and never timed; then ``--repeats`` timed calls,
interleaved between spikefleet and its peers, best of them reported (each call ends with
``block_until_ready``; torch is synchronous). The machine's 1-minute load average is recorded
per row because the machine is shared: compare ratios within a run, not seconds across runs.

Sections: ``simulate`` (LIF and DYNAP-SE2, N = 64/256/1024, B = 1/32, T = 1000, dt = 1 ms,
forward and forward+backward), ``fleet`` (1000 chips), ``ads`` (one Network ADS training sample,
N = 768, T = 5000), ``quantize`` (DYNAP-SE2 weights of a 4-core network). ``--quick`` is a
smoke run (small sizes, short sequences, one repeat, small fleet).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from _report import header, load, publish, timed_once

from spikefleet.models.spiking import SpikingConfig, init_spiking
from spikefleet.models.dynapse2 import DynapSE2Config, init_dynapse2
from spikefleet.simulation import simulate_batch

ROOT = Path(__file__).resolve().parents[1]
BENCH_PY = ROOT / ".bench-venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
C_IN = 60  # input channels (50 Hz Poisson spikes)
O_OUT = 2  # LIF readout size
DT = 1e-3
TAU_MEM, TAU_SYN = 20e-3, 10e-3


# ----------------------------------------------------------------------------------- peers


class Peer:
    """A worker subprocess in ``.bench-venv`` speaking the line-JSON protocol of ``_peers.py``."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.proc = None
        self.error = None
        if not BENCH_PY.exists():
            self.error = "no .bench-venv (run `python3 dev.py bench-env`)"
            return
        self.log = tempfile.NamedTemporaryFile("w+", suffix=".peers.log", delete=False)
        env = dict(os.environ, PYTHONWARNINGS="ignore", TF_CPP_MIN_LOG_LEVEL="3")
        self.proc = subprocess.Popen([str(BENCH_PY), str(ROOT / "benchmarks" / "_peers.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, text=True, bufsize=1, env=env)

    def ask(self, req: dict, timeout: float | None = None) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            return {"error": self.error or "peer worker not running"}
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout or self.timeout)
        if not ready:
            self.close(kill=True)
            self.error = f"timed out after {timeout or self.timeout:.0f} s"
            return {"error": self.error}
        line = self.proc.stdout.readline()
        return json.loads(line) if line else {"error": "peer worker exited"}

    def close(self, kill=False):
        if self.proc is not None and self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                try:
                    self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                    self.proc.stdin.flush()
                    self.proc.wait(timeout=10)
                except Exception:
                    self.proc.kill()


class Peers:
    """Restarts the worker after a timeout so later cases still run."""

    def __init__(self, enabled: bool, timeout: float):
        self.enabled, self.timeout = enabled, timeout
        self.worker = Peer(timeout) if enabled else None
        self.info = self.worker.ask({"cmd": "versions"}) if enabled else {}

    def ask(self, req, timeout=None):
        if not self.enabled:
            return {"error": "peers disabled (--no-peers)"}
        if self.worker.proc is None:
            return {"error": self.worker.error}
        if self.worker.proc.poll() is not None:
            self.worker = Peer(self.timeout)
        return self.worker.ask(req, timeout)

    def close(self):
        if self.worker is not None:
            self.worker.close()


# ------------------------------------------------------------------------------- workloads


def poisson_inputs(key, b, t, rate_hz=50.0):
    return jax.random.poisson(key, rate_hz * DT, (b, t, C_IN)).astype(jnp.float32)


def lif_network(n, key):
    cfg = SpikingConfig(n_in=C_IN, n_hidden=n, n_out=O_OUT, dt=DT)
    return init_spiking(cfg, key, tau_mem=TAU_MEM, tau_syn=TAU_SYN, in_scale=4.0, rec_scale=1.0)


def dynapse2_network(n, key):
    return init_dynapse2(DynapSE2Config(n_in=C_IN, n_hidden=n, dt=DT), key)


def _weights(net):
    return (net.w_in, net.w_rec, net.w_out) if hasattr(net, "w_out") else (net.w_in, net.w_rec)


def _with_weights(net, w):
    return eqx.tree_at(_weights, net, tuple(w))


@eqx.filter_jit
def sim_forward(net, x):
    return simulate_batch(net, x).outputs


@eqx.filter_jit
def sim_backward(w, net, x):
    """Gradient of the output MSE (target 1) with respect to the weights only (as for the peers)."""
    return jax.grad(lambda w: jnp.mean((simulate_batch(_with_weights(net, w), x).outputs - 1.0) ** 2))(w)


@eqx.filter_jit
def _rate(net, x):
    return simulate_batch(net, x, accumulate=("spikes",)).totals["spikes"].mean() / (x.shape[1] * DT)


def orthogonal(n, key):
    q, r = jnp.linalg.qr(jax.random.normal(key, (n, n)))
    return q * jnp.sign(jnp.diag(r))[None, :]


def matmul_scan(t):
    @jax.jit
    def run(h, w):
        return jax.lax.scan(lambda h, _: (h @ w, None), h, None, length=t)[0]

    return run


def peak_rate(args, key):
    """The peak dense FLOP rate of one large matmul (for reference next to the per-shape rates)."""
    m = 2048 if not args.quick else 512
    a = jax.random.normal(key, (m, m))
    big = jax.jit(lambda a: a @ a)
    jax.block_until_ready(big(a))
    t = min(timed_once(big, a) for _ in range(5))
    return 2.0 * m ** 3 / t


# ------------------------------------------------------------------------------- sections


def _fmt(x, digits=3):
    if x is None:
        return "—"
    if isinstance(x, str):
        return x
    return f"{x:.{digits}f}" if x < 100 else f"{x:.0f}"


def _ratio(a, b):
    return None if (a is None or b is None or b == 0) else a / b


UPPER = set()  # (job name, id of its result row) measured by the warm-up call only


def _interleave(jobs, repeats, slow_s, once_s=None):
    """``jobs``: name -> (callable returning seconds, warm-up seconds). Best time per job.

    A job whose warm-up took longer than ``slow_s`` is timed once; one whose warm-up took longer
    than ``once_s`` is not timed again: its warm-up time (an upper bound) is reported instead.
    """
    best = {name: None for name in jobs}
    for name, (run, warm) in jobs.items():
        if run is not None and once_s is not None and warm is not None and warm > once_s:
            best[name] = warm
            UPPER.add(name)
    for rep in range(repeats):
        for name, (run, warm) in jobs.items():
            if run is None or name in UPPER or (rep > 0 and warm is not None and warm > slow_s):
                continue
            t = run()
            if t is None:
                continue
            best[name] = t if best[name] is None else min(best[name], t)
    return best


PEERS_OF = {"lif": ("rockpool-lif", "snntorch-rleaky"), "dynapse2": ("rockpool-dynapsim",)}


def section_simulate(args, peers, rates, peak, notes):
    key = jax.random.PRNGKey(0)
    t = args.steps
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="sf-bench-"))
    for model in ("lif", "dynapse2"):
        for n in args.sizes:
            net = (lif_network if model == "lif" else dynapse2_network)(n, key)
            for b in args.batches:
                x = poisson_inputs(jax.random.fold_in(key, b), b, t)
                data = tmp / f"{model}-{n}-{b}.npz"
                np.savez(data, x=np.asarray(x), w_in=np.asarray(net.w_in), w_rec=np.asarray(net.w_rec),
                         w_out=np.asarray(getattr(net, "w_out", np.zeros((n, O_OUT), np.float32))),
                         membrane_factor=np.float32(-np.expm1(-DT / TAU_MEM)), tau_mem=TAU_MEM, tau_syn=TAU_SYN,
                         dt=DT, i_scale=np.float32(getattr(getattr(net, "neurons", None), "I_scale", 1e-8)))
                rate = float(_rate(net, x))
                # its matrix products (recurrent, input, readout) relative to the recurrent ones alone
                share = (n * n + C_IN * n + (O_OUT * n if model == "lif" else 0)) / (n * n)
                w_orth, h0 = orthogonal(n, key), jax.random.normal(key, (b, n))
                mm = matmul_scan(t)
                jax.block_until_ready(mm(h0, w_orth))
                for mode in ("fwd", "bwd"):
                    if mode == "fwd":
                        fn, fargs = sim_forward, (net, x)
                    else:
                        fn, fargs = sim_backward, (_weights(net), net, x)
                    start = time.perf_counter()
                    jax.block_until_ready(fn(*fargs))
                    jobs = {"spikefleet": (lambda fn=fn, fargs=fargs: timed_once(fn, *fargs),
                                           time.perf_counter() - start),
                            "matmul": (lambda mm=mm, h0=h0, w=w_orth: timed_once(mm, h0, w), 0.0)}
                    peer_info = {}
                    for peer in PEERS_OF[model]:
                        if args.no_peers:
                            continue
                        r = peers.ask({"cmd": "setup", "peer": peer, "mode": mode, "data": str(data),
                                       "rate": mode == "fwd"})
                        if "error" in r:
                            peer_info[peer] = {"error": r["error"]}
                            jobs[peer] = (None, None)
                            continue
                        peer_info[peer] = r

                        def run_peer(peer=peer):
                            return peers.ask({"cmd": "run", "peer": peer}).get("seconds")

                        jobs[peer] = (run_peer, r["warmup_s"])
                    UPPER.clear()
                    best = _interleave(jobs, args.repeats, args.slow_s, args.peer_once_s)
                    bound = best["matmul"] * share
                    rates[(n, b)] = max(rates.get((n, b), 0.0), 2.0 * b * n * n * t / best["matmul"])
                    row = {"model": model, "n": n, "b": b, "mode": mode, "seconds": best["spikefleet"],
                           "bound": bound, "rate_hz": rate, "load": load(), "peers": {}}
                    for peer in PEERS_OF[model]:
                        info = peer_info.get(peer, {})
                        row["peers"][peer] = {"seconds": best.get(peer), "error": info.get("error"),
                                              "rate_hz": info.get("rate_hz"), "upper": peer in UPPER}
                    row["matmul"] = best["matmul"]
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                t_mm = min(r["matmul"] for r in rows[-2:])  # best plain-matmul time of this case
                for r in rows[-2:]:
                    r["bound"] = t_mm * share
    lines = [
        "## simulate",
        "",
        f"Work: `C = {C_IN}` Poisson inputs (50 Hz) → `N` recurrent neurons → outputs, batch `B`, `T = {t}`, "
        f"dt = 1 ms. LIF: `SpikingNetwork` (τ_mem = 20 ms, τ_syn = 10 ms, readout of {O_OUT}); DYNAP-SE2: "
        "`DynapSE2Network` (DynapSim neurons in Amperes, output = spike raster). Peers get the same inputs "
        "and weights (LIF weights scaled by 1 − e^(−dt/τ_mem) because `LIFJax`/`RLeaky` integrate without that "
        "factor). `fwd` = forward pass; `fwd+bwd` = gradient of the output MSE w.r.t. the weights. "
        "`× bound` = time / dense bound (the time its matrix products take at this machine's dense rate for "
        "that shape, measured by a plain matmul scan interleaved with the case; < 1 beats it). `vs X` = X's time / spikefleet's time (> 1: spikefleet faster).",
        "",
        "| model | N | B | pass | spikefleet s | dense bound s | × bound | Rockpool s | vs Rockpool | snnTorch s "
        "| vs snnTorch | rate Hz (sf / Rockpool / snnTorch) | load |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        rp = r["peers"].get("rockpool-lif") or r["peers"].get("rockpool-dynapsim") or {}
        st = r["peers"].get("snntorch-rleaky") or {}

        def cell(p):
            if p.get("seconds") is not None:
                return _fmt(p["seconds"], 4) + ("*" if p.get("upper") else "")
            return "n/a" if r["model"] == "dynapse2" and p is st else ("error" if p.get("error") else "—")

        rates_cell = " / ".join(_fmt(v, 1) for v in (r["rate_hz"], rp.get("rate_hz"), st.get("rate_hz"))) \
            if r["mode"] == "fwd" else ""
        lines.append(
            f"| {'LIF' if r['model'] == 'lif' else 'DYNAP-SE2'} | {r['n']} | {r['b']} | "
            f"{'fwd' if r['mode'] == 'fwd' else 'fwd+bwd'} | {_fmt(r['seconds'], 4)} | {_fmt(r['bound'], 4)} | "
            f"{_fmt(_ratio(r['seconds'], r['bound']), 2)} | {cell(rp)} | {_fmt(_ratio(rp.get('seconds'), r['seconds']), 2)} | "
            f"{cell(st) if r['model'] == 'lif' else 'n/a'} | "
            f"{_fmt(_ratio(st.get('seconds'), r['seconds']), 2) if r['model'] == 'lif' else 'n/a'} | {rates_cell} | "
            f"{r['load']:.1f} |")
    lines += ["", f"`*`: the peer's first call took over {args.peer_once_s:.0f} s, so it was not repeated; its time "
              "includes compilation (an upper bound). Firing rates differ between models because the peers' "
              "neuron equations differ in detail (same weights and inputs)."]
    errors = sorted({f"{p}: {v['error']}" for r in rows for p, v in r["peers"].items() if v.get("error")})
    if errors:
        lines += ["", "Peer errors: " + "; ".join(errors)]
    notes["simulate"] = rows
    return lines


# --------------------------------------------------------------------------------- fleet


def _fleet_case(args, trials):
    from spikefleet.simulation import run_outputs
    from spikefleet.fleet.chip import Condition, fleet_keys, realize
    from spikefleet.fleet.evaluate import evaluate_fleet
    from spikefleet.fleet.mismatch import builtin_profile
    from spikefleet.tasks import get_task
    from spikefleet.train import gradient as recipes

    task = get_task("xor")
    chips, chunk = args.chips, args.fleet_chunk
    batch = task.generate(trials, 1234)
    design = recipes._bptt_model(task, jax.random.PRNGKey(0), 128)
    condition = Condition(mismatch=builtin_profile("uniform", 0.1))
    keys = fleet_keys(0, chips)
    labels = jnp.tile(jnp.asarray(batch.labels), chunk)
    big_inputs = jnp.tile(jnp.asarray(batch.inputs), (chunk, 1, 1))  # one fleet chunk's trials, one chip
    n_rep = -(-chips // chunk)

    @eqx.filter_jit
    def one_chip(net, x):
        def part(i):  # each part its own (rolled) trials, so no part can be hoisted out of the loop
            xi, li = jnp.roll(x, i, axis=0), jnp.roll(labels, i)
            return jnp.sum(task.decide_jax(simulate_batch(net, xi).outputs) == li)
        return jax.lax.map(part, jnp.arange(n_rep))

    def loop(k):  # realize + jitted batched evaluation + accuracy on the host, chip by chip
        for key in keys[:k]:
            outputs, _ = run_outputs(realize(design, key, condition), batch.inputs, chunk=trials)
            task.accuracy(outputs, batch.labels)

    jax.block_until_ready(one_chip(design, big_inputs))
    loop(1)  # compile
    start = time.perf_counter()
    result = evaluate_fleet(design, task, batch, keys, condition, chunk=chunk)
    t_first = time.perf_counter() - start
    jobs = {"fleet": lambda: evaluate_fleet(design, task, batch, keys, condition, chunk=chunk),
            "one": lambda: jax.block_until_ready(one_chip(design, big_inputs)),
            "loop": lambda: loop(args.loop_chips)}
    best = {name: None for name in jobs}
    for _ in range(args.fleet_repeats):
        for name, fn in jobs.items():
            start = time.perf_counter()
            fn()
            dt = time.perf_counter() - start
            best[name] = dt if best[name] is None else min(best[name], dt)
    per_chip = {"fleet": best["fleet"] / chips, "one": best["one"] / (n_rep * chunk),
                "loop": best["loop"] / args.loop_chips}
    return {"trials": trials, "first_s": t_first, "best": best, "per_chip": per_chip, "n_one": n_rep * chunk,
            "median_acc": result.summary().median, "load": load()}


def section_fleet(args, notes):
    cases = [_fleet_case(args, trials) for trials in args.fleet_trials]
    lines = [
        "## fleet evaluation",
        "",
        f"Work: the XOR BPTT design (N = 128 LIF, untrained weights), XOR trials of 1 s (T = 1000), uniform "
        f"mismatch 10 %, {args.chips} chips, `evaluate_fleet(chunk={args.fleet_chunk})` (per-chip accuracy, "
        "MSE and rate computed on the device), for two amounts of work per chip. Baselines in the same run: "
        f"a Python loop over chips (`realize` + jitted batched evaluation + accuracy on the host; {args.loop_chips} "
        "chips timed, cost per chip), and the same number of trials evaluated on one chip (nominal weights, "
        f"batches of {args.fleet_chunk} × trials like one fleet chunk, accuracy on the device).",
        "",
        "| trials per chip | work | seconds | per chip ms | Python loop / fleet (per chip) | fleet / one chip (same trials) | load |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for c in cases:
        pc, b = c["per_chip"], c["best"]
        lines += [
            f"| {c['trials']} | evaluate_fleet, {args.chips} chips (first call, incl. compile) | {c['first_s']:.2f} | "
            f"{c['first_s'] / args.chips * 1e3:.2f} | | | |",
            f"| {c['trials']} | evaluate_fleet, {args.chips} chips | {b['fleet']:.2f} | {pc['fleet'] * 1e3:.2f} | "
            f"**{pc['loop'] / pc['fleet']:.1f}×** | **{pc['fleet'] / pc['one']:.2f}×** | {c['load']:.1f} |",
            f"| {c['trials']} | Python loop over chips | {b['loop']:.2f} ({args.loop_chips} chips) | "
            f"{pc['loop'] * 1e3:.2f} | | | |",
            f"| {c['trials']} | one chip, {c['n_one']} × {c['trials']} trials | {b['one']:.2f} | "
            f"{pc['one'] * 1e3:.2f} (per {c['trials']} trials) | | | |",
        ]
    notes["fleet"] = cases
    print(json.dumps(cases, default=float), flush=True)
    return lines


# ----------------------------------------------------------------------------------- ADS


def section_ads(args, notes):
    from spikefleet.models.ads import build_ads
    from spikefleet.models.rate import RateConfig, init_rate
    from spikefleet.train import ads
    from spikefleet.train.presets import ads_config

    n, t, c, n_hat = args.ads_n, args.ads_steps, 16, 128
    key = jax.random.PRNGKey(0)
    teacher = init_rate(RateConfig(n_in=c, n_hidden=n_hat, n_out=1, dt=DT), key)
    net = build_ads(teacher, ads_config(n=n), jax.random.PRNGKey(1))
    inputs = jax.random.normal(jax.random.PRNGKey(2), (t, c)) * 0.5
    target = ads.teacher_dynamics(teacher, inputs)
    k, eta = jnp.float32(200.0), jnp.float32(1e-5)

    def sample():
        new, metrics = ads.learn_sample(net, inputs, target, k, eta)
        return new.core.w_rec, metrics

    start = time.perf_counter()
    _, metrics = jax.block_until_ready(sample())
    t_first = time.perf_counter() - start
    # dense bound of its per-step products: two N x N mat-vecs (slow and fast recurrence) + the
    # projections (input, readout, feedback encoder: N̂ x N each) + the online rule's rank-50 terms
    w = orthogonal(n, key)
    h = jax.random.normal(key, (1, n))
    run = matmul_scan(t)
    jax.block_until_ready(run(h, w))
    best = _interleave({"sample": (lambda: timed_once(sample), t_first), "matvec": (lambda: timed_once(run, h, w), 0.0)},
                       args.repeats, 1e9)
    t_best, t_mv = best["sample"], best["matvec"]
    per_step = 2 * n * n + 3 * n_hat * n + 2 * ads.LOW_RANK_CHUNK * n
    bound = t_mv * per_step / (n * n)
    rate = float(np.mean(np.asarray(metrics["rate_hz"])))
    lines = [
        "## Network ADS training sample",
        "",
        f"Work: `learn_sample` (online rule, §7) of one sample, N = {n} (wake-phrase settings: κ = 1.5, "
        f"A = 1000, k = 200, η = 1e-5, fast weights), teacher 16 → {n_hat} → 1, T = {t} steps. Dense bound: "
        f"its per-step products ({per_step:,} multiply-adds: two N×N mat-vecs, three N̂×N projections, the "
        "rank-50 online terms) at this machine's measured mat-vec rate (`[1, N] × [N, N]` in a scan).",
        "",
        "| work | seconds | dense bound s | × bound | rate Hz | load |",
        "|---|---:|---:|---:|---:|---:|",
        f"| one ADS training sample (first call, incl. compile) | {t_first:.3f} | | | | |",
        f"| one ADS training sample | {t_best:.3f} | {bound:.3f} | {t_best / bound:.2f} | {rate:.1f} | {load():.1f} |",
    ]
    notes["ads"] = {"seconds": t_best, "bound": bound, "rate_hz": rate}
    print(json.dumps(notes["ads"]), flush=True)
    return lines


# ------------------------------------------------------------------------------ quantize


def four_core_network(seed=0, n=1024, c=64, n_cores=4, fan_in=12, fan_rec=36):
    """Each neuron gets ``fan_in`` input and ``fan_rec`` recurrent synapses; contiguous cores."""
    rng = np.random.default_rng(seed)
    w_in, w_rec = np.zeros((c, n)), np.zeros((n, n))
    for j in range(n):
        w_in[rng.choice(c, fan_in, replace=False), j] = rng.normal(0, 3, fan_in)
        w_rec[rng.choice(n, fan_rec, replace=False), j] = rng.lognormal(0, 0.6, fan_rec) * rng.choice([-1, 1], fan_rec)
    return w_in, w_rec, np.arange(n) * n_cores // n


def section_quantize(args, peers, notes):
    from spikefleet.hardware.dynapse2.quantize import quantize

    n = 1024 if not args.quick else 256
    w_in, w_rec, core = four_core_network(n=n, fan_rec=36 if not args.quick else 12)
    epochs = args.quant_epochs
    key = jax.random.PRNGKey(0)
    data = Path(tempfile.mkdtemp(prefix="sf-bench-")) / "quant.npz"
    np.savez(data, w_in=w_in, w_rec=w_rec, core=core, n_cores=4, i_scale=1e-8, epochs=epochs)

    def alt():
        return quantize(w_in, w_rec, core, key=key)

    def ae():
        return quantize(w_in, w_rec, core, method="autoencoder", key=key, fixed_epochs=epochs, chunk_epochs=epochs)

    jobs = {}
    for name, fn in (("alternating", alt), ("autoencoder", ae)):
        start = time.perf_counter()
        q = fn()
        jobs[name] = (lambda fn=fn: (lambda s: (fn(), time.perf_counter() - s)[1])(time.perf_counter()),
                      time.perf_counter() - start)
        if name == "alternating":
            errs = q.errors(w_in, w_rec)
    peer_note = ""
    if not args.no_peers:
        r = peers.ask({"cmd": "setup", "peer": "rockpool-quantize", "mode": "fwd", "data": str(data)}, timeout=1800)
        if "error" in r:
            peer_note = f" (Rockpool: {r['error']})"
        else:
            jobs["rockpool"] = (lambda: peers.ask({"cmd": "run", "peer": "rockpool-quantize"}, timeout=1800).get("seconds"), r["warmup_s"])
    best = _interleave(jobs, max(1, min(args.repeats, 2)), args.slow_s)
    rp = best.get("rockpool")
    lines = [
        "## DYNAP-SE2 weight quantisation",
        "",
        f"Work: a 4-core network, {w_in.shape[0]} inputs → {n} neurons, {12} input + {w_rec.astype(bool).sum(0).max()} "
        "recurrent synapses per neuron; per core 4 base currents + 4-bit masks + signs. spikefleet's default "
        "`alternating` method (to convergence) and its `autoencoder` method (the reference algorithm) at a fixed "
        f"{epochs} epochs; peer: Rockpool's `autoencoder_quantization` at the same fixed {epochs} epochs, same "
        "weights.",
        "",
        "| work | seconds | vs Rockpool autoencoder | load |",
        "|---|---:|---:|---:|",
        f"| spikefleet alternating (loss {errs['loss']:.2e}, rel. Frobenius error {errs['rel_fro']:.3f}) | "
        f"{best['alternating']:.2f} | {_fmt(_ratio(rp, best['alternating']), 2)} | {load():.1f} |",
        f"| spikefleet autoencoder, {epochs} epochs | {best['autoencoder']:.2f} | "
        f"{_fmt(_ratio(rp, best['autoencoder']), 2)} | {load():.1f} |",
        f"| Rockpool autoencoder_quantization, {epochs} epochs{peer_note} | {_fmt(rp, 2)} | 1 | {load():.1f} |",
    ]
    notes["quantize"] = best
    print(json.dumps(best), flush=True)
    return lines


# ---------------------------------------------------------------------------------- main


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes, short sequences")
    parser.add_argument("--no-peers", action="store_true", help="skip Rockpool/snnTorch")
    parser.add_argument("--sections", default="simulate,fleet,ads,quantize")
    parser.add_argument("--sizes", default=None, help="comma-separated N (default 64,256,1024)")
    parser.add_argument("--batches", default=None, help="comma-separated B (default 1,32)")
    parser.add_argument("--steps", type=int, default=None, help="T (default 1000)")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per job (default 3)")
    parser.add_argument("--slow-s", type=float, default=8.0, help="jobs whose warm-up took longer are timed once")
    parser.add_argument("--peer-timeout", type=float, default=900.0)
    parser.add_argument("--peer-once-s", type=float, default=60.0,
                        help="a peer whose first call takes longer is not repeated (its first call is reported)")
    parser.add_argument("--chips", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    args = parser.parse_args(argv)
    q = args.quick
    args.sizes = [int(s) for s in (args.sizes or ("64,256" if q else "64,256,1024")).split(",")]
    args.batches = [int(s) for s in (args.batches or ("1,32")).split(",")]
    args.steps = args.steps or (100 if q else 1000)
    args.repeats = args.repeats or (1 if q else 3)
    args.chips = args.chips or (32 if q else 1000)
    args.fleet_trials, args.fleet_chunk = (16, 1), 16
    args.loop_chips = 4 if q else 20
    args.fleet_repeats = 1 if q else 2
    args.ads_n, args.ads_steps = (128, 500) if q else (768, 5000)
    args.quant_epochs = 200 if q else 2000
    sections = args.sections.split(",")
    t0 = time.perf_counter()
    head = header("suite" + (" (--quick smoke run)" if q else ""),
                  "see each section; every ratio is against a baseline measured in this run")
    peers = Peers(not args.no_peers and bool({"simulate", "quantize"} & set(sections)), args.peer_timeout)
    notes = {}
    try:
        rates, peak = {}, (peak_rate(args, jax.random.PRNGKey(0)) if "simulate" in sections else None)
        body = []
        if "simulate" in sections:
            body += section_simulate(args, peers, rates, peak, notes) + [""]
        if "fleet" in sections:
            body += section_fleet(args, notes) + [""]
        if "ads" in sections:
            body += section_ads(args, notes) + [""]
        if "quantize" in sections:
            body += section_quantize(args, peers, notes) + [""]
    finally:
        peers.close()
    pv = peers.info if peers.enabled else {}
    lines = head[:-1] + [
        "- peers (.bench-venv): " + (", ".join(f"{k} {v}" for k, v in pv.items()) if pv else "not run"),
        (f"- dense FLOP rate: peak {peak / 1e9:.1f} GFLOP/s (one {2048 if not q else 512}² matmul); per simulated "
         "shape (T products [B,N]×[N,N] in a scan, timed interleaved with each case, best): "
         + ", ".join(f"N={n} B={b}: {r / 1e9:.1f}"
                                                               for (n, b), r in rates.items()) + " GFLOP/s")
        if rates else "- dense FLOP rate: not measured (simulate section not run)",
        f"- command: `python3 dev.py bench{' ' + ' '.join(sys.argv[1:]) if sys.argv[1:] else ''}`; "
        f"suite wall time {time.perf_counter() - t0:.0f} s; load average at end {load():.2f}",
        "",
    ] + body
    return publish(lines, args.out)


if __name__ == "__main__":
    sys.exit(main())
