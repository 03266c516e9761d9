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


if __name__ == "__main__":
    main()
