/**
 * The token sweeper in the Pulumi program under mocks: deployed with `auth: jwt` only, from its own bundle, on an
 * EventBridge schedule of `tokenSweepMinutes` (EventBridge's rate syntax), invocable by that rule only, with a
 * least-privilege role (store read, POST and DELETE on `@connections`), and none at rate 0.
 */
import type * as pulumi from "@pulumi/pulumi";
import { expect } from "chai";
import { TOKEN_SWEEPER } from "../contract/routes";
import { bundleHandler } from "../infra/bundle";
import { ConfigError, PROJECT_NAME, parseConfig } from "../infra/config";
import { DYNAMODB_LIST_PLANNING_ACTIONS, type PolicyDocument } from "../infra/iam";
import { rateExpression } from "../infra/token-sweeper";
import { runProgram, type StackSettings } from "./support/program-run";
import { plain, type RecordedResource, type RecordingMocks } from "./support/pulumi-mocks";
import { rawConfig } from "./support/raw-config";

const NAME = PROJECT_NAME;
const T = {
  fn: "aws:lambda/function:Function",
  permission: "aws:lambda/permission:Permission",
  invokeConfig: "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig",
  rolePolicy: "aws:iam/rolePolicy:RolePolicy",
  rule: "aws:cloudwatch/eventRule:EventRule",
  target: "aws:cloudwatch/eventTarget:EventTarget",
} as const;

const JWT: StackSettings = {
  auth: "jwt",
  "jwt.issuer": "https://example.auth0.com/",
  "jwt.audience": "chat-api",
  "jwt.jwksUrl": "https://example.auth0.com/.well-known/jwks.json",
};

async function run(settings: StackSettings): Promise<RecordingMocks> {
  return (await runProgram({ settings })).mocks;
}

function named(r: RecordingMocks, type: string, name: string): RecordedResource {
  const found = r.ofType(type).find((x) => x.name === name);
  if (!found) throw new Error(`no ${type} named ${name}`);
  return found;
}

const sweeperName = `${NAME}-${TOKEN_SWEEPER.name}`;

describe("infra: token sweeper", function () {
  this.timeout(120_000);

  describe("auth jwt, dynamodb, default rate", () => {
    let r: RecordingMocks;
    before(async () => {
      r = await run({ store: "dynamodb", ...JWT });
    });

    it("deploys the sweeper from its own bundle, with its own timeout", async () => {
      const fn = named(r, T.fn, sweeperName).inputs as any;
      expect(fn.timeout).to.equal(TOKEN_SWEEPER.timeoutSeconds);
      const assets = await (fn.code as pulumi.asset.AssetArchive).assets;
      const code = await (Object.values(assets)[0] as pulumi.asset.StringAsset).text;
      expect(code).to.equal(bundleHandler(TOKEN_SWEEPER.module, "dynamodb"));
    });

    it("runs it every minute from an EventBridge rule, which alone may invoke it; no retries", () => {
      const rule = named(r, T.rule, `${sweeperName}-schedule`);
      expect(rule.inputs.scheduleExpression).to.equal("rate(1 minute)");
      const fn = named(r, T.fn, sweeperName);
      const target = named(r, T.target, `${sweeperName}-schedule-target`);
      expect(target.inputs.arn).to.equal(fn.state.arn);
      const permissions = r.ofType(T.permission).filter((p) => p.inputs.function === fn.state.name);
      expect(permissions).to.have.length(1);
      expect(permissions[0]!.inputs).to.deep.include({
        action: "lambda:InvokeFunction",
        principal: "events.amazonaws.com",
      });
      const config = named(r, T.invokeConfig, `${sweeperName}-async`);
      expect(config.inputs).to.deep.include({ functionName: fn.state.name, maximumRetryAttempts: 0 });
    });

    it("grants it only the store read, POST and DELETE on @connections", () => {
      const doc: PolicyDocument = JSON.parse(
        plain<string>(named(r, T.rolePolicy, `${sweeperName}-policy`).inputs.policy),
      );
      const table = doc.Statement.find((s) => s.Sid === "ConnectionStore")!;
      expect([...table.Action].sort()).to.deep.equal(
        ["dynamodb:GetItem", "dynamodb:Scan", ...DYNAMODB_LIST_PLANNING_ACTIONS].sort(),
      );
      const post = doc.Statement.find((s) => s.Sid === "PostToConnections")!;
      expect(post.Action).to.deep.equal(["execute-api:ManageConnections"]);
      expect(post.Resource.some((res) => res.includes("/POST/@connections/"))).to.equal(true);
      expect(post.Resource.some((res) => res.includes("/DELETE/@connections/"))).to.equal(true);
      expect(doc.Statement.map((s) => s.Sid)).to.not.include("InvokeFanOutWorker");
      expect(doc.Statement.map((s) => s.Sid)).to.not.include("RoomIndex");
    });
  });

  it("takes the rate from tokenSweepMinutes (plural unit above 1), and deploys none at 0 or without auth", async () => {
    const every5 = await run({ store: "dynamodb", ...JWT, tokenSweepMinutes: 5 });
    expect(named(every5, T.rule, `${sweeperName}-schedule`).inputs.scheduleExpression).to.equal("rate(5 minutes)");
    const off = await run({ store: "dynamodb", ...JWT, tokenSweepMinutes: 0 });
    expect(off.ofType(T.fn).map((f) => f.name)).to.not.include(sweeperName);
    expect(off.ofType(T.rule)).to.deep.equal([]);
    const noAuth = await run({ store: "dynamodb" });
    expect(noAuth.ofType(T.fn).map((f) => f.name)).to.not.include(sweeperName);
  });

  it("writes EventBridge's rate syntax and bounds the key, naming it", () => {
    expect(rateExpression(1)).to.equal("rate(1 minute)");
    expect(rateExpression(60)).to.equal("rate(60 minutes)");
    expect(() => rateExpression(0)).to.throw(RangeError);
    expect(() => parseConfig(rawConfig({ tokenSweepMinutes: -1 }), "dev"))
      .to.throw(ConfigError)
      .with.property("message")
      .that.includes("tokenSweepMinutes");
  });
});
