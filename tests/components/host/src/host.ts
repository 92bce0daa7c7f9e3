// A minimal MCP Apps host for the browser test, after ext-apps' examples/basic-host.
//
// Its configuration comes in the URL fragment (JSON): the gateway's MCP URL and a
// bearer token, the tool to call and its arguments, the sandbox proxy's URL (a
// second origin) and the theme. It connects with the MCP client, lists the tools,
// calls the tool, reads the tool's `_meta.ui.resourceUri` resource, renders it in
// the sandbox proxy's iframe and bridges the view (AppBridge over postMessage):
// the view's tools/call go to the gateway, tool input and result and the host
// context (theme) go to the view. Everything it sees is kept in `window.__host`
// for the test to read.
import {
  AppBridge,
  PostMessageTransport,
  RESOURCE_MIME_TYPE,
  getToolUiResourceUri,
  type McpUiHostContext,
  type McpUiResourceCsp,
} from "@modelcontextprotocol/ext-apps/app-bridge";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";

interface Config {
  url: string;
  token: string;
  tool: string;
  arguments: Record<string, unknown>;
  sandbox: string;
  theme: "light" | "dark";
}

interface ViewCall {
  name: string;
  arguments: Record<string, unknown>;
  result?: unknown;
  error?: string;
}

const record = {
  phase: "starting" as string,
  error: null as string | null,
  tool: null as unknown,
  resourceUri: null as string | null,
  resource: null as { mimeType?: string; meta?: unknown; bytes: number } | null,
  toolResult: null as unknown,
  viewCalls: [] as ViewCall[],
  modelContexts: [] as unknown[],
  sizes: [] as unknown[],
  logs: [] as unknown[],
  setTheme: (_theme: "light" | "dark"): Promise<void> => Promise.resolve(),
};
(window as unknown as { __host: typeof record }).__host = record;

const status = document.createElement("p");
status.id = "status";
document.body.append(status);

function phase(name: string): void {
  record.phase = name;
  status.textContent = name;
  document.body.dataset.phase = name;
}

function waitForProxy(frame: HTMLIFrameElement): Promise<void> {
  return new Promise((resolve) => {
    const listener = (event: MessageEvent) => {
      if (event.source === frame.contentWindow && event.data?.method === "ui/notifications/sandbox-proxy-ready") {
        window.removeEventListener("message", listener);
        resolve();
      }
    };
    window.addEventListener("message", listener);
  });
}

async function main(config: Config): Promise<void> {
  document.body.dataset.theme = config.theme;
  phase("connecting");
  const client = new Client({ name: "stowage-test-host", version: "1.0.0" });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(config.url), {
      requestInit: { headers: { Authorization: `Bearer ${config.token}` } },
    }),
  );

  phase("listing tools");
  const { tools } = await client.listTools();
  const tool = tools.find((t) => t.name === config.tool);
  if (!tool) throw new Error(`the gateway lists no tool ${config.tool}`);
  record.tool = tool;
  const uri = getToolUiResourceUri(tool);
  if (!uri) throw new Error(`${config.tool} links no component (_meta.ui.resourceUri)`);
  record.resourceUri = uri;

  phase("reading the component");
  const read = await client.readResource({ uri });
  if (read.contents.length !== 1) throw new Error(`${uri}: ${read.contents.length} contents, not 1`);
  const content = read.contents[0] as { mimeType?: string; text?: string; _meta?: Record<string, unknown> };
  if (content.mimeType !== RESOURCE_MIME_TYPE || typeof content.text !== "string") {
    throw new Error(`${uri}: ${content.mimeType} is not ${RESOURCE_MIME_TYPE} text`);
  }
  const ui = (content._meta?.ui ?? {}) as { csp?: McpUiResourceCsp; prefersBorder?: boolean };
  record.resource = { mimeType: content.mimeType, meta: content._meta ?? null, bytes: content.text.length };

  // The sandbox proxy: another origin, its CSP (from the resource's csp) set by its server.
  const frame = document.createElement("iframe");
  frame.id = "view";
  frame.dataset.testid = "view-frame";
  frame.dataset.border = String(ui.prefersBorder === true);
  frame.style.height = "480px";
  frame.setAttribute("sandbox", "allow-scripts allow-same-origin");
  const proxyReady = waitForProxy(frame);
  const proxyUrl = new URL(config.sandbox);
  proxyUrl.searchParams.set("csp", JSON.stringify(ui.csp ?? {}));
  frame.src = proxyUrl.href;
  document.body.append(frame);
  await proxyReady;

  const hostContext: McpUiHostContext = {
    theme: config.theme,
    platform: "web",
    displayMode: "inline",
    availableDisplayModes: ["inline"],
    locale: "en-GB",
    toolInfo: { tool },
  };
  const bridge = new AppBridge(
    null,
    { name: "stowage-test-host", version: "1.0.0" },
    { serverTools: {}, updateModelContext: { text: {}, structuredContent: {} }, logging: {} },
    { hostContext },
  );
  // The view's calls go to the gateway, recorded with what came back.
  bridge.oncalltool = async (params) => {
    const call: ViewCall = { name: params.name, arguments: params.arguments ?? {} };
    record.viewCalls.push(call);
    try {
      const result = await client.callTool(params);
      call.result = result;
      return result as never;
    } catch (e) {
      call.error = String(e);
      throw e;
    }
  };
  bridge.onupdatemodelcontext = async (params) => {
    record.modelContexts.push(params);
    return {};
  };
  bridge.onsizechange = ({ height }) => {
    record.sizes.push(height);
    if (height !== undefined) frame.style.height = `${height}px`;
  };
  bridge.onloggingmessage = (params) => record.logs.push(params);
  const initialized = new Promise<void>((resolve) => {
    bridge.oninitialized = () => resolve();
  });
  record.setTheme = async (theme) => {
    document.body.dataset.theme = theme;
    await bridge.sendHostContextChange({ theme });
  };

  phase("starting the view");
  await bridge.connect(new PostMessageTransport(frame.contentWindow!, frame.contentWindow!));
  await bridge.sendSandboxResourceReady({ html: content.text, csp: ui.csp, sandbox: "allow-scripts" });
  await initialized;

  // The "model's" call: its input first, then its result.
  phase("calling the tool");
  await bridge.sendToolInput({ arguments: config.arguments });
  const result = await client.callTool({ name: config.tool, arguments: config.arguments });
  record.toolResult = result;
  await bridge.sendToolResult(result as never);
  phase("rendered");
}

const config = JSON.parse(decodeURIComponent(window.location.hash.slice(1))) as Config;
main(config).catch((e: unknown) => {
  record.error = e instanceof Error ? `${e.message}\n${e.stack ?? ""}` : String(e);
  phase("failed");
});
