// Runs one Qwen Image Edit Plus edit with the official WaveSpeed JS SDK against the URL given (the QwenBatch simulator),
// then downloads the output into the file given. Prints one JSON line; exits non-zero on any failure.
// Usage: node wavespeed-edit.mjs <baseUrl> <outFile> <png|jpeg|webp>
import { writeFileSync } from 'node:fs';
import wavespeed from 'wavespeed';

const [baseUrl, outFile, format = 'png'] = process.argv.slice(2);
const client = new wavespeed.Client('sdk-fidelity-key', { baseUrl, retryInterval: 0.1 });
const result = await client.run(
  'wavespeed-ai/qwen-image/edit-plus',
  { prompt: 'White studio background, keep the product unchanged', images: ['https://example.com/mug.png'], size: '512*384', seed: -1, output_format: format },
  { pollInterval: 0.1, timeout: 60 },
);
if (!Array.isArray(result.outputs) || result.outputs.length !== 1) {
  throw new Error(`expected one output, got ${JSON.stringify(result.outputs)}`);
}
const response = await fetch(result.outputs[0]);
if (!response.ok) {
  throw new Error(`download failed: HTTP ${response.status}`);
}
const bytes = Buffer.from(await response.arrayBuffer());
writeFileSync(outFile, bytes);
console.log(JSON.stringify({ outputs: result.outputs.length, url: result.outputs[0], bytes: bytes.length }));
