"""The operator's web page (services/web.py, services/web/). Unit tests: the files are served from the
package with their types, a strict CSP and no-cache, outside the OpenAPI document; the role probe
changes nothing. Browser tests (integration, headless Chromium via Playwright): the real app under
uvicorn on loopback, a real run folder, and a driver stand-in reporting steps through the run's
ScheduleController; an operator steers, a viewer only reads, stale and invalid writes explain
themselves.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from counterpoint.services.app import create_app
from counterpoint.services.auth import Auth
from counterpoint.services.backend import LocalBackend
from counterpoint.services.web import CSP, asset_names, web_files
from counterpoint.trainer.curriculum.controller import ScheduleController
from counterpoint.trainer.curriculum.plan import StepPlan
from counterpoint.trainer.curriculum.planner import SchedulePlanner

OPERATOR, VIEWER = "op-token-0123456789abcdef", "viewer-token-0123456789ab"
STAGES = [
    {
        "name": "structured",
        "domains": {"math": {"weight": 2.0}, "code": {"weight": 1.0, "entropy_target": 0.3}},
        "advance": {"type": "steps", "steps": 200},
    },
    {"name": "creative", "domains": {"creative": {"weight": 1.0}}, "advance": {"type": "steps", "steps": 50}},
    {"name": "review", "kind": "sft", "domains": {"math": {"weight": 1.0}, "creative": {"weight": 1.0}}},
]
DOMAINS = ["math", "code", "creative"]
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "operator-page.png"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def auth() -> Auth:
    return Auth([("alice", OPERATOR, "operator"), ("victor", VIEWER, "viewer")])


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    ScheduleController(tmp_path / "runs" / "demo", STAGES, domains=DOMAINS)
    return tmp_path / "runs"


@pytest.fixture
def client(runs: Path) -> TestClient:
    return TestClient(create_app(LocalBackend(runs), auth()))


# --- the static routes (no browser) ---


def test_page_and_assets_are_served_with_a_strict_csp(client):
    expected = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    names = asset_names()
    assert {"index.html", "app.js", "style.css"} <= set(names)
    for path in ["/", *(f"/ui/{n}" for n in names)]:
        r = client.get(path)  # no token: the files hold no data
        assert r.status_code == 200, path
        suffix = ".html" if path == "/" else path[path.rfind(".") :]
        assert r.headers["content-type"].startswith(expected[suffix]), path
        csp = r.headers["content-security-policy"]
        assert csp == CSP and "default-src 'self'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "frame-ancestors 'none'" in csp
        assert r.headers["cache-control"] == "no-cache" and r.headers["x-content-type-options"] == "nosniff"
    assert client.get("/").content == web_files().joinpath("index.html").read_bytes()


def test_the_page_has_no_inline_script_or_style_and_links_only_its_own_files(client):
    html = client.get("/").text
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all('src="/ui/' in a and 'type="module"' in a and not body.strip() for a, body in scripts)
    assert "<style" not in html and not re.search(r"<[^>]*\s(style|on\w+)=", html, re.I)  # no inline style or handler
    assert "http://" not in html and "https://" not in html  # no CDN: works offline
    for ref in re.findall(r'(?:src|href)="(/[^"]*)"', html):
        assert client.get(ref).status_code == 200, ref


def test_the_modules_import_only_files_that_exist_and_stay_small():
    names = set(asset_names())
    for name in names:
        text = web_files().joinpath(name).read_text()
        assert len(text.splitlines()) <= 400, name
        if name.endswith(".js"):
            for dep in re.findall(r'from "\./([^"]+)"', text):
                assert dep in names, f"{name} imports ./{dep}, which is not served"
            assert ".innerHTML" not in text and "eval(" not in text and "localStorage." not in text, name


def test_unknown_files_are_404_and_revalidation_answers_304(client):
    for path in ("/ui/nope.js", "/ui/web.py", "/ui/..%2Fweb.py", "/ui/", "/ui/../web.py"):
        assert client.get(path).status_code == 404, path
    first = client.get("/ui/app.js")
    again = client.get("/ui/app.js", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and not again.content and again.headers["content-security-policy"] == CSP


def test_the_page_is_not_in_the_openapi_document_and_the_api_still_needs_tokens(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths and not any(p.startswith("/ui") for p in paths) and "/v1/runs" in paths
    assert client.get("/v1/runs").status_code == 401


def test_whoami_names_the_tokens_role_for_the_page(client):
    """The page shows a viewer a read-only view up front (api.js `fetchRole`)."""
    assert client.get("/v1/whoami", headers=bearer(VIEWER)).json()["role"] == "viewer"
    assert client.get("/v1/whoami", headers=bearer(OPERATOR)).json()["role"] == "operator"
    assert client.get("/v1/whoami").status_code == 401


# --- the browser tests ---


class DriverStandIn:
    """A stand-in for the training driver: it opens its own ScheduleController on the run folder and
    plans and reports each step through a SchedulePlanner, exactly as trainer/loop.py does
    (`planner.plan(step)` at the step boundary, `planner.report(step, record)` after it), with
    made-up per-domain metrics instead of a model."""

    def __init__(self, run_dir: Path):
        self.planner = SchedulePlanner(ScheduleController(run_dir), prompts_per_step=12, poll_seconds=0.05)
        self.step = 0

    def train_step(self) -> StepPlan:
        n = self.step + 1
        plan = self.planner.plan(n)
        assert plan.status == "train", plan
        record = {"domains": {d: self.metrics(d, n) for d, count in plan.prompts_per_domain.items() if count}}
        self.planner.report(n, record)
        self.step = n
        return plan

    @staticmethod
    def metrics(domain: str, n: int) -> dict:
        wobble = ((n * 7) % 5) / 50
        out = {"reward_mean": 0.2 + 0.5 * (1 - 0.9**n) + wobble, "entropy_mean": 1.4 * 0.95**n + wobble / 2}
        if domain == "math":
            return out | {"accuracy": 0.1 + 0.6 * (1 - 0.88**n), "distinct_2": 0.8 - 0.01 * n}
        if domain == "code":
            return out | {"accuracy": None, "self_bleu": 0.3 + 0.02 * n}  # no distinct_2: the page shows self-BLEU
        return out | {"distinct_2": 0.9 - 0.005 * n + wobble}


@contextmanager
def serve(runs: Path) -> Iterator[str]:
    """The real app under uvicorn on a free loopback port, in a thread; stopped on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(LocalBackend(runs), auth()), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="test-web-uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def chromium_executable(playwright) -> str:
    for candidate in (os.environ.get("COUNTERPOINT_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file():
            return candidate
    bundled = playwright.chromium.executable_path
    if bundled and Path(bundled).is_file():
        return bundled
    pytest.fail("no Chromium found: apt-get install chromium (or set COUNTERPOINT_CHROMIUM to a Chromium binary)")


@pytest.fixture
def browser_page(tmp_path: Path):
    """A headless Chromium page (loopback only), with the page's console errors collected."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is not installed: pip install playwright (or pip install -e '.[test]')")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_executable(p), args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 1440, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(10_000)
            page.errors = []
            page.on("pageerror", lambda err: page.errors.append(str(err)))
            page.on(
                "console",
                lambda m: m.type == "error" and "Failed to load resource" not in m.text and page.errors.append(m.text),
            )
            yield page
            assert not page.errors, page.errors  # no script error, no CSP violation
        finally:
            browser.close()


def sign_in(page, token: str) -> None:
    page.fill("#token", token)
    page.click("#login-form button[type=submit]")


def stage_order(page) -> list[str]:
    return page.eval_on_selector_all("#stages li.stage", "els => els.map(e => e.dataset.stage)")


def field(domain: str, name: str = "weight", stage: str = "structured") -> str:
    return f'form.domain[data-stage="{stage}"][data-domain="{domain}"] input[name="{name}"]'


def figure(page, domain: str, panel: str):
    return page.locator(f'figure[data-domain="{domain}"][data-panel="{panel}"]')


def points(page, domain: str, panel: str):  # its data-points attribute counts the points drawn
    return figure(page, domain, panel).locator("svg.chart")


@pytest.mark.integration
def test_an_operator_steers_a_live_run_and_a_viewer_only_reads(runs, tmp_path, browser_page):
    from playwright.sync_api import expect

    page, driver = browser_page, DriverStandIn(runs / "demo")
    for _ in range(6):
        driver.train_step()
    with serve(runs) as url:
        page.goto(url + "/")
        expect(page.locator("#login-view")).to_be_visible()
        sign_in(page, OPERATOR)
        expect(page.locator("#role-badge")).to_have_text("operator")
        expect(page.locator("#runs")).to_contain_text("demo")
        assert page.evaluate("sessionStorage.getItem('counterpoint.token')") == OPERATOR
        assert OPERATOR not in page.url and not page.context.cookies()

        # the curves: accuracy where the domain has it, self-BLEU where distinct-2 is missing
        expect(points(page, "math", "reward")).to_have_attribute("data-points", "6")
        expect(figure(page, "math", "reward")).to_have_attribute("data-metric", "accuracy")
        expect(figure(page, "code", "diversity")).to_have_attribute("data-metric", "self_bleu")
        expect(figure(page, "code", "reward")).to_have_attribute("data-metric", "reward_mean")
        driver.train_step()
        expect(points(page, "math", "reward")).to_have_attribute("data-points", "7")
        expect(points(page, "math", "entropy")).to_have_attribute("data-points", "7")

        # reorder with the keyboard-accessible button: review before creative
        assert stage_order(page) == ["structured", "creative", "review"]
        page.click('li[data-stage="review"] button.move-up')
        expect(page.locator("#schedule-version .badge")).to_have_attribute("data-version", "2")
        assert stage_order(page) == ["structured", "review", "creative"]
        newest = page.locator("#audit li.audit-entry").first
        expect(newest).to_have_attribute("data-action", "replace")
        expect(newest).to_contain_text("alice")
        expect(newest).to_contain_text("order: structured → review → creative")
        status = page.locator('#run-status dd[data-field="applied_version"]')
        expect(status).to_have_text("v1")
        assert driver.train_step().schedule_version == 2
        expect(status).to_have_text("v2")
        expect(figure(page, "math", "reward").locator('.vmark[data-version="2"]')).to_have_count(1)

        # reorder by drag and drop: creative dropped on the top half of review goes before it
        page.drag_and_drop(
            'li[data-stage="creative"] .stage-head', 'li[data-stage="review"]', target_position={"x": 40, "y": 6}
        )
        expect(page.locator("#schedule-version .badge")).to_have_attribute("data-version", "3")
        assert stage_order(page) == ["structured", "creative", "review"]

        # pause then resume the run, with a reason for the audit log
        page.fill("#reason", "judge is down")
        page.click("#pause-run")
        expect(page.locator("#pause-run")).to_have_text("Resume run")
        expect(page.locator('#run-status dd[data-field="status"]')).to_have_text("paused")
        expect(page.locator("#audit li.audit-entry").first).to_contain_text("judge is down")
        page.click("#pause-run")
        expect(page.locator("#pause-run")).to_have_text("Pause run")
        expect(page.locator('#run-status dd[data-field="status"]')).to_have_text("running")
        expect(page.locator("#audit li.audit-entry").first).to_have_attribute("data-action", "resume")

        for _ in range(5):
            driver.train_step()
        expect(points(page, "math", "reward")).to_have_attribute("data-points", "13")
        expect(page.locator('#run-status dd[data-field="applied_version"]')).to_have_text("v5")
        page.screenshot(path=str(tmp_path / "operator.png"), full_page=True)
        if os.environ.get("COUNTERPOINT_UPDATE_SCREENSHOTS"):  # docs/operator-page.png, on request only
            DOCS_SCREENSHOT.write_bytes((tmp_path / "operator.png").read_bytes())

        # log out; a viewer's page has every write control disabled
        page.click("#logout")
        expect(page.locator("#login-view")).to_be_visible()
        assert page.evaluate("sessionStorage.length") == 0
        sign_in(page, VIEWER)
        expect(page.locator("#role-badge")).to_have_text("viewer: read-only")
        expect(page.locator("#readonly-note")).to_be_visible()
        expect(page.locator("#stages li.stage")).to_have_count(3)
        for control in ("#pause-run", "#advance", "#reason"):
            expect(page.locator(control)).to_be_disabled()
        assert page.eval_on_selector_all("#stages button, #stages input", "els => els.every(e => e.disabled)")
        assert not page.eval_on_selector_all('#stages [draggable="true"]', "els => els.length")
        page.screenshot(path=str(tmp_path / "viewer.png"), full_page=True)

        # a direct write with the viewer's token is refused, and the page says why when forced to try
        answer = page.evaluate("""async () => {
            const headers = {Authorization: "Bearer " + sessionStorage.getItem("counterpoint.token")};
            const r = await fetch("/v1/runs/demo/pause", {method: "POST", headers});
            return {status: r.status, body: await r.json()}; }""")
        assert answer["status"] == 403 and "viewer role" in answer["body"]["detail"], answer
        page.eval_on_selector("#pause-run", "b => { b.disabled = false; b.click(); }")
        message = page.locator("#schedule-message")
        expect(message).to_contain_text("Read-only token: this action needs an operator token")
        expect(message).to_contain_text("viewer role")
        status = httpx.get(f"{url}/v1/runs/demo", headers=bearer(VIEWER)).json()
        assert status["status"] == "running" and status["latest_version"] == 5


WHAT = "d in s: weight 1, entropy target none → weight 0.5, entropy target none"
PURE_JS = """async () => {
    const [st, chart, audit] = await Promise.all(["stages", "chart", "audit"].map((m) => import(`/ui/${m}.js`)));
    const detail = {stage: "s", domain: "d", before: {weight: 1, entropy_target: null}, after: {weight: 0.5}};
    return [st.moved(["a", "b", "c"], "c", -1), st.moved(["a", "b"], "a", -1), st.dropped(["a", "b", "c"], "c", "a"),
        st.dropped(["a", "b"], "a", "b", false), chart.ticks(0, 1, 4), audit.describe({action: "set_domain", detail})];
}"""
"""The page's pure functions (reorder, axis ticks, audit wording), run in the browser."""


@pytest.mark.integration
def test_stale_and_invalid_writes_explain_themselves(runs, tmp_path, browser_page):
    from playwright.sync_api import expect

    page, driver = browser_page, DriverStandIn(runs / "demo")
    for _ in range(2):
        driver.train_step()
    with serve(runs) as url, httpx.Client(base_url=url, headers=bearer(OPERATOR)) as api:
        page.goto(url + "/")
        sign_in(page, "wrong-token-wrong-token")
        expect(page.locator("#login-message")).to_contain_text("Sign-in refused: unknown or wrong token")
        assert page.evaluate("sessionStorage.length") == 0
        sign_in(page, OPERATOR)
        assert page.evaluate(PURE_JS) == [["a", "c", "b"], None, ["c", "a", "b"], None, [0, 0.5, 1], WHAT]
        version = page.locator("#schedule-version .badge")
        expect(version).to_have_attribute("data-version", "1")

        # 422: the API's message names the field
        page.fill(field("math"), "-1")
        page.press(field("math"), "Enter")
        message = page.locator("#schedule-message")
        expect(message).to_contain_text("invalid weight: weight: Input should be greater than or equal to 0")
        expect(page.locator(field("math"))).to_have_attribute("aria-invalid", "true")
        page.fill(field("math"), "2")

        # 409: someone changes the schedule while this page edits a value
        page.fill(field("code"), "0.5")
        r = api.patch("/v1/runs/demo/stages/structured/domains/math", json={"entropy_target": 0.4, "base_version": 1})
        assert r.status_code == 200 and r.json()["version"] == 2
        expect(page.locator("#schedule-notice")).to_contain_text("Version 2 was saved while you were editing")
        page.press(field("code"), "Enter")
        expect(message).to_contain_text("The schedule changed since you loaded it (now version 2): reload")
        page.screenshot(path=str(tmp_path / "conflict.png"), full_page=True)
        page.click("#schedule-message button.reload")
        expect(version).to_have_attribute("data-version", "2")
        expect(message).to_be_hidden()
        expect(page.locator(field("math", "entropy_target"))).to_have_value("0.4")
        expect(page.locator(field("code"))).to_have_value("1")
        page.fill(field("code"), "0.5")
        page.press(field("code"), "Enter")
        expect(version).to_have_attribute("data-version", "3")
        expect(page.locator("#audit li.audit-entry").first).to_contain_text("code in structured: weight 1")

        # advance asks twice, then finishes the active stage
        page.click("#advance")
        expect(page.locator("#advance")).to_contain_text("Click again")
        page.click("#advance")
        expect(version).to_have_attribute("data-version", "4")
        expect(page.locator('li[data-stage="structured"]')).to_have_class(re.compile("status-finished"))
        assert driver.train_step().stage == "creative"
        expect(page.locator('#run-status dd[data-field="stage"]')).to_have_text("creative (rl)")

        # a token the server stops accepting sends the page back to the login form, with the message
        page.evaluate("sessionStorage.setItem('counterpoint.token', 'revoked-token-0123456789')")
        expect(page.locator("#login-view")).to_be_visible()
        expect(page.locator("#login-message")).to_contain_text("the server refused the token")
        assert page.evaluate("sessionStorage.length") == 0
