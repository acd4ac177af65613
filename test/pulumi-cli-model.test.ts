/**
 * The model of the Pulumi CLI's config handling (test/support/pulumi-cli.ts) on small inline fixtures: each case
 * asserts the exact text the CLI prints, or the exact map a Node.js program receives.
 */
import { expect } from "chai";
import { cliConfig, loadProject, loadStack, PulumiCliError } from "./support/pulumi-cli";

/** A Pulumi.yaml for project `chat` whose `config:` block is `config` (YAML, indented by two). */
const project = (config: string) => `name: chat\nruntime: nodejs\nconfig:\n${config.replace(/^/gm, "  ")}\n`;

const run = (projectConfig: string, stackYaml = "") =>
  cliConfig({ projectYaml: project(projectConfig), stackYaml, stackName: "dev" });

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).to.be.instanceOf(PulumiCliError);
    return (error as Error).message;
  }
  throw new Error("expected the CLI to reject this configuration");
}

describe("Pulumi CLI model: project defaults and property paths", () => {
  it("rejects a typed string key whose sub-key default path-sets into it (the CLI's real failure)", () => {
    // mergeConfig: `auth` gets "", then `auth.issuer`'s Set(path) replaces that string root with {"issuer":""};
    // validateStackConfigValues then checks `auth` against the merged map.
    const config = 'auth:\n  type: string\n  default: ""\nauth.issuer:\n  type: string\n  default: ""';
    expect(errorOf(() => run(config))).to.equal(
      "validating stack config: Stack 'dev' with configuration key 'auth' must be of type 'string'",
    );
  });

  it("rejects the same shape when the stack sets the string and only the sub-key has a default", () => {
    const config = "auth:\n  type: string\nauth.issuer:\n  type: string\n  default: https://issuer";
    expect(errorOf(() => run(config, "config:\n  auth: jwt\n"))).to.equal(
      "validating stack config: Stack 'dev' with configuration key 'auth' must be of type 'string'",
    );
  });

  it("delivers a dotted default as an object under its first segment, never as the dotted key", () => {
    const { config } = run("throttle.rateLimit:\n  type: integer\n  default: 500");
    expect(config).to.deep.equal({ "chat:throttle": '{"rateLimit":500}' });
  });

  it("keeps a flat dotted stack key flat, and a declared default still creates the object key", () => {
    const { config } = run("redis.replicas:\n  type: integer\n  default: 3", "config:\n  chat:redis.replicas: 1\n");
    expect(config).to.deep.equal({ "chat:redis": '{"replicas":3}', "chat:redis.replicas": "1" });
  });

  it("does not count a flat dotted stack key as setting the declared path", () => {
    expect(errorOf(() => run("redis.replicas:\n  type: integer", "config:\n  redis.replicas: 1\n"))).to.equal(
      "validating stack config: Stack 'dev' is missing configuration value 'redis.replicas'",
    );
  });

  it("coerces path-set defaults like the CLI: 'true' → true, '500' → 500, '0123' stays a string", () => {
    const { config } = run(
      'limits.on:\n  default: "true"\nlimits.max: 500\nlimits.code: "0123"\nlimits.ratio: {default: 0.5}',
    );
    expect(config).to.deep.equal({ "chat:limits": '{"code":"0123","max":500,"on":true,"ratio":0.5}' });
  });

  it("fails when a default must path-set below a primitive that is not the root", () => {
    expect(errorOf(() => run("a.b:\n  default: 2\na.b.c:\n  default: 1"))).to.equal(
      "validating stack config: a.b: expected a map",
    );
  });

  it("rejects a malformed key path", () => {
    expect(errorOf(() => run("a.:\n  default: 2"))).to.equal(
      "validating stack config: getting stack config value for key 'chat:a.': invalid config key path: " +
        "expected property path to end with a name or index",
    );
  });
});

describe("Pulumi CLI model: stack values and types", () => {
  it("turns YAML scalars into strings: bools, ints, floats, YAML 1.1 octals and timestamps", () => {
    const stack = "config:\n  on: true\n  n: 5\n  f: 1.0\n  g: 1.5\n  mode: 0755\n  day: 2001-12-14\n  quoted: '5'\n";
    expect(run("", stack).config).to.deep.equal({
      "chat:day": "2001-12-14 00:00:00 +0000 UTC",
      "chat:f": "1",
      "chat:g": "1.5",
      "chat:mode": "493",
      "chat:n": "5",
      "chat:on": "true",
      "chat:quoted": "5",
    });
  });

  it("rejects `yes` for a boolean key (YAML 1.2: it is the string 'yes')", () => {
    expect(errorOf(() => run("enabled:\n  type: boolean", "config:\n  enabled: yes\n"))).to.equal(
      "validating stack config: Stack 'dev' with configuration key 'enabled' must be of type 'boolean'",
    );
  });

  it("rejects 1.5 for an integer key but accepts an int-looking string", () => {
    expect(errorOf(() => run("replicas:\n  type: integer", "config:\n  replicas: 1.5\n"))).to.equal(
      "validating stack config: Stack 'dev' with configuration key 'replicas' must be of type 'integer'",
    );
    expect(run("replicas:\n  type: integer", "config:\n  replicas: '+3'\n").config).to.deep.equal({
      "chat:replicas": "+3",
    });
  });

  it("type-checks array items, reporting the full array type", () => {
    const config = "ports:\n  type: array\n  items:\n    type: integer";
    expect(run(config, "config:\n  ports: [80, '443']\n").config).to.deep.equal({ "chat:ports": '[80,"443"]' });
    expect(errorOf(() => run(config, "config:\n  ports: [80, 1.5]\n"))).to.equal(
      "validating stack config: Stack 'dev' with configuration key 'ports' must be of type 'array<integer>'",
    );
  });

  it("marks a whole object key secret when any nested value is secure, and decrypts it for the program", () => {
    const stack = "config:\n  db:\n    host: h\n    password:\n      secure: plain:pw\n  token:\n    secure: plain:t\n";
    expect(run("", stack)).to.deep.include({
      config: { "chat:db": '{"host":"h","password":"pw"}', "chat:token": "t" },
      secretKeys: ["chat:db", "chat:token"],
    });
  });

  it("requires a secure stack value for a key the project declares secret", () => {
    const config = "apiKey:\n  type: string\n  secret: true";
    expect(errorOf(() => run(config, "config:\n  apiKey: k\n"))).to.equal(
      "validating stack config: Stack 'dev' with configuration key 'apiKey' must be encrypted as it's secret",
    );
    expect(run(config, "config:\n  apiKey:\n    secure: plain:k\n").secretKeys).to.deep.equal(["chat:apiKey"]);
  });

  it("lists every missing required key in one sorted message", () => {
    const config = "zone:\n  type: string\nauth.issuer:\n  type: string\nbucket: {}\nregion:\n  type: string";
    expect(errorOf(() => run(config, "config:\n  region: eu-west-1\n"))).to.equal(
      "validating stack config: Stack 'dev' is missing configuration values 'auth.issuer', 'bucket' and 'zone'",
    );
  });

  it("namespaces unqualified stack keys with the project and reads the legacy pkg:config:name form", () => {
    const stack = "config:\n  stage: dev\n  aws:config:region: eu-west-1\n  other:key: v\n";
    expect(run("", stack).config).to.deep.equal({ "aws:region": "eu-west-1", "chat:stage": "dev", "other:key": "v" });
  });

  it("treats a null stack value as the empty string, with the CLI's warning", () => {
    const { config, warnings } = run("", "config:\n  empty:\n");
    expect(config).to.deep.equal({ "chat:empty": "" });
    expect(warnings).to.deep.equal([
      'No value for configuration key "chat:empty". This is currently treated as an empty string `""`, ' +
        "but will be treated as `null` in a future version of pulumi.\n" +
        'Set the value to `""` to avoid this warning.',
    ]);
  });

  it("rejects a stack key with too many colons", () => {
    expect(errorOf(() => loadStack("config:\n  a:b:c: 1\n", "chat"))).to.equal(
      "invalid YAML file: could not unmarshal map: could not parse a:b:c as a configuration key " +
        "(configuration keys should be of the form `<namespace>:<name>`)",
    );
  });
});

describe("Pulumi CLI model: Pulumi.yaml", () => {
  it("rewrites shorthand: project keys become defaults, other namespaces become values", () => {
    expect(loadProject(project("stage: dev\naws:region: us-west-2\nports: [80]")).config).to.deep.equal({
      stage: { default: "dev" },
      "aws:region": { value: "us-west-2" },
      ports: { default: [80] },
    });
    expect(run("aws:region: us-west-2").config).to.deep.equal({ "aws:region": "us-west-2" });
  });

  it("rejects a map shorthand value with the JSON schema's errors", () => {
    expect(errorOf(() => loadProject(project("limits:\n  max: 5")))).to.equal(
      "could not validate 'Pulumi.yaml': 7 errors occurred:\n" +
        "\t* #/config/limits: oneOf failed\n" +
        "\t* #/config/limits: expected string, but got object\n" +
        "\t* #/config/limits: expected integer, but got object\n" +
        "\t* #/config/limits: expected boolean, but got object\n" +
        "\t* #/config/limits: expected array, but got object\n" +
        "\t* #/config/limits: doesn't validate with '/$defs/configTypeDeclaration'\n" +
        "\t* #/config/limits: additionalProperties 'max' not allowed\n\n",
    );
  });

  it("rejects a float shorthand value", () => {
    expect(errorOf(() => loadProject(project("ratio: 0.5")))).to.include(
      "\t* #/config/ratio: expected integer, but got number\n",
    );
  });

  it("rejects an unknown type name", () => {
    expect(errorOf(() => loadProject(project("n:\n  type: number")))).to.include(
      "\t* #/config/n/type: doesn't validate with '/$defs/simpleConfigType'\n" +
        '\t* #/config/n/type: value must be one of "string", "integer", "boolean", "array", "object"\n',
    );
  });

  it("rejects a typed array without items", () => {
    expect(errorOf(() => loadProject(project("origins:\n  type: array")))).to.equal(
      "could not unmarshal 'Pulumi.yaml': The configuration key 'origins' declares an array " +
        "but does not specify the underlying type via the 'items' attribute",
    );
  });

  it("rejects a default of the wrong type", () => {
    expect(errorOf(() => loadProject(project("ttl:\n  type: integer\n  default: soon")))).to.equal(
      "could not unmarshal 'Pulumi.yaml': The default value specified for configuration key 'ttl' " +
        "is not of the expected type 'integer'",
    );
  });

  it("rejects a type or a default on another namespace's key", () => {
    expect(errorOf(() => loadProject(project("aws:region:\n  type: string")))).to.equal(
      "could not unmarshal 'Pulumi.yaml': Configuration key 'aws:region' is not namespaced by the project " +
        "and should not define a type",
    );
    expect(errorOf(() => loadProject(project("aws:region:\n  default: us-east-1")))).to.equal(
      "could not unmarshal 'Pulumi.yaml': Configuration key 'aws:region' is not namespaced by the project " +
        "and should not define a default value. Did you mean to use the 'value' attribute instead of 'default'?",
    );
  });

  it("rejects a project without a name, suggesting a near miss", () => {
    expect(errorOf(() => loadProject("nmae: chat\n"))).to.equal(
      "could not validate 'Pulumi.yaml': project is missing a 'name' attribute; found 'nmae' instead",
    );
  });
});
