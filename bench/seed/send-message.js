// The seed's sample `sendmessage` handler: aws-samples/simple-websockets-chat-app (sendmessage/app.js), ported
// from SDK v2 to v3 with the low-level DynamoDB client in place of the DocumentClient (no @aws-sdk/lib-dynamodb
// dependency; the v2 DocumentClient only marshalled the same `connectionId` string attribute). Same behaviour:
// Scan the whole table for connection ids, create a management API client per invocation, post to every
// connection in one Promise.all, delete those that answer 410. A baseline for `npm run size` only; never deployed.
// Original: Copyright Amazon.com, Inc. or its affiliates. SPDX-License-Identifier: MIT-0.

const { DynamoDBClient, ScanCommand, DeleteItemCommand } = require("@aws-sdk/client-dynamodb");
const { ApiGatewayManagementApiClient, PostToConnectionCommand } = require("@aws-sdk/client-apigatewaymanagementapi");

const ddb = new DynamoDBClient({ region: process.env.AWS_REGION });

const { TABLE_NAME } = process.env;

exports.handler = async (event) => {
  let connectionData;

  try {
    connectionData = await ddb.send(new ScanCommand({ TableName: TABLE_NAME, ProjectionExpression: "connectionId" }));
  } catch (e) {
    return { statusCode: 500, body: e.stack };
  }

  const apigwManagementApi = new ApiGatewayManagementApiClient({
    endpoint: `https://${event.requestContext.domainName}/${event.requestContext.stage}`,
  });

  const postData = JSON.parse(event.body).data;

  const postCalls = connectionData.Items.map(async ({ connectionId }) => {
    const id = connectionId.S;
    try {
      await apigwManagementApi.send(new PostToConnectionCommand({ ConnectionId: id, Data: postData }));
    } catch (e) {
      if (e.$metadata && e.$metadata.httpStatusCode === 410) {
        console.log(`Found stale connection, deleting ${id}`);
        await ddb.send(new DeleteItemCommand({ TableName: TABLE_NAME, Key: { connectionId: { S: id } } }));
      } else {
        throw e;
      }
    }
  });

  try {
    await Promise.all(postCalls);
  } catch (e) {
    return { statusCode: 500, body: e.stack };
  }

  return { statusCode: 200, body: "Data sent." };
};
