#!/usr/bin/python3
"""PyTorch reference cases for rnnkit's recurrent layer features (issue: layers and normalization).

Run with Debian's torch:  /usr/bin/python3 scripts/make_fixtures_layers.py
Writes test/fixtures/layers_<cell>_<variant>.json (computed in float64).

PyTorch has bidirectional layers built in (nn.LSTM/GRU/RNN, bidirectional=True): those cases use it.
It has no dilated or strided recurrent layers, no layer norm or recurrent batch norm inside cells, so those
are written here by hand in PyTorch, step by step, exactly as rnnkit defines them:

  stride s: the layer runs on steps 0, s, 2s, ... of the layer below.
  dilation d: the state at step t comes from step t-d; a time-major [T, B, N] tensor viewed as
      [T/d, d*B, N] holds the d interleaved sub-sequences as rows, run as an ordinary layer.
  LSTM:  gates = N_x(x W_ih^T) + N_h(h W_hh^T) + b_ih + b_hh;  c' = f c + i g;  h' = o tanh(N_c(c'))
  GRU:   xp = N_x(x W_ih^T) + b_ih;  hp = N_h(h W_hh^T) + b_hh;  r, z, n as in PyTorch
  RNN:   h' = tanh(N_x(x W_ih^T) + N_h(h W_hh^T) + b_ih + b_hh)
  N = layer norm (per row, eps 1e-5) or batch norm (per step, batch statistics, biased variance, eps 1e-5).
  weight norm: torch.nn.utils.weight_norm(dim=0) on weight_ih and weight_hh (names *_g, *_v).

State layout: per layer and direction, a block [d*B, H]; without dilation this is PyTorch's [L*D, B, H].
The schema is that of test/fixtures/rnn_*.json plus: bidirectional, dilation, stride, norm.
Loss = sum(out*dout) + sum(hN*dhN) (+ sum(cN*dcN)).
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures')
G = {'lstm': 4, 'gru': 3, 'rnn_tanh': 1}


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import flat  # noqa: E402  (12 significant digits, as every fixture)


def normalize(kind, v, gamma, beta):
    if kind == 'layer':
        return F.layer_norm(v, (v.shape[-1],), gamma, beta, eps=1e-5)
    return F.batch_norm(v, None, None, gamma, beta, training=True, eps=1e-5)


def direction(cell, x, h0, c0, p, norm, reverse):
    """One direction of one layer over x [T, R, I]; returns outputs [T, R, H], hN, cN."""
    wih, whh, bih, bhh = p['wih'], p['whh'], p['bih'], p['bhh']
    T = x.shape[0]
    xp = x @ wih.t()
    nx = (lambda v: normalize(norm, v, p['gx'], p['bx'])) if norm else (lambda v: v)
    nh = (lambda v: normalize(norm, v, p['gh'], p['bh'])) if norm else (lambda v: v)
    nc = (lambda v: normalize(norm, v, p['gc'], p['bc'])) if norm and cell == 'lstm' else (lambda v: v)
    h, c = h0, c0
    outs = [None] * T
    for t in (reversed(range(T)) if reverse else range(T)):
        if cell == 'lstm':
            a = nx(xp[t]) + nh(h @ whh.t()) + bih + bhh
            i, f, g, o = a.chunk(4, 1)
            i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
            c = f * c + i * g
            h = o * torch.tanh(nc(c))
        elif cell == 'gru':
            xr, xz, xn = (nx(xp[t]) + bih).chunk(3, 1)
            hr, hz, hn = (nh(h @ whh.t()) + bhh).chunk(3, 1)
            r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
            n = torch.tanh(xn + r * hn)
            h = (1 - z) * n + z * h
        else:
            h = torch.tanh(nx(xp[t]) + nh(h @ whh.t()) + bih + bhh)
        outs[t] = h
    return torch.stack(outs), h, c


def stack(cell, x, h0, c0, layers, D, H, dilation, stride, norm):
    """The whole stack; layers[k][j] = parameter dict of layer k, direction j."""
    B = x.shape[1]
    hN, cN, off = [], [], 0
    inp = x
    for k, dirs in enumerate(layers):
        d, s = dilation[k], stride[k]
        inp = inp[::s]
        Tk = inp.shape[0]
        v = inp.reshape(Tk // d, d * B, inp.shape[2])
        outs = []
        for j, p in enumerate(dirs):
            n = d * B * H
            hb = h0[off:off + n].reshape(d * B, H)
            cb = c0[off:off + n].reshape(d * B, H) if c0 is not None else None
            o, h, c = direction(cell, v, hb, cb, p, norm, j == 1)
            outs.append(o.reshape(Tk, B, H))
            hN.append(h.reshape(-1))
            if c is not None:
                cN.append(c.reshape(-1))
            off += n
        inp = torch.cat(outs, 2) if D == 2 else outs[0]
    return inp, torch.cat(hN), (torch.cat(cN) if cN else None)


def make(cell, name, I=3, H=5, B=3, T=4, L=1, bidir=False, dilation=None, stride=None, norm=None, seed=0):
    torch.manual_seed(seed)
    D = 2 if bidir else 1
    dilation = dilation or [1] * L
    stride = stride or [1] * L
    gc = G[cell] * H
    stdv = 1 / H ** 0.5
    layers, named = [], {}
    for k in range(L):
        dirs = []
        for j in range(D):
            suf = 'l%d%s' % (k, '_reverse' if j else '')
            inp = I if k == 0 else D * H
            p = {'wih': torch.empty(gc, inp).uniform_(-stdv, stdv), 'whh': torch.empty(gc, H).uniform_(-stdv, stdv),
                 'bih': torch.empty(gc).uniform_(-stdv, stdv), 'bhh': torch.empty(gc).uniform_(-stdv, stdv)}
            if norm == 'weight':
                for w, nm in (('wih', 'weight_ih_'), ('whh', 'weight_hh_')):
                    v = p[w].clone()
                    g = v.norm(dim=1, keepdim=True) * (1 + 0.3 * torch.rand(v.shape[0], 1))
                    p[w + '_v'], p[w + '_g'] = v, g
                    named[nm + suf + '_v'], named[nm + suf + '_g'] = v, g
            else:
                named['weight_ih_' + suf], named['weight_hh_' + suf] = p['wih'], p['whh']
            named['bias_ih_' + suf], named['bias_hh_' + suf] = p['bih'], p['bhh']
            if norm in ('layer', 'batch'):
                g0 = 1.0 if norm == 'layer' else 0.1
                sites = [('x', 'ih', gc), ('h', 'hh', gc)] + ([('c', 'c', H)] if cell == 'lstm' else [])
                for site, nm, n in sites:
                    p['g' + site] = g0 + 0.3 * torch.rand(n)
                    p['b' + site] = 0.2 * torch.randn(n)
                    named['norm_%s_weight_%s' % (nm, suf)] = p['g' + site]
                    named['norm_%s_bias_%s' % (nm, suf)] = p['b' + site]
            dirs.append(p)
        layers.append(dirs)
    for t in named.values():
        t.requires_grad_(True)
    S = sum(dilation) * D * B * H
    x = torch.randn(T, B, I, requires_grad=True)
    h0 = (0.5 * torch.randn(S)).requires_grad_(True)
    c0 = (0.5 * torch.randn(S)).requires_grad_(True) if cell == 'lstm' else None

    def weights(p):
        q = dict(p)
        if norm == 'weight':
            for w in ('wih', 'whh'):
                v, g = p[w + '_v'], p[w + '_g']
                q[w] = g * v / v.norm(dim=1, keepdim=True)  # torch.nn.utils.weight_norm, dim=0
        return q

    ws = [[weights(p) for p in dirs] for dirs in layers]
    out, hN, cN = stack(cell, x, h0, c0, ws, D, H, dilation, stride, norm if norm in ('layer', 'batch') else None)
    if norm is None and all(d == 1 for d in dilation) and all(s == 1 for s in stride):
        # the hand-written stack is PyTorch's built-in layer
        mod = {'lstm': torch.nn.LSTM, 'gru': torch.nn.GRU, 'rnn_tanh': torch.nn.RNN}[cell](I, H, L, bidirectional=bidir)
        with torch.no_grad():
            for nm, t in named.items():
                getattr(mod, nm).copy_(t)
        hs = h0.reshape(L * D, B, H)
        ref = mod(x, (hs, c0.reshape(L * D, B, H))) if cell == 'lstm' else mod(x, hs)
        assert torch.allclose(ref[0], out, atol=1e-12), name
    dout = torch.empty_like(out).uniform_(-1, 1)
    dhN = torch.empty_like(hN).uniform_(-1, 1)
    loss = (out * dout).sum() + (hN * dhN).sum()
    fx = {'cell': cell, 'inputSize': I, 'hiddenSize': H, 'numLayers': L, 'bidirectional': bidir, 'dilation': dilation,
          'stride': stride, 'norm': norm or 'none', 'T': T, 'B': B, 'outT': out.shape[0],
          'params': {k: {'shape': list(v.shape), 'data': flat(v)} for k, v in named.items()},
          'x': flat(x), 'h0': flat(h0), 'out': flat(out), 'hN': flat(hN), 'dout': flat(dout), 'dhN': flat(dhN)}
    if cell == 'lstm':
        dcN = torch.empty_like(cN).uniform_(-1, 1)
        loss = loss + (cN * dcN).sum()
        fx.update({'c0': flat(c0), 'cN': flat(cN), 'dcN': flat(dcN)})
    loss.backward()
    fx['loss'] = float(loss)
    fx['grads'] = {k: flat(v.grad) for k, v in named.items()}
    fx['dx'], fx['dh0'] = flat(x.grad), flat(h0.grad)
    if cell == 'lstm':
        fx['dc0'] = flat(c0.grad)
    with open(os.path.join(OUT, 'layers_%s_%s.json' % (cell, name)), 'w') as f:
        json.dump(fx, f, separators=(',', ':'))


if __name__ == '__main__':
    for i, cell in enumerate(['lstm', 'gru', 'rnn_tanh']):
        make(cell, 'bidir_l2', L=2, bidir=True, seed=10 + i)
        make(cell, 'dilated', L=2, dilation=[1, 2], T=6, seed=20 + i)
        make(cell, 'strided', L=2, stride=[2, 1], dilation=[1, 2], T=7, seed=30 + i)
        # normalization divides by a standard deviation: 8 inputs and 6 units keep float32 rounding small
        make(cell, 'layernorm', norm='layer', I=8, H=6, seed=40 + i)
        make(cell, 'batchnorm', norm='batch', I=8, H=6, B=5, seed=50 + i)
        make(cell, 'weightnorm', norm='weight', seed=60 + i)
        make(cell, 'layernorm_bidir_l2', norm='layer', I=8, H=6, L=2, bidir=True, seed=70 + i)
        make(cell, 'batchnorm_l2', norm='batch', I=8, H=6, L=2, B=5, seed=80 + i)
        make(cell, 'weightnorm_l2_dilated', norm='weight', L=2, dilation=[2, 1], T=4, seed=90 + i)
    print('wrote layers_*.json to', os.path.normpath(OUT))
