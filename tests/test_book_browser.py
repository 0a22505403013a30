"""The built book, opened page by page in a real headless Chromium (Debian's package,
driven by Playwright): every page loads, every image has pixels, the console stays
clean and no output holds a traceback."""

import functools
import http.server
import threading
from pathlib import Path

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


def test_every_page_loads_cleanly(site, browser, tmp_path):
    base, html = site
    pages = _pages(html)
    assert len(pages) >= 10
    problems = []
    for page_path in pages:
        page = browser.new_page()
        errors, missing = [], []
        page.on("console", lambda m, errors=errors: m.type == "error" and errors.append(m.text))
        page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
        # A console error for a failed load does not say which URL failed; this does.
        page.on(
            "response",
            lambda r, missing=missing: r.status >= 400 and missing.append(f"{r.status} {r.url}"),
        )
        response = page.goto(f"{base}/{page_path}", wait_until="load")
        page.wait_for_load_state("networkidle")
        broken = page.evaluate(
            "Array.from(document.images)"
            ".filter(i => !(i.complete && i.naturalWidth > 0))"
            ".map(i => i.src)"
        )
        text = page.inner_text("body")
        if response is None or response.status != 200:
            problems.append(f"{page_path}: HTTP {response and response.status}")
        if broken:
            problems.append(f"{page_path}: broken images {broken}")
        if errors:
            problems.append(f"{page_path}: console errors {errors}")
        if missing:
            problems.append(f"{page_path}: failed requests {missing}")
        if "Traceback (most recent call last)" in text:
            problems.append(f"{page_path}: a traceback in the output")
        page.close()
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
