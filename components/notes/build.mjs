// Build the Notes component into one self-contained HTML file (script and style
// inline; nothing is fetched at run time). Run by hack/build-components.sh:
//
//   node components/notes/build.mjs --deps <installed node_modules> --out <file.html>
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

import {
  bundleScript,
  cliArgs,
  inlineHtml,
  loadEsbuild,
  minifyCss,
  writeOutput,
} from "../bundle.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const { deps, out } = cliArgs();
const esbuild = loadEsbuild(deps);

const [template, css, js] = await Promise.all([
  readFile(path.join(here, "src", "index.html"), "utf8"),
  readFile(path.join(here, "src", "style.css"), "utf8").then((text) => minifyCss(esbuild, text)),
  bundleScript(esbuild, { deps, entry: "src/main.ts", workingDir: here }),
]);
await writeOutput(out, inlineHtml(template, { css, js }));
