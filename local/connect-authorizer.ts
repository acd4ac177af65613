/**
 * The `$connect` authorizer step of the handshake: checks the identity sources, runs the authorizer with its
 * REQUEST event and logs its decision (the rules themselves are in authorizer.ts).
 */
import type { IncomingMessage } from "node:http";
import {
  type AuthorizerDecision,
  type AuthorizerHandler,
  authorizerEvent,
  authorizerInput,
  DEFAULT_AUTHORIZER_TIMEOUT_MS,
  type IdentitySource,
  identitySourcesPresent,
  runAuthorizer,
} from "./authorizer";
import type { ConnectInput, ConnectionContext } from "./events";
import type { GatewayLog } from "./gateway-log";

export interface ConnectAuthorizerOptions {
  readonly identitySources: readonly IdentitySource[];
  readonly handler: AuthorizerHandler;
  /** `arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/$connect`. */
  readonly methodArn: string;
  readonly timeoutMs?: number;
  readonly log: GatewayLog;
}

export class ConnectAuthorizer {
  constructor(private readonly options: ConnectAuthorizerOptions) {}

  /** The authorizer's decision on this upgrade request; 401 without calling it when an identity source is missing. */
  async authorize(req: IncomingMessage, ctx: ConnectionContext, input: ConnectInput): Promise<AuthorizerDecision> {
    const { identitySources, handler, methodArn, timeoutMs, log } = this.options;
    if (!identitySourcesPresent(identitySources, input)) {
      return { allow: false, status: 401, note: "identity source missing: authorizer not called" };
    }
    const event = authorizerEvent(ctx, authorizerInput(req, input), methodArn);
    const { decision, durationMs } = await runAuthorizer(handler, event, timeoutMs ?? DEFAULT_AUTHORIZER_TIMEOUT_MS);
    const status = decision.allow ? "200" : String(decision.status);
    log("AUTHORIZE", "authorizer", ctx.connectionId, status, durationMs, decision.note);
    return decision;
  }
}
