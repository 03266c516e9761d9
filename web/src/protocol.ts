// Messages between the page (main.ts) and the model worker (worker.ts).

export interface ModelInfo {
  name: string;
  cell: string;
  hidden: number;
  layers: number;
  embedding: number;
  vocab: string;
  vocabSize: number;
  params: number;
  steps: number | null;
  bestBpc: number | null;
}

export interface TrainConfig {
  cell: 'lstm' | 'gru';
  hidden: number;
  layers: number;
  batch: number;
  bptt: number;
  lr: number;
  /** 'wiki': the bundled Wikipedia sample; 'text': the pasted text. */
  source: 'wiki' | 'text';
  text?: string;
  seed: number;
}

/** Per predicted token: surprisal in bits and the model's top predictions for it. */
export interface Analysis {
  /** Characters of the text (code points). */
  chars: string[];
  /** Surprisal of each character in bits (-log2 p, summed over its bytes); NaN for the first (not predicted). */
  bits: number[];
  /** Top predictions before each character: [token text, probability][]. */
  top: [string, number][][];
  /** As `rnnkit eval`: one stream from a zero state, every token after the first predicted. */
  bpc: number;
  perplexity: number;
  tokens: number;
  seconds: number;
}

/** The backends the page offers: 'wasm' (the WebAssembly kernels, or the JS fallback) and 'webgpu'. */
export type BackendChoice = 'wasm' | 'webgpu';

/** Whether the worker can run the webgpu backend: an adapter's description, or why not. */
export type WebGPUAvailability = { available: true; adapter: string } | { available: false; reason: string };

export type Request =
  | { type: 'init'; modelUrl: string; wikiUrl: string; simdUrl: string; relaxedUrl: string }
  | { type: 'setBackend'; backend: BackendChoice }
  | { type: 'loadModel'; bytes: ArrayBuffer; name: string }
  | { type: 'sample'; id: number; prime: string; temperature: number; length: number; seed: number }
  | { type: 'stopSample' }
  | { type: 'analyze'; id: number; text: string }
  | { type: 'train'; config: TrainConfig }
  | { type: 'stopTrain' }
  | { type: 'useTrained' }
  | { type: 'download'; which: 'trained' | 'current' };

export interface TrainPoint {
  step: number;
  seconds: number;
  /** Training loss of the last steps, bits per character. */
  loss: number;
  charsPerSec: number;
  /** Validation bits per character, when this point is a validation. */
  validBpc?: number;
}

export type Reply =
  | { type: 'ready'; backend: string; fallbackReason: string | null; model: ModelInfo | null; modelError?: string; wikiChars: number; workerUrl: string; webgpu: WebGPUAvailability }
  /** The backend now in use (after setBackend): `backend` is 'webgpu' or the wasm backend's kind; `detail` the adapter or kernels. */
  | { type: 'backend'; choice: BackendChoice; backend: string; detail: string; model: ModelInfo | null }
  | { type: 'model'; model: ModelInfo }
  | { type: 'sampleChunk'; id: number; text: string }
  | { type: 'sampleDone'; id: number; tokens: number; seconds: number; stopped: boolean }
  | { type: 'analysis'; id: number; result: Analysis }
  | { type: 'trainStarted'; params: number; trainChars: number; validChars: number }
  | { type: 'trainProgress'; point: TrainPoint }
  | { type: 'trainDone'; steps: number; seconds: number; model: ModelInfo }
  | { type: 'checkpoint'; bytes: ArrayBuffer; name: string }
  | { type: 'error'; id?: number; context: string; message: string };
