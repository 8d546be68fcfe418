// graphile-worker 0.17 running wf's 5-step chain: each job does its step and enqueues the next
// one. Throughput: CHAINS first jobs queued up front (as `wf start --batch` does), then one
// worker with CONCURRENCY carries them all to the end; steps/s = 5 x CHAINS / wall time. Latency:
// at light load (the worker idle, LISTEN/NOTIFY wake-ups), LATENCY_RUNS single chains one after
// another, from enqueueing step 1 to the end of step 5. Prints one JSON object on stdout.
'use strict';
const { run, makeWorkerUtils } = require('graphile-worker');
const { parseArgs, percentile, nowMs, packageVersion, report } = require('./common');

const STEPS = 5;

async function main() {
  const args = parseArgs(process.argv);
  let done = 0;
  const waiting = new Map();  // chain id -> resolve, for the latency runs
  const taskList = {
    step: async (payload, helpers) => {
      const result = { operation: `step${payload.step}`, chain: payload.chain };
      if (payload.step < STEPS) {
        await helpers.addJob('step', { chain: payload.chain, step: payload.step + 1, last: result });
        return;
      }
      done += 1;
      const resolve = waiting.get(payload.chain);
      if (resolve) {
        waiting.delete(payload.chain);
        resolve();
      }
    },
  };
  const utils = await makeWorkerUtils({ connectionString: args.url });
  await utils.migrate();
  // Queue the first step of every chain in batches, before the worker starts.
  const queueStart = nowMs();
  for (let i = 0; i < args.chains; i += 1000) {
    const specs = [];
    for (let j = i; j < Math.min(args.chains, i + 1000); j++) {
      specs.push({ identifier: 'step', payload: { chain: `c${j}`, step: 1 } });
    }
    await utils.addJobs(specs);
  }
  const queued = nowMs();
  const runner = await run({
    connectionString: args.url,
    concurrency: args.concurrency,
    maxPoolSize: args.concurrency + 4,
    noHandleSignals: true,
    pollInterval: 2000,
    taskList,
    logger: new (require('graphile-worker').Logger)(() => () => {}),
  });
  const t0 = nowMs();
  while (done < args.chains) await new Promise((r) => setTimeout(r, 20));
  const wall = (nowMs() - t0) / 1000;

  const latencies = [];
  for (let i = 0; i < args.runs; i++) {
    const chain = `light${i}`;
    const finished = new Promise((resolve) => waiting.set(chain, resolve));
    const start = nowMs();
    await utils.addJob('step', { chain, step: 1 });
    await finished;
    latencies.push(nowMs() - start);
  }
  await runner.stop();
  await utils.release();
  report({
    peer: 'graphile-worker',
    version: packageVersion('graphile-worker'),
    chains: args.chains,
    steps: args.chains * STEPS,
    concurrency: args.concurrency,
    queue_seconds: (queued - queueStart) / 1000,
    seconds: wall,
    steps_per_s: (args.chains * STEPS) / wall,
    chains_per_s: args.chains / wall,
    e2e_ms: { runs: latencies.length, p50: percentile(latencies, 50), p99: percentile(latencies, 99) },
  });
}

main().catch((e) => {
  process.stderr.write(`graphile.js: ${e.stack || e}\n`);
  process.exit(1);
});
