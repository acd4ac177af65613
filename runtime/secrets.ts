/**
 * Secrets the functions read at cold start. The Redis AUTH token lives in Secrets Manager; the function's
 * environment carries only the secret's ARN (REDIS_AUTH_SECRET_ARN), and the token is fetched once per container
 * by app/container.ts before the store client is built. The value never reaches a log line or an
 * error message.
 */
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import type { RuntimeEnv } from "../contract/env";

/**
 * The whole fetch, retries included, must finish within this: it runs inside the first invocation, whose
 * function times out after 10 s (store-only routes), and a hung fetch must fail that invocation, not eat it.
 */
export const SECRET_FETCH_DEADLINE_MS = 5_000;

/** Thrown when a secret cannot be read; says which secret and why, never what it holds. */
export class SecretFetchError extends Error {
  override readonly name = "SecretFetchError";
}

export interface SecretFetchOptions {
  /** Abort the fetch (all attempts) after this many ms. Default {@link SECRET_FETCH_DEADLINE_MS}. */
  readonly deadlineMs?: number;
  /** A client to use (and keep); by default one is built for the call and destroyed after it. */
  readonly client?: SecretsManagerClient;
}

/**
 * A Secrets Manager client that fails fast: 1 s to connect, 2 s per attempt, 3 attempts. The endpoint follows
 * the standard `AWS_ENDPOINT_URL_SECRETS_MANAGER` override, region and credentials the standard chain (Lambda
 * sets both).
 */
export function createSecretsManagerClient(): SecretsManagerClient {
  return new SecretsManagerClient({
    maxAttempts: 3,
    requestHandler: { connectionTimeout: 1000, requestTimeout: 2000, throwOnRequestTimeout: true },
  });
}

/** The `SecretString` of the current version of `secretId` (an ARN or a name). */
export async function fetchSecretString(secretId: string, options: SecretFetchOptions = {}): Promise<string> {
  const deadlineMs = options.deadlineMs ?? SECRET_FETCH_DEADLINE_MS;
  const client = options.client ?? createSecretsManagerClient();
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), deadlineMs);
  try {
    const output = await client.send(new GetSecretValueCommand({ SecretId: secretId }), {
      abortSignal: controller.signal,
    });
    if (typeof output.SecretString !== "string" || output.SecretString === "") {
      throw new SecretFetchError(`secret ${secretId} has no SecretString (a binary or empty secret)`);
    }
    return output.SecretString;
  } catch (error) {
    if (error instanceof SecretFetchError) throw error;
    if (controller.signal.aborted) {
      throw new SecretFetchError(`reading secret ${secretId} took longer than ${deadlineMs} ms`);
    }
    const { name, message } = error as Error;
    throw new SecretFetchError(`reading secret ${secretId} failed: ${name}: ${message}`);
  } finally {
    clearTimeout(timer);
    if (!options.client) client.destroy();
  }
}

/** Reads one secret; {@link fetchSecretString} unless a test substitutes its own. */
export type SecretReader = (secretId: string) => Promise<string>;

/**
 * The environment with the Redis AUTH token filled in from REDIS_AUTH_SECRET_ARN's secret; unchanged when the
 * store is not Redis or the token is not in a secret (local runs give it directly, or in REDIS_URL).
 */
export async function resolveRedisAuth(
  env: RuntimeEnv,
  read: SecretReader = (id) => fetchSecretString(id),
): Promise<RuntimeEnv> {
  const redis = env.redis;
  if (!redis || "url" in redis || !redis.authSecretArn) return env;
  const { authSecretArn, ...connection } = redis;
  return { ...env, redis: { ...connection, authToken: await read(authSecretArn) } };
}
