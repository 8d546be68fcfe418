// DBOS Transact 5.x running a 5-step durable workflow (each step's result checkpointed in the
// PostgreSQL system database). Throughput: CHAINS workflows, at most CONCURRENCY running at once
// in this process; steps/s = 5 x CHAINS / wall time. Latency: at light load, LATENCY_RUNS single
// workflows one after another, from the call to its durable result. Prints JSON on stdout.
'use strict';
const { DBOS } = require('@dbos-inc/dbos-sdk');
const { parseArgs, percentile, nowMs, packageVersion, report } = require('./common');

const STEPS = 5;

async function chain(id) {
  let last = null;
  for (let s = 1; s <= STEPS; s++) {
    last = await DBOS.runStep(async () => ({ operation: `step${s}`, chain: id, previous: last }), {
      name: `step${s}`,
    });
  }
  return last;
}

async function main() {
  const args = parseArgs(process.argv);
  DBOS.setConfig({
    name: 'wf-bench',
    systemDatabaseUrl: args.url,
    systemDatabasePoolSize: args.concurrency + 4,
    logLevel: 'error',
  });
  const workflow = DBOS.registerWorkflow(chain, { name: 'chain5' });
  await DBOS.launch();

  const t0 = nowMs();
  let next = 0;
  async function lane() {
    while (next < args.chains) {
      const i = next++;
      await workflow(`c${i}`);
    }
  }
  await Promise.all(Array.from({ length: args.concurrency }, lane));
  const wall = (nowMs() - t0) / 1000;

  const latencies = [];
  for (let i = 0; i < args.runs; i++) {
    const start = nowMs();
    await workflow(`light${i}`);
    latencies.push(nowMs() - start);
  }
  await DBOS.shutdown();
  report({
    peer: 'dbos',
    version: packageVersion('@dbos-inc/dbos-sdk'),
    chains: args.chains,
    steps: args.chains * STEPS,
    concurrency: args.concurrency,
    seconds: wall,
    steps_per_s: (args.chains * STEPS) / wall,
    chains_per_s: args.chains / wall,
    e2e_ms: { runs: latencies.length, p50: percentile(latencies, 50), p99: percentile(latencies, 99) },
  });
}

main().catch((e) => {
  process.stderr.write(`dbos.js: ${e.stack || e}\n`);
  process.exit(1);
});
