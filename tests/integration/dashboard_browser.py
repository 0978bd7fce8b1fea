"""Headless Chromium driven by Selenium for the dashboard's tests (test_dashboard.py and
bench/dashboard_load.py): Debian's chromium, chromium-driver and python3-selenium.

browser_or_skip() exits with 77 (meson's "skipped") naming what is missing, except under CI
(the CI environment variable set), where a missing browser is a failure."""

import os
import sys

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def missing_parts():
    missing = [f"{p} (Debian package {pkg})" for p, pkg in
               ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")) if not os.path.exists(p)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium module (Debian package python3-selenium)")
    return missing


def browser_or_skip():
    """A headless Chromium WebDriver with the browser's console log kept; the caller quits it."""
    missing = missing_parts()
    if missing:
        message = "the browser tests need " + ", ".join(missing)
        if os.environ.get("CI"):
            sys.exit("FAIL: " + message)
        print("SKIP: " + message, file=sys.stderr)
        sys.exit(77)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def console_errors(driver, ignore_missing_importance=False):
    """The SEVERE entries of the browser's console since the last call. With
    ignore_missing_importance, the 404s of a coordinator without GET /v1/jobs/{id}/importance
    (which the job page shows as "not available") are left out."""
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE" and not (
        ignore_missing_importance and "/importance" in e.get("message", "")
        and "404" in e.get("message", ""))]
