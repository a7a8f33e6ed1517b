"""`tune report RUN --html FILE`: one self-contained file, checked as text and in a real headless
chromium (Debian's package) driven over the DevTools protocol."""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import shutil
from pathlib import Path

import aiohttp
import pytest
from cdp import Chromium, Page, find_chromium
from conftest import needs, read_jsonl
from review_runs import XSS, preset_with_dedupe, responder
from synthtune.core.errors import EXIT_PARTIAL
from synthtune.core.testing import FakeOpenAI

SCREENSHOT_ENV = "SYNTHTUNE_SCREENSHOT"  # also copy the screenshot here (outside the repo)


@pytest.fixture
def html_report(cli, fake_openai: FakeOpenAI, workdir: Path) -> tuple[Path, dict]:
    fake_openai.responder = responder
    preset = preset_with_dedupe(workdir)
    result = cli("run", "--preset", str(preset), "--limit", "48", "--yes")
    out = workdir / "runs" / "plot-generator"
    report = json.loads((out / "report.json").read_text())
    # the responder fails some requests on purpose: a partial run exits 3
    assert report["failed"] and result.exit_code == EXIT_PARTIAL, result.output
    html_path = workdir / "report.html"
    made = cli("report", str(out), "--html", str(html_path))
    assert made.exit_code == 0, made.output
    return html_path, report


def test_html_report_is_self_contained_and_escapes_sample_text(html_report) -> None:
    path, report = html_report
    page = path.read_text(encoding="utf-8")
    # no network: nothing refers to another host, and the CSP forbids fetching anything
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page)
    assert csp and "default-src 'none'" in html.unescape(csp.group(1))
    # the untrusted text is there, escaped, and never as markup
    assert "<script>window.__xss" not in page and "onerror=" not in page.replace("onerror=&quot;", "")
    assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in page
    assert page.count("<script>") == 1
    stats = report["stats"]
    bins = len(stats["histograms"]["output_chars"]["counts"])
    assert f'data-metric="output_chars" data-bins="{bins}"' in page
    assert page.count('<tr data-status="') == stats["samples"]


def test_html_report_in_headless_chromium(html_report, tmp_path: Path) -> None:
    executable = find_chromium()
    if executable is None:  # CI installs it (.ci/run) and requires this test to run
        needs("chromium", "apt-get install -y chromium")
    path, report = html_report
    stats = report["stats"]
    rejected = read_jsonl(path.parent / "runs" / "plot-generator" / "rejected.jsonl")
    too_short = [r for r in rejected if "too short" in r["reason"]]
    assert too_short and stats["duplicates"]["exact"] > 0
    browser = Chromium(executable, tmp_path)
    try:
        found = asyncio.run(_drive(browser.port, path, tmp_path / "report.png"))
    finally:
        browser.close()

    assert found["errors"] == []
    assert found["title"].startswith("synthtune run ")
    for metric, hist in stats["histograms"].items():
        bars, bins, total = found["histograms"][metric]
        assert bars == bins == len(hist["counts"]), metric
        assert total == stats["samples"]
    assert found["rows"] == found["visible"] == stats["samples"]
    assert found["after_search"] == len(too_short) < stats["samples"]
    assert found["shown_text"] == f"{len(too_short)} of {stats['samples']} samples"
    assert found["after_status"] == stats["kept"]
    assert found["xss"] is None and found["images_in_table"] == 0
    assert found["xss_visible_as_text"] is True
    png = (tmp_path / "report.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000
    if os.environ.get(SCREENSHOT_ENV):
        shutil.copyfile(tmp_path / "report.png", os.environ[SCREENSHOT_ENV])


async def _drive(port: int, html: Path, screenshot: Path) -> dict:
    async with aiohttp.ClientSession() as session:
        page = await Page.open(session, port)
        try:
            for domain in ("Runtime", "Log", "Page"):
                await page.send(f"{domain}.enable")
            await page.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": 1280, "height": 2000, "deviceScaleFactor": 1, "mobile": False},
            )
            await page.send("Page.navigate", {"url": html.resolve().as_uri()})
            await page.wait_for_event("Page.loadEventFired")
            found: dict = {"title": await page.evaluate("document.title"), "histograms": {}}
            for metric in ("output_chars", "output_tokens", "input_chars", "input_tokens"):
                found["histograms"][metric] = await page.evaluate(
                    f"""(() => {{ const svg = document.querySelector('svg.hist[data-metric="{metric}"]');
                    const bars = svg.querySelectorAll('rect.bar');
                    let total = 0; bars.forEach(b => total += Number(b.dataset.count));
                    return [bars.length, Number(svg.dataset.bins), total]; }})()"""
                )
            visible = "document.querySelectorAll('#samples tbody tr:not([hidden])').length"
            found["rows"] = await page.evaluate("document.querySelectorAll('#samples tbody tr').length")
            found["visible"] = await page.evaluate(visible)
            await page.screenshot(screenshot)
            # type into the search box, as a user would
            await page.evaluate("document.getElementById('search').focus()")
            await page.send("Input.insertText", {"text": "too short"})
            found["after_search"] = await page.evaluate(visible)
            found["shown_text"] = await page.evaluate("document.getElementById('shown').textContent")
            await page.evaluate(
                "(() => { const s = document.getElementById('search'); s.value = '';"
                " s.dispatchEvent(new Event('input')); const st = document.getElementById('status');"
                " st.value = 'kept'; st.dispatchEvent(new Event('change')); })()"
            )
            found["after_status"] = await page.evaluate(visible)
            found["xss"] = await page.evaluate("window.__xss === undefined ? null : window.__xss")
            found["images_in_table"] = await page.evaluate("document.querySelectorAll('#samples img').length")
            found["xss_visible_as_text"] = await page.evaluate(
                f"document.querySelector('#samples tbody').textContent.includes({json.dumps(XSS[:40])})"
            )
            found["errors"] = page.console_errors()
            return found
        finally:
            await page.close()
