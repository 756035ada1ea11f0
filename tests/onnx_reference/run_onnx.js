// Runs an ONNX file in ONNX Runtime (CPU, fp32) on the inputs of a safetensors
// file (automm export's <out>.example.safetensors, read by hand below) and
// prints {"logits": [...], "features": [...]} (flat arrays) as JSON.
//   node run_onnx.js model.onnx model.onnx.example.safetensors
const fs = require("fs");
const path = require("path");
const ort = require(path.join(__dirname, "node_modules", "onnxruntime-node"));

function readSafetensors(file) {
  const raw = fs.readFileSync(file);
  const headerLength = Number(raw.readBigUInt64LE(0));
  const header = JSON.parse(raw.subarray(8, 8 + headerLength).toString("utf8"));
  const tensors = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const [begin, end] = entry.data_offsets;
    const bytes = raw.subarray(8 + headerLength + begin, 8 + headerLength + end);
    const copy = new Uint8Array(bytes).buffer;  // aligned for the typed array
    const types = { F32: ["float32", Float32Array], I64: ["int64", BigInt64Array] };
    const [type, Array] = types[entry.dtype];
    tensors[name] = new ort.Tensor(type, new Array(copy), entry.shape);
  }
  return tensors;
}

(async () => {
  const [modelFile, exampleFile] = process.argv.slice(2);
  const tensors = readSafetensors(exampleFile);
  const session = await ort.InferenceSession.create(modelFile);
  const feeds = {};
  for (const name of session.inputNames) feeds[name] = tensors[name];
  const results = await session.run(feeds);
  const out = {};
  for (const name of session.outputNames) out[name] = Array.from(results[name].data);
  process.stdout.write(JSON.stringify(out));
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
