"""Accessibility that can be checked without a person: every field has a label, one h1 per
page, the page language, table headers, and the stylesheet's colours at WCAG AA contrast."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from starlette.testclient import TestClient

from tests.console.conftest import Env
from verifier.console.web import HERE


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: list[str] = []
        self.labels: set[str] = set()
        self.ids: list[str] = []
        self.h1 = 0
        self.th = 0
        self.tables = 0
        self.lang: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.append(str(a["id"]))
        if tag == "html":
            self.lang = a.get("lang")
        if tag in ("input", "select", "textarea") and a.get("type") != "hidden":
            self.fields.append(str(a.get("id")))
        if tag == "label" and a.get("for"):
            self.labels.add(str(a["for"]))
        self.h1 += tag == "h1"
        self.th += tag == "th"
        self.tables += tag == "table"


def test_pages_label_every_field(it_client: TestClient, env: Env) -> None:
    assert env.seeded is not None
    cid, fp = env.seeded.cids["user08"], env.seeded.fps["user00"]
    pages = ["/console/fleet", "/console/devices", f"/console/lookup?id={cid}", "/console/impact",
             "/console/privacy", "/console/audit", f"/console/devices/{fp}", "/console/login"]
    for path in pages:
        page = _Page()
        page.feed(it_client.get(path).text)
        assert page.lang == "ja", path
        assert page.h1 == 1, path
        assert set(page.fields) <= page.labels, (path, set(page.fields) - page.labels)
        assert len(page.ids) == len(set(page.ids)), (path, "duplicate id")
        assert page.tables == 0 or page.th >= page.tables, path


def _luminance(hex_colour: str) -> float:
    rgb = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_text_colours_meet_wcag_aa() -> None:
    css = (HERE / "static" / "console.css").read_text()
    var = dict(re.findall(r"--([a-z]+):\s*(#[0-9a-f]{6})", css))
    for name in ("ink", "muted", "accent", "ok", "bad"):
        for background in (var["bg"], var["band"]):
            assert contrast(var[name], background) >= 4.5, (name, background)
    assert contrast("#ffffff", var["accent"]) >= 4.5  # button text


def test_no_page_shows_a_raw_catalogue_key(it_client: TestClient, env: Env) -> None:
    assert env.seeded is not None
    pages = ["/console/fleet", "/console/devices", "/console/impact", "/console/privacy",
             "/console/audit", f"/console/lookup?id={env.seeded.cids['user08']}",
             f"/console/devices/{env.seeded.fps['user00']}", "/console/lookup?id=ABCD-EFGH",
             "/console/lookup?id=AAAAAAAA", "/console/lookup?id=bad!"]
    for lang in ("ja", "en"):
        for path in pages:
            sep = "&" if "?" in path else "?"
            text = it_client.get(f"{path}{sep}lang={lang}").text
            body = re.sub(r"<[^>]+>", " ", text)
            leaked = re.findall(r"\b(?:console|check|status|verifier)\.[a-z_]+(?:\.[a-z_]+)*",
                                body)
            assert leaked == [], (lang, path, leaked[:5])
