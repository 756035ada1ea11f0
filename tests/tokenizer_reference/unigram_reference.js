#!/usr/bin/env node
// Reference Unigram (sentencepiece) tokenization for the automm.cpp tests,
// through Hugging Face tokenizers' node binding (@anush008/tokenizers).
//
// Usage:
//   node unigram_reference.js train <corpus.txt> <out_tokenizer.json>
//     Trains a Unigram model (UnigramTrainer defaults) behind a Metaspace
//     pre-tokenizer on the corpus (one sentence a line) and saves it.
//   node unigram_reference.js encode <tokenizer.json> <sentences.jsonl>
//     (also the CLIP tokenizer test's reference: any tokenizer.json loads)
//     Loads any tokenizer.json and prints, for every sentence (one JSON
//     string a line), its ids without special tokens as one JSON line.
'use strict';

const fs = require('fs');

function fail(message) {
  process.stderr.write(`unigram_reference.js: ${message}\n`);
  process.exit(2);
}

let tokenizers;
try {
  tokenizers = require('@anush008/tokenizers');
} catch (e) {
  fail(`cannot load @anush008/tokenizers (${e.message}); run tests/tokenizer_reference/setup.sh`);
}

async function main() {
  const [mode, a, b] = process.argv.slice(2);
  const { Tokenizer, Unigram, metaspacePreTokenizer } = tokenizers;
  if (mode === 'train' && a && b) {
    const tokenizer = new Tokenizer(Unigram.empty());
    tokenizer.setPreTokenizer(metaspacePreTokenizer());
    tokenizer.train([a]);
    tokenizer.save(b, true);
    return;
  }
  if (mode !== 'encode' || !a || !b) fail('usage: unigram_reference.js train <corpus> <out.json> | encode <tokenizer.json> <sentences.jsonl>');
  const tokenizer = Tokenizer.fromString(fs.readFileSync(a, 'utf8'));
  const lines = fs.readFileSync(b, 'utf8').split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  const sentences = lines.map((line) => JSON.parse(line));
  const out = [];
  const batch = 512;
  for (let start = 0; start < sentences.length; start += batch) {
    const encodings = await tokenizer.encodeBatch(sentences.slice(start, start + batch), { addSpecialTokens: false });
    for (const enc of encodings) out.push(JSON.stringify(enc.getIds()));
  }
  process.stdout.write(out.join('\n') + '\n');
}

main().catch((e) => fail(e && e.stack ? e.stack : String(e)));
