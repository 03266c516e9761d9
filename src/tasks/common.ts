// Shared pieces of the five task shapes: the bundled sentences, splits, padding, the training loop with a
// time budget, metrics, and task checkpoints (safetensors with the config and vocabularies in metadata).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { Backend, Buf } from '../backend/backend.js';
import { packageRoot } from '../data/corpus.js';
import { CharVocab, vocabFromJSON } from '../data/vocab.js';
import { encodeSafetensors, readSafetensorsFile, writeFileAtomic } from '../io/safetensors.js';
import type { EmbeddingBag } from '../layers/embeddingbag.js';
import type { Param } from '../layers/param.js';
import { Adam } from '../optim/optim.js';
import { Rng } from '../util/rng.js';

export interface Sentence {
  lang: string;
  text: string;
}

/** The bundled default dataset: `data/tasks/sentences.tsv.gz` (lang<TAB>sentence, Wikipedia). */
export function defaultSentencesPath(): string {
  return join(packageRoot(), 'data', 'tasks', 'sentences.tsv.gz');
}

/** Read `lang<TAB>text` lines (gzip or plain). Lines without a tab get the label '?'. */
export function loadSentences(file = defaultSentencesPath()): Sentence[] {
  let raw: Buffer;
  try {
    raw = readFileSync(file);
  } catch (e) {
    throw new Error(`cannot read '${file}': ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  const text = (raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw).toString('utf8');
  const out: Sentence[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const tab = line.indexOf('\t');
    out.push(tab < 0 ? { lang: '?', text: line.trim() } : { lang: line.slice(0, tab), text: line.slice(tab + 1).trim() });
  }
  if (out.length === 0) throw new Error(`'${file}' holds no sentences`);
  return out;
}

/** Deterministic split: every k-th item (k = round(1/testFraction)) goes to the test set. */
export function splitTrainTest<T>(items: T[], testFraction = 0.2): { train: T[]; test: T[] } {
  const k = Math.max(2, Math.round(1 / testFraction));
  return { train: items.filter((_, i) => i % k !== k - 1), test: items.filter((_, i) => i % k === k - 1) };
}

/** At most n items, evenly spaced over the list (keeps every class of a sorted list represented). */
export function spread<T>(items: T[], n: number | undefined): T[] {
  if (!n || n >= items.length) return items;
  const step = items.length / n;
  return Array.from({ length: n }, (_, i) => items[Math.floor(i * step)]);
}

export function shuffle<T>(items: T[], rng: Rng): T[] {
  const a = items.slice();
  for (let i = a.length - 1; i > 0; i--) { const j = rng.int(i + 1); [a[i], a[j]] = [a[j], a[i]]; }
  return a;
}

/** Character vocabulary (with `<unk>` = 0) of the training texts; characters seen fewer than minCount times -> <unk>. */
export function charVocab(texts: string[], minCount = 2): CharVocab {
  return CharVocab.fromText(texts.join('\n'), { minCount });
}

/** A padded, time-major batch of id sequences: ids [T, B] (pad = padId), lens [B]. */
export interface Padded {
  ids: Int32Array;
  lens: Int32Array;
  T: number;
  B: number;
}

export function padBatch(seqs: ArrayLike<number>[], padId: number, maxT = Infinity): Padded {
  const B = seqs.length;
  const lens = Int32Array.from(seqs, (s) => Math.max(1, Math.min(s.length, maxT)));
  const T = lens.reduce((m, l) => Math.max(m, l), 1);
  const ids = new Int32Array(T * B).fill(padId);
  seqs.forEach((s, b) => { for (let t = 0; t < Math.min(s.length, T); t++) ids[t * B + b] = s[t]; });
  return { ids, lens, T, B };
}

export interface BudgetOptions {
  /** Minutes of training (0 = no limit). */
  minutes: number;
  /** Optimizer steps (0 = no limit). */
  steps: number;
}

/**
 * Call step() until the time or step budget is used. Returns steps done and seconds taken.
 * step() returns the batch loss; `report` gets called at most every 2 s.
 */
export function runBudget(budget: BudgetOptions, step: (i: number) => number, report?: (i: number, loss: number, seconds: number) => void): { steps: number; seconds: number; loss: number } {
  if (budget.minutes <= 0 && budget.steps <= 0) throw new Error('training needs a budget: --minutes or --steps');
  const t0 = performance.now();
  let i = 0, last = t0, avg = NaN;
  for (;;) {
    const sec = (performance.now() - t0) / 1000;
    if (budget.steps > 0 && i >= budget.steps) break;
    if (budget.minutes > 0 && sec >= budget.minutes * 60) break;
    const l = step(i++);
    avg = Number.isNaN(avg) ? l : 0.95 * avg + 0.05 * l;
    const now = performance.now();
    if (report && now - last > 2000) { last = now; report(i, avg, (now - t0) / 1000); }
  }
  return { steps: i, seconds: (performance.now() - t0) / 1000, loss: avg };
}

/**
 * Adam + global norm clipping, the optimizer every task uses. Tables of EmbeddingBags given as `sparse` get
 * lazy row-wise updates (PyTorch's SparseAdam semantics: only the rows touched by the batch move, and only
 * their moments are updated), and only those rows are clipped and zeroed: a step costs the rows a batch
 * uses, not the 2^16-row table.
 */
export class TaskOptimizer {
  readonly adam: Adam;
  private dense: Param[];
  private m: Buf[];
  private v: Buf[];
  private t = 0;

  constructor(readonly be: Backend, readonly params: Param[], readonly lr: number, readonly clip = 5, readonly sparse: EmbeddingBag[] = []) {
    const tables = new Set(sparse.map((b) => b.weight));
    this.dense = params.filter((p) => !tables.has(p));
    this.adam = new Adam(be, this.dense, { lr });
    this.m = sparse.map((b) => be.alloc(b.weight.size));
    this.v = sparse.map((b) => be.alloc(b.weight.size));
  }

  zeroGrad(): void {
    this.adam.zeroGrad();
    for (const b of this.sparse) b.zeroGradTouched();
  }

  step(): void {
    const be = this.be;
    if (this.clip > 0) {
      let sq = 0;
      for (const p of this.dense) sq += be.sumSquares(p.size, p.grad, 0);
      for (const b of this.sparse) for (const r of b.touchedRows()) sq += be.sumSquares(b.dim, b.weight.grad, r * b.dim);
      const norm = Math.sqrt(sq), coef = this.clip / (norm + 1e-6);
      if (coef < 1) {
        for (const p of this.dense) be.scale(p.size, coef, p.grad, 0);
        for (const b of this.sparse) for (const r of b.touchedRows()) be.scale(b.dim, coef, b.weight.grad, r * b.dim);
      }
    }
    this.adam.step();
    this.t++;
    this.sparse.forEach((b, k) => {
      const d = b.dim, w = b.weight;
      for (const r of b.touchedRows()) {
        const s = r * d, e = s + d;
        be.adam(d, w.data.subarray(s, e), w.grad.subarray(s, e), this.m[k].subarray(s, e), this.v[k].subarray(s, e), this.lr, 0.9, 0.999, 1e-8, 0, this.t);
      }
    });
  }
}

// ---- metrics ----

export function confusionMatrix(gold: number[], pred: number[], classes: number): number[][] {
  const m = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  gold.forEach((g, i) => { m[g][pred[i]]++; });
  return m;
}

export function accuracy(gold: number[], pred: number[]): number {
  let ok = 0;
  gold.forEach((g, i) => { if (g === pred[i]) ok++; });
  return gold.length ? ok / gold.length : 0;
}

/** Precision, recall and F1 of the positive class. */
export function f1Score(tp: number, fp: number, fn: number): { precision: number; recall: number; f1: number } {
  const precision = tp + fp ? tp / (tp + fp) : 0, recall = tp + fn ? tp / (tp + fn) : 0;
  return { precision, recall, f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0 };
}

/** Levenshtein distance between two code-point sequences. */
export function editDistance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let prev = new Int32Array(b.length + 1), cur = new Int32Array(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i;
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    [prev, cur] = [cur, prev];
  }
  return prev[b.length];
}

const cps = (s: string): number[] => Array.from(s, (c) => c.codePointAt(0)!);

/** Character error rate: total edit distance / total reference length. */
export function charErrorRate(refs: string[], hyps: string[]): number {
  let d = 0, n = 0;
  refs.forEach((r, i) => { d += editDistance(cps(hyps[i]), cps(r)); n += Array.from(r).length; });
  return n ? d / n : 0;
}

/** A confusion matrix as aligned text (rows = gold, columns = predicted). */
export function formatConfusion(m: number[][], labels: string[]): string {
  const w = Math.max(6, ...labels.map((l) => l.length + 1), ...m.flat().map((v) => String(v).length + 1));
  const pad = (s: string): string => s.padStart(w);
  const lines = [`${pad('gold\\pred')}${labels.map(pad).join('')}`];
  m.forEach((row, i) => lines.push(`${pad(labels[i])}${row.map((v) => pad(String(v))).join('')}`));
  return lines.join('\n');
}

// ---- checkpoints ----

export const TASK_FORMAT = 'rnnkit-task/1';

/** Save a task model: its parameters under PyTorch-style names, the task, config and extra data as metadata. */
export function saveTaskModel(file: string, task: string, config: object, params: Map<string, Param>, extra: Record<string, unknown> = {}): void {
  const tensors = new Map<string, { shape: number[]; data: ArrayLike<number> }>();
  for (const [name, p] of params) tensors.set(name, { shape: p.shape, data: p.data });
  const metadata: Record<string, string> = { format: TASK_FORMAT, task, config: JSON.stringify(config) };
  for (const [k, v] of Object.entries(extra)) metadata[k] = JSON.stringify(v);
  writeFileAtomic(file, encodeSafetensors(tensors, metadata));
}

export interface LoadedTaskFile {
  config: any;
  extra: Record<string, any>;
  /** Copy the stored tensors into a freshly built model's parameters (names and shapes must match). */
  restore(params: Map<string, Param>): void;
}

export function loadTaskModel(file: string, task: string): LoadedTaskFile {
  const { tensors, metadata } = readSafetensorsFile(file);
  if (metadata.format !== TASK_FORMAT) throw new Error(`'${file}' is not an rnnkit task model (format '${metadata.format ?? 'none'}')`);
  if (metadata.task !== task) throw new Error(`'${file}' is a model of task '${metadata.task}', not '${task}'`);
  const extra: Record<string, any> = {};
  for (const [k, v] of Object.entries(metadata)) if (!['format', 'task', 'config'].includes(k)) extra[k] = JSON.parse(v);
  return {
    config: JSON.parse(metadata.config),
    extra,
    restore(params) {
      for (const [name, p] of params) {
        const t = tensors.get(name);
        if (!t) throw new Error(`'${file}': missing tensor '${name}'`);
        if (t.shape.join(',') !== p.shape.join(',')) throw new Error(`'${file}': tensor '${name}' has shape [${t.shape}], expected [${p.shape}]`);
        p.data.set(t.data);
      }
    },
  };
}

export function charVocabFromJSON(j: unknown): CharVocab {
  const v = vocabFromJSON(j as never);
  if (!(v instanceof CharVocab)) throw new Error('expected a character vocabulary');
  return v;
}

/** argmax of each row of logits [n, V]. */
export function argmaxRows(n: number, V: number, logits: Buf, off = 0): number[] {
  const out: number[] = [];
  for (let r = 0; r < n; r++) {
    let best = 0, bv = -Infinity;
    for (let j = 0; j < V; j++) { const v = logits[off + r * V + j]; if (v > bv) { bv = v; best = j; } }
    out.push(best);
  }
  return out;
}
