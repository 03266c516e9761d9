// rnnkit: recurrent neural networks for sequences.

export type { Backend, Buf, DType, Activation } from './backend/backend.js';
export { JsBackend } from './backend/js.js';
export { createBackend, type BackendName, type BackendOptions } from './backend/index.js';
export { Param } from './layers/param.js';
export { LSTM, GRU, RNN, RecurrentStack, type RecurrentOptions, type RecurrentOutput, type RnnMode } from './layers/recurrent.js';
export { Linear } from './layers/linear.js';
export { Embedding } from './layers/embedding.js';
export { Adam, SGD, clipGradNorm, type Optimizer } from './optim/optim.js';
export { CharLM, type CharLMConfig, type CellKind } from './models/charlm.js';
export { Trainer, type TrainOptions } from './train/trainer.js';
export { saveCheckpoint, loadCheckpoint, type TrainState } from './train/checkpoint.js';
export { evaluateStream, evaluateBatched, type EvalResult } from './train/evaluate.js';
export { sampleIds, type SampleOptions } from './train/sample.js';
export { BatchedStream } from './train/batches.js';
export { encodeSafetensors, decodeSafetensors, writeFileAtomic } from './io/safetensors.js';
export * from './data/index.js';
export { Rng } from './util/rng.js';
export { WORKLOADS, benchTrain, benchSample } from './bench/workload.js';
// task shapes, hashed n-grams and the simple baselines (issue #4)
export { EmbeddingBag, type BagMode } from './layers/embeddingbag.js';
export { Conv1d, type Conv1dOptions, type Conv1dPadding } from './layers/conv1d.js';
export { DotAttention } from './layers/attention.js';
export { MLP } from './layers/mlp.js';
export { OneHot } from './layers/onehot.js';
export { ConvLM, convLMConfig, type ConvLMConfig } from './models/conv.js';
export { windowLM } from './models/window.js';
export { fnv1a, wordNgrams, wordNgramIds, textBags, tokenizeWords, collisionStats, type NgramOptions } from './text/ngrams.js';
export { WordVocab } from './text/wordvocab.js';
export { TASKS, findTask, type TaskDef, type TaskResult, type TaskTrainOptions } from './tasks/index.js';
