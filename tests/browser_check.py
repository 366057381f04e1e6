"""Open pages in headless Chromium and report, as JSON on stdout, what a reader would see.

Run by tests/test_browser.py inside a network namespace with only loopback up, so nothing can leave the machine;
the Chromium flags also send any request for a remote host nowhere. For the Snakemake report, every result is shown
through the report's own view switcher (`app.setView`), the way a click shows it.

    python tests/browser_check.py REPORT_HTML NOTEBOOK_HTML SCREENSHOT_DIR [EXPLORER_HTML PROBE_JSON]
    python tests/browser_check.py --hostile SCREENSHOT_DIR PAGE...   # pages built from hostile names

An explorer page is used as a reader would: the mouse moved onto a point (the tooltip), a click (the neighbours
panel), a TARGETID typed into the find box and Enter.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome:", "chrome-extension:", "devtools:")
IMAGES_JS = """
const imgs = Array.from(document.images);
return {complete: imgs.every(i => i.complete), widths: imgs.map(i => i.naturalWidth), srcs: imgs.map(i => i.src.slice(0, 40))};
"""


def browser(profile: str) -> webdriver.Chrome:
    opts = Options()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--no-first-run", f"--user-data-dir={profile}",
                 "--window-size=1400,1000", "--proxy-server=http://127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(service=Service(DRIVER), options=opts)


def wait_for(driver: webdriver.Chrome, script: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(f"timed out waiting for: {script}")


def images(driver: webdriver.Chrome) -> dict:
    wait_for(driver, "return Array.from(document.images).every(i => i.complete)")
    return driver.execute_script(IMAGES_JS)


def requests(driver: webdriver.Chrome) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"][:120])
    return urls


def check_report(driver: webdriver.Chrome, report: Path, shots: Path) -> dict:
    driver.get(report.resolve().as_uri())
    wait_for(driver, "return typeof app !== 'undefined' && document.querySelector('#app').innerText.length > 0")
    driver.save_screenshot(str(shots / "report-landing.png"))
    landing = driver.find_element("id", "app").text
    results = driver.execute_script(
        "return Object.entries(results).map(([path, v]) => [path, v.mime_type])"
    )
    shown, pages = {}, {}
    for key, mime in results:
        if mime == "image/png":
            driver.execute_script("app.setView({content: 'img', contentPath: results[arguments[0]].data_uri})", key)
            wait_for(driver, "return document.querySelector('#app img') !== null")
            shown[key] = images(driver)
            if any(part in key for part in ("redshift_knn_regression", "r2_vs_embedding_dim", "similarity_images_sp-im")):
                driver.save_screenshot(str(shots / f"report-{Path(key).parent.name}-{Path(key).stem}.png"))
        elif mime == "text/html":
            driver.execute_script("app.setView({content: 'html', contentPath: results[arguments[0]].data_uri})", key)
            frame = wait_for(driver, "return document.querySelector('#app iframe')")
            driver.switch_to.frame(frame)
            wait_for(driver, "return document.readyState === 'complete' && document.body && document.body.innerText.length > 0")
            page = {"images": images(driver), "text": driver.find_element("tag name", "body").text[:20000]}
            if key.endswith("explorer.html"):
                wait_for(driver, "return window.explorer && window.explorer.ready()")
                page["explorer"] = {"drawn": driver.execute_script("return explorer.rows().length"),
                                    "painted": driver.execute_script(PAINTED_JS)}
                driver.switch_to.default_content()
                driver.save_screenshot(str(shots / f"report-{Path(key).parent.name}-explorer.png"))
            elif "overview" in key:
                page["r2"] = driver.execute_script(
                    "return Array.from(document.querySelectorAll('#redshift tr[data-model]')).map(tr => "
                    "[tr.dataset.model, Object.assign({}, tr.dataset), Array.from(tr.cells).map(c => c.innerText)])"
                )
                page["sections"] = driver.execute_script(
                    "return Array.from(document.querySelectorAll('section')).map(s => s.id)")
                page["board"] = driver.execute_script(
                    "return Array.from(document.querySelectorAll('#scoreboard table')).map(t => "
                    "Array.from(t.rows).map(r => Array.from(r.cells).map(c => c.innerText)))")
                page["references"] = driver.execute_script(
                    "return Array.from(document.querySelectorAll('#references tbody tr')).map(r => "
                    "Array.from(r.cells).map(c => c.innerText))")
                page["forest"] = driver.execute_script(
                    "const i = document.querySelector('#scoreboard img'); return i ? i.naturalWidth : 0")
                for where, name in (("#scoreboard table", "scoreboard"), ("#references", "references")):
                    driver.execute_script(f"document.querySelector('{where}').scrollIntoView()")  # what a reader
                    driver.save_screenshot(str(shots / f"report-overview-{name}.png"))  # scrolls to next
                driver.execute_script("window.scrollTo(0, 0)")
                driver.switch_to.default_content()
                driver.save_screenshot(str(shots / "report-overview.png"))
            else:
                driver.switch_to.default_content()
            pages[key] = page
    return {"landing": landing, "images": shown, "pages": pages, "requests": requests(driver)}


PAINTED_JS = """
return Array.from(document.querySelectorAll('canvas.map-canvas')).map(c => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
  return n;
});
"""
TILE_MEAN_JS = """
const c = document.getElementById('tooltip-tile'), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
const m = [0, 0, 0];
for (let i = 0; i < d.length; i += 4) { m[0] += d[i]; m[1] += d[i + 1]; m[2] += d[i + 2]; }
return m.map(v => v / (d.length / 4));
"""
PANEL_JS = """
return {row: document.getElementById('panel').dataset.row, title: document.querySelector('#panel h2').innerText,
        lines: Array.from(document.querySelectorAll('#panel .galaxy svg .spectral-line')).map(l =>
          [l.dataset.name, Number(l.dataset.observed), Number(l.getAttribute('x1'))]),
        modes: Object.fromEntries(Array.from(document.querySelectorAll('#panel .mode')).map(m => [m.dataset.mode,
          Array.from(m.querySelectorAll('.card')).map(c => [Number(c.dataset.row), Number(c.dataset.cosine)])]))};
"""


def isolated(driver: webdriver.Chrome, candidates: list[int], apart: float = 4.0) -> list[int]:
    """The candidate rows drawn at least `apart` CSS pixels from every other point on both maps, so that the mouse on
    one can only mean that galaxy."""
    keep = []
    for row in candidates:
        ok = True
        for modality in ("spectrum", "image"):
            ok &= driver.execute_script(
                "const [x, y] = explorer.position(arguments[0], arguments[1]);"
                "return explorer.rows().every(r => r === arguments[1] || Math.hypot("
                "explorer.position(arguments[0], r)[0] - x, explorer.position(arguments[0], r)[1] - y) >= arguments[2]);",
                modality, row, apart)
        if ok:
            keep.append(row)
    return keep


def point_at(driver: webdriver.Chrome, modality: str, row: int) -> ActionChains:
    """An action chain with the mouse moved onto the row's point (offsets are from the canvas's centre)."""
    canvas = driver.find_element("id", f"map-{modality}")
    x, y = driver.execute_script("return explorer.position(arguments[0], arguments[1])", modality, row)
    return ActionChains(driver).move_to_element_with_offset(canvas, round(x - canvas.size["width"] / 2),
                                                            round(y - canvas.size["height"] / 2))


def check_explorer(driver: webdriver.Chrome, page: Path, probe: dict, shots: Path) -> dict:
    """`probe`: {"rows": candidate rows to hover and click, "find": {"row", "targetid"}} (the test's own reading)."""
    driver.get(page.resolve().as_uri())
    wait_for(driver, "return window.explorer && window.explorer.ready()")
    probes = isolated(driver, probe["rows"])[:3]
    find = probe["find"]
    out = {"drawn": driver.execute_script("return explorer.rows()"), "probes": {}, "painted": driver.execute_script(PAINTED_JS)}
    for n, row in enumerate(probes):
        seen = {}
        for modality in ("spectrum", "image"):
            point_at(driver, modality, row).perform()
            wait_for(driver, "return document.getElementById('tooltip').style.display === 'block'")
            seen[f"hover_{modality}"] = {"row": driver.execute_script("return document.getElementById('tooltip').dataset.row"),
                                         "text": driver.find_element("id", "tooltip-text").text,
                                         "tile_mean": driver.execute_script(TILE_MEAN_JS)}
            if n == 0 and modality == "spectrum":
                driver.save_screenshot(str(shots / "explorer-hover.png"))
        point_at(driver, "spectrum", row).click().perform()
        wait_for(driver, f"return document.getElementById('panel').dataset.row === '{row}'")
        seen["clicked"] = driver.execute_script(PANEL_JS)
        out["probes"][row] = seen
    driver.execute_script("window.scrollTo(0, document.getElementById('panel').offsetTop - 20)")
    driver.save_screenshot(str(shots / "explorer-neighbours.png"))
    driver.execute_script("window.scrollTo(0, 0)")
    box = driver.find_element("id", "find")
    box.clear()
    box.send_keys(find["targetid"], Keys.ENTER)
    wait_for(driver, f"return document.getElementById('panel').dataset.row === '{find['row']}'")
    out["found"] = driver.execute_script(PANEL_JS)
    driver.save_screenshot(str(shots / "explorer-found.png"))
    out["errors"] = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    out["requests"] = requests(driver)
    return out


def check_notebook(driver: webdriver.Chrome, notebook: Path, shots: Path) -> dict:
    driver.get(notebook.resolve().as_uri())
    wait_for(driver, "return document.readyState === 'complete'")
    out = {"images": images(driver), "requests": requests(driver)}
    driver.save_screenshot(str(shots / f"notebook-{notebook.stem}.png"))
    return out


def check_hostile(driver: webdriver.Chrome, pages: list[Path], shots: Path) -> dict:
    """Pages built from hostile names: did any script of theirs run (`window.pwned`, a changed title, an alert),
    and is an explorer page still alive (its own script ran)?"""
    out = {}
    for page in pages:
        driver.get(page.resolve().as_uri())
        wait_for(driver, "return document.readyState === 'complete'")
        time.sleep(0.5)  # an onerror handler of a broken image runs after the load
        try:
            alert = driver.switch_to.alert.text
        except Exception:  # no alert open: what we hope for
            alert = None
        out[page.name] = {
            "pwned": driver.execute_script("return window.pwned === 1"),
            "title": driver.title,
            "alert": alert,
            "explorer_ready": driver.execute_script("return !!(window.explorer && window.explorer.ready())"),
            "errors": [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"],
            "requests": requests(driver),
        }
        driver.save_screenshot(str(shots / f"hostile-{page.stem}.png"))
    return out


def main() -> None:
    if sys.argv[1] == "--hostile":  # browser_check.py --hostile SCREENSHOT_DIR PAGE...
        shots = Path(sys.argv[2])
        shots.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
            driver = browser(profile)
            try:
                json.dump(check_hostile(driver, [Path(p) for p in sys.argv[3:]], shots), sys.stdout)
            finally:
                driver.quit()
        return
    report, notebook, shots = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    explorer = (Path(sys.argv[4]), json.loads(sys.argv[5])) if len(sys.argv) > 5 else None
    shots.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        driver = browser(profile)
        try:
            result = {"report": check_report(driver, report, shots), "notebook": check_notebook(driver, notebook, shots)}
            if explorer:
                result["explorer"] = check_explorer(driver, *explorer, shots)
        finally:
            driver.quit()
    result["local_schemes"] = LOCAL_SCHEMES
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
