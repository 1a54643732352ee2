"""Drive `capsim serve` in Debian's headless Chromium: start the server, open the browser, and the
page actions the browser tests and scripts/screenshots.py share (pick a design, set a knob, run,
wait for a status). Selenium is always given /usr/bin/chromedriver, so Selenium Manager never
downloads a driver or a browser."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import Select, WebDriverWait

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SERVER_START_S = 90.0  # the server imports numpy, numba and the model before it listens
T = TypeVar("T")


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None. CI installs both (.ci/run)."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if not missing:
        return None
    return (f"{' and '.join(missing)} missing: the browser tests need Debian's chromium and "
            "chromium-driver (apt-get install -y chromium chromium-driver; .ci/run installs them)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def capsim_command() -> list[str]:
    """`capsim` from the virtualenv the tests run in (the same interpreter's bin folder)."""
    exe = Path(sys.executable).parent / "capsim"
    return [str(exe)] if exe.exists() else [sys.executable, "-c", "import cli; cli.main()"]


class Server:
    """`capsim serve` in a subprocess on a free port with its own runs folder."""

    def __init__(self, runs_dir: Path, scenario: str | None = None) -> None:
        self.runs_dir = runs_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        # open for the server's whole life, closed by stop()
        self.log = tempfile.NamedTemporaryFile(prefix="capsim-serve-", suffix=".log", delete=False)  # noqa: SIM115
        args = [*capsim_command(), "serve", *([scenario] if scenario else []), "--host", "127.0.0.1",
                "--port", str(self.port), "--runs-dir", str(runs_dir)]
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_up()

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def _wait_up(self) -> None:
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"capsim serve exited with {self.proc.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.base + "/api/designs", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"capsim serve did not answer on {self.base} in {SERVER_START_S:.0f} s:\n"
                           f"{self.output()}")

    def get(self, path: str) -> Any:
        """GET a JSON document of the API."""
        with urllib.request.urlopen(self.base + path, timeout=30) as r:
            return json.loads(r.read())

    def fetch(self, url: str) -> tuple[int, str]:
        """(status, text) of any URL (a download link's href)."""
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read().decode()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self.log.close()


def chrome(width: int = 1400, height: int = 1000) -> tuple[webdriver.Chrome, Path]:
    """Headless Chromium from Debian with a throw-away profile; the caller quits it and removes the
    profile folder (see `browser`)."""
    profile = Path(tempfile.mkdtemp(prefix="capsim-chromium-"))
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    # the window's size includes its frame: grow it until the page itself sees width x height
    inner = driver.execute_script("return [window.innerWidth, window.innerHeight];")
    driver.set_window_size(2 * width - int(inner[0]), 2 * height - int(inner[1]))
    return driver, profile


@contextmanager
def browser(width: int = 1400, height: int = 1000) -> Iterator[webdriver.Chrome]:
    driver, profile = chrome(width, height)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver: webdriver.Chrome, check: Callable[[webdriver.Chrome], T], timeout: float,
             what: str) -> T:
    """`check(driver)` once it is truthy; a stale element counts as not yet. On a timeout the
    assertion names `what` and the page's run status and any upload error."""
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1,
                             ignored_exceptions=(StaleElementReferenceException,)).until(check)
    except TimeoutException:
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (page: "
                             f"run-status={text_of(driver, 'run-status')!r}, "
                             f"upload-error={text_of(driver, 'upload-error')!r})") from None


def text_of(driver: webdriver.Chrome, element_id: str) -> str:
    found = driver.find_elements(By.ID, element_id)
    if not found:
        return f"<no #{element_id}>"
    try:
        return found[0].text.strip()
    except StaleElementReferenceException:
        return "<stale>"


def knob_id(path: str) -> str:
    """The DOM id of a knob: "knob-" + its path, every non-alphanumeric character a "-"."""
    return "knob-" + re.sub(r"[^A-Za-z0-9]", "-", path)


def knob(driver: webdriver.Chrome, path: str, timeout: float = 20) -> WebElement:
    """The knob for `path`: found by its id, and checked to carry `data-path`."""
    el = wait_for(driver, lambda d: (d.find_elements(By.ID, knob_id(path)) or [None])[0], timeout,
                  f"the knob #{knob_id(path)}")
    assert el.get_attribute("data-path") == path, \
        f"#{knob_id(path)} has data-path={el.get_attribute('data-path')!r}, expected {path!r}"
    return el


def knob_value(driver: webdriver.Chrome, path: str) -> str:
    return str(knob(driver, path).get_attribute("value"))


def set_knob(driver: webdriver.Chrome, path: str, value: object) -> None:
    """Set a knob as a user does: pick the option of a select, or clear a field, type, and Tab out."""
    el = knob(driver, path)
    text = str(value)
    if el.tag_name.lower() == "select":
        chooser = Select(el)
        values = [o.get_attribute("value") for o in chooser.options]
        if text in values:
            chooser.select_by_value(text)
        else:
            chooser.select_by_visible_text(text)
    else:
        el.clear()
        el.send_keys(text, Keys.TAB)
    shown = knob_value(driver, path)
    assert _same(shown, text), f"knob {path}: typed {text!r}, the field shows {shown!r}"


def _same(shown: str, typed: str) -> bool:
    try:
        return float(shown) == float(typed)
    except ValueError:
        return shown == typed


def design_id(server: Server, path: str) -> str:
    """The id /api/designs gives the shipped file `path` (e.g. scenarios/interview-small.yaml)."""
    designs = server.get("/api/designs")
    for d in designs:
        if d["path"] == path:
            return str(d["id"])
    raise AssertionError(f"/api/designs does not list {path}: {[d['path'] for d in designs]}")


def diagram_svg(driver: webdriver.Chrome) -> WebElement | None:
    found = driver.find_elements(By.CSS_SELECTOR, "#diagram svg")
    return found[0] if found else None


def diagram_nodes(driver: webdriver.Chrome) -> list[str]:
    """The component ids drawn in #diagram (sim.diagram's `<g class="node" data-id=...>`)."""
    nodes = driver.find_elements(By.CSS_SELECTOR, "#diagram svg g.node")
    return [str(g.get_attribute("data-id")) for g in nodes]


def pick_design(driver: webdriver.Chrome, design: str, expect: dict[str, object]) -> None:
    """Choose `design` in #design-select and wait until it is loaded afresh with knobs `expect`.

    Choosing the option already shown fires no change event (and an upload leaves the select as it
    was), so then another design is chosen first, as a user would."""
    chooser = Select(driver.find_element(By.ID, "design-select"))
    if chooser.first_selected_option.get_attribute("value") == design:
        other = next(str(o.get_attribute("value")) for o in chooser.options
                     if o.get_attribute("value") != design)
        _choose(driver, chooser, other)
    _choose(driver, chooser, design)
    wait_loaded(driver, expect, f"design {design}")


def _choose(driver: webdriver.Chrome, chooser: Select, value: str) -> None:
    """Select `value` and wait until the knobs shown before are replaced by the new scenario's."""
    before = driver.find_elements(By.CSS_SELECTOR, "#knobs [data-path]")
    chooser.select_by_value(value)
    if before:
        wait_for(driver, staleness_of(before[0]), 30, f"the knobs of design {value} to replace the old ones")


def upload(driver: webdriver.Chrome, file: Path) -> None:
    """Choose `file` in #upload-input (the page reads and posts it)."""
    driver.find_element(By.ID, "upload-input").send_keys(str(file))


def upload_scenario(driver: webdriver.Chrome, file: Path, expect: dict[str, object]) -> None:
    """Upload a good scenario and wait until its knobs (holding `expect`) replace the old ones."""
    before = driver.find_elements(By.CSS_SELECTOR, "#knobs [data-path]")
    upload(driver, file)
    if before:
        wait_for(driver, staleness_of(before[0]), 30, f"the knobs of the uploaded {file.name}")
    wait_loaded(driver, expect, f"the uploaded {file.name}")


def wait_loaded(driver: webdriver.Chrome, expect: dict[str, object], what: str, timeout: float = 30) -> None:
    """Wait until a scenario is drawn (#diagram has an svg) and its knobs hold `expect` ({path: value}:
    values that tell it from the scenario shown before)."""
    def loaded(d: webdriver.Chrome) -> bool:
        if diagram_svg(d) is None:
            return False
        for path, value in expect.items():
            found = d.find_elements(By.ID, knob_id(path))
            if not found or not _same(str(found[0].get_attribute("value")), str(value)):
                return False
        return True

    wait_for(driver, loaded, timeout, f"{what} to load with knobs {expect}")


def run_ids(server: Server) -> list[str]:
    return [str(r["run_id"]) for r in server.get("/api/runs")]


def click_run(driver: webdriver.Chrome, server: Server, timeout: float = 30) -> str:
    """Press #run-button; the new run's id, from GET /api/runs."""
    before = set(run_ids(server))
    driver.find_element(By.ID, "run-button").click()

    def new_run(_: webdriver.Chrome) -> str | None:
        dialog = driver.find_elements(By.ID, "confirm-dialog")
        if dialog and dialog[0].is_displayed():
            raise AssertionError("#confirm-dialog opened: the run is over the work budget")
        fresh = [r for r in run_ids(server) if r not in before]
        return fresh[0] if fresh else None

    return wait_for(driver, new_run, timeout, "a new run in GET /api/runs after #run-button")


def pick_for_compare(driver: webdriver.Chrome, run_id: str, timeout: float = 30) -> None:
    """Tick the run's .compare-pick box in #runs-list. The list is redrawn as runs change (ticks
    kept), so a box that goes stale between finding and clicking is found again."""
    css = f'#runs-list input.compare-pick[data-run-id="{run_id}"]'

    def ticked(d: webdriver.Chrome) -> bool:
        found = d.find_elements(By.CSS_SELECTOR, css)
        if not found:
            return False
        if not found[0].is_selected():
            found[0].click()
        return bool(d.find_element(By.CSS_SELECTOR, css).is_selected())

    wait_for(driver, ticked, timeout, f"run {run_id}'s compare box in #runs-list to be ticked")


def status(driver: webdriver.Chrome) -> str:
    return text_of(driver, "run-status")


def wait_status(driver: webdriver.Chrome, wanted: set[str], timeout: float) -> str:
    return wait_for(driver, lambda d: (s := status(d)) in wanted and s, timeout, f"#run-status in {wanted}")


def num_attr(driver: webdriver.Chrome, element_id: str, name: str) -> float | None:
    """A numeric attribute of an element (data-points, data-t), None while unset."""
    try:
        raw = driver.find_element(By.ID, element_id).get_attribute(name)
    except StaleElementReferenceException:
        return None
    try:
        return float(raw) if raw not in (None, "") else None
    except ValueError:
        return None
