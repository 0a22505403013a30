"""The built book, opened page by page in a real headless Chromium (Debian's package,
driven by Playwright): every page loads, every image has pixels, the console stays
clean and no output holds a traceback."""

import functools
import http.server
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# Debian's package installs here. A `chromium` elsewhere on PATH may be a downloaded
# build (Playwright's, say), which this test must not use.
DEBIAN_CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM = str(DEBIAN_CHROMIUM) if DEBIAN_CHROMIUM.exists() else None
# Without these, Chromium tries to reach Google's services, which a closed network refuses.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason=f"no {DEBIAN_CHROMIUM}: install Debian's package (apt-get install chromium)",
    ),
]


@pytest.fixture(scope="module")
def site(smoke_book):
    assert smoke_book.build.returncode == 0, smoke_book.build.stdout[-2000:]
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(smoke_book.html)
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", smoke_book.html
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _pages(html: Path) -> list[str]:
    return sorted(
        str(p.relative_to(html))
        for p in html.rglob("*.html")
        if not p.relative_to(html).parts[0].startswith("_")
        and p.name not in {"search.html", "genindex.html"}
    )


# Pages open this many at a time: each waits for its network to go quiet, and those
# waits overlap, so the book is read in a fraction of the time one page at a time takes.
PAGES_AT_ONCE = 8


@dataclass
class _Loading:
    """A page on its way in, with what it has logged so far."""

    page: Any
    response: Any = None
    errors: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def _open(browser, url: str) -> _Loading:
    """Start loading ``url`` in a new page that records console errors and failed requests."""
    loading = _Loading(browser.new_page())
    page, errors, missing = loading.page, loading.errors, loading.missing
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    # A console error for a failed load does not say which URL failed; this does.
    page.on("response", lambda r: r.status >= 400 and missing.append(f"{r.status} {r.url}"))
    loading.response = page.goto(url, wait_until="commit")
    return loading


def _problems(page_path: str, loading: _Loading) -> list[str]:
    page = loading.page
    page.wait_for_load_state("load")
    page.wait_for_load_state("networkidle")
    broken = page.evaluate(
        "Array.from(document.images)"
        ".filter(i => !(i.complete && i.naturalWidth > 0))"
        ".map(i => i.src)"
    )
    text = page.inner_text("body")
    response = loading.response
    problems = []
    if response is None or response.status != 200:
        problems.append(f"{page_path}: HTTP {response and response.status}")
    if broken:
        problems.append(f"{page_path}: broken images {broken}")
    if loading.errors:
        problems.append(f"{page_path}: console errors {loading.errors}")
    if loading.missing:
        problems.append(f"{page_path}: failed requests {loading.missing}")
    if "Traceback (most recent call last)" in text:
        problems.append(f"{page_path}: a traceback in the output")
    page.close()
    return problems


def test_every_page_loads_cleanly(site, browser):
    base, html = site
    pages = _pages(html)
    assert len(pages) >= 10
    problems = []
    for start in range(0, len(pages), PAGES_AT_ONCE):
        batch = pages[start : start + PAGES_AT_ONCE]
        opened = [_open(browser, f"{base}/{page_path}") for page_path in batch]
        for page_path, loading in zip(batch, opened, strict=True):
            problems += _problems(page_path, loading)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("page_path", "header"),
    [
        ("book/generated/summary.html", "paper's numbers, full family"),
        ("book/generated/adversarial_results.html", "our evidence"),
    ],
)
def test_the_verdicts_are_on_screen(site, browser, page_path, header):
    """The table a reader comes for is drawn, at a readable size, with a verdict in it."""
    base, _ = site
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{base}/{page_path}", wait_until="networkidle")
    table = page.locator("table", has=page.locator("th", has_text=header)).first
    table.scroll_into_view_if_needed()
    box = table.bounding_box()
    text = table.inner_text()
    page.close()
    assert box is not None and box["width"] > 400 and box["height"] > 60
    verdicts = ("reproduced", "not reproduced", "underpowered", "inconclusive", "not testable")
    assert any(v in text for v in verdicts), text[:300]
