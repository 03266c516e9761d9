#!/usr/bin/python3
"""PyTorch reference fixtures for the task layers: EmbeddingBag, Conv1d (dilated), dot attention.

Run:   /usr/bin/python3 scripts/make_fixtures_tasks.py     (Debian python3-torch 1.13; also run by make_fixtures.py)
Writes test/fixtures/{embeddingbag,conv1d,attention,attention_additive}.json. Same conventions as make_fixtures.py: float64,
fixed seeds, numbers rounded to 12 significant digits, tensors flattened row-major. See test/fixtures/README.md.
"""
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import OUT_DIR, flat, write  # noqa: E402  (the fixture format: 12 significant digits, compact JSON)

torch.set_default_dtype(torch.float64)


def fnv1a(s):
    h = 0x811C9DC5
    for b in s.encode("utf-8"):
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def word_ngrams(word, minn=3, maxn=6):
    chars = list("#" + word + "#")
    out = []
    for i in range(len(chars)):
        for n in range(minn, maxn + 1):
            if i + n > len(chars):
                break
            if n == len(chars):
                continue
            out.append("".join(chars[i:i + n]))
    out.append("".join(chars))
    return out


def embeddingbag_fixture(seed=401):
    """Bags of hashed character n-grams of real words (one word per bag, plus an empty bag)."""
    torch.manual_seed(seed)
    num_buckets, dim = 97, 5
    words = ["where", "ёж", "Haus", "a", "", "колокол"]
    ids, offsets, grams = [], [], []
    for w in words:
        offsets.append(len(ids))
        g = word_ngrams(w) if w else []
        grams.append(g)
        ids += [fnv1a(x) % num_buckets for x in g]
    weight0 = torch.randn(num_buckets, dim)
    ids_t, off_t = torch.tensor(ids), torch.tensor(offsets)
    lens = [len(g) for g in grams]
    dout = torch.rand(len(words), dim) * 2 - 1
    obj = {"seed": seed, "num": num_buckets, "dim": dim, "words": words, "ngrams": grams, "ids": ids,
           "offsets": offsets, "weight": flat(weight0), "dout": flat(dout), "modes": {}}
    for mode in ("sum", "mean", "sqrt"):
        bag = nn.EmbeddingBag(num_buckets, dim, mode="mean" if mode == "mean" else "sum")
        with torch.no_grad():
            bag.weight.copy_(weight0)
        psw = None
        if mode == "sqrt":
            psw = torch.tensor([1.0 / math.sqrt(n) for n in lens for _ in range(n)])
        out = bag(ids_t, off_t, per_sample_weights=psw)
        (out * dout).sum().backward()
        obj["modes"][mode] = {"out": flat(out), "grad_weight": flat(bag.weight.grad)}
    write("embeddingbag.json", obj)


def conv1d_fixture(seed=402):
    """nn.Conv1d with dilation; symmetric padding and causal (left) padding. PyTorch is [B, C, T]."""
    torch.manual_seed(seed)
    cases = []
    for (cin, cout, k, d, pad, T, B) in [(3, 4, 3, 2, 0, 9, 2), (3, 4, 3, 2, "causal", 7, 2), (2, 3, 2, 3, 3, 6, 3), (4, 2, 5, 1, 2, 8, 2)]:
        conv = nn.Conv1d(cin, cout, k, dilation=d, padding=0 if pad == "causal" else pad)
        x = torch.randn(B, cin, T, requires_grad=True)
        xin = F.pad(x, (d * (k - 1), 0)) if pad == "causal" else x
        y = conv(xin)
        dy = torch.rand(*y.shape) * 2 - 1
        (y * dy).sum().backward()
        tm = lambda t: t.permute(2, 0, 1)  # [B, C, T] -> time-major [T, B, C]
        cases.append({"inChannels": cin, "outChannels": cout, "kernelSize": k, "dilation": d, "padding": pad,
                      "T": T, "B": B, "Tout": y.shape[2],
                      "weight": {"shape": list(conv.weight.shape), "data": flat(conv.weight)}, "bias": flat(conv.bias),
                      "x": flat(tm(x)), "y": flat(tm(y)), "dy": flat(tm(dy)),
                      "grad_weight": flat(conv.weight.grad), "grad_bias": flat(conv.bias.grad), "dx": flat(tm(x.grad))})
    write("conv1d.json", {"seed": seed, "layout": "time-major [T, B, C]", "cases": cases})


def attention_fixture(seed=403):
    """Luong dot attention with source lengths (masked), hand-written with bmm."""
    torch.manual_seed(seed)
    T, S, B, H = 4, 5, 3, 6
    lens = [5, 3, 1]
    q = torch.randn(B, T, H, requires_grad=True)
    k = torch.randn(B, S, H, requires_grad=True)
    scores = torch.bmm(q, k.transpose(1, 2))
    mask = torch.arange(S)[None, None, :] >= torch.tensor(lens)[:, None, None]
    w = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
    ctx = torch.bmm(w, k)
    dctx = torch.rand(B, T, H) * 2 - 1
    (ctx * dctx).sum().backward()
    tm = lambda t: t.transpose(0, 1)  # [B, T, H] -> [T, B, H]
    write("attention.json", {"seed": seed, "T": T, "S": S, "B": B, "H": H, "srcLen": lens,
                             "q": flat(tm(q)), "k": flat(tm(k)), "weights": flat(w), "context": flat(tm(ctx)),
                             "dcontext": flat(tm(dctx)), "dq": flat(tm(q.grad)), "dk": flat(tm(k.grad))})


def additive_attention_fixture(seed=404):
    """Bahdanau additive attention with source lengths (masked), hand-written."""
    torch.manual_seed(seed)
    T, S, B, H, A = 3, 4, 2, 5, 6
    lens = [4, 2]
    q = torch.randn(B, T, H, requires_grad=True)
    k = torch.randn(B, S, H, requires_grad=True)
    wq = nn.Linear(H, A, bias=False)
    wk = nn.Linear(H, A, bias=False)
    v = nn.Linear(A, 1, bias=False)
    feats = torch.tanh(wq(q)[:, :, None, :] + wk(k)[:, None, :, :])  # [B, T, S, A]
    scores = v(feats).squeeze(-1)  # [B, T, S]
    mask = torch.arange(S)[None, None, :] >= torch.tensor(lens)[:, None, None]
    w = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
    ctx = torch.bmm(w, k)
    dctx = torch.rand(B, T, H) * 2 - 1
    (ctx * dctx).sum().backward()
    tm = lambda t: t.transpose(0, 1)
    write("attention_additive.json", {
        "seed": seed, "T": T, "S": S, "B": B, "H": H, "A": A, "srcLen": lens,
        "params": {"query.weight": flat(wq.weight), "key.weight": flat(wk.weight), "v.weight": flat(v.weight)},
        "q": flat(tm(q)), "k": flat(tm(k)), "weights": flat(w), "context": flat(tm(ctx)), "dcontext": flat(tm(dctx)),
        "dq": flat(tm(q.grad)), "dk": flat(tm(k.grad)),
        "grads": {"query.weight": flat(wq.weight.grad), "key.weight": flat(wk.weight.grad), "v.weight": flat(v.weight.grad)}})


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    print("torch", torch.__version__, file=sys.stderr)
    embeddingbag_fixture()
    conv1d_fixture()
    attention_fixture()
    additive_attention_fixture()


if __name__ == "__main__":
    main()
