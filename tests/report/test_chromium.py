"""report.html in a real browser (headless Chromium): the five deliverable headings are in the DOM and
every plot decodes. Skipped where no Chromium is installed (scripts/install.sh tries `apt-get install
chromium` when it runs as root)."""

import re
import shutil
import subprocess

import pytest

from selfdistill.report import plots, render_report
from selfdistill.report.header import HEADINGS

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome", "headless_shell")
CHROMIUM = next((path for name in BROWSERS if (path := shutil.which(name))), None)
pytestmark = [
    pytest.mark.slow,  # a real headless browser per test; tests/report/test_report.py checks the HTML in-process
    pytest.mark.skipif(CHROMIUM is None, reason=f"no Chromium binary on PATH (looked for {', '.join(BROWSERS)})"),
    pytest.mark.skipif(not plots.available(),
                       reason="matplotlib (the report extra) is not installed: no plots to decode"),
]

# Injected into a copy of the page (the report itself has no script): after load, count the images
# that decoded (naturalWidth > 0) and record the h2 headings, as attributes --dump-dom will print.
PROBE = """<script>
window.addEventListener("load", () => {
  const imgs = [...document.images];
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0).length;
  document.body.dataset.imagesOk = ok + "/" + imgs.length;
  document.body.dataset.headings = [...document.querySelectorAll("h2")].map(h => h.textContent).join("|");
});
</script>"""


def _chromium(tmp_path, *args):
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
           f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)


@pytest.fixture(scope="module")
def page(full_run, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("chromium")
    _, html = render_report(full_run)
    probed = tmp / "probed.html"
    probed.write_text(html.read_text().replace("</body>", PROBE + "\n</body>"))
    return tmp, html, probed


def test_dom_has_the_five_deliverables_and_every_plot_decodes(page):
    tmp, _, probed = page
    out = _chromium(tmp, "--virtual-time-budget=10000", "--dump-dom", probed.as_uri())
    assert out.returncode == 0, out.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", out.stdout)
    assert body, out.stdout[:500]
    attrs = dict(re.findall(r'data-([\w-]+)="([^"]*)"', body.group(1)))
    assert attrs.get("images-ok") == "4/4", attrs
    assert attrs["headings"].split("|") == list(HEADINGS.values())


def test_screenshot_of_the_page_is_not_blank(page):
    from PIL import Image

    tmp, html, _ = page
    shot = tmp / "shot.png"
    out = _chromium(tmp, "--window-size=1200,2400", f"--screenshot={shot}", html.as_uri())
    assert out.returncode == 0 and shot.is_file(), out.stderr[-2000:]
    image = Image.open(shot).convert("RGB")
    colors = image.getcolors(maxcolors=1 << 20)
    assert image.size == (1200, 2400) and colors is not None and len(colors) > 50  # text, tables, plots
