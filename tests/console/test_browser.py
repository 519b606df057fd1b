"""Real Chromium (Debian's chromium + chromium-driver, Selenium): sign in, the fleet page shows
the seeded fleet's counts, look up a 判定ID, run an impact preview; Japanese screenshots of each
page go to docs/screenshots/console_*.png (RECIPES.md "Real browser").

The console runs under uvicorn on 127.0.0.1 (plain HTTP: Chromium treats localhost as a secure
context, so the Secure cookie is kept; TLS itself is the same uvicorn setting as production).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from tests.conftest import REPO, require
from tests.console.conftest import IT_SEED, PASSWORD, Env, make_env
from tests.console.test_fleet import DRAFT
from verifier.console.web import build_console_app

SHOTS = REPO / "docs" / "screenshots"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Env, str]]:
    env = make_env(tmp_path, f"sqlite:///{tmp_path / 'v.sqlite3'}")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(build_console_app(env.console), host="127.0.0.1",
                                           port=port, log_config=None, access_log=False,
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise TimeoutError("console did not start within 15 s")
        time.sleep(0.05)
    try:
        yield env, f"http://localhost:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    require(shutil.which("chromium") is not None and shutil.which("chromedriver") is not None,
            "chromium and chromium-driver (apt)")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager never goes to the network
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--lang=ja-JP", f"--user-data-dir={tmp_path_factory.mktemp('chrome')}"):
        o.add_argument(a)
    o.add_experimental_option("prefs", {"intl.accept_languages": "ja-JP,ja"})
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
    d.set_page_load_timeout(30)
    d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                      {"width": 1366, "height": 768, "deviceScaleFactor": 1, "mobile": False})
    try:
        yield d
    finally:
        d.quit()


def wait_id(d: Any, element_id: str, timeout: float = 15.0) -> Any:
    """A click that submits returns before the next page is there: wait for it (bounded)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(d, timeout).until(
            ec.presence_of_element_located((By.ID, element_id)))
    except TimeoutException:
        raise AssertionError(f"no #{element_id} after {timeout} s on {d.current_url}: "
                             f"{d.find_element(By.TAG_NAME, 'main').text[:500]}") from None


def shot(d: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    d.save_screenshot(str(SHOTS / f"console_{name}.png"))


def test_sign_in_fleet_lookup_impact(served: tuple[Env, str], driver: Any,
                                     tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    env, base = served
    d = driver
    d.get(f"{base}/console/fleet")
    assert d.current_url.endswith("/console/login")  # anonymous: sent to sign in
    assert d.find_element(By.TAG_NAME, "h1").text == "サインイン"
    # keyboard only: the name field has the focus, Tab moves on, Enter submits
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    assert d.switch_to.active_element.get_attribute("id") == "username"
    keys = ActionChains(d).send_keys("it-admin", Keys.TAB, PASSWORD, Keys.TAB)
    keys.perform()
    assert d.switch_to.active_element.get_attribute("id") == "code"
    shot(d, "login")
    ActionChains(d).send_keys(env.code(IT_SEED), Keys.ENTER).perform()
    wait_id(d, "tile-total")
    assert d.current_url.endswith("/console/fleet"), d.page_source[:500]
    tiles = {k: d.find_element(By.ID, f"tile-{k}").text.split("\n")[0]
             for k in ("seen-day", "seen-week", "compliant", "expiring", "not-seen", "total")}
    assert tiles == {"seen-day": "10", "seen-week": "11", "compliant": "80%", "expiring": "2",
                     "not-seen": "1", "total": "12"}
    rows = d.find_elements(By.CSS_SELECTOR, "#top-failing tbody tr")
    assert [r.text for r in rows] == ["ディスクの暗号化 2"]
    cookie = d.get_cookie("byod_console")
    assert cookie is not None and cookie["httpOnly"] and cookie["secure"]
    assert cookie["sameSite"] == "Strict"
    # readable on 1366x768: nothing wider than the viewport
    assert d.execute_script("return document.documentElement.scrollWidth") <= 1366
    shot(d, "fleet")

    assert env.seeded is not None
    cid = env.seeded.cids["user08"]
    d.find_element(By.LINK_TEXT, "判定IDで検索").click()
    box = wait_id(d, "id")
    assert d.find_element(By.CSS_SELECTOR, "label[for=id]").text.startswith("判定ID")
    box.send_keys(cid.lower())
    d.find_element(By.ID, "lookup-go").click()
    assert wait_id(d, "found-cid").text == cid
    assert d.find_element(By.ID, "verdict").text == "接続を拒否"
    assert "再インストール" in d.find_element(By.CSS_SELECTOR, ".fix").text
    assert d.execute_script("return document.querySelectorAll('script').length") == 0
    shot(d, "lookup")

    draft = tmp_path / "draft.toml"
    draft.write_bytes(DRAFT)
    d.find_element(By.LINK_TEXT, "ポリシーの影響確認").click()
    wait_id(d, "policy").send_keys(str(draft))
    d.find_element(By.ID, "impact-go").click()
    assert wait_id(d, "would-block").text == "12 台中 6 台が接続できなくなります"
    by_check = [r.text for r in d.find_elements(By.CSS_SELECTOR, "#by-check tbody tr")]
    assert by_check[0] == "画面ロック 3"
    shot(d, "impact")

    d.get(f"{base}/console/devices/{env.seeded.fps['user00']}")
    assert len(d.find_elements(By.CSS_SELECTOR, "article.card")) == 3
    shot(d, "device")
    d.get(f"{base}/console/privacy")
    shot(d, "privacy")
    d.find_element(By.CSS_SELECTOR, "form.inline button").click()  # sign out (POST + CSRF)
    wait_id(d, "username")
    assert d.current_url.endswith("/console/login")
    d.get(f"{base}/console/fleet")
    assert d.current_url.endswith("/console/login")
