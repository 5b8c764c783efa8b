"""The book builds with warnings as errors, and its pages really render in a browser, offline.

Slow: it builds from the executed solved notebooks, and executes them first if they are
missing or out of date (`./run test` has just executed them).

Chromium runs with every host name but 127.0.0.1 unresolvable, so a page that needs anything
from outside the book (a CDN's MathJax, say) fails here as it would for a learner offline.
Geometry (figure widths, cut-off lines, overlapping labels) is measured in the page itself: the
test server adds a small script to each HTML page that writes its measurements into the DOM,
which Chromium dumps. The script also moves each explorer's slider, as a reader would.

Screenshots of each chapter page land in _build/screenshots/: its first screen, or the whole
page with COURSE_FULL_SCREENSHOTS=1 (to look at every figure by eye).
"""
import functools
import http.server
import io
import json
import os
import re
import shutil
import subprocess
import threading
from html import unescape
from pathlib import Path

import pytest

from course.book import build_book
from course.execute import ensure_executed
from course.notebooks import ROOT, SOLVED_DIR
from utils.plots import EXPLORER_CLASS

pytestmark = pytest.mark.slow

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  # offline: no host name resolves except the test server's own address
                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                  "--virtual-time-budget=30000", "--window-size=1200,1600"]
SCREENSHOT = ROOT / "_build" / "screenshots"
FULL_SCREENSHOTS = os.environ.get("COURSE_FULL_SCREENSHOTS") == "1"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

# Added to every page the test server sends: once MathJax and plotly have had their time, it
# records what a reader would see into <body data-measured="...">.
MEASURE = """<script>
const visibleTraces = gd => gd.data.map((t, i) => t.visible === false ? -1 : i).filter(i => i >= 0);
const overlaps = (a, b) => a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1;
// titles, subplot titles, axis titles and a slider's parts: none may overlap another
const LABELS = ".gtitle, .annotation-text, .xtitle, .ytitle, .slider-current-value, .slider-rail-rect, .slider-label";
function labelClashes(plot) {  // labels that overlap, or stick out of the figure
  const box = plot.getBoundingClientRect();
  const labels = [...plot.querySelectorAll(LABELS)].filter(el => el.textContent.trim() || el.tagName === "rect")
    .map(el => ({text: el.textContent || el.getAttribute("class"), r: el.getBoundingClientRect()}));
  const clashes = [];
  labels.forEach((a, i) => labels.slice(i + 1).forEach(b => {
    if (overlaps(a.r, b.r)) clashes.push(`${a.text} / ${b.text}`);
  }));
  labels.filter(a => a.r.left < box.left - 1 || a.r.right > box.right + 1 || a.r.top < box.top - 1)
    .forEach(a => clashes.push(`${a.text} (outside the figure)`));
  return clashes;
}
const sleep = ms => new Promise(done => setTimeout(done, ms));
const rail = gd => gd.querySelector(".slider-rail-touch-rect");
async function slideExplorer(box) {  // press an explorer's slider at its far end, as a reader would
  const gd = box.querySelector(".js-plotly-plot");
  if (!gd) return {gd};
  for (let wait = 0; wait < 20 && !rail(gd); wait++) await sleep(500);  // a busy page draws late
  const before = {visible: visibleTraces(gd), title: gd.layout.title.text};
  for (let press = 0; press < 5 && rail(gd) && visibleTraces(gd).join() === before.visible.join(); press++) {
    const r = rail(gd).getBoundingClientRect(), at = {clientX: r.right - 2, clientY: r.top + r.height / 2, bubbles: true};
    rail(gd).dispatchEvent(new MouseEvent("mousedown", at));
    gd.dispatchEvent(new MouseEvent("mouseup", at));
    await sleep(500);
  }
  return {gd, before, steps: gd.layout.sliders ? gd.layout.sliders[0].steps.length : 0};
}
window.addEventListener("load", () => setTimeout(async () => {
  const explorers = await Promise.all([...document.querySelectorAll(".%(explorer)s")].map(slideExplorer));
  setTimeout(() => {
    const column = document.querySelector("article.bd-article") || document.querySelector("main");
    const right = column.getBoundingClientRect().right, left = column.getBoundingClientRect().left;
    const figures = [...document.querySelectorAll(".js-plotly-plot, .plot-container")].map(el => {
      const r = el.getBoundingClientRect();
      const title = el.querySelector(".gtitle");
      return {title: title ? title.textContent : "", width: r.width, left: r.left, right: r.right,
              clashes: el.classList.contains("js-plotly-plot") ? labelClashes(el) : []};
    });
    const cut = [...document.querySelectorAll("div.cell pre")].filter(el => el.scrollWidth > el.clientWidth + 1)
      .map(el => el.textContent.slice(0, 80));
    const modebars = [...document.querySelectorAll(".modebar-btn")].filter(el => el.offsetParent !== null).length;
    document.body.dataset.measured = JSON.stringify({
      column: {left, right, width: right - left}, figures, cut, modebars,
      height: document.documentElement.scrollHeight,
      explorers: explorers.map(({gd, before, steps}) => gd ? {
        traces: gd.data.length, steps, before,
        after: {visible: visibleTraces(gd), title: gd.layout.title.text,
                shown_title: (gd.querySelector(".gtitle") || {}).textContent},
      } : {traces: 0, steps: 0}),
      math: document.querySelectorAll("mjx-container").length,
      raw_math: document.querySelectorAll("span.math:not(:has(mjx-container)), div.math:not(:has(mjx-container))").length,
    });
  }, 5000);
}, 6000));
</script>""" % {"explorer": EXPLORER_CLASS}


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the built book, adds MEASURE to each page, and remembers every path that 404s."""

    missing: list[str]

    def send_head(self):
        f = super().send_head()
        if f is None or not self.path.split("?")[0].endswith(".html"):
            return f
        page = f.read().replace(b"</body>", MEASURE.encode() + b"</body>")
        f.close()
        return io.BytesIO(page)

    def send_header(self, keyword, value):
        if keyword == "Content-Length" and self.path.split("?")[0].endswith(".html"):
            return  # the page grew by MEASURE; HTTP/1.0 closes the connection to end the body
        super().send_header(keyword, value)

    def send_error(self, code, *args, **kwargs):
        if code == 404:
            self.missing.append(self.path)
        super().send_error(code, *args, **kwargs)

    def log_message(self, *args):
        pass


def serve(html: Path, missing: list[str]):
    handler = functools.partial(type("H", (Handler,), {"missing": missing}), directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def book():
    """Build the book once from the executed solved notebooks and serve it on localhost."""
    ensure_executed()  # every chapter, in solved/, with outputs that the current code made
    assert build_book() == 0, "jupyter-book build failed (warnings are errors): see its output above"
    html = ROOT / "_build" / "html"
    missing: list[str] = []
    server = serve(html, missing)
    yield f"http://127.0.0.1:{server.server_address[1]}", html, missing
    server.shutdown()


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "Chromium is missing: `./run test` installs Debian's chromium package when run as root"
    return path


def render(url: str, profile: Path, screenshot: Path | None = None) -> str:
    """The page's DOM after its scripts ran (and a screenshot, if asked: the whole page with
    COURSE_FULL_SCREENSHOTS=1, else its first screen)."""
    args = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
    dom = subprocess.run([*args, "--dump-dom", url], check=True, capture_output=True, text=True, timeout=120).stdout
    if screenshot:
        if FULL_SCREENSHOTS:
            args.append(f"--window-size=1200,{measured(dom)['height']}")  # the last flag of a kind wins
        subprocess.run([*args, f"--screenshot={screenshot}", url], check=True, capture_output=True, timeout=120)
    return dom


def measured(dom: str) -> dict:
    found = re.search(r'data-measured="([^"]*)"', dom)
    assert found, "the page's measuring script did not run (did the page load?)"
    return json.loads(unescape(found.group(1)))


def chapter_pages(html: Path) -> list[Path]:
    return sorted((html / "solved").glob("*.html"))


@pytest.fixture(scope="module")
def rendered(book, tmp_path_factory):
    """Every chapter page rendered once in Chromium, offline: {name: (dom, measurements)}."""
    url, html, _ = book
    SCREENSHOT.mkdir(parents=True, exist_ok=True)
    pages = {}
    for page in chapter_pages(html):
        dom = render(f"{url}/solved/{page.name}", tmp_path_factory.mktemp(page.stem),
                     SCREENSHOT / f"{page.stem}.png")
        pages[page.name] = dom, measured(dom)
    return pages


def test_every_chapter_is_in_the_book(book):
    _, html, _ = book
    built = {p.stem for p in chapter_pages(html)}
    assert built == {nb.stem for nb in SOLVED_DIR.glob("*.ipynb")}


def test_plotly_figures_render_in_chromium(rendered):
    for name, (dom, _) in rendered.items():
        assert 'class="main-svg"' in dom, f"no plotly figure was drawn on {name}"
        assert (SCREENSHOT / f"{Path(name).stem}.png").stat().st_size > 10_000, f"the screenshot of {name} is empty"


def test_the_book_needs_nothing_from_outside(book, rendered):
    """No page loads a script, style or font from another host, and nothing it asks for is missing."""
    _, html, missing = book
    for page in [html / "intro.html", *chapter_pages(html)]:
        text = page.read_text()
        loads = re.findall(r'<script[^>]*src="(https?://[^"]+)"', text)
        loads += [u for u in re.findall(r'<link[^>]*rel="stylesheet"[^>]*href="(https?://[^"]+)"', text)]
        assert not loads, f"{page.name} loads {loads} from outside the book"
    assert not [p for p in missing if not p.endswith("favicon.ico")], f"the book lacks {missing}"


def test_math_is_typeset_offline(rendered):
    """MathJax comes with the book: formulas are typeset, not shown as raw \\( W^\\top W \\)."""
    for name, (dom, m) in rendered.items():
        if 'class="math' not in dom:
            continue
        assert m["math"] > 0 and "<mjx-container" in dom, f"no formula was typeset on {name}"
        assert m["raw_math"] == 0, f"{m['raw_math']} formulas on {name} are left as raw TeX"


def test_figures_fit_their_column(rendered):
    """Every panel of a multi-panel figure is on screen: no figure is wider than the text column."""
    for name, (_, m) in rendered.items():
        column = m["column"]
        too_wide = [f"{f['title'][:50]!r}: {f['width']:.0f} px" for f in m["figures"]
                    if f["width"] > column["width"] + 1 or f["right"] > column["right"] + 1]
        assert not too_wide, f"on {name}, figures wider than the {column['width']:.0f} px column: {too_wide}"


def test_figure_labels_do_not_collide(rendered):
    """Titles, subplot titles, axis titles and sliders are readable: none overlaps another or sticks
    out of its figure."""
    for name, (_, m) in rendered.items():
        clashes = [f"{f['title'][:40]!r}: {f['clashes']}" for f in m["figures"] if f["clashes"]]
        assert not clashes, f"on {name}, labels collide: {clashes}"


def explorer_outputs(notebook: Path) -> int:
    """How many outputs of an executed notebook show a live widget (an explorer). The book's own
    copy of each notebook is read (_build/jupyter_execute), so a later `./run solve` cannot race it."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    return sum(WIDGET_VIEW in out.get("data", {}) for cell in nb.cells if cell.cell_type == "code"
               for out in cell.get("outputs", []))


def test_explorers_show_their_static_twin(book, rendered):
    """Widgets need a kernel, so in the book each explorer is a plotly figure with a slider: it is
    drawn, and pressing the slider's far end shows another view with its own title."""
    _, html, _ = book
    seen = 0
    for page in chapter_pages(html):
        dom, m = rendered[page.name]
        expected = explorer_outputs(html.parent / "jupyter_execute" / "solved" / f"{page.stem}.ipynb")  # as built
        assert len(m["explorers"]) == expected, f"{page.name}: {expected} explorers ran, {len(m['explorers'])} shown"
        assert "widget-view+json" not in dom, f"{page.name} shows a widget that needs a kernel"
        for ex in m["explorers"]:
            assert ex["traces"] > 0 and ex["steps"] >= 2, f"{page.name}: an explorer was not drawn: {ex}"
            before, after = ex["before"], ex["after"]
            assert before["visible"] and after["visible"], f"{page.name}: an explorer shows no trace: {ex}"
            assert after["visible"] != before["visible"], f"{page.name}: its slider changed nothing"
            assert after["title"] != before["title"] and after["shown_title"] == after["title"], ex
        seen += expected
    assert seen > 0, "no chapter has an explorer: this test checks nothing"


def test_the_toolbar_does_not_cover_titles(rendered):
    for name, (_, m) in rendered.items():
        assert m["modebars"] == 0, f"{name} shows plotly's toolbar over its figures' titles"


def test_long_lines_wrap(rendered):
    for name, (_, m) in rendered.items():
        assert not m["cut"], f"on {name}, these lines are cut off: {m['cut']}"


def test_test_markers_are_not_shown(book):
    _, html, _ = book
    for page in chapter_pages(html):
        assert "NBVAL" not in page.read_text(), f"{page.name} shows a test marker (# NBVAL_...)"


def test_solutions_are_folded_and_launch_buttons_open_the_learner_notebooks(book):
    _, html, _ = book
    for page in chapter_pages(html):
        text = page.read_text()
        launches = re.findall(r'href="(https://(?:colab\.research\.google\.com|mybinder\.org)[^"]+)"', text)
        assert len(launches) == 2, f"{page.name}: the Colab and Binder launch buttons are missing"
        for link in launches:
            assert "solved" not in link, f"{page.name} launches the solutions (git-ignored): {link}"
            assert f"chapters/{page.stem}/{page.stem}.ipynb" in unescape(link), link
    page = (html / "solved" / "00_how_it_works.html").read_text()
    assert "tag_hide-input" in page, "exercise solutions should be folded (hide-input)"
