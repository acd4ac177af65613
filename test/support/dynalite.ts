/** An in-process dynalite (in-memory DynamoDB) on a free loopback port, and a client pointed at it. */
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { CreateTableCommand, DescribeTableCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { createDynamoDbClient } from "../../stores/dynamodb";
import { localCreateTableInput } from "../../stores/dynamodb-table";

interface DynaliteOptions {
  readonly createTableMs?: number;
  readonly deleteTableMs?: number;
  readonly updateTableMs?: number;
}
// dynalite ships no type declarations.
const dynalite = require("dynalite") as (options: DynaliteOptions) => Server;

export interface TestDynamoDb {
  readonly endpoint: string;
  stop(): Promise<void>;
}

export async function startDynalite(): Promise<TestDynamoDb> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: () => new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve()))),
  };
}

/** The store's production client settings with a local endpoint and dummy credentials, leaving process.env alone. */
export function localDynamoDbClient(endpoint: string): DynamoDBClient {
  return createDynamoDbClient({
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
  });
}

/** Creates the connections table as infra would and waits until it is ACTIVE. */
export async function createConnectionsTable(client: DynamoDBClient, tableName: string): Promise<void> {
  await client.send(new CreateTableCommand(localCreateTableInput(tableName)));
  for (let i = 0; i < 100; i++) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    if (Table?.TableStatus === "ACTIVE") return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`table ${tableName} did not become ACTIVE`);
}
