"""The development server's sign-in and consent page. HTML only; no I/O here."""

from __future__ import annotations

import html
from collections.abc import Sequence
from urllib.parse import urlsplit

#: What each known scope lets the client do, as the consent page says it.
SCOPE_TEXT = {
    "stowage:read": "read what you stored with this app",
    "stowage:write": "save, change and delete what you store with this app",
}


def consent_page(
    *,
    action: str,
    client_name: str,
    client_id: str,
    from_document: bool,
    scopes: Sequence[str],
    dropped: Sequence[str],
    resource: str | None,
    hidden: Sequence[tuple[str, str]],
) -> str:
    """The page that names the client and the scopes it asks for, with Allow and Deny."""
    e = html.escape
    fields = "".join(
        f'<input type="hidden" name="{e(k)}" value="{e(v)}">'
        for k, v in hidden
        if k not in ("username", "decision")
    )
    items = "".join(f"<li><code>{e(s)}</code>: {e(SCOPE_TEXT.get(s, s))}</li>" for s in scopes)
    ignored = (
        f"<p>Not offered by this server, so not granted: {e(' '.join(dropped))}</p>"
        if dropped
        else ""
    )
    origin = (
        f"described by the document at <code>{e(client_id)}</code> "
        f"(host {e(urlsplit(client_id).netloc)})"
        if from_document
        else f"registered as <code>{e(client_id)}</code>"
    )
    target = f"<p>For the MCP server <code>{e(resource)}</code>.</p>" if resource else ""
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>Stowage dev login: allow {e(client_name)}?</title></head>
<body style="font-family:sans-serif;max-width:34em;margin:4em auto">
<h1>Allow <em>{e(client_name)}</em>?</h1>
<p>The application <strong>{e(client_name)}</strong>, {origin}, asks to:</p>
<ul>{items}</ul>{ignored}{target}
<p>This development authorization server signs in anyone by name. Never expose it.</p>
<form method="post" action="{e(action)}">{fields}
<label>User name <input name="username" value="dev-user" autofocus></label>
<p><button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button></p></form></body></html>"""
