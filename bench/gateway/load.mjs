// Closed-loop HTTP load generator for bench/router.py: POSTs the workload query with keep-alive
// connections, checks every response body against the expected answer, and reports throughput
// and latency percentiles as JSON on stdout.
import fs from "node:fs";
import http from "node:http";

const [url, seconds, concurrency, queryFile, expectedFile] = process.argv.slice(2);
const body = JSON.stringify({ query: fs.readFileSync(queryFile, "utf8"), operationName: "TestQuery" });
const expectedText = fs.readFileSync(expectedFile, "utf8").trim();
const expectedCanonical = JSON.stringify(JSON.parse(expectedText));
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(concurrency) });
const target = new URL(url);
const latencies = [];
let failures = 0;
let mismatches = 0;
const deadline = Date.now() + Number(seconds) * 1000;

function once() {
  return new Promise((resolve) => {
    const started = process.hrtime.bigint();
    const request = http.request(
      {
        host: target.hostname, port: target.port, path: target.pathname, method: "POST", agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      },
      (response) => {
        const chunks = [];
        response.on("data", (chunk) => chunks.push(chunk));
        response.on("end", () => {
          const elapsed = Number(process.hrtime.bigint() - started) / 1e6;
          const text = Buffer.concat(chunks).toString("utf8");
          if (response.statusCode !== 200) failures += 1;
          else if (text !== expectedText) {
            let same = false;
            try { same = JSON.stringify(JSON.parse(text)) === expectedCanonical; } catch {}
            if (!same) mismatches += 1;
          }
          latencies.push(elapsed);
          resolve();
        });
      },
    );
    request.on("error", () => { failures += 1; resolve(); });
    request.end(body);
  });
}

async function worker() {
  while (Date.now() < deadline) await once();
}

const start = Date.now();
await Promise.all(Array.from({ length: Number(concurrency) }, worker));
const elapsedSeconds = (Date.now() - start) / 1000;
latencies.sort((a, b) => a - b);
const pick = (q) => latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] : null;
process.stdout.write(JSON.stringify({
  requests: latencies.length, failures, mismatches,
  rps: latencies.length / elapsedSeconds,
  p50: pick(0.5), p95: pick(0.95), p99: pick(0.99),
}) + "\n");
agent.destroy();
