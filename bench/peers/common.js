// Shared by the peer benchmarks: arguments, percentiles, JSON on stdout.
'use strict';
const fs = require('fs');
const path = require('path');

// node PEER.js URL CHAINS LATENCY_RUNS CONCURRENCY
function parseArgs(argv) {
  const [url, chains, runs, concurrency] = argv.slice(2);
  if (!url || !(Number(chains) > 0)) {
    process.stderr.write(`usage: node ${argv[1]} POSTGRES_URL CHAINS [LATENCY_RUNS] [CONCURRENCY]\n`);
    process.exit(2);
  }
  return {
    url,
    chains: Number(chains),
    runs: Number(runs || 20),
    concurrency: Number(concurrency || 32),
  };
}

// Nearest-rank percentile of a list of numbers (milliseconds).
function percentile(values, p) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return Math.round(sorted[rank] * 100) / 100;
}

function nowMs() {
  return Number(process.hrtime.bigint()) / 1e6;
}

// The installed version of a package (read from its folder: some packages do not export
// their package.json).
function packageVersion(name) {
  const file = path.join(__dirname, 'node_modules', name, 'package.json');
  return JSON.parse(fs.readFileSync(file, 'utf8')).version;
}

function report(figures) {
  process.stdout.write(JSON.stringify(figures) + '\n');
}

module.exports = { parseArgs, percentile, nowMs, packageVersion, report };
