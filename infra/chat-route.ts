/**
 * `ChatRoute`: one route of the WebSocket API as a component: its handler function (with log group, role and
 * policy, handler-function.ts), the permission for API Gateway to invoke it from that route only, the Lambda
 * proxy integration and the route itself. `ChatApi` creates one per entry of the route table.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { AUTHORIZER, type RouteDefinition } from "../contract/routes";
import type { ConnectAuthorizer } from "./authorizer";
import {
  createHandlerFunction,
  type FunctionContext,
  type HandlerFunction,
  type ShardQueues,
} from "./handler-function";
import { movedChildOptions } from "./moved-children";

export const CHAT_ROUTE_TYPE = "websocket-chat:index:ChatRoute";

export interface ChatRouteArgs {
  /** The entry of the route table (contract/routes.ts) this component deploys. */
  readonly route: RouteDefinition;
  /** What every function of the `ChatApi` shares: the API, the store, settings and environment. */
  readonly context: FunctionContext;
  /**
   * The queue `sendmessage` hands shards of large broadcasts to (the fan-out worker consumes it); required when
   * the route invokes the worker.
   * @default none
   */
  readonly shardQueue?: ShardQueues;
  /**
   * The `$connect` authorizer; attached when this is the `$connect` route (the only route of a WebSocket API
   * that can carry one).
   * @default none: every route is `NONE`
   */
  readonly authorizer?: ConnectAuthorizer;
}

/**
 * A route, its function and the wiring between them.
 * @example
 * ```ts
 * new ChatRoute(`${name}-route-${route.name}`, { route, context, shardQueue }, { parent: chatApi });
 * ```
 */
export class ChatRoute extends pulumi.ComponentResource {
  public readonly route: RouteDefinition;
  /** The handler function, named `{apiName}-{route.name}`. */
  public readonly fn: aws.lambda.Function;
  public readonly integration: aws.apigatewayv2.Integration;
  /** The API Gateway route; the stage waits for it. */
  public readonly apiRoute: aws.apigatewayv2.Route;

  constructor(name: string, args: ChatRouteArgs, opts?: pulumi.ComponentResourceOptions) {
    super(CHAT_ROUTE_TYPE, name, {}, opts);
    const children = movedChildOptions(this, opts);
    const prefix = `${args.context.apiName}-${args.route.name}`;

    const handler = createHandlerFunction(
      { definition: args.route, context: args.context, shardQueue: args.shardQueue },
      children,
    );
    this.createPermission(prefix, args, handler, children);
    const integration = this.createIntegration(prefix, args, handler, children);
    const apiRoute = this.createRoute(prefix, args, integration, children);

    this.route = args.route;
    this.fn = handler.fn;
    this.integration = integration;
    this.apiRoute = apiRoute;
    this.registerOutputs({ functionName: handler.fn.name });
  }

  /** API Gateway may invoke the function from this route of this stage only. */
  private createPermission(
    prefix: string,
    args: ChatRouteArgs,
    handler: HandlerFunction,
    opts: pulumi.CustomResourceOptions,
  ): void {
    const { api, settings } = args.context;
    new aws.lambda.Permission(
      `${prefix}-invoke`,
      {
        action: "lambda:InvokeFunction",
        function: handler.fn.name,
        principal: "apigateway.amazonaws.com",
        sourceArn: pulumi.interpolate`${api.executionArn}/${settings.stage}/${args.route.routeKey}`,
      },
      opts,
    );
  }

  private createIntegration(
    prefix: string,
    args: ChatRouteArgs,
    handler: HandlerFunction,
    opts: pulumi.CustomResourceOptions,
  ): aws.apigatewayv2.Integration {
    return new aws.apigatewayv2.Integration(
      `${prefix}-integration`,
      {
        apiId: args.context.api.id,
        integrationType: "AWS_PROXY",
        integrationMethod: "POST",
        integrationUri: handler.fn.invokeArn,
      },
      opts,
    );
  }

  private createRoute(
    prefix: string,
    args: ChatRouteArgs,
    integration: aws.apigatewayv2.Integration,
    opts: pulumi.CustomResourceOptions,
  ): aws.apigatewayv2.Route {
    const { authorizer, route } = args;
    return new aws.apigatewayv2.Route(
      `${prefix}-route`,
      {
        apiId: args.context.api.id,
        routeKey: route.routeKey,
        target: pulumi.interpolate`integrations/${integration.id}`,
        // Only `$connect` can carry an authorizer on a WebSocket API; every other route is NONE.
        ...(authorizer && route.routeKey === AUTHORIZER.routeKey
          ? { authorizationType: "CUSTOM", authorizerId: authorizer.authorizer.id }
          : { authorizationType: "NONE" }),
      },
      opts,
    );
  }
}
