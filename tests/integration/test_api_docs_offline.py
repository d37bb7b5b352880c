"""Swagger UI (/docs) and ReDoc (/redoc) render from assets the API serves itself: field
missions work offline (decision 0057). A headless Chromium with every host name but
127.0.0.1 unresolvable renders both pages, and they list the API's operations."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
from unittest.mock import MagicMock

import httpx
import pytest
import uvicorn

from api.app import create_app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _app():
    services = MagicMock()  # the docs touch no database and no Temporal
    services.codec_cors_origins = []
    services.max_inflight = 128
    return create_app(services)


@pytest.fixture
async def base_url():
    server = uvicorn.Server(uvicorn.Config(_app(), host="127.0.0.1", port=0, log_config=None,
                                           access_log=False, lifespan="off"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


async def _render(url: str) -> str:
    """The page's DOM after Chromium ran its scripts, with the internet out of reach."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        browser = await asyncio.create_subprocess_exec(
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-extensions", f"--user-data-dir={profile}",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=5000", "--dump-dom", url,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        try:
            dom, _ = await asyncio.wait_for(browser.communicate(), timeout=90)
        finally:
            if browser.returncode is None:
                browser.kill()
                await browser.wait()
    return dom.decode("utf-8", "replace")


def _external_references(html: str) -> list[str]:
    """Every script, stylesheet or image the page loads from elsewhere than this API."""
    return [ref for ref in re.findall(r'(?:src|href)\s*=\s*["\']([^"\']+)', html)
            if re.match(r"(?:[a-z]+:)?//", ref)]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_pages_load_nothing_from_elsewhere(base_url: str, page: str):
    async with httpx.AsyncClient(base_url=base_url) as http:
        html = (await http.get(page)).text
        assert not _external_references(html), _external_references(html)
        assert "cdn" not in html.lower()
        for asset in re.findall(r'(?:src|href)="(/docs/assets/[^"]+)"', html):
            assert (await http.get(asset)).status_code == 200, asset


async def test_swagger_ui_renders_offline_with_the_operations(base_url: str):
    dom = await _render(f"{base_url}/docs")
    assert 'class="swagger-ui' in dom, dom[:500]
    for operation in ("complete_task", "list_cases", "register_referral"):
        assert operation in dom
    assert "/tasks/{task_id}/complete" in dom
    assert "btn authorize" in dom  # the bearer scheme is declared


async def test_redoc_renders_offline_with_the_operations(base_url: str):
    dom = await _render(f"{base_url}/redoc")
    assert "My organisation&#x27;s open tasks" in dom or "My organisation's open tasks" in dom
    assert "application/problem+json" in dom
