/**
 * The Redis AUTH token in AWS Secrets Manager. Functions get only the secret's ARN (`REDIS_AUTH_SECRET_ARN`) and
 * read the token at cold start (runtime/secrets.ts), so it is in no Lambda environment variable — which
 * anyone with `lambda:GetFunctionConfiguration` can read — and in no stack output.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

export interface RedisAuthSecretArgs {
  /** The token; must already be a secret output so Pulumi encrypts it in state. */
  readonly authToken: pulumi.Output<string>;
  /** Keep a deleted secret recoverable for 30 days instead of deleting it at once. */
  readonly recoverable: boolean;
  /** Pulumi `protect` on the secret. */
  readonly protect: boolean;
}

export interface RedisAuthSecret {
  readonly secret: aws.secretsmanager.Secret;
  /** Holds the token; functions must not start before it exists (their cold start reads it). */
  readonly version: aws.secretsmanager.SecretVersion;
  readonly arn: pulumi.Output<string>;
}

/** Secrets Manager's longest recovery window; 0 deletes at once (dev stacks, which come and go). */
const RECOVERY_WINDOW_DAYS = 30;

export function createRedisAuthSecret(
  name: string,
  args: RedisAuthSecretArgs,
  parent: pulumi.Resource,
): RedisAuthSecret {
  // Encrypted with the account's aws/secretsmanager key: readers then need no kms:Decrypt grant of their own.
  const secret = new aws.secretsmanager.Secret(
    `${name}-redis-auth-secret`,
    {
      description: `Redis AUTH token of the ${name} chat store (${pulumi.getStack()})`,
      recoveryWindowInDays: args.recoverable ? RECOVERY_WINDOW_DAYS : 0,
    },
    { parent, protect: args.protect },
  );
  // Not protected: a new token replaces the version, and protect would block exactly that rotation. Protecting
  // the secret already stops it from being deleted.
  const version = new aws.secretsmanager.SecretVersion(
    `${name}-redis-auth-version`,
    { secretId: secret.id, secretString: pulumi.secret(args.authToken) },
    { parent },
  );
  return { secret, version, arn: secret.arn };
}
