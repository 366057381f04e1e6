"""Open pages in headless Chromium and report, as JSON on stdout, what a reader would see.

Run by tests/test_browser.py inside a network namespace with only loopback up, so nothing can leave the machine;
the Chromium flags also send any request for a remote host nowhere. For the Snakemake report, every result is shown
through the report's own view switcher (`app.setView`), the way a click shows it.

    python tests/browser_check.py REPORT_HTML NOTEBOOK_HTML SCREENSHOT_DIR
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
            if "overview" in key:
                page["r2"] = driver.execute_script(
                    "return Array.from(document.querySelectorAll('tr[data-model]')).map(tr => "
                    "[tr.dataset.model, Object.assign({}, tr.dataset), Array.from(tr.cells).map(c => c.innerText)])"
                )
                driver.switch_to.default_content()
                driver.save_screenshot(str(shots / "report-overview.png"))
            else:
                driver.switch_to.default_content()
            pages[key] = page
    return {"landing": landing, "images": shown, "pages": pages, "requests": requests(driver)}


def check_notebook(driver: webdriver.Chrome, notebook: Path, shots: Path) -> dict:
    driver.get(notebook.resolve().as_uri())
    wait_for(driver, "return document.readyState === 'complete'")
    out = {"images": images(driver), "requests": requests(driver)}
    driver.save_screenshot(str(shots / f"notebook-{notebook.stem}.png"))
    return out


def main() -> None:
    report, notebook, shots = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    shots.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        driver = browser(profile)
        try:
            result = {"report": check_report(driver, report, shots), "notebook": check_notebook(driver, notebook, shots)}
        finally:
            driver.quit()
    result["local_schemes"] = LOCAL_SCHEMES
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
