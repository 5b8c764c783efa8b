"""The book builds with warnings as errors, and its figures really render in a browser.

Slow: it builds from the executed solved notebooks, and executes them first if they are
missing or out of date (`./run test` has just executed them).
"""
import functools
import http.server
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from course.book import build_book
from course.execute import ensure_executed
from course.notebooks import ROOT, SOLVED_DIR

pytestmark = pytest.mark.slow

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--virtual-time-budget=8000", "--window-size=1200,1600"]
SCREENSHOT = ROOT / "_build" / "screenshots"


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    """Build the book once from the executed solved notebooks and serve it on localhost."""
    ensure_executed()  # every chapter, in solved/, with outputs that the current code made
    assert build_book() == 0, "jupyter-book build failed (warnings are errors): see its output above"
    html = ROOT / "_build" / "html"
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", html
    server.shutdown()


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "Chromium is missing: `./run test` installs Debian's chromium package when run as root"
    return path


def render(url: str, profile: Path, screenshot: Path | None = None) -> str:
    """The page's DOM after its scripts ran (and a screenshot, if asked)."""
    args = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
    if screenshot:
        subprocess.run([*args, f"--screenshot={screenshot}", url], check=True, capture_output=True, timeout=120)
    return subprocess.run([*args, "--dump-dom", url], check=True, capture_output=True, text=True, timeout=120).stdout


def chapter_pages(html: Path) -> list[Path]:
    return sorted((html / "solved").glob("*.html"))


def test_every_chapter_is_in_the_book(book):
    _, html = book
    built = {p.stem for p in chapter_pages(html)}
    assert built == {nb.stem for nb in SOLVED_DIR.glob("*.ipynb")}


def test_plotly_figures_render_in_chromium(book, tmp_path):
    url, html = book
    SCREENSHOT.mkdir(parents=True, exist_ok=True)
    for page in chapter_pages(html):
        shot = SCREENSHOT / f"{page.stem}.png"
        dom = render(f"{url}/solved/{page.name}", tmp_path / page.stem, shot)
        assert 'class="main-svg"' in dom, f"no plotly figure was drawn on {page.name}"
        assert shot.stat().st_size > 10_000, f"the screenshot of {page.name} is empty"


def test_solutions_are_folded_and_launch_buttons_present(book):
    _, html = book
    page = (html / "solved" / "00_how_it_works.html").read_text()
    assert "tag_hide-input" in page, "exercise solutions should be folded (hide-input)"
    assert "colab.research.google.com" in page and "mybinder.org" in page, "launch buttons are missing"
