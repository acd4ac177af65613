/**
 * The docs hold together: every relative Markdown link in README.md, CONTRIBUTING.md and docs/*.md points at a
 * file of the repository (and, with a `#fragment` into Markdown, at a heading of it), every repository path a doc
 * names in a code span exists (code moves; the docs must follow), and no doc names a path outside the repository
 * or a ticket number a reader cannot look up.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { expect } from "chai";

const ROOT = join(__dirname, "..");
const DOCS = [
  "README.md",
  "CONTRIBUTING.md",
  ...readdirSync(join(ROOT, "docs"))
    .filter((file) => file.endsWith(".md"))
    .map((file) => `docs/${file}`),
];

/** The text outside fenced code blocks and inline code spans, where a `](…)` is a link. */
function prose(markdown: string): string {
  return markdown.replace(/^```[\s\S]*?^```/gm, "").replace(/`[^`\n]*`/g, "");
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const [, heading] of markdown.replace(/^```[\s\S]*?^```/gm, "").matchAll(/^#{1,6} +(.+?) *#* *$/gm)) {
    const slug = heading!
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-");
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

const read = (file: string) => readFileSync(join(ROOT, file), "utf8");

/** A code span that is a concrete repository path (no placeholder such as `<name>` or `{store}`). */
const REPO_PATH =
  /^(contract|stores|runtime|broadcast|chat|app|handlers|infra|local|bench|scripts|test|web|docs|\.ci|\.github)\/[\w./-]+$/;

describe("docs: links and references", () => {
  it("finds the docs", () => {
    for (const file of ["README.md", "CONTRIBUTING.md", "docs/protocol.md", "docs/architecture.md"]) {
      expect(DOCS, file).to.include(file);
    }
  });

  it("heading anchors follow GitHub's rules", () => {
    const anchors = anchorsOf("# Client → server\n## Who may connect: the `$connect` JWT authorizer\n## A\n## A\n");
    expect([...anchors]).to.deep.equal(["client--server", "who-may-connect-the-connect-jwt-authorizer", "a", "a-1"]);
  });

  for (const file of DOCS) {
    it(`${file}: every relative link resolves`, () => {
      const broken: string[] = [];
      for (const [, target] of prose(read(file)).matchAll(/\]\(([^)\s]+)(?: "[^"]*")?\)/g)) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target!)) continue;
        const [path, fragment] = target!.split("#") as [string, string | undefined];
        const resolved = path === "" ? file : normalize(join(dirname(file), path));
        if (resolved.startsWith("..") || !existsSync(join(ROOT, resolved))) {
          broken.push(`${target} (no file ${resolved})`);
          continue;
        }
        if (fragment && resolved.endsWith(".md") && !anchorsOf(read(resolved)).has(fragment)) {
          broken.push(`${target} (no heading #${fragment} in ${resolved})`);
        }
      }
      expect(broken).to.deep.equal([]);
    });

    it(`${file}: every repository path it names exists`, () => {
      const spans = [...read(file).matchAll(/`([^`\n]+)`/g)].map(([, span]) => span!);
      const missing = spans.filter((span) => REPO_PATH.test(span) && !existsSync(join(ROOT, span)));
      expect([...new Set(missing)]).to.deep.equal([]);
    });

    it(`${file}: names no path outside the repository and no ticket number`, () => {
      const text = read(file);
      expect(text).not.to.match(/(^|[\s`(])\/(work|tmp|home)\//m);
      expect(text).not.to.match(/shared\/docs\//);
      expect(text).not.to.match(/\b(issue|ticket)s? #?\d+/i);
    });
  }
});
