#!/usr/bin/python3
"""Generate PyTorch reference fixtures for rnnkit's gradient/optimizer tests.

Run:   /usr/bin/python3 scripts/make_fixtures.py      (Debian python3-torch 1.13; torch is NOT a package dep)
Writes test/fixtures/*.json (committed). Deterministic: every fixture seeds torch with its own fixed seed.
All computation is float64; values are written as JSON numbers rounded to 12 significant digits.
All tensors are flattened row-major (C order) into plain number arrays.

Schemas
-------
A. test/fixtures/rnn_<cell>_l<L>[_big].json   cell in lstm | gru | rnn_tanh | rnn_relu
   torch.nn.LSTM / GRU / RNN(nonlinearity=tanh|relu), batch_first=False, dropout 0, bias=True,
   default init U(-1/sqrt(H), 1/sqrt(H)) after torch.manual_seed(seed).
   {"cell", "inputSize": I, "hiddenSize": H, "numLayers": L, "T", "B", "seed",
    "params": {"weight_ih_l0": {"shape": [G*H, I], "data": [...]}, "weight_hh_l0": {"shape": [G*H, H]},
               "bias_ih_l0": {"shape": [G*H]}, "bias_hh_l0": {"shape": [G*H]}, ... _l1 (input size H) ...},
        G = 4 (lstm, gate rows i,f,g,o), 3 (gru, gate rows r,z,n), 1 (rnn)
    "x": [T*B*I], "h0": [L*B*H], "c0": [L*B*H] (lstm only),
    "out": [T*B*H] (top layer), "hN": [L*B*H], "cN": [L*B*H] (lstm only),
    "dout": [T*B*H], "dhN": [L*B*H], "dcN": [L*B*H] (lstm only)   -- upstream grads ~ U(-1,1)
    "loss": sum(out*dout) + sum(hN*dhN) [+ sum(cN*dcN)],
    "grads": {same keys as params: flat arrays}, "dx": [T*B*I], "dh0": [L*B*H], "dc0": [L*B*H] (lstm only)}
   x ~ N(0,1); h0, c0 ~ U(-1,1) (non-zero).

B. test/fixtures/charlm_<cell>_l<L>.json   (pytorch/examples word_language_model RNNModel without dropout)
   encoder = nn.Embedding(V, E); rnn = nn.LSTM/GRU/RNN(E, H, L); decoder = nn.Linear(H, V)
   Init: torch defaults (Embedding ~ N(0,1), recurrent U(-1/sqrt(H), 1/sqrt(H)), Linear default).
   {"cell", "V", "E", "H", "L", "T", "B", "seed",
    "params": {"encoder.weight": {"shape": [V, E], "data"}, "rnn.weight_ih_l0": ..., ...,
               "decoder.weight": {"shape": [V, H]}, "decoder.bias": {"shape": [V]}},
    "ids": [T*B] ints, "targets": [T*B] ints, "h0": [L*B*H], "c0": [L*B*H] (lstm only),
    "logits": [T*B*V], "loss": F.cross_entropy(logits.view(-1,V), targets.view(-1)) (mean over T*B),
    "hN": [L*B*H], "cN": [L*B*H] (lstm only), "grads": {same keys as params}}
   Only `loss` is differentiated (hN/cN do not contribute).

C. test/fixtures/optim.json
   {"params": [{"name": "w", "shape": [3,4], "data": [...]}, {"name": "b", "shape": [5], "data": [...]}],
    "grads":  [[12 numbers], [5 numbers]],         -- fixed gradients (global L2 norm > 1)
    "clip":   {"max_norm": 1.0, "norm_type": 2, "total_norm": n,
               "grads": [[...], [...]]},           -- grads after torch.nn.utils.clip_grad_norm_ (in place)
               (torch scales by max_norm / (total_norm + 1e-6) when that factor < 1)
    "clip_noop": {"max_norm": 100.0, "total_norm": n, "grads": [...]}   -- norm below max: unchanged
    "adam":   {"lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0,
               "steps": [[p0 after step 1, p1 after step 1], [.. step 2], [.. step 3]]},
              the same (unclipped) `grads` are used at every step; torch.optim.Adam:
                m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2;
                p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
    "sgd":    {"lr": 0.1, "momentum": 0.9, "dampening": 0, "nesterov": false,
               "steps": [...]}                     -- buf = g (t=1), buf = mu*buf + g (t>1); p -= lr*buf
   }
"""
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures")


def num(v):
    return float("%.12g" % v)


def flat(t):
    return [num(v) for v in t.detach().contiguous().view(-1).tolist()]


def shaped(t):
    return {"shape": list(t.shape), "data": flat(t)}


def write(name, obj):
    path = os.path.join(OUT_DIR, name)
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")
    print("%-28s %7.1f KB" % (name, os.path.getsize(path) / 1024.0))


def make_rnn(cell, I, H, L):
    if cell == "lstm":
        return nn.LSTM(I, H, L, dropout=0.0, batch_first=False)
    if cell == "gru":
        return nn.GRU(I, H, L, dropout=0.0, batch_first=False)
    if cell == "rnn_tanh":
        return nn.RNN(I, H, L, nonlinearity="tanh", dropout=0.0, batch_first=False)
    if cell == "rnn_relu":
        return nn.RNN(I, H, L, nonlinearity="relu", dropout=0.0, batch_first=False)
    raise ValueError(cell)


def uniform(shape):
    return torch.rand(*shape) * 2.0 - 1.0


def rnn_fixture(cell, I, H, L, B, T, seed, variant=""):
    torch.manual_seed(seed)
    model = make_rnn(cell, I, H, L).double()
    lstm = cell == "lstm"
    x = torch.randn(T, B, I).requires_grad_(True)
    h0 = uniform((L, B, H)).requires_grad_(True)
    c0 = uniform((L, B, H)).requires_grad_(True) if lstm else None
    if lstm:
        out, (hN, cN) = model(x, (h0, c0))
    else:
        out, hN = model(x, h0)
        cN = None
    dout = uniform(out.shape)
    dhN = uniform(hN.shape)
    loss = (out * dout).sum() + (hN * dhN).sum()
    dcN = None
    if lstm:
        dcN = uniform(cN.shape)
        loss = loss + (cN * dcN).sum()
    model.zero_grad()
    loss.backward()
    names = [n for n, _ in model.named_parameters()]
    params = dict(model.named_parameters())
    obj = {
        "cell": cell, "inputSize": I, "hiddenSize": H, "numLayers": L, "T": T, "B": B, "seed": seed,
        "params": {n: shaped(params[n]) for n in names},
        "x": flat(x), "h0": flat(h0),
    }
    if lstm:
        obj["c0"] = flat(c0)
    obj["out"] = flat(out)
    obj["hN"] = flat(hN)
    if lstm:
        obj["cN"] = flat(cN)
    obj["dout"] = flat(dout)
    obj["dhN"] = flat(dhN)
    if lstm:
        obj["dcN"] = flat(dcN)
    obj["loss"] = num(loss.item())
    obj["grads"] = {n: flat(params[n].grad) for n in names}
    obj["dx"] = flat(x.grad)
    obj["dh0"] = flat(h0.grad)
    if lstm:
        obj["dc0"] = flat(c0.grad)
    name = "rnn_%s_l%d%s.json" % (cell, L, ("_" + variant) if variant else "")
    write(name, obj)


class RNNModel(nn.Module):
    """pytorch/examples word_language_model RNNModel, dropout removed, no weight tying."""

    def __init__(self, cell, V, E, H, L):
        super().__init__()
        self.encoder = nn.Embedding(V, E)
        self.rnn = make_rnn(cell, E, H, L)
        self.decoder = nn.Linear(H, V)

    def forward(self, ids, hidden):
        emb = self.encoder(ids)
        out, hidden = self.rnn(emb, hidden)
        return self.decoder(out), hidden


def charlm_fixture(cell, L, seed, V=11, E=6, H=7, T=5, B=3):
    torch.manual_seed(seed)
    model = RNNModel(cell, V, E, H, L).double()
    lstm = cell == "lstm"
    ids = torch.randint(0, V, (T, B))
    targets = torch.randint(0, V, (T, B))
    h0 = uniform((L, B, H))
    c0 = uniform((L, B, H)) if lstm else None
    logits, hidden = model(ids, (h0, c0) if lstm else h0)
    loss = F.cross_entropy(logits.view(-1, V), targets.view(-1))
    model.zero_grad()
    loss.backward()
    names = [n for n, _ in model.named_parameters()]
    params = dict(model.named_parameters())
    obj = {
        "cell": cell, "V": V, "E": E, "H": H, "L": L, "T": T, "B": B, "seed": seed,
        "params": {n: shaped(params[n]) for n in names},
        "ids": ids.view(-1).tolist(), "targets": targets.view(-1).tolist(),
        "h0": flat(h0),
    }
    if lstm:
        obj["c0"] = flat(c0)
    obj["logits"] = flat(logits)
    obj["loss"] = num(loss.item())
    if lstm:
        obj["hN"] = flat(hidden[0])
        obj["cN"] = flat(hidden[1])
    else:
        obj["hN"] = flat(hidden)
    obj["grads"] = {n: flat(params[n].grad) for n in names}
    write("charlm_%s_l%d.json" % (cell, L), obj)


def optim_fixture(seed=1234):
    torch.manual_seed(seed)
    init = [("w", torch.randn(3, 4)), ("b", torch.randn(5))]
    grads = [torch.randn(3, 4) * 0.7, torch.randn(5) * 0.7]

    def fresh():
        ps = [p.clone().requires_grad_(True) for _, p in init]
        for p, g in zip(ps, grads):
            p.grad = g.clone()
        return ps

    obj = {
        "seed": seed,
        "params": [{"name": n, "shape": list(p.shape), "data": flat(p)} for n, p in init],
        "grads": [flat(g) for g in grads],
    }

    ps = fresh()
    total = torch.nn.utils.clip_grad_norm_(ps, max_norm=1.0, norm_type=2)
    assert total.item() > 1.0
    obj["clip"] = {"max_norm": 1.0, "norm_type": 2, "total_norm": num(total.item()),
                   "grads": [flat(p.grad) for p in ps]}
    ps = fresh()
    total = torch.nn.utils.clip_grad_norm_(ps, max_norm=100.0, norm_type=2)
    obj["clip_noop"] = {"max_norm": 100.0, "norm_type": 2, "total_norm": num(total.item()),
                        "grads": [flat(p.grad) for p in ps]}

    def run(opt_ctor, cfg):
        ps = fresh()
        opt = opt_ctor(ps)
        steps = []
        for _ in range(3):
            for p, g in zip(ps, grads):
                p.grad = g.clone()
            opt.step()
            steps.append([flat(p) for p in ps])
        cfg["steps"] = steps
        return cfg

    obj["adam"] = run(lambda ps: torch.optim.Adam(ps, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0),
                      {"lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0})
    obj["sgd"] = run(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0, nesterov=False),
                     {"lr": 0.1, "momentum": 0.9, "dampening": 0, "nesterov": False})
    write("optim.json", obj)



# ---------------------------------------------------------------------------------------------------------
# D. PyTorch interop: test/fixtures/torch_<rnn_type>_l<L>.safetensors + torch_interop.json + torch_text.txt
#
# A small word_language_model-style byte LM (V=256), trained briefly in float32 with Adam (dropout 0.1), saved
# as a safetensors file written by hand (8-byte little-endian header length, JSON header, raw float32 bytes),
# keys as in model.state_dict() (encoder.weight, rnn.weight_ih_l0, ..., decoder.weight, decoder.bias) and
# __metadata__ {"rnn_type": "LSTM"|"GRU"|"RNN_TANH"|"RNN_RELU", "vocab": "bytes"}.
# torch_interop.json: {"text": "torch_text.txt", "models": [{"file", "rnn_type", "E", "H", "L", "seed",
#   "bpc": PyTorch's bits per byte on the text (one stream from a zero state, every byte after the first
#   predicted; computed in float64 from the saved float32 weights), "bpc_float32": the same in float32,
#   "logits_head": float64 logits of the first 3 positions, [3*256]}]}
# `--check-export FILE` loads a safetensors file in that form (e.g. from `rnnkit export --format torch`) into
# PyTorch and prints {"bpc", "logits_head"} on torch_text.txt as JSON.

TORCH_TRAIN_TEXT = (
    "Anarchism is a political philosophy that advocates self-governed societies based on voluntary "
    "institutions. These are often described as stateless societies, although several authors have defined "
    "them more specifically as institutions based on non-hierarchical free associations. The word is "
    "composed from the word anarchy and the suffix -ism, themselves derived respectively from the Greek "
    "anarchos, meaning without rulers. Autism is a disorder of neural development characterized by impaired "
    "social interaction and communication, and by restricted and repetitive behavior. "
)
# The evaluation text: held-out English plus multi-byte UTF-8 and two bytes that are not UTF-8 at all
# (0xff, 0xc3 0x28), which the byte vocabulary takes as they are.
TORCH_EVAL_TEXT = (
    "The word anarchism is composed from the word anarchy and the suffix -ism. Anarchists advocate "
    "societies based on voluntary free associations; na\u00efve caf\u00e9 \u00fcber \u043c\u0438\u0440 "
    "\u2014 the state is described as harmful. "
).encode("utf-8") + b"\xff bad \xc3\x28 bytes. Autism is a disorder of neural development.\n"

TORCH_RNN_TYPES = {"LSTM": "lstm", "GRU": "gru", "RNN_TANH": "rnn_tanh", "RNN_RELU": "rnn_relu"}


class TorchCharLM(nn.Module):
    """pytorch/examples word_language_model RNNModel (no weight tying), float32, with dropout."""

    def __init__(self, rnn_type, V, E, H, L, dropout=0.0):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(V, E)
        self.rnn = make_rnn(TORCH_RNN_TYPES[rnn_type], E, H, L)
        self.decoder = nn.Linear(H, V)
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

    def forward(self, ids, hidden=None):
        emb = self.drop(self.encoder(ids))
        out, hidden = self.rnn(emb, hidden)
        return self.decoder(self.drop(out)), hidden


def write_safetensors(path, state, metadata):
    """The safetensors format by hand: u64 LE header length, JSON header, raw little-endian float32 data."""
    import struct
    header = {"__metadata__": metadata}
    blobs, off = [], 0
    for name, t in state.items():
        b = t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    import struct
    import numpy as np
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, e in header.items():
        assert e["dtype"] == "F32", (name, e["dtype"])
        a, b = e["data_offsets"]
        arr = np.frombuffer(raw[base + a:base + b], dtype="<f4").reshape(e["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out, meta


def torch_model_from_state(state, meta):
    rnn_type = meta["rnn_type"]
    V, E = state["encoder.weight"].shape
    H = state["rnn.weight_hh_l0"].shape[1]
    L = 0
    while ("rnn.weight_ih_l%d" % L) in state:
        L += 1
    model = TorchCharLM(rnn_type, V, E, H, L)
    model.load_state_dict(state)
    return model.eval()


def stream_bpc(model, data, dtype):
    """One stream from a zero state; every byte after the first predicted. Returns (bpc, logits [N-1, V])."""
    ids = torch.tensor(list(data), dtype=torch.long).view(-1, 1)
    with torch.no_grad():
        logits, _ = model.to(dtype)(ids[:-1])
        logits = logits.view(-1, logits.shape[-1])
        nats = F.cross_entropy(logits, ids[1:].view(-1), reduction="sum").item()
    return nats / (len(data) - 1) / math.log(2), logits


def torch_interop_fixture(rnn_type, L, seed, E=8, H=24, steps=300, T=32, B=8):
    import copy
    torch.manual_seed(seed)
    model = TorchCharLM(rnn_type, 256, E, H, L, dropout=0.1).float()
    data = torch.tensor(list(TORCH_TRAIN_TEXT.encode("utf-8")) * 4, dtype=torch.long)
    rows = len(data) // B
    stream = data[:rows * B].view(B, rows).t().contiguous()  # batchify: [rows, B]
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    hidden, pos = None, 0
    for _ in range(steps):
        if pos + T + 1 > rows:
            pos, hidden = 0, None
        x, y = stream[pos:pos + T], stream[pos + 1:pos + T + 1]
        pos += T
        if hidden is not None:
            hidden = tuple(h.detach() for h in hidden) if isinstance(hidden, tuple) else hidden.detach()
        logits, hidden = model(x, hidden)
        loss = F.cross_entropy(logits.view(-1, 256), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25 * 20)
        opt.step()
    model.eval()
    state = {k: v.detach().float().clone() for k, v in model.state_dict().items()}
    name = "torch_%s_l%d.safetensors" % (rnn_type.lower(), L)
    path = os.path.join(OUT_DIR, name)
    write_safetensors(path, state, {"rnn_type": rnn_type, "vocab": "bytes"})
    # Reload what was written (float32 values exactly) and evaluate in float64 and float32.
    st, meta = read_safetensors(path)
    ref = torch_model_from_state(st, meta)
    bpc64, logits64 = stream_bpc(copy.deepcopy(ref), TORCH_EVAL_TEXT, torch.float64)
    bpc32, _ = stream_bpc(copy.deepcopy(ref), TORCH_EVAL_TEXT, torch.float32)
    print("%-28s %7.1f KB  bpc %.6f (float32 %.6f)" % (name, os.path.getsize(path) / 1024.0, bpc64, bpc32))
    return {"file": name, "rnn_type": rnn_type, "E": E, "H": H, "L": L, "seed": seed, "trainSteps": steps,
            "bpc": num(bpc64), "bpc_float32": num(bpc32), "logits_head": flat(logits64[:3])}


def torch_interop_fixtures():
    with open(os.path.join(OUT_DIR, "torch_text.txt"), "wb") as f:
        f.write(TORCH_EVAL_TEXT)
    models = [
        torch_interop_fixture("LSTM", 2, seed=401),
        torch_interop_fixture("GRU", 1, seed=402),
        torch_interop_fixture("RNN_TANH", 1, seed=403),
        torch_interop_fixture("RNN_RELU", 1, seed=404),
    ]
    write("torch_interop.json", {"text": "torch_text.txt", "vocab": "bytes", "models": models})


def check_export(path):
    """Load a safetensors char LM (e.g. written by `rnnkit export --format torch`) and print its bpc on the text."""
    st, meta = read_safetensors(path)
    model = torch_model_from_state(st, meta)
    bpc, logits = stream_bpc(model, TORCH_EVAL_TEXT, torch.float64)
    print(json.dumps({"bpc": bpc, "logits_head": flat(logits[:3])}))


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    print("torch", torch.__version__, file=sys.stderr)
    cells = ["lstm", "gru", "rnn_tanh", "rnn_relu"]
    for ci, cell in enumerate(cells):
        for L in (1, 2):
            rnn_fixture(cell, I=5, H=7, L=L, B=3, T=5, seed=100 + 10 * ci + L)
        rnn_fixture(cell, I=16, H=24, L=1, B=4, T=6, seed=200 + ci, variant="big")
    charlm_fixture("lstm", 1, seed=301)
    charlm_fixture("lstm", 2, seed=302)
    charlm_fixture("gru", 1, seed=303)
    charlm_fixture("rnn_tanh", 1, seed=304)
    optim_fixture()
    torch_interop_fixtures()
    task_layer_fixtures()


def task_layer_fixtures():
    """EmbeddingBag, Conv1d, dot attention: see scripts/make_fixtures_tasks.py (schemas D-F of the fixtures README)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import make_fixtures_tasks
    make_fixtures_tasks.main()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check-export":
        check_export(sys.argv[2])
    elif len(sys.argv) == 2 and sys.argv[1] == "--torch-interop":
        os.makedirs(OUT_DIR, exist_ok=True)
        torch_interop_fixtures()
    else:
        main()
