// rnnkit ngrams: words as hashed character n-grams.
//   rnnkit ngrams WORD...                         the n-grams of each word and their buckets
//   rnnkit ngrams --stats [--data FILE] [--buckets N]   hash collision rate of a corpus (one bucket count, or a sweep)

import type { Command } from 'commander';
import { loadText } from '../data/corpus.js';
import { defaultSentencesPath, loadSentences } from '../tasks/common.js';
import { collisionStats, ngramConfig, wordNgrams, fnv1a } from '../text/ngrams.js';
import { int } from './options.js';

interface NgramArgs { stats: boolean; data?: string; buckets?: number; minn: number; maxn: number; word: boolean; json: boolean }

export function registerNgrams(program: Command): void {
  program.command('ngrams')
    .description('words as hashed character n-grams (fastText): show a word\'s n-grams, or measure hash collisions on a corpus')
    .argument('[words...]', 'words to split into n-grams')
    .option('--stats', 'collision statistics for a corpus', false)
    .option('--data <file>', 'corpus: a text file (.gz allowed) or lang<TAB>sentence lines (default: the bundled task sentences)')
    .option('--buckets <n>', 'hash buckets (default: a sweep from 2^10 to 2^22 with --stats, 2^16 otherwise)', int(1))
    .option('--minn <n>', 'shortest n-gram', int(1), 3)
    .option('--maxn <n>', 'longest n-gram', int(1), 6)
    .option('--no-word', 'leave out the whole-word token #word#')
    .option('--json', 'print JSON', false)
    .action(async (words: string[], a: NgramArgs) => {
      if (!a.stats) {
        if (!words.length) throw new Error('give words to split, or --stats for collision statistics');
        const c = ngramConfig({ minn: a.minn, maxn: a.maxn, buckets: a.buckets ?? 1 << 16, word: a.word });
        const rows = words.map((w) => ({ word: w, ngrams: wordNgrams(w, c).map((g) => ({ ngram: g, bucket: fnv1a(g) % c.buckets })) }));
        if (a.json) console.log(JSON.stringify(rows));
        else for (const r of rows) console.log(`${r.word}: ${r.ngrams.length} n-grams\n  ${r.ngrams.map((g) => `${g.ngram}:${g.bucket}`).join(' ')}`);
        return;
      }
      let text: string;
      if (!a.data || /\.tsv(\.gz)?$/.test(a.data)) text = loadSentences(a.data ?? defaultSentencesPath()).map((s) => s.text).join('\n');
      else text = new TextDecoder().decode(await loadText(a.data, 'raw'));
      const sweep = a.buckets ? [a.buckets] : [10, 12, 14, 16, 18, 20, 22].map((k) => 2 ** k);
      const rows = sweep.map((b) => collisionStats(text, { minn: a.minn, maxn: a.maxn, buckets: b, word: a.word }));
      if (a.json) { console.log(JSON.stringify(rows.length === 1 ? rows[0] : rows)); return; }
      const r0 = rows[0];
      console.log(`corpus: ${a.data ?? 'bundled task sentences'}: ${r0.words.toLocaleString()} distinct words, ${r0.ngrams.toLocaleString()} distinct n-grams (n = ${a.minn}..${a.maxn}${a.word ? ', plus whole words' : ''})`);
      console.log(`n-grams per word: mean ${r0.ngramsPerWord.mean.toFixed(1)}, min ${r0.ngramsPerWord.min}, max ${r0.ngramsPerWord.max} (sum grows with length; mean or 1/sqrt(n) scaling evens it out)`);
      console.log('   buckets   used   collision rate (distinct n-grams)   by occurrence   uniform-hash expectation');
      for (const r of rows) {
        console.log(`${String(r.buckets).padStart(10)} ${String(r.usedBuckets).padStart(9)}   ${(100 * r.collisionRate).toFixed(2).padStart(8)} %${' '.repeat(26)}${(100 * r.tokenCollisionRate).toFixed(2).padStart(8)} %   ${(100 * r.expectedRate).toFixed(2).padStart(8)} %`);
      }
    });
}
