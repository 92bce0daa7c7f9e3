"""The Notes component: built from components/notes (`make components`), checked in, whole."""

from __future__ import annotations

import re
from pathlib import Path

from stowage import apps
from tests.components.tools import NOTES_HTML, ComponentTools


def test_checked_in_notes_component_is_what_its_sources_build(tmp_path: Path) -> None:
    ComponentTools.find().build(tmp_path, "notes")
    built = (tmp_path / "notes.html").read_bytes()
    assert built == NOTES_HTML.read_bytes(), "stale: run `make components`"


def test_notes_component_loads_nothing_from_elsewhere() -> None:
    html = NOTES_HTML.read_text()
    assert apps.undeclared_sources(html, apps.Domains()) == []
    # One inline script and one inline style; no element that fetches.
    assert re.findall(r"<script\b[^>]*>", html) == ["<script>"]
    assert re.findall(r"<style\b[^>]*>", html) == ["<style>"]
    assert not re.search(r"<(link|img|iframe|object|embed)\b", html, re.IGNORECASE)


def test_notes_component_fits_the_inline_limit_of_a_tenant_spec() -> None:
    size = len(NOTES_HTML.read_bytes())
    assert size <= apps.MAX_HTML_BYTES, f"{size} bytes, over {apps.MAX_HTML_BYTES}"
