// The sandbox proxy, after ext-apps' examples/basic-host: served from a second
// origin (its own loopback port, with the view's CSP as a response header), it
// puts the view's HTML into an inner iframe (srcdoc, sandbox="allow-scripts":
// an opaque origin that inherits this page's CSP) and relays the JSON-RPC
// messages between the host page and the view.
const host = document.referrer ? new URL(document.referrer).origin : "";
if (window.self === window.top || !/^http:\/\/(127\.0\.0\.1|localhost)(:|$)/.test(host)) {
  throw new Error(`the sandbox proxy runs framed by a loopback host page, not ${host || "nothing"}`);
}

const inner = document.createElement("iframe");
inner.setAttribute("sandbox", "allow-scripts");
inner.dataset.testid = "view";
document.body.append(inner);

window.addEventListener("message", (event: MessageEvent) => {
  if (event.source === window.parent) {
    if (event.origin !== host) return;
    const data = event.data as { method?: string; params?: { html?: unknown; sandbox?: unknown } };
    if (data?.method === "ui/notifications/sandbox-resource-ready") {
      if (typeof data.params?.sandbox === "string") inner.setAttribute("sandbox", data.params.sandbox);
      if (typeof data.params?.html === "string") inner.srcdoc = data.params.html;
      return;
    }
    inner.contentWindow?.postMessage(event.data, "*");
  } else if (event.source === inner.contentWindow) {
    window.parent.postMessage(event.data, host);
  }
});

window.parent.postMessage({ jsonrpc: "2.0", method: "ui/notifications/sandbox-proxy-ready", params: {} }, host);
