/**
 * The AWS SDK signs every request, even to a loopback server, so it needs a region and some credentials.
 * Dummy values, set only where the real ones are absent; nothing here can reach AWS (endpoints are loopback).
 */
export function useDummyAwsCredentials(): void {
  process.env.AWS_REGION ??= "us-east-1";
  process.env.AWS_ACCESS_KEY_ID ??= "local";
  process.env.AWS_SECRET_ACCESS_KEY ??= "local";
}
