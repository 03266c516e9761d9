// Word vocabulary with <unk>: built from data (words seen at least minCount times, most frequent first, up to
// maxSize), saved with the model as JSON. Unseen words -> <unk> (id 0): the out-of-vocabulary problem that
// hashed character n-grams avoid (a Russian noun has a dozen case forms; most of them are never seen).

import { tokenizeWords } from './ngrams.js';

export interface WordVocabJSON {
  kind: 'words';
  words: string[];
}

export class WordVocab {
  static readonly UNK = 0;
  /** Words by id; words[0] is '<unk>'. */
  readonly words: readonly string[];
  private ids = new Map<string, number>();

  constructor(words: Iterable<string>) {
    const list = ['<unk>'];
    for (const w of words) {
      if (this.ids.has(w) || w === '<unk>') throw new Error(`WordVocab: duplicate word ${JSON.stringify(w)}`);
      this.ids.set(w, list.length);
      list.push(w);
    }
    this.words = list;
  }

  get size(): number { return this.words.length; }

  /** Words of the texts (tokenizeWords: lower-cased letter/digit runs) seen >= minCount times, by frequency. */
  static fromTexts(texts: string[], o: { minCount?: number; maxSize?: number } = {}): WordVocab {
    const counts = new Map<string, number>();
    for (const t of texts) for (const w of tokenizeWords(t)) counts.set(w, (counts.get(w) ?? 0) + 1);
    const minCount = o.minCount ?? 1, max = (o.maxSize ?? Infinity) - 1;
    const kept = [...counts].filter(([, k]) => k >= minCount).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    return new WordVocab(kept.slice(0, max).map(([w]) => w));
  }

  id(word: string): number { return this.ids.get(word) ?? WordVocab.UNK; }

  /** Ids of the words of a text. */
  encode(text: string): Int32Array { return Int32Array.from(tokenizeWords(text), (w) => this.id(w)); }

  decode(ids: ArrayLike<number>): string[] { return Array.from(ids, (i) => this.words[i] ?? '<unk>'); }

  toJSON(): WordVocabJSON { return { kind: 'words', words: this.words.slice(1) }; }

  static fromJSON(j: WordVocabJSON): WordVocab {
    if (!j || j.kind !== 'words' || !Array.isArray(j.words)) throw new Error('not a word vocabulary (expected {kind: "words", words: [...]})');
    return new WordVocab(j.words);
  }
}
