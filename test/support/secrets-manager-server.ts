/**
 * A loopback HTTP server speaking the part of AWS Secrets Manager's JSON 1.1 protocol the functions use:
 * `POST /` with `X-Amz-Target: secretsmanager.GetSecretValue` and `{"SecretId": …}`, answered as AWS does, so the
 * real SDK client (pointed here with AWS_ENDPOINT_URL_SECRETS_MANAGER) parses the result and raises the real
 * exceptions. It can also fail the next requests or hang, to prove the runtime's retries and deadline.
 */
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface SecretsManagerRequest {
  readonly target: string | undefined;
  readonly headers: IncomingHttpHeaders;
  readonly body: Record<string, unknown>;
}

/** How the next requests are answered before the normal behaviour resumes. */
export type Failure = "throttle" | "internal" | "hang";

export interface FakeSecretsManager {
  /** `http://127.0.0.1:{port}`. */
  readonly endpoint: string;
  /** Every request received, in order. */
  readonly requests: SecretsManagerRequest[];
  /** SecretString by secret ARN (or name); unknown ids answer ResourceNotFoundException. */
  readonly secrets: Map<string, string>;
  /** Answers the next `count` requests with `failure`. */
  failNext(failure: Failure, count: number): void;
  close(): Promise<void>;
}

const JSON_1_1 = "application/x-amz-json-1.1";

export async function startSecretsManager(): Promise<FakeSecretsManager> {
  const requests: SecretsManagerRequest[] = [];
  const secrets = new Map<string, string>();
  const failures: Failure[] = [];
  const sockets = new Set<Socket>();

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      let body: Record<string, unknown> = {};
      try {
        body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
      } catch {
        body = {};
      }
      const target = req.headers["x-amz-target"] as string | undefined;
      requests.push({ target, headers: req.headers, body });

      const error = (status: number, type: string, message: string) => {
        res.writeHead(status, {
          "content-type": JSON_1_1,
          "x-amzn-errortype": type,
          "x-amzn-requestid": `req-${requests.length}`,
        });
        res.end(JSON.stringify({ __type: type, message }));
      };

      const failure = failures.shift();
      if (failure === "hang") return; // never answered; the socket is destroyed on close()
      if (failure === "throttle") return error(400, "ThrottlingException", "Rate exceeded");
      if (failure === "internal") return error(500, "InternalServiceError", "An error occurred on the server side.");

      if (req.method !== "POST" || target !== "secretsmanager.GetSecretValue") {
        return error(400, "UnknownOperationException", `unsupported operation ${String(target)}`);
      }
      const secretId = body.SecretId;
      const value = typeof secretId === "string" ? secrets.get(secretId) : undefined;
      if (typeof secretId !== "string" || value === undefined) {
        return error(400, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.");
      }
      res.writeHead(200, { "content-type": JSON_1_1, "x-amzn-requestid": `req-${requests.length}` });
      res.end(
        JSON.stringify({
          ARN: secretId,
          Name: secretId.split(":").pop(),
          VersionId: "00000000-0000-0000-0000-000000000001",
          SecretString: value,
          VersionStages: ["AWSCURRENT"],
          CreatedDate: Math.floor(Date.now() / 1000),
        }),
      );
    });
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    secrets,
    failNext(failure, count) {
      for (let i = 0; i < count; i++) failures.push(failure);
    },
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
