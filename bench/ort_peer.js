// ONNX Runtime peer of bench/bench_models.cpp: times one exported model on CPU
// with onnxruntime-node (installed into bench/ort/ by bench/setup.sh).
//
//   node bench/ort_peer.js MODEL.onnx BATCH THREADS WARMUP ITERS
//
// Inputs are made from the model's input names: input_ids [BATCH, 128] int64
// (random ids), token_type_ids [BATCH, 128] int64 (zeros), images
// [BATCH, 3, 224, 224] float32. Prints one JSON line:
// {"ms": median ms per run, "batch", "samples_per_s", "peak_rss_mib"}.
'use strict';
const path = require('path');

let ort;
try {
  ort = require(path.join(__dirname, 'ort', 'node_modules', 'onnxruntime-node'));
} catch (e) {
  ort = require('onnxruntime-node');
}

async function main() {
  const [modelPath, batchArg, threadsArg, warmupArg, itersArg] = process.argv.slice(2);
  const batch = Number(batchArg), threads = Number(threadsArg || 2);
  const warmup = Number(warmupArg || 2), iters = Math.max(Number(itersArg || 5), 1);
  const session = await ort.InferenceSession.create(modelPath, {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  const feeds = {};
  for (const name of session.inputNames) {
    if (name === 'images') {
      const data = new Float32Array(batch * 3 * 224 * 224);
      for (let i = 0; i < data.length; ++i) data[i] = Math.random() * 2 - 1;
      feeds[name] = new ort.Tensor('float32', data, [batch, 3, 224, 224]);
    } else {
      const data = new BigInt64Array(batch * 128);
      if (name === 'input_ids') for (let i = 0; i < data.length; ++i) data[i] = BigInt(1 + Math.floor(Math.random() * 30000));
      feeds[name] = new ort.Tensor('int64', data, [batch, 128]);
    }
  }
  for (let i = 0; i < warmup; ++i) await session.run(feeds);
  const times = [];
  for (let i = 0; i < iters; ++i) {
    const start = process.hrtime.bigint();
    await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  times.sort((a, b) => a - b);
  const n = times.length;
  const ms = n % 2 ? times[(n - 1) / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
  console.log(JSON.stringify({
    ms, batch, samples_per_s: batch / (ms / 1e3),
    peak_rss_mib: process.resourceUsage().maxRSS / 1024,  // kB
  }));
}

main().catch((e) => {
  console.log(JSON.stringify({error: String(e && e.message ? e.message : e).split('\n')[0]}));
  process.exit(0);
});
