/**
 * `npm run bench:capacity`: how many posts per second ONE invocation can push, which decides whether a broadcast
 * to N connections fits in one `sendmessage` (API Gateway gives it 29 s) or must be split across workers.
 *
 * An unthrottled loopback endpoint (20-40 ms per answer, HTTP and HTTPS with a self-signed certificate) receives
 * 20,000 posts from the real poster (runtime/connections-api.ts, keep-alive agent + SigV4) and from the
 * SDK client, at several concurrencies. Reported: posts/s and CPU µs per post of this process. A Lambda function
 * gets CPU in proportion to its memory (1,769 MB = 1 vCPU), so one invocation's ceiling is about
 *   min(account throttle, concurrency / latency, vCPU share x 1e6 / µs per post)
 * and the broadcast it can finish in its ~20 s of posting (29 s less margins) is that times 20.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from "@aws-sdk/client-apigatewaymanagementapi";
import { ConnectionPoster, preparePayload } from "../runtime/connections-api";
import { benchId } from "./ids";
import { startEndpointProcess } from "./processes";

const N = Number(process.env.CAPACITY_N ?? 20_000);
const SEED = "capacity";

function selfSigned(): { key: string; cert: string } {
  const dir = mkdtempSync(path.join(tmpdir(), "bench-tls-"));
  try {
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-keyout",
        path.join(dir, "key.pem"),
        "-out",
        path.join(dir, "cert.pem"),
      ],
      { stdio: "ignore" },
    );
    return {
      key: readFileSync(path.join(dir, "key.pem"), "utf8"),
      cert: readFileSync(path.join(dir, "cert.pem"), "utf8"),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function pool(concurrency: number, work: (id: string) => Promise<boolean>): Promise<number> {
  let next = 0;
  let ok = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < N) if (await work(benchId(SEED, next++))) ok++;
    }),
  );
  return ok;
}

async function main(): Promise<void> {
  process.env.AWS_REGION ??= "us-east-1";
  process.env.AWS_ACCESS_KEY_ID ??= "bench";
  process.env.AWS_SECRET_ACCESS_KEY ??= "bench";
  let tls: { key: string; cert: string } | undefined;
  try {
    tls = selfSigned();
  } catch {
    console.log("(openssl not available: HTTPS rows skipped)");
  }
  console.log(
    `## One invocation's posting capacity (${N.toLocaleString("en-US")} posts per row, latency 20-40 ms, no throttle)\n`,
  );
  console.log("| protocol | client | concurrency | posts/s | CPU µs/post | posts/s per core (CPU-bound) |");
  console.log("|---|---|---|---|---|---|");
  for (const protocol of tls ? (["http", "https"] as const) : (["http"] as const)) {
    const endpoint = await startEndpointProcess({
      rate: 1e9,
      burst: 1e9,
      latencyMinMs: 20,
      latencyMaxMs: 40,
      throttledLatencyMs: 1,
      stage: "bench",
      tls: protocol === "https" ? tls : undefined,
    });
    try {
      const callbackUrl = `${endpoint.origin}/bench`;
      for (const client of ["poster", "sdk"] as const) {
        for (const concurrency of client === "sdk" ? [128] : [64, 128, 256]) {
          await endpoint.reset({ seed: SEED, n: N, staleEvery: 0 });
          const agent =
            protocol === "https"
              ? new HttpsAgent({ keepAlive: true, maxSockets: concurrency, ca: tls!.cert })
              : new HttpAgent({ keepAlive: true, maxSockets: concurrency });
          const sdk = new ApiGatewayManagementApiClient({
            endpoint: callbackUrl,
            maxAttempts: 1,
            requestHandler: protocol === "https" ? { httpsAgent: agent as HttpsAgent } : { httpAgent: agent },
          });
          const poster = new ConnectionPoster(
            callbackUrl,
            agent,
            () => sdk.config.credentials(),
            () => sdk.config.region(),
          );
          const payload = preparePayload("x".repeat(100));
          const cpu0 = process.cpuUsage();
          const t0 = performance.now();
          const ok =
            client === "poster"
              ? await pool(concurrency, async (id) => (await poster.attempt(id, payload, 10_000)).kind === "delivered")
              : await pool(concurrency, async (id) => {
                  await sdk.send(new PostToConnectionCommand({ ConnectionId: id, Data: payload.body }));
                  return true;
                });
          const seconds = (performance.now() - t0) / 1000;
          const cpu = process.cpuUsage(cpu0);
          const usPerPost = (cpu.user + cpu.system) / ok;
          sdk.destroy();
          console.log(
            `| ${protocol} | ${client === "poster" ? "ours (signed poster)" : "SDK PostToConnectionCommand"} | ${concurrency} | ` +
              `${Math.round(ok / seconds).toLocaleString("en-US")} | ${usPerPost.toFixed(0)} | ${Math.round(1e6 / usPerPost).toLocaleString("en-US")} |`,
          );
        }
      }
    } finally {
      await endpoint.stop();
    }
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
