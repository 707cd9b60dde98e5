"""The evidence packet of one version: every section from real registry records (credit-risk:1
tested, measured for drift and fairness, scanned, approved by a verified person), drift as it
stood at the decision, "none recorded" where nothing is, the stored document the /reports route
serves under its sha256, and no way for a free-text field to put markup in it."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from mlc_tasks import evaluation, monitoring
from mlc_tasks.artifacts import ArtifactStore
from mlc_tasks.audit import AuditEvent, AuditReport
from mlc_tasks.comparison import Comparison, GuardCheck, Outcome, PairedTest
from mlc_tasks.drift import DriftSettings
from mlc_tasks.evidence_packet import (
    EvidencePacket,
    build_packet,
    current_packet_html,
    publish_packet,
    render_html,
)
from mlc_tasks.fairness import FairnessSettings
from mlc_tasks.lifecycle import State
from mlc_tasks.policy import Threshold
from mlc_tasks.registry import ModelRecord, Registry, VersionRecord
from mlc_tasks.registry.champions import ComparisonRecord
from mlc_tasks.registry.tasks import TaskBook
from mlc_tasks.resources import Resources
from mlc_tasks.scan import scan_version
from mlc_tasks.settings import REVIEWED_TYPES, MlcSettings
from mlc_tasks.submission import stored_spec, submit_package
from mlc_tasks.task_records import TaskKind, TaskStatus
from tests.mlc_tasks.result_records import T0, check, deployment, result, version

RITA = "rita.risk@bank.example"
SECTIONS = ("model-card", "tests", "comparison", "fairness", "drift", "scan", "decisions",
            "life-cycle", "audit-chain")


def section(html: str, name: str) -> str:
    """The text of one <section id=name> of the document."""
    found = re.search(rf'<section id="{name}">(.*?)</section>', html, re.S)
    assert found, f"no section {name}"
    return found[1]


# ---- credit-risk:1 from a real registry ---------------------------------------------------------

class Approved:
    """credit-risk:1 submitted by ana, tested, measured, scanned and approved by Rita, with
    drift measured once before and once after her decision."""

    def __init__(self, settings: MlcSettings, package: Path) -> None:
        self.registry = Registry(settings.registry_url(), audit_key=settings.resolved_audit_key())
        self.store = ArtifactStore(settings.artifact_url())
        self.ctx = Resources(settings, registry=self.registry, store=self.store)
        self.version, _ = submit_package(package, self.registry, self.store,
                                         list(REVIEWED_TYPES), "ana.lopez@bank.example")
        self.test = pd.read_csv(package / "data" / "test.csv")
        self.train = pd.read_csv(package / "data" / "train.csv")
        self.sha = hashlib.sha256((package / "data" / "test.csv").read_bytes()).hexdigest()
        self.measure()
        self.scan()
        self.drift("2026-11-24", self.test)
        self.approve()
        shifted = self.test.assign(income=self.test["income"] * 3)  # after the decision
        self.drift("2026-11-25", shifted)

    def measure(self) -> None:
        model = evaluation.version_model(self.version, list(REVIEWED_TYPES))
        tested = evaluation.test_version(self.version, model, self.test, "pkg#data/test.csv",
                                         self.sha, {"roc_auc": Threshold(min=0.6),
                                                    "log_loss": Threshold(max=0.7)})
        self.registry.add_test_result(tested, "test-model")
        self.registry.transition(self.version.id, State.TESTED, "on-model-changed")
        features = self.test[[c.name for c in self.version.input_schema]]
        predictions = pd.Series(model.predict(features))
        for judged in monitoring.fairness_records(
                self.version, "2026-11-24", "pkg#data/test.csv", self.sha, self.test,
                self.test["default"], predictions, FairnessSettings(min_group_rows=5)):
            self.registry.add_test_result(judged, "monitor")

    def scan(self) -> None:
        """What on-model-changed's scan step records (flows/on_model_changed.py)."""
        runtime = self.registry.upsert_runtime(
            "prod", "http://127.0.0.1:9", {"env": "prod"},
            {"sklearn": "1.9.0", "python": "3.11.9", "skops": "0.16.0"})
        found = scan_version(self.version, stored_spec(str(self.version.package_uri))
                             .requirements, [runtime])
        with self.registry.transaction() as session:
            self.registry.append_audit(
                session, actor="on-model-changed", action="version.scanned", entity="version",
                entity_id=self.version.id, model="credit-risk", reason=found.failures() or "ok",
                detail={"number": 1, **found.model_dump()},
                evidence_sha256=self.version.artifact_sha256)

    def drift(self, window: str, inputs: pd.DataFrame) -> None:
        self.registry.add_test_result(monitoring.drift_record(
            self.version, window, self.train, inputs, f"daily/{window}", self.sha,
            DriftSettings()), "monitor")

    def approve(self) -> None:
        book = TaskBook(self.registry)
        self.task, _ = book.open_task(
            TaskKind.APPROVAL, self.version.id, "approval", groups=["risk"], quorum=1,
            deadline=None, detail={}, flow_run_id=None, holder=None, actor="on-model-changed")
        self.published = publish_packet(self.ctx, "credit-risk", 1)
        book.attach_packet(self.task.id, self.published.sha256, "http://mlc" +
                           self.published.path)
        self.evidence = book.show_evidence(self.task.id, "## Approve credit-risk:1?")
        made = book.decide(self.task.id, RITA, "approve", "fine for the <b>EU</b> book",
                           "api", {RITA}, evidence_sha256=self.evidence,
                           packet_sha256=self.published.sha256)
        assert made.accepted and book.get(self.task.id).status == TaskStatus.APPROVED


@pytest.fixture
def approved(local_settings: MlcSettings, package: Path) -> Approved:
    return Approved(local_settings, package)


def test_credit_risk_1_has_every_section_with_its_values(approved: Approved) -> None:
    html, digest = current_packet_html(approved.ctx, "credit-risk", 1)
    assert digest == hashlib.sha256(html.encode()).hexdigest()
    version = approved.registry.get_version("credit-risk", 1)
    card = section(html, "model-card")
    for value in ("Probability that a consumer-loan applicant defaults", "ana.lopez@bank.example",
                  "lending", "classification", "high", str(version.artifact_sha256),
                  approved.sha, "gradient_boosting" if version.training else "ready-made",
                  "n_estimators=60", "income (float)", "gender"):
        assert value in card, value
    tests = section(html, "tests")
    tested = approved.registry.test_results(version.id)[0]
    roc = next(c for c in tested.thresholds if c.metric == "roc_auc")
    assert f"roc_auc</td><td>&gt;= 0.6000</td><td>{roc.value:.4f}</td>" in tests
    assert "log_loss</td><td>&lt;= 0.7000</td>" in tests
    assert "none recorded" in section(html, "comparison")  # the first version: no champion
    fairness = section(html, "fairness")
    assert "<h3>gender</h3>" in fairness and ">female</td>" in fairness
    assert "demographic_parity_difference" in fairness
    drift = section(html, "drift")
    assert "window 2026-11-24" in drift and "2026-11-25" not in drift  # at approval time
    assert "share_drifted" in drift
    scan = section(html, "scan")
    assert "requirement sklearn" in scan or "sklearn" in scan
    assert '<span class="pass">pass</span>' in scan
    decisions = section(html, "decisions")
    assert RITA in decisions and "<td>api</td>" in decisions
    assert "fine for the &lt;b&gt;EU&lt;/b&gt; book" in decisions
    assert approved.evidence in decisions and approved.published.sha256 in decisions
    states = section(html, "life-cycle")
    assert "<td>approved</td><td>rita.risk@bank.example</td>" in states.replace("\n", "")
    assert '<span class="pass">intact</span>' in section(html, "audit-chain")


def test_the_decision_row_names_the_stored_packet(approved: Approved) -> None:
    row = next(e for e in approved.registry.audit_events("credit-risk")
               if e.action == "task.decision")
    assert row.detail["packet_sha256"] == approved.published.sha256
    assert row.evidence_sha256 == approved.evidence
    stored = approved.store.read(approved.published.sha256, ".html")
    assert hashlib.sha256(stored).hexdigest() == row.detail["packet_sha256"]
    assert stored.decode() == approved.published.html
    assert approved.published.path == f"/reports/{approved.published.sha256}.html"
    # published before the decision: the packet Rita saw holds no decision yet
    assert "none recorded" in section(stored.decode(), "decisions")
    assert TaskBook(approved.registry).get(approved.task.id).detail["packet_sha256"] == (
        approved.published.sha256)


def test_the_same_registry_gives_the_same_packet(approved: Approved) -> None:
    first = publish_packet(approved.ctx, "credit-risk", 1)
    assert publish_packet(approved.ctx, "credit-risk", 1) == first
    approved.registry.record_deployment(approved.version.id, "prod", "on-model-changed",
                                        "prod stage")
    html, digest = current_packet_html(approved.ctx, "credit-risk", 1)
    assert digest != first.sha256
    assert "<td>prod</td><td>prod</td><td>on-model-changed</td>" in section(html, "life-cycle")


def test_an_unknown_version_is_not_found(approved: Approved) -> None:
    from mlc_tasks.errors import NotFoundError

    with pytest.raises(NotFoundError, match="no version 7"):
        current_packet_html(approved.ctx, "credit-risk", 7)
    with pytest.raises(NotFoundError, match="no model named 'nope'"):
        current_packet_html(approved.ctx, "nope", 1)


# ---- pure: missing sections and hostile text ----------------------------------------------------

EVIL = '<script>alert(1)</script><img src=x onerror=alert(2)>"\'&'


def model_record(**changes: object) -> ModelRecord:
    return ModelRecord(name="credit-risk", type="classification", owner="ana", risk_tier="high",
                       tags={"team": "lending"}, description="defaults", created_at=T0
                       ).model_copy(update=changes)


def chain(ok: bool = True, problem: str | None = None) -> AuditReport:
    return AuditReport(ok=ok, events=3, problem=problem)


def event(seq: int, action: str, actor: str, entity: str = "task", reason: str = "",
          **detail: object) -> AuditEvent:
    return AuditEvent(seq=seq, at=T0 + timedelta(minutes=seq), actor=actor, action=action,
                      entity=entity, entity_id="v2" if entity == "version" else "4",
                      model="credit-risk", reason=reason, detail={"number": 2, **detail},
                      evidence_sha256="e" * 64, prev_hash="0" * 64, hash=f"{seq:064d}")


def bare(v: VersionRecord | None = None, **given: object) -> EvidencePacket:
    return build_packet(**{"model": model_record(), "version": v or version(2), "parent": None,
                           "results": [], "comparison": None, "champion": None, "events": [],
                           "deployments": [], "chain": chain(), **given})  # type: ignore[arg-type]


def test_every_section_says_none_recorded_when_nothing_is() -> None:
    html = render_html(bare(model=model_record(description="", tags={})))
    for name in ("tests", "comparison", "fairness", "drift", "scan", "decisions"):
        assert "none recorded" in section(html, name), name
    card = section(html, "model-card")
    assert card.count("none recorded") >= 5  # description, team, tags, parent, training data
    assert "Deployments</h3>\n<p class=\"none\">none recorded" in section(html, "life-cycle")
    assert "Anchor: none recorded" in section(html, "audit-chain")


def test_drift_is_the_newest_at_or_before_the_approval() -> None:
    drifts = [result("drift", [check("share_drifted", 0.1, "<=", 0.5)], window=w,
                     created=T0 + timedelta(minutes=m)) for w, m in
              (("day-1", 1), ("day-2", 5), ("day-3", 9))]
    decided = event(5, "task.decision", RITA, kind="approval", decision="approve", via="api")
    packet = bare(results=drifts, events=[decided])
    assert packet.drift is not None and packet.drift.window == "day-2"
    assert packet.drift_as_of == decided.at
    assert bare(results=drifts).drift.window == "day-3"  # type: ignore[union-attr]


def test_a_broken_chain_and_a_refused_attempt_show() -> None:
    refused = event(3, "task.decision_refused", "sam", reason="the submitter may not approve",
                    kind="approval", decision="approve", via="api")
    guessed = event(4, "task.decision_unverified", "unverified", reason="wrong code",
                    claimed="rita", decision="approve", via="prefect-ui")
    html = render_html(bare(events=[refused, guessed], chain=chain(False, "event 2 was altered")))
    assert "BROKEN" in html and "event 2 was altered" in html
    decisions = section(html, "decisions")
    assert "refused</span>: the submitter may not approve" in decisions
    assert "<td>sam</td>" in decisions and "rita" not in decisions  # claimed, never proved
    assert "refused and not listed: 1" in decisions


class Tags(HTMLParser):
    """Every tag and attribute the document has."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes |= {name for name, _ in attrs}


def hostile_packet() -> EvidencePacket:
    """Every free-text field a person or a package controls, set to markup."""
    metric = f"roc{EVIL}"
    results = [
        result("test", [check(metric, 0.8)], metrics={metric: 0.8}),
        result(f"fairness:g{EVIL}", [check(f"dpd{EVIL}", 0.01, "<=", 0.1)],
               metrics={f"{EVIL}.selection_rate": 0.4, f"{EVIL}.rows": 40.0}),
        result("drift", [check(f"share{EVIL}", 0.1, "<=", 0.5)], window=EVIL),
    ]
    results = [r.model_copy(update={"dataset_uri": f"/data/{EVIL}"}) for r in results]
    compared = Comparison(
        rows=100, metric=metric, alpha=0.05, outcome=Outcome.PROMOTE, reason=EVIL,
        tests=[PairedTest(metric=metric, method="delong", better="higher", champion=0.7,
                          challenger=0.8, improvement=0.1, p_value=0.01)],
        guards=[GuardCheck(metric=metric, champion=0.1, challenger=0.1, worsening=0.0,
                           tolerance=0.01, passed=True)])
    record = ComparisonRecord(
        id="c1", model="credit-risk", champion_version_id="v1", challenger_version_id="v2",
        dataset_uri=EVIL, dataset_sha256="d" * 64, rows=100, outcome="promote", reason=EVIL,
        detail=compared.model_dump(mode="json"), created_at=T0, created_by=EVIL)
    events = [
        event(1, "version.scanned", "on-model-changed", "version", EVIL,
              checks=[{"name": EVIL, "passed": True, "detail": EVIL}]),
        event(2, "task.decision", EVIL, reason=EVIL, kind="approval", step=EVIL,
              decision=EVIL, via=EVIL, packet_sha256=EVIL),
        event(3, "version.approved", EVIL, "version", EVIL, to="approved"),
    ]
    v = version(2, created_by=EVIL, parameters={EVIL: EVIL}, label=EVIL,
                training={EVIL: EVIL}, sensitive_attributes=[EVIL])
    model = model_record(description=EVIL, owner=EVIL, tags={"team": EVIL, EVIL: EVIL})
    served = [deployment(1, 2, 5, env=EVIL, runtime=EVIL).model_copy(
        update={"version_id": "v2", "deployed_by": EVIL})]
    return build_packet(model, v, EVIL, results, record, EVIL, events, served,
                        chain(False, EVIL).model_copy(update={"anchor": EVIL}))


def test_no_free_text_field_puts_markup_in_the_packet() -> None:
    html = render_html(hostile_packet())
    assert "<script" not in html and "<img" not in html
    parsed = Tags()
    parsed.feed(html)
    assert parsed.tags <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3",
                           "p", "table", "tr", "th", "td", "code", "span", "strong", "br",
                           "section"}
    assert parsed.attributes <= {"lang", "charset", "class", "id"}
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"
    # each field arrived (escaped), none was dropped: description, owner, team, comment,
    # person, metric names, group, attribute, window, scan check, reasons, anchor, lineage
    assert html.count(escaped) >= 30
    for name in SECTIONS:
        assert escaped in section(html, name), name


def test_the_document_is_self_contained() -> None:
    html = render_html(bare())
    assert not re.search(r"<(script|link|img|iframe|object)\b", html)
    assert "@media print" in html and "http" not in html.split("<body>")[1]


def test_a_challenger_shows_its_comparison() -> None:
    compared = Comparison(
        rows=400, metric="roc_auc", alpha=0.05, outcome=Outcome.PROMOTE,
        reason="roc_auc better by 0.0400 (p=0.003)",
        tests=[PairedTest(metric="roc_auc", method="delong", better="higher", champion=0.78,
                          challenger=0.82, improvement=0.04, ci_low=0.01, ci_high=0.07,
                          p_value=0.003)],
        guards=[GuardCheck(metric="log_loss", champion=0.5, challenger=0.48, worsening=-0.02,
                           tolerance=0.01, passed=True)])
    record = ComparisonRecord(
        id="c1", model="credit-risk", champion_version_id="v1", challenger_version_id="v2",
        dataset_uri="/data/holdout.csv", dataset_sha256="h" * 64, rows=400, outcome="promote",
        reason=compared.reason, detail=compared.model_dump(mode="json"), created_at=T0,
        created_by="retrain")
    html = section(render_html(bare(comparison=record, champion="credit-risk:1",
                                    parent="credit-risk:1")), "comparison")
    assert "champion <strong>credit-risk:1</strong> on 400 rows" in html
    assert "<strong>promote</strong>: roc_auc better by 0.0400 (p=0.003)" in html
    assert ("<td>roc_auc (decides)</td><td>delong</td><td>0.7800</td><td>0.8200</td>"
            in html.replace("\n    ", ""))
    assert "0.0100 to 0.0700" in html and "<td>0.0030</td>" in html
    assert "<td>log_loss</td><td>0.5000</td><td>0.4800</td>" in html


def test_an_unreadable_comparison_is_shown_as_stored() -> None:
    record = ComparisonRecord(
        id="c1", model="credit-risk", champion_version_id="v1", challenger_version_id="v2",
        dataset_uri="/d", dataset_sha256="h" * 64, rows=4, outcome="not better",
        reason="old record", detail={"statistic": 1.5, "p": 0.2}, created_at=T0,
        created_by="retrain")
    html = section(render_html(bare(comparison=record, champion="credit-risk:1")), "comparison")
    assert "as stored: statistic: 1.5; p: 0.2" in html
