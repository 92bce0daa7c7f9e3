// Build the browser test's host side into --out: host.html (the host page, on
// AppBridge and the MCP client) and sandbox.html (the sandbox proxy it frames
// from a second origin). Run by hack/build-components.sh --out DIR host.
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { bundleScript, cliArgs, inlineHtml, loadEsbuild, writeOutput } from "../../../components/bundle.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const { deps, out } = cliArgs();
const esbuild = loadEsbuild(deps);
await mkdir(out, { recursive: true });

const page = (title) =>
  `<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>${title}</title>\n<!--style-->\n</head>\n<body>\n<!--script-->\n</body>\n</html>\n`;
const css = {
  host: "body{margin:0;padding:16px;background:#eef0f3;font:14px/1.4 system-ui,sans-serif}" +
    "body[data-theme=dark]{background:#0f1012;color:#ddd}#status{margin:0 0 8px;color:#666}" +
    "#view{display:block;width:100%;border:0;background:transparent}" +
    "#view[data-border=true]{border:1px solid #d0d4da;border-radius:12px}",
  sandbox: "html,body{margin:0;height:100%;overflow:hidden}iframe{border:0;width:100%;height:100%;display:block}",
};
for (const name of ["host", "sandbox"]) {
  const js = await bundleScript(esbuild, { deps, entry: `src/${name}.ts`, workingDir: here });
  await writeOutput(path.join(out, `${name}.html`), inlineHtml(page(name), { css: css[name], js }));
}
