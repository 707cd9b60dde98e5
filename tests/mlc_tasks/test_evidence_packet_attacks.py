"""Attacks on the evidence packet through what a package or a person types (model.yaml's
description and owner, column and metric names, a decision's comment): no text closes the
document's <style> or <title>, adds a <meta> refresh, a <base> or a comment, or puts a URL in
an attribute; and the packet's sha256 — the capability /reports/<sha256>.html opens — covers
the keyed audit seal, so nobody computes it from what the model's facts say in public."""

from __future__ import annotations

import hashlib
import re
from html.parser import HTMLParser

import pytest

from mlc_tasks.evidence_packet import render_html
from mlc_tasks.scoring_input import Column
from tests.mlc_tasks.result_records import check, result, version
from tests.mlc_tasks.test_evidence_packet import bare, event, model_record

BREAKOUTS = [
    '</style><meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    "</title><base href=\"//evil.example/\">",
    "<!-- ",
    "]]><svg onload=alert(1)>",
    "</td></tr></table><a href=\"javascript:alert(1)\">Approved by the CRO</a>",
    "body{background:url(https://evil.example/x)}</style><style>",
]


class Document(HTMLParser):
    """Each start and end tag, comment and attribute value of the document, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.starts: list[str] = []
        self.ends: list[str] = []
        self.comments: list[str] = []
        self.values: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts.append(tag)
        self.values += [value or "" for _, value in attrs]

    def handle_endtag(self, tag: str) -> None:
        self.ends.append(tag)

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)


def hostile(text: str) -> str:
    decided = event(2, "task.decision", "rita", reason=text, kind="approval", step=text,
                    decision="approve", via="slack")
    v = version(2, input_schema=[Column(name=f"income{text}", dtype="float")], label=text)
    tested = result("test", [check(f"auc{text}", 0.8)], metrics={f"auc{text}": 0.8})
    return render_html(bare(v=v, model=model_record(description=text, owner=text,
                                                     tags={"team": text}),
                            results=[tested], events=[decided]))


@pytest.mark.parametrize("text", BREAKOUTS)
def test_no_typed_text_breaks_out_of_the_document_s_structure(text: str) -> None:
    html = hostile(text)
    parsed = Document()
    parsed.feed(html)
    assert parsed.starts.count("style") == parsed.ends.count("style") == 1
    assert parsed.starts.count("title") == parsed.ends.count("title") == 1
    assert not {"base", "a", "svg", "script", "link", "img"} & set(parsed.starts)
    assert parsed.starts.count("meta") == 1 and "http-equiv" not in html.split("</head>")[0]
    assert parsed.comments == []
    assert not any(re.search(r"[:/]", value) for value in parsed.values)
    style = html.split("<style>")[1].split("</style>")[0]
    assert "evil" not in style and "url(" not in style
    assert html.count(text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                      .replace('"', "&#34;")) >= 5  # description, owner, team, comment, metric


def test_the_packet_s_sha256_covers_the_keyed_seal() -> None:
    """Two registries with the same facts but other audit keys give other packets: the
    capability is not computed from the model card, the results and the people's names."""
    seals = [event(1, "version.approved", "rita", "version", "ok", to="approved")
             .model_copy(update={"hash": seal}) for seal in ("1" * 64, "2" * 64)]
    first, second = (render_html(bare(events=[e])) for e in seals)
    assert first.replace("1" * 64, "2" * 64) == second
    assert hashlib.sha256(first.encode()).digest() != hashlib.sha256(second.encode()).digest()
    assert "1" * 64 in first.split("</h1>")[1].split("</p>")[0]  # the seal is in the header
