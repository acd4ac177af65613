/**
 * Every store, registered: what the local gateway and tests import so that any STORE works in-process. Lambda
 * bundles never include this file; each is built with one store's factory instead (app/stores/, infra/bundle.ts).
 */
import "./stores/dynamodb";
import "./stores/memory";
import "./stores/redis";

/**
 * The store selected by `env.store`. DynamoDB and Redis stores are new on every call, each with its own client, so
 * call this once per container and reuse the result; memory is one store per process.
 */
export { createStore } from "./store-registry";
