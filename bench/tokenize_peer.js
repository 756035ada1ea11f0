#!/usr/bin/env node
// Tokenization throughput of automm.cpp's tokenizers against Hugging Face's
// `tokenizers` library (Rust, through its node binding @anush008/tokenizers),
// on the same generated sentences and the same tokenizer files:
//   * WordPiece: bert-base-uncased (vocab.txt + tokenizer.json made by
//     tests/tokenizer_reference/reference.js),
//   * byte-level BPE: GPT-2 (tokenizer.json made by
//     tests/tokenizer_reference/bpe_reference.js).
//
// Usage:
//   node bench/tokenize_peer.js runs/bench/tokenize.json --bench ./build/automm_bench
//        [--sentences 20000] [--iters 5]
//
// The headline is per core: Hugging Face's encodeBatch on a one-thread rayon
// pool (RAYON_NUM_THREADS=1, one call for all sentences, so the binding's
// per-call cost is paid once) against `automm_bench --tokenize-dir`, which
// encodes sentence by sentence on one thread. Also reported: HF encodeBatch
// on all cores, and HF's per-sentence `await encode()` loop (which includes
// the binding's async hop per call). Both sides encode without special
// tokens; the token counts and id checksums must match.
'use strict';

const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const repo = path.resolve(__dirname, '..');
const referenceDir = path.join(repo, 'tests', 'tokenizer_reference');

function fail(message) {
  process.stderr.write(`tokenize_peer.js: ${message}\n`);
  process.exit(2);
}

function flag(args, name, fallback) {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

function readSentences(file) {
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
}

// Deterministic English-like text: the same sentences on every machine and run.
function makeSentences(count) {
  let state = 0x9e3779b9;
  const rand = () => {  // mulberry32
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = (xs) => xs[Math.floor(rand() * xs.length)];
  const words = ('the a of and to in is was for on that with as by at from it this be are were have has ' +
    'model data table image text column price review customer product quality delivery service ' +
    'learning network transformer tokenizer benchmark throughput running quickly unexpectedly ' +
    'strawberries photographs neighbourhood international understanding reconsideration ' +
    'automatically predicted classification regression multimodal embedding fine-tuned well-known ' +
    'state-of-the-art e-mail don\'t it\'s we\'re they\'ve London Paris Tokyo Monday September ' +
    'GPU CPU API JSON URL').split(' ');
  const rare = ['café', 'naïve', 'résumé', 'Zürich', 'São', 'Paulo', 'façade', 'coöperate', 'Ångström',
    'piñata', 'crème', 'brûlée', 'Dvořák', 'Łódź', 'über', '3.14', '2024', '42', '1,000', '$19.99', '50%',
    '#1', 'v2.0', '10:30', 'x86_64', 'user@example.com', 'https://example.org/a?b=1', '...', '(see', 'below)'];
  // Made-up words (thousands of spellings) so that word caches do not hide the
  // subword algorithms, as a real corpus's long tail would not.
  const syllables = ['tra', 'mel', 'ous', 'con', 'vik', 'ber', 'ing', 'qui', 'zor', 'ent', 'lan', 'phy',
    'sto', 'ram', 'ex', 'ol', 'und', 'ca', 'tion', 'ly', 'gre', 'mo', 'ish', 'ven'];
  const madeUp = () => Array.from({ length: 2 + Math.floor(rand() * 3) }, () => pick(syllables)).join('');
  const endings = ['.', '.', '.', '!', '?', '...', ''];
  const out = [];
  for (let i = 0; i < count; ++i) {
    const n = 5 + Math.floor(rand() ** 2 * 116);  // 5-120 words, mostly short
    const parts = [];
    for (let w = 0; w < n; ++w) {
      const r = rand();
      let word = r < 0.12 ? pick(rare) : r < 0.3 ? madeUp() : pick(words);
      if (w === 0 || rand() < 0.05) word = word[0].toUpperCase() + word.slice(1);
      if (rand() < 0.06) word += pick([',', ',', ';', ':', ' -']);
      if (rand() < 0.02) word = `"${word}"`;
      parts.push(word);
    }
    out.push(parts.join(' ') + pick(endings));
  }
  return out;
}

// Child mode: times the HF library in a fresh process, because rayon reads
// RAYON_NUM_THREADS once, when its global pool starts.
async function hfWorker(dir, inputFile, iters, perSentence) {
  const { Tokenizer } = require(path.join(referenceDir, 'node_modules', '@anush008', 'tokenizers'));
  const tokenizer = Tokenizer.fromFile(path.join(dir, 'tokenizer.json'));
  const sentences = readSentences(inputFile);
  const options = { addSpecialTokens: false };
  let encodings = await tokenizer.encodeBatch(sentences, options);  // warm-up, and ids for the checksum
  let tokens = 0, checksum = 0;
  for (const enc of encodings) for (const id of enc.getIds()) { tokens += 1; checksum += id; }
  encodings = null;
  const batchTimes = [], loopTimes = [];
  for (let i = 0; i < iters; ++i) {
    const start = process.hrtime.bigint();
    await tokenizer.encodeBatch(sentences, options);
    batchTimes.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  for (let i = 0; perSentence && i < iters; ++i) {
    const start = process.hrtime.bigint();
    for (const s of sentences) await tokenizer.encode(s, null, options);  // async: one libuv task each
    loopTimes.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  process.stdout.write(JSON.stringify({
    sentences: sentences.length, tokens, checksum, seconds: median(batchTimes),
    encode_loop_seconds: perSentence ? median(loopTimes) : null }) + '\n');
}

function runHf(dir, inputFile, iters, threads) {
  const env = { ...process.env };
  delete env.TOKENIZERS_PARALLELISM;  // "false" would turn encodeBatch's rayon loop serial
  if (threads === 1) env.RAYON_NUM_THREADS = '1'; else delete env.RAYON_NUM_THREADS;
  const out = execFileSync(process.execPath,
    [__filename, '--hf-worker', dir, inputFile, String(iters), threads === 1 ? 'loop' : 'batch'],
    { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20 });
  return JSON.parse(out.trim().split('\n').pop());
}

function runOurs(bench, tmp, dir, inputFile, iters) {
  const out = execFileSync(bench, [path.join(tmp, 'x.json'), '--tokenize-dir', dir,
                                   '--tokenize-input', inputFile, '--iters', String(iters)],
                           { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return JSON.parse(out.trim().split('\n').pop());
}

function main() {
  const args = process.argv.slice(2);
  const reportPath = args[0];
  const bench = flag(args, '--bench', null);
  const count = Number(flag(args, '--sentences', '20000'));
  const iters = Number(flag(args, '--iters', '5'));
  if (!reportPath || reportPath.startsWith('--') || !bench) {
    fail('usage: node bench/tokenize_peer.js OUT.json --bench ./build/automm_bench [--sentences N] [--iters N]');
  }
  if (!fs.existsSync(bench)) fail(`${bench} not found; build it with cmake --build build --target automm_bench`);
  execFileSync('bash', [path.join(referenceDir, 'setup.sh')], { stdio: 'inherit' });  // no-op when installed

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'automm-tokenize-'));
  const inputFile = path.join(tmp, 'sentences.jsonl');
  const sentences = makeSentences(count);
  fs.writeFileSync(inputFile, sentences.map((s) => JSON.stringify(s)).join('\n') + '\n');
  // The reference scripts also tokenize their input: give them one sentence,
  // only the files they write are needed here.
  const oneFile = path.join(tmp, 'one.jsonl');
  fs.writeFileSync(oneFile, JSON.stringify(sentences[0]) + '\n');
  const wordpieceDir = path.join(tmp, 'bert-base-uncased');
  const gpt2Dir = path.join(tmp, 'gpt2');
  fs.mkdirSync(gpt2Dir);
  const quiet = { stdio: ['ignore', 'ignore', 'inherit'] };
  execFileSync(process.execPath, [path.join(referenceDir, 'reference.js'), oneFile, wordpieceDir], quiet);
  execFileSync(process.execPath, [path.join(referenceDir, 'bpe_reference.js'), oneFile, '-',
                                  path.join(gpt2Dir, 'tokenizer.json')], quiet);

  const cores = os.cpus().length;
  const report = { sentences: count, iters, cores, words_total: sentences.reduce((n, s) => n + s.split(' ').length, 0),
                   note: 'per core: HF encodeBatch with RAYON_NUM_THREADS=1 vs automm.cpp encode loop, 1 thread',
                   tokenizers: {} };
  const rows = [];
  let mismatch = false;
  for (const [name, dir] of [['wordpiece (bert-base-uncased)', wordpieceDir], ['byte-level BPE (gpt2)', gpt2Dir]]) {
    const hf = runHf(dir, inputFile, iters, 1);
    const hfAll = runHf(dir, inputFile, iters, cores);
    const ours = runOurs(bench, tmp, dir, inputFile, iters);
    const ids_match = hf.tokens === ours.tokens && hf.checksum === ours.checksum;
    if (!ids_match) {
      mismatch = true;
      process.stderr.write(`WARNING: ${name}: ids differ from Hugging Face's: tokens ${ours.tokens} vs ${hf.tokens}, ` +
                           `checksum ${ours.checksum} vs ${hf.checksum}; the throughputs are not comparable\n`);
    }
    const hfRate = count / hf.seconds, oursRate = ours.sentences_per_s;
    report.tokenizers[name] = {
      ids_match, tokens: ours.tokens, hf_tokens: hf.tokens, checksum: ours.checksum, hf_checksum: hf.checksum,
      hf_sentences_per_s: hfRate, hf_tokens_per_s: hf.tokens / hf.seconds,
      ours_sentences_per_s: oursRate, ours_tokens_per_s: ours.tokens_per_s, ratio_ours_vs_hf: oursRate / hfRate,
      hf_batch_all_cores: { threads: cores, sentences_per_s: count / hfAll.seconds },
      hf_encode_loop_sentences_per_s: count / hf.encode_loop_seconds };
    rows.push([name, hfRate, oursRate, oursRate / hfRate, count / hfAll.seconds, count / hf.encode_loop_seconds]);
  }

  console.log(`Tokenization throughput, ${count} sentences (${report.words_total} words), median of ${iters}, ` +
              'no special tokens; sentences/s');
  console.log(`${'tokenizer'.padEnd(30)} ${'HF 1 thread'.padStart(12)} ${'ours 1 thread'.padStart(14)} ` +
              `${'ours/HF'.padStart(8)}   ${`HF batch ${cores} thr`.padStart(15)} ${'HF encode() loop'.padStart(17)}`);
  for (const [name, hf, ours, ratio, hfAll, loop] of rows) {
    console.log(`${name.padEnd(30)} ${hf.toFixed(0).padStart(12)} ${ours.toFixed(0).padStart(14)} ` +
                `${ratio.toFixed(2).padStart(7)}x   ${hfAll.toFixed(0).padStart(15)} ${loop.toFixed(0).padStart(17)}`);
  }
  console.log('(ours/HF > 1: automm.cpp faster; HF encodeBatch on 1 thread is the per-core baseline)');
  fs.mkdirSync(path.dirname(path.resolve(reportPath)), { recursive: true });
  fs.writeFileSync(reportPath, JSON.stringify(report, null, 2) + '\n');
  console.log(`wrote ${reportPath}${mismatch ? '  (WARNING: ids differ, see above)' : ''}`);
  fs.rmSync(tmp, { recursive: true, force: true });
}

if (process.argv[2] === '--hf-worker') {
  const [dir, inputFile, iters, mode] = process.argv.slice(3);
  hfWorker(dir, inputFile, Number(iters), mode === 'loop').catch((e) => fail(e && e.stack ? e.stack : String(e)));
} else {
  main();
}
