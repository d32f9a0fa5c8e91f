"""Dashboard pages: the matrix, trends, findings, one check; escaping; static site; served app."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urljoin

import pytest
from flask import Flask

from tests.helpers import history as seeded
from tests.helpers import reports
from ukl_patchbot.core.errors import InfraError, UserError
from ukl_patchbot.dashboard import markdown, render, site, views, web
from ukl_patchbot.history import store


@pytest.fixture
def hist(tmp_path: Path) -> store.HistoryStore:
    h = store.open_store(f"sqlite:///{tmp_path / 'history.sqlite'}")
    seeded.seed(h, tmp_path / "run")
    return h


def test_matrix_groups_lines_newest_first_with_attribution(hist: store.HistoryStore) -> None:
    m = views.matrix(hist.checks())
    assert m.variants == ("classic", "ukl")
    assert [(g.line, [r.tag for r in g.rows]) for g in m.groups] == [
        ("6.12", ["v6.12.9"]),
        ("6.1", [reports.HOSTILE_TAG, "v6.1.192", "v6.1.191", "v6.1.190"])]
    failing = m.groups[0].rows[0]
    assert [(c.text, c.note) for c in failing.cells] == [("pass", ""),
                                                           ("boot failed", "ukl-delta")]
    assert failing.overall.text == "fail" and failing.cells[1].href == f"checks/{failing.check.id}.html"
    assert len(m.recent) == 6 and m.recent[0].origin.pr == 7  # PR checks only in the list


def test_findings_since_when_and_count(hist: store.HistoryStore) -> None:
    rows = {r.fingerprint: r for r in views.findings(hist.checks())}
    oops = rows["oops-1a2b3c4d"]
    assert (oops.first_tag, oops.last_tag, oops.count, oops.variants) == (
        "v6.12.9", "v6.12.9", 1, ("ukl",))
    hostile = rows["warning-deadbeef"]
    assert hostile.count == 2 and hostile.first_seen < hostile.last_seen


def test_trends_one_point_per_tag(hist: store.HistoryStore) -> None:
    points = views.trend_points(hist.checks())
    assert [p.tag for p in points] == ["v6.1.190", "v6.1.191", "v6.1.192", reports.HOSTILE_TAG,
                                       "v6.12.9"]
    page = render.trends_page(hist.checks())
    boot = re.search(r'<g id="trend-boot-classic">(.*?)</g>\s*</g>', page, re.DOTALL)
    assert boot is not None and boot.group(1).count("<use ") == 5
    ukl_ns = re.search(r'<g id="trend-syscall-ukl">(.*?)</g>\s*</g>', page, re.DOTALL)
    assert ukl_ns is not None and ukl_ns.group(1).count("<use ") == 3  # failed UKL boots: no ns
    assert page.count("<svg") == len(render.plots.PLOTS) and "<?xml" not in page


def test_hostile_text_is_shown_as_text_on_every_page(hist: store.HistoryStore) -> None:
    checks = hist.checks()
    pages = {"matrix": render.matrix_page(checks), "trends": render.trends_page(checks),
             "findings": render.findings_page(checks)}
    for c in checks:
        full = hist.check(c.id)  # type: ignore[arg-type]
        assert full is not None
        pages[f"check {c.id}"] = render.check_page(full, len(checks))
    for name, page in pages.items():
        assert "<script" not in page.lower() and "<img" not in page, name
    shown = ["matrix", "trends", "findings"] + [f"check {c.id}" for c in checks
                                                 if "warning-deadbeef" in str(c.findings)]
    assert len(shown) == 5
    for name in shown:  # the hostile tag or finding, as text
        assert "&lt;script&gt;alert(" in pages[name], name


def test_report_markdown_keeps_our_folds_and_escapes_raw_html() -> None:
    md = ("## t\n\n<details><summary>range-diff <b>x</b></summary>\n\n```\n</details>\n"
          "<script>x()</script>\n```\n\n</details>\n\n<iframe src=y></iframe>\n"
          "[click](javascript:alert(1))\n")
    html = str(markdown.render_report(md))
    assert html.count("<details>") == 1 and html.count("</details>") == 1
    assert "<summary>range-diff &lt;b&gt;x&lt;/b&gt;</summary>" in html
    assert "&lt;/details&gt;" in html and "&lt;script&gt;" in html and "&lt;iframe" in html
    assert "javascript:" not in html.replace("[click](javascript:alert(1))", "")


def test_static_site_links_resolve_and_rewrite_is_atomic(hist: store.HistoryStore,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "site"
    assert site.write_site(hist, out) == 6
    pages = sorted(out.rglob("*.html"))
    assert len(pages) == 3 + 6
    for page in pages:
        for href in re.findall(r'(?:href|src)="([^"#]+)"', page.read_text()):
            if href.startswith(("https://", "file://")):
                continue
            target = Path(urljoin(page.as_uri(), href).removeprefix("file://"))
            assert target.is_file(), f"{page.name}: {href}"
    (out / "stale.html").write_text("old")
    site.write_site(hist, out)
    assert not (out / "stale.html").exists() and (out / "index.html").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".site")] == []


def test_static_site_refuses_a_directory_it_did_not_write(hist: store.HistoryStore,
                                                          tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="not a dashboard written by patchbot"):
        site.write_site(hist, mine)
    assert (mine / "notes.txt").read_text() == "keep me"


def _client(hist: store.HistoryStore) -> object:
    app = Flask("t")
    web.register(app, lambda: hist)
    return app.test_client()


def test_served_pages_headers_and_logs(hist: store.HistoryStore, tmp_path: Path) -> None:
    client = _client(hist)
    r = client.get("/")  # type: ignore[attr-defined]
    assert r.status_code == 200 and b"v6.12.9" in r.data and b"boot failed" in r.data
    assert "script-src" not in r.headers["Content-Security-Policy"]
    assert r.headers["Content-Security-Policy"].startswith("default-src 'none'")
    for path in ("/index.html", "/trends.html", "/findings.html", "/assets/style.css"):
        assert client.get(path).status_code == 200, path  # type: ignore[attr-defined]
    assert client.get("/checks/999.html").status_code == 404  # type: ignore[attr-defined]
    check = hist.checks()[-1]
    page = client.get(f"/checks/{check.id}.html").data.decode()  # type: ignore[attr-defined]
    (run := tmp_path / "run").mkdir(exist_ok=True)
    (run / "boot-classic-1.log").write_text("<script>log line</script>\n")
    href = re.search(r'href="\.\./(runs/\d+/\d+/boot-classic-1\.log)"', page)
    assert href is not None
    log = client.get("/" + href.group(1))  # type: ignore[attr-defined]
    assert log.status_code == 200 and log.headers["Content-Type"].startswith("text/plain")
    assert log.headers["X-Content-Type-Options"] == "nosniff"
    assert log.data == b"<script>log line</script>\n"
    wrong = href.group(1).rsplit("/", 1)[0] + "/passwd"
    assert client.get("/" + wrong).status_code == 404  # type: ignore[attr-defined]


def test_served_dashboard_is_503_while_the_history_is_down() -> None:
    def down() -> store.HistoryStore:
        raise InfraError("database unreachable")

    app = Flask("t")
    web.register(app, down)
    assert app.test_client().get("/").status_code == 503


def test_empty_history_pages_render(tmp_path: Path) -> None:
    h = store.open_store(f"sqlite:///{tmp_path / 'empty.sqlite'}")
    assert "No upstream check recorded yet" in render.matrix_page([])
    assert "no data recorded yet" in render.trends_page([])
    assert site.write_site(h, tmp_path / "s") == 0


def test_dashboard_command_writes_the_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from ukl_patchbot.cli import main

    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    seeded.seed(store.open_store(url))
    monkeypatch.setenv("PATCHBOT_HISTORY_URL", url)
    monkeypatch.chdir(tmp_path)
    assert main(["dashboard", "--out", str(tmp_path / "pub")]) == 0
    assert f"6 checks from {url}" in capsys.readouterr().out
    assert "v6.1.192" in (tmp_path / "pub" / "index.html").read_text()
    assert reports.XSS not in (tmp_path / "pub" / "findings.html").read_text()


def test_served_trends_are_drawn_again_only_when_the_history_changes(
        hist: store.HistoryStore, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[int] = []
    real = render.trends_page

    def counting(checks: list) -> str:  # type: ignore[type-arg]
        drawn.append(len(checks))
        return real(checks)

    monkeypatch.setattr(render, "trends_page", counting)
    client = _client(hist)
    first = client.get("/trends.html").data  # type: ignore[attr-defined]
    assert client.get("/trends.html").data == first  # type: ignore[attr-defined]
    assert drawn == [6]
    from datetime import UTC, datetime

    from ukl_patchbot.history import model
    hist.record(model.record_of(reports.report("v6.1.194"), model.Origin(model.Source.CLI), {},
                                datetime.now(UTC)))
    assert b"v6.1.194" in client.get("/trends.html").data  # type: ignore[attr-defined]
    assert drawn == [6, 7]


def test_dashboard_and_webhook_share_the_serve_app(hist: store.HistoryStore) -> None:
    from ukl_patchbot.bot.webhook import WebhookSettings, create_app

    submitted: list[object] = []
    app = create_app(WebhookSettings(secret=b"s"), lambda t: submitted.append(t) or "queued")
    web.register(app, lambda: hist)
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    assert client.post("/webhook", data=b"{}").status_code == 401  # still verified first
    assert b"v6.12.9" in client.get("/").data
    css = client.get("/assets/style.css")
    assert css.status_code == 200 and b".pass" in css.data
    assert submitted == []
