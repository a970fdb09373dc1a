// Uploads the file given with the official WaveSpeed JS SDK's upload call against the URL given (the QwenBatch
// simulator), downloads it back from the URL the SDK returned, and runs an edit naming that URL. Prints one JSON line;
// exits non-zero on any failure.
// Usage: node wavespeed-upload.mjs <baseUrl> <file>
import { readFileSync } from 'node:fs';
import wavespeed from 'wavespeed';

const [baseUrl, file] = process.argv.slice(2);
const client = new wavespeed.Client('sdk-fidelity-key', { baseUrl, retryInterval: 0.1 });
const url = await client.upload(file);
const response = await fetch(url);
if (!response.ok) {
  throw new Error(`download of the uploaded file failed: HTTP ${response.status}`);
}
const bytes = Buffer.from(await response.arrayBuffer());
if (!bytes.equals(readFileSync(file))) {
  throw new Error('the uploaded file came back different');
}
const result = await client.run(
  'wavespeed-ai/qwen-image/edit-plus',
  { prompt: 'White studio background, keep the product unchanged', images: [url], size: '512*384', seed: -1, output_format: 'png' },
  { pollInterval: 0.1, timeout: 60 },
);
console.log(JSON.stringify({ url, bytes: bytes.length, outputs: result.outputs.length }));
