// Bundling an MCP Apps view (or the test host) into one self-contained HTML file.
//
// Shared by components/notes/build.mjs and tests/components/host/build.mjs. The
// packages (esbuild, ext-apps, the MCP client, zod) come from an install outside
// the repository (hack/build-components.sh passes it as --deps); nothing here
// fetches anything. The output is deterministic: the same sources and the same
// pinned packages give the same bytes (no timestamps, no absolute paths).
import { readFile, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { parseArgs } from "node:util";

/** `--deps <node_modules>` and `--out <path>` from the command line. */
export function cliArgs() {
  const { values } = parseArgs({
    options: { deps: { type: "string" }, out: { type: "string" } },
  });
  if (!values.deps || !values.out) {
    throw new Error("usage: build.mjs --deps <node_modules dir> --out <path>");
  }
  return { deps: path.resolve(values.deps), out: path.resolve(values.out) };
}

/** The pinned esbuild of the install at `deps`. */
export function loadEsbuild(deps) {
  return createRequire(path.join(deps, "..", "package.json"))("esbuild");
}

/**
 * ext-apps imports zod's `z` namespace object by name (`import {z} from "zod/v4"`),
 * which keeps every export of zod alive, its ~40 locales included (~330 KB). The
 * same module imported as a namespace (`import * as z`) is the same object for
 * every member the code reads, and lets esbuild drop what it never reads.
 */
function zodNamespacePlugin() {
  let seen = 0;
  let rewritten = 0;
  return {
    name: "zod-namespace",
    setup(build) {
      build.onLoad({ filter: /[\\/]@modelcontextprotocol[\\/]ext-apps[\\/]dist[\\/].*\.js$/ }, async (args) => {
        seen += 1;
        const source = await readFile(args.path, "utf8");
        const contents = source.replace(/import\{z as (\w+)\}from"zod\/v4"/g, (_, name) => {
          rewritten += 1;
          return `import*as ${name} from"zod/v4"`;
        });
        return { contents, loader: "js" };
      });
      build.onEnd((result) => {
        if (result.errors.length === 0 && seen > 0 && rewritten === 0) {
          // A new ext-apps imports zod differently: look again rather than ship 300 KB more.
          throw new Error("zod-namespace: no `import{z as …}from\"zod/v4\"` found in ext-apps");
        }
      });
    },
  };
}

/**
 * The MCP client's classes carry `static { … }` blocks (brand stamps, internal
 * hooks), which esbuild must keep as side effects, and with them every class
 * the view never uses (the whole `Client`, its OAuth errors, its JSON Schema
 * validator: ~65 KB). Each such top-level `var X = class … {…};` becomes
 * `var X = /* @__PURE__ *\/ (() => class … {…})();`, which evaluates the same
 * class at the same moment when it is kept, and lets esbuild drop it when
 * nothing reads `X`. The package's output puts every top-level statement at
 * column 0 and indents class bodies, which is what finds a class's end here.
 */
function pureClassesPlugin() {
  let seen = 0;
  let wrapped = 0;
  return {
    name: "pure-classes",
    setup(build) {
      build.onLoad({ filter: /[\\/]@modelcontextprotocol[\\/](client|core)[\\/]dist[\\/].*\.mjs$/ }, async (args) => {
        seen += 1;
        const source = await readFile(args.path, "utf8");
        const contents = source.replace(
          /^(var \w+ = )(class\b[^\n]*\{\n[\s\S]*?\n\});$/gm,
          (statement, head, body) => {
            if (!/\n\tstatic \{/.test(body)) return statement;
            wrapped += 1;
            return `${head}/* @__PURE__ */ (() => ${body})();`;
          },
        );
        return { contents, loader: "js" };
      });
      build.onEnd((result) => {
        if (result.errors.length === 0 && seen > 0 && wrapped === 0) {
          throw new Error("pure-classes: no class with a static block found in the MCP client");
        }
      });
    },
  };
}

/** One script bundle (an IIFE, minified) of `entry`, resolving packages in `deps`. */
export async function bundleScript(esbuild, { deps, entry, workingDir }) {
  const result = await esbuild.build({
    entryPoints: [entry],
    absWorkingDir: workingDir,
    nodePaths: [deps],
    bundle: true,
    minify: true,
    format: "iife",
    platform: "browser",
    target: "es2022",
    legalComments: "eof",
    write: false,
    logLevel: "warning",
    plugins: [zodNamespacePlugin(), pureClassesPlugin()],
  });
  return result.outputFiles[0].text;
}

/** `css` minified. */
export async function minifyCss(esbuild, css) {
  const result = await esbuild.transform(css, { loader: "css", minify: true });
  return result.code;
}

/**
 * Script text safe inside `<script>…</script>`: no `</script` (it would end the
 * element) and no `<!--` (it would change how the HTML parser reads the rest).
 * Both can only occur inside string, template or regular-expression literals
 * and comments of minified code, where `<\/` and `<\!--` mean the same.
 */
function inlineSafe(js) {
  return js.replace(/<\/(script)/gi, "<\\/$1").replace(/<!--/g, "<\\!--");
}

/** `template` with its `<!--style-->` and `<!--script-->` markers replaced (once each). */
export function inlineHtml(template, { css, js }) {
  for (const marker of ["<!--style-->", "<!--script-->"]) {
    if (template.split(marker).length !== 2) {
      throw new Error(`the template must hold ${marker} exactly once`);
    }
  }
  return template
    .replace("<!--style-->", () => `<style>${css}</style>`)
    .replace("<!--script-->", () => `<script>${inlineSafe(js)}</script>`);
}

/** Write `text` to `file` (UTF-8) and say where and how big. */
export async function writeOutput(file, text) {
  await writeFile(file, text);
  const kib = (Buffer.byteLength(text) / 1024).toFixed(1);
  process.stderr.write(`components: wrote ${file} (${kib} KiB)\n`);
}
