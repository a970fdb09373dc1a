// The provider-efficiency race's baseline (bench/QwenBatch.Bench SdkRaceBenchmark): N Qwen Image Edit Plus edits run with
// the official WaveSpeed JS SDK the way its README shows — client.run() with the default options (1 s polling, result
// GETs retried on 429/5xx) — by a fixed number of concurrent workers, each downloading its output into outDir.
// The SDK never resubmits a POST answered 429 (it may have created a task); a user finishing the batch would, so this
// driver waits the Retry-After its answers carry (1 s) and submits that edit again, counting it.
// Completion lag: the QwenBatch simulator's request ids carry each task's true completion time (unix ms, bytes 9–16 of
// the base64url after "sim_"), so the time from it to client.run() returning is how late the SDK noticed.
// Prints one JSON line: {"jobs", "succeeded", "failed", "resubmits_after_429", "bytes", "lag_median_ms", "lag_mean_ms",
// "wall_ms"}; exits 1 when any failed.
// Usage: node wavespeed-race.mjs <baseUrl> <jobs> <concurrency> <outDir> [size=512*512]
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import wavespeed from 'wavespeed';

const [baseUrl, jobsText, concurrencyText, outDir, size = '512*512'] = process.argv.slice(2);
const jobs = Number.parseInt(jobsText, 10);
const concurrency = Number.parseInt(concurrencyText, 10);
if (!baseUrl || !(jobs > 0) || !(concurrency > 0) || !outDir) {
  console.error('usage: node wavespeed-race.mjs <baseUrl> <jobs> <concurrency> <outDir> [size]');
  process.exit(2);
}

mkdirSync(outDir, { recursive: true });
const client = new wavespeed.Client(process.env.WAVESPEED_API_KEY || 'sdk-race-key', { baseUrl });
let next = 0;
let succeeded = 0;
let failed = 0;
let resubmits = 0;
let bytes = 0;
const lags = [];

// The task's completion time, from the simulator's request id found in the output URL (…/_sim/files/<id>/0.png).
function doneMs(outputUrl) {
  const id = new URL(outputUrl).pathname.split('/').at(-2);
  return Number(Buffer.from(id.slice('sim_'.length), 'base64url').readBigInt64BE(9));
}

async function edit(i) {
  for (;;) {
    try {
      return await client.run('wavespeed-ai/qwen-image/edit-plus', {
        prompt: `White studio background, keep the product unchanged, item ${i}`,
        images: [`https://images.example/products/${i}.png`],
        size,
        seed: i,
        output_format: 'png',
      });
    } catch (error) {
      if (error instanceof wavespeed.WavespeedSubmissionException && String(error.message).includes('HTTP 429')) {
        resubmits++;
        await new Promise((resolve) => setTimeout(resolve, 1000));
        continue;
      }
      throw error;
    }
  }
}

async function worker() {
  while (next < jobs) {
    const i = ++next;
    try {
      const result = await edit(i);
      lags.push(Date.now() - doneMs(result.outputs[0]));
      const response = await fetch(result.outputs[0]);
      if (!response.ok) {
        throw new Error(`download failed: HTTP ${response.status}`);
      }
      const body = Buffer.from(await response.arrayBuffer());
      writeFileSync(join(outDir, `job-${i}.png`), body);
      bytes += body.length;
      succeeded++;
    } catch (error) {
      failed++;
      console.error(`job ${i}: ${error?.message ?? error}`);
    }
  }
}

const start = performance.now();
await Promise.all(Array.from({ length: concurrency }, () => worker()));
const wallMs = Math.round(performance.now() - start);
lags.sort((a, b) => a - b);
const lagMedian = lags.length ? lags[Math.floor(lags.length / 2)] : 0;
const lagMean = lags.length ? Math.round(lags.reduce((a, b) => a + b, 0) / lags.length) : 0;
console.log(JSON.stringify({ jobs, succeeded, failed, resubmits_after_429: resubmits, bytes, lag_median_ms: lagMedian, lag_mean_ms: lagMean, wall_ms: wallMs }));
process.exit(failed > 0 ? 1 : 0);
