/** Data layer: vocabularies, MediaWiki dump reader/cleaner, corpus loading. */
export * from './vocab.js';
export * from './wikidump.js';
export * from './corpus.js';
export { readFileBytes, streamFile, isGzip } from './io.js';
export { decodeHtmlEntities } from './htmlentities.js';
