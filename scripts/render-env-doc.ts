/**
 * Renders docs/runtime-env.md from contract/env-vars.ts: every property of its `ENV` object, with the variable
 * name and the property's doc comment, read with the TypeScript compiler API so the reference cannot drift from
 * the source. Pure: source text in, Markdown out.
 */
import * as ts from "typescript";

export const ENV_SOURCE = "contract/env-vars.ts";

/** One variable of the contract: its name and its doc comment, whitespace collapsed. */
export interface EnvVarDoc {
  readonly name: string;
  readonly doc: string;
}

/**
 * The text of a JSDoc comment. `{@link X}` becomes `X` in a code span, and `{@link ENV.X}` the variable's own name,
 * since the reader of the reference knows variables, not the object that names them.
 */
function commentText(comment: ts.JSDoc["comment"]): string {
  if (comment === undefined) return "";
  if (typeof comment === "string") return comment;
  return comment
    .map((part) => {
      if (ts.isJSDocLink(part) || ts.isJSDocLinkCode(part) || ts.isJSDocLinkPlain(part)) {
        const target = (part.text.trim() || (part.name ? part.name.getText() : "")).replace(/^ENV\./, "");
        return `\`${target}\``;
      }
      return part.text;
    })
    .join("");
}

function findEnvObject(source: ts.SourceFile): ts.ObjectLiteralExpression {
  for (const statement of source.statements) {
    if (!ts.isVariableStatement(statement)) continue;
    for (const declaration of statement.declarationList.declarations) {
      if (!ts.isIdentifier(declaration.name) || declaration.name.text !== "ENV") continue;
      let init = declaration.initializer;
      while (init && (ts.isAsExpression(init) || ts.isSatisfiesExpression(init))) init = init.expression;
      if (init && ts.isObjectLiteralExpression(init)) return init;
    }
  }
  throw new Error(`${ENV_SOURCE}: no \`export const ENV = { … }\` object`);
}

/** Every property of `ENV`, in source order; throws on a property without a string value or a doc comment. */
export function readEnvVars(sourceText: string): EnvVarDoc[] {
  const source = ts.createSourceFile(ENV_SOURCE, sourceText, ts.ScriptTarget.Latest, true);
  return findEnvObject(source).properties.map((property) => {
    if (!ts.isPropertyAssignment(property) || !ts.isStringLiteral(property.initializer)) {
      throw new Error(`${ENV_SOURCE}: every ENV property must be \`KEY: "NAME"\`, got ${property.getText()}`);
    }
    const name = property.initializer.text;
    const doc = ts
      .getJSDocCommentsAndTags(property)
      .filter(ts.isJSDoc)
      .map((jsDoc) => commentText(jsDoc.comment))
      .join(" ")
      .replace(/\s+/g, " ")
      .trim();
    if (doc === "") throw new Error(`${ENV_SOURCE}: ENV.${property.name.getText()} has no doc comment`);
    return { name, doc };
  });
}

const cell = (text: string) => text.replace(/\|/g, "\\|");

/** The whole of docs/runtime-env.md. */
export function renderEnvDoc(sourceText: string): string {
  const rows = readEnvVars(sourceText).map(({ name, doc }) => `| \`${name}\` | ${cell(doc)} |`);
  return [
    `<!-- Generated from ${ENV_SOURCE} by \`npm run docs:env\`; test/env-docs.test.ts checks it. -->`,
    "# Runtime environment reference",
    "",
    "The environment variables of the runtime contract: infra sets them on every Lambda function, the local",
    "gateway sets the same ones for the same handlers, and the runtime reads them once per container",
    "(contract/env.ts), failing with an error that names a variable that is missing or invalid. Each meaning",
    `below is the doc comment of that variable in \`${ENV_SOURCE}\`; edit it there and run \`npm run docs:env\`.`,
    "How the contract fits the rest of the code is in [architecture.md](architecture.md#the-runtime-env-contract).",
    "",
    "| Variable | Meaning |",
    "| --- | --- |",
    ...rows,
    "",
  ].join("\n");
}
