#!/usr/bin/python3
"""PyTorch side of rnnkit's standard benchmark workload (/work/shared/bench/WORKLOAD.md).

Byte-level LM: Embedding(256, 64) -> LSTM/GRU/RNN(64, H, L) -> Linear(H, 256); mean cross entropy over B*T,
truncated BPTT with the hidden state carried across batches (detached), Adam lr 2e-3,
clip_grad_norm_(5). Training throughput = B*T*steps/seconds after 3 warm-up steps, over >= 20 steps and
>= --seconds. `sample`: M-lstm model, batch 1, 500 tokens, temperature 0.8, one step at a time with carried
state (tokens/s).

Run with Debian's torch:   /usr/bin/python3 bench/torch_bench.py --config S-lstm --threads 1
Prefer bench/torch_bench.sh, which sets OMP_WAIT_POLICY=passive (without it 2 threads run ~3.7x slower).

  --config NAME|all      S-lstm S-gru S-rnn M-lstm M-gru sample (comma-separated list or `all`)
  --threads N[,N...]     torch.set_num_threads and openblas_set_num_threads; a list runs every config at
                         each count (default 1)
  --seconds S            minimum timed seconds per training config (default 15)
  --data FILE            training bytes (first --data-bytes, default 1 MB); random bytes if absent
  --json                 one JSON line per measurement:
                           {"config": "M-lstm", "threads": 2, "chars_per_s": ..., "impl": "pytorch", ...}
                           {"config": "sample", "threads": 1, "tokens_per_s": ..., "impl": "pytorch", ...}
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

V, E = 256, 64
CONFIGS = {
    "S-lstm": ("lstm", 1, 128, 32, 64),
    "S-gru": ("gru", 1, 128, 32, 64),
    "S-rnn": ("rnn_tanh", 1, 128, 32, 64),
    "M-lstm": ("lstm", 2, 512, 64, 128),
    "M-gru": ("gru", 2, 512, 64, 128),
}
ORDER = ["S-lstm", "S-gru", "S-rnn", "M-lstm", "M-gru", "sample"]
DEFAULT_DATA = "/work/shared/data/wikipedia/enwik8/enwik8_bytes_0_3405276.xml"
WARMUP = 3
MIN_STEPS = 20


class CharLM(nn.Module):
    def __init__(self, cell, L, H):
        super().__init__()
        self.cell = cell
        self.encoder = nn.Embedding(V, E)
        if cell == "lstm":
            self.rnn = nn.LSTM(E, H, L)
        elif cell == "gru":
            self.rnn = nn.GRU(E, H, L)
        else:
            self.rnn = nn.RNN(E, H, L, nonlinearity="tanh")
        self.decoder = nn.Linear(H, V)
        self.L, self.H = L, H

    def init_hidden(self, B):
        h = torch.zeros(self.L, B, self.H)
        return (h, torch.zeros_like(h)) if self.cell == "lstm" else h

    def forward(self, ids, hidden):
        out, hidden = self.rnn(self.encoder(ids), hidden)
        return self.decoder(out), hidden


def openblas_lib():
    """The OpenBLAS already loaded by torch (Debian: openblas-pthread), or None."""
    import ctypes
    try:
        with open("/proc/self/maps") as f:
            paths = {l.split()[-1] for l in f if "libopenblas" in l}
        for path in sorted(paths):
            lib = ctypes.CDLL(path)
            if hasattr(lib, "openblas_set_num_threads"):
                return lib
    except OSError:
        pass
    return None


def set_threads(n, blas_lib):
    """torch.set_num_threads only sizes ATen's OpenMP pool; OpenBLAS (pthread build) keeps its own pool,
    which defaults to all cores, so set it too or a "1 thread" run really uses 2 cores for its GEMMs."""
    torch.set_num_threads(n)
    if blas_lib is not None:
        blas_lib.openblas_set_num_threads(n)
        return int(blas_lib.openblas_get_num_threads())
    return None


def detach(hidden):
    return tuple(h.detach() for h in hidden) if isinstance(hidden, tuple) else hidden.detach()


def load_data(path, nbytes, seed):
    if path and os.path.exists(path):
        with open(path, "rb") as f:
            buf = f.read(nbytes)
        return torch.frombuffer(bytearray(buf), dtype=torch.uint8).long(), path
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, V, (nbytes,), generator=g), "random"


def batchify(data, B):
    n = data.numel() // B
    return data[: n * B].view(B, n).t().contiguous()  # [n, B]: B contiguous streams


def bench_train(name, data, seconds, seed):
    cell, L, H, B, T = CONFIGS[name]
    torch.manual_seed(seed)
    model = CharLM(cell, L, H)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    streams = batchify(data, B)
    n = streams.size(0)
    hidden = model.init_hidden(B)
    pos = 0

    def step(pos, hidden):
        if pos + T + 1 > n:
            pos = 0
            hidden = model.init_hidden(B)
        x = streams[pos: pos + T]
        y = streams[pos + 1: pos + 1 + T]
        hidden = detach(hidden)
        opt.zero_grad(set_to_none=True)
        logits, hidden = model(x, hidden)
        loss = F.cross_entropy(logits.view(-1, V), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        return pos + T, hidden, loss

    for _ in range(WARMUP):
        pos, hidden, loss = step(pos, hidden)
    steps = 0
    t0 = time.perf_counter()
    c0 = time.process_time()
    while True:
        pos, hidden, loss = step(pos, hidden)
        steps += 1
        el = time.perf_counter() - t0
        if steps >= MIN_STEPS and el >= seconds:
            break
    cpu = time.process_time() - c0
    return {"config": name, "threads": torch.get_num_threads(), "chars_per_s": round(B * T * steps / el, 1),
            "impl": "pytorch", "steps": steps, "seconds": round(el, 3), "cpu_seconds": round(cpu, 3),
            "loss": round(loss.item(), 4), "L": L, "H": H, "B": B, "T": T}


@torch.no_grad()
def bench_sample(seed, ntok=500, temperature=0.8):
    cell, L, H, _, _ = CONFIGS["M-lstm"]
    torch.manual_seed(seed)
    model = CharLM(cell, L, H).eval()
    g = torch.Generator().manual_seed(seed)

    def run(n):
        hidden = model.init_hidden(1)
        tok = torch.tensor([[ord("\n")]])
        out = []
        for _ in range(n):
            logits, hidden = model(tok, hidden)
            probs = F.softmax(logits.view(-1) / temperature, dim=0)
            nxt = torch.multinomial(probs, 1, generator=g)
            out.append(int(nxt))
            tok = nxt.view(1, 1)
        return out

    run(20)  # warm-up
    t0 = time.perf_counter()
    c0 = time.process_time()
    run(ntok)
    el = time.perf_counter() - t0
    cpu = time.process_time() - c0
    return {"config": "sample", "threads": torch.get_num_threads(), "tokens_per_s": round(ntok / el, 1),
            "impl": "pytorch", "tokens": ntok, "temperature": temperature, "seconds": round(el, 3),
            "cpu_seconds": round(cpu, 3), "model": "M-lstm", "B": 1}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="all")
    ap.add_argument("--threads", default="1")
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--data-bytes", type=int, default=1 << 20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    names = ORDER if args.config == "all" else args.config.split(",")
    for nm in names:
        if nm not in CONFIGS and nm != "sample":
            ap.error("unknown config %r (choose from %s or all)" % (nm, ", ".join(ORDER)))
    threads = [int(t) for t in args.threads.split(",")]
    data, src = load_data(args.data, args.data_bytes, args.seed)
    if not args.json:
        print("torch %s, OMP_WAIT_POLICY=%s, data=%s (%d bytes)"
              % (torch.__version__, os.environ.get("OMP_WAIT_POLICY", "(unset)"), src, data.numel()),
              file=sys.stderr)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    blas = openblas_lib()
    for nt in threads:
        blas_threads = set_threads(nt, blas)
        for nm in names:
            r = bench_sample(args.seed) if nm == "sample" else bench_train(nm, data, args.seconds, args.seed)
            r["blas_threads"] = blas_threads
            r["omp_wait_policy"] = os.environ.get("OMP_WAIT_POLICY")
            # share of the requested cores this process actually got; well under 1 at threads=1 means the
            # shared machine was busy and the figure is low
            r["cpu_util"] = round(r["cpu_seconds"] / (r["seconds"] * nt), 3)
            if args.json:
                print(json.dumps(r), flush=True)
            elif nm == "sample":
                print("%-7s threads=%d  %10.1f tokens/s  (%d tokens in %.2f s, cpu %.2f s)"
                      % (nm, nt, r["tokens_per_s"], r["tokens"], r["seconds"], r["cpu_seconds"]), flush=True)
            else:
                print("%-7s threads=%d  %10.1f chars/s   (%d steps in %.2f s, cpu %.2f s, loss %.3f)"
                      % (nm, nt, r["chars_per_s"], r["steps"], r["seconds"], r["cpu_seconds"], r["loss"]),
                      flush=True)


if __name__ == "__main__":
    main()
