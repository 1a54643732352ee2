"""Take the README's screenshots of the web app from the real page in Debian's headless Chromium.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

Starts `capsim serve` on a free port with a temporary runs folder, and writes at 1400x1000:
  design.png   the page as it opens: the default design (messaging-1m) drawn, its flows and knobs;
  live.png     interview-small (with two SLOs) running: the live charts part-way through;
  verdict.png  the same run's verdict: Findings, SLOs, cost, capacity-plan WARN lines;
  compare.png  that run against a second with Cassandra writes at ONE, side by side.
Each run is 6 simulated seconds at sample 0.25 (about a minute in all). Needs /usr/bin/chromium and
/usr/bin/chromedriver (apt-get install -y chromium chromium-driver).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the page actions the browser tests use

from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from web_browser_helpers import (  # noqa: E402
    Server,
    browser,
    click_run,
    design_id,
    missing_browser,
    num_attr,
    pick_design,
    pick_for_compare,
    set_knob,
    status,
    upload_scenario,
    wait_for,
    wait_loaded,
)

WIDTH, HEIGHT = 1400, 1000
RUN = {"duration_s": 6, "warmup_s": 0.5, "sample": 0.25}
SLOS = ("\nslo:\n"
        "  - {name: read p99 < 20 ms, metric: latency_ms.read.p99, max: 20}\n"
        "  - {name: send p99 < 5 ms, metric: latency_ms.send.p99, max: 5}\n"
        "  - {name: availability >= 99.9%, metric: availability.overall, min: 0.999}\n")


def settle(seconds: float = 0.8) -> None:
    """Let Plotly finish drawing (its transitions) before a picture is taken."""
    time.sleep(seconds)


def show(driver: webdriver.Chrome, element_id: str, block: str = "start") -> None:
    """Scroll the element's panel to the top of the window, or with block="center" the element
    itself to the middle."""
    driver.execute_script(
        "const el = document.getElementById(arguments[0]);"
        "const target = arguments[1] === 'start' ? (el.closest('section') || el) : el;"
        "target.scrollIntoView({block: arguments[1]});"
        "if (arguments[1] === 'start') window.scrollBy(0, -12);",
        element_id, block)


def shoot(driver: webdriver.Chrome, out: Path, name: str) -> None:
    path = out / f"{name}.png"
    driver.save_screenshot(str(path))
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def wait_done(driver: webdriver.Chrome, timeout: float = 240) -> None:
    wait_for(driver, lambda d: status(d) in {"done", "failed", "cancelled"}, timeout, "the run to end")
    assert status(driver) == "done", f"the run ended {status(driver)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    if (why := missing_browser()) is not None:
        sys.exit(f"error: {why}")
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="capsim-screenshots-") as tmp:
        server = Server(Path(tmp) / "runs")
        try:
            with browser(WIDTH, HEIGHT) as d:
                d.get(server.base + "/")
                wait_loaded(d, {"redis.shards": 400}, "the default design (messaging-1m)")
                settle()
                shoot(d, out, "design")

                # interview-small with SLOs, uploaded as a user would
                small = (ROOT / "scenarios" / "interview-small.yaml").read_text()
                file = Path(tmp) / "interview-small-slo.yaml"
                file.write_text(small.replace("\nseed: 1\n", "\nseed: 3\n") + SLOS)
                pick_design(d, design_id(server, "scenarios/interview-small.yaml"), {"redis.shards": 2})
                upload_scenario(d, file, {"seed": 3})
                for path, value in RUN.items():
                    set_knob(d, path, value)
                first = click_run(d, server)
                wait_for(d, lambda dr: status(dr) == "running"
                         and (num_attr(dr, "chart-latency", "data-points") or 0) >= 3, 240,
                         "three seconds of live rows")
                show(d, "chart-latency")
                settle(0.3)
                shoot(d, out, "live")
                wait_done(d)
                show(d, "slos", "center")  # the end of the Findings, the SLOs, the cost
                settle()
                shoot(d, out, "verdict")

                set_knob(d, "cassandra.write_consistency", "ONE")
                second = click_run(d, server)
                wait_done(d)
                for run_id in (first, second):
                    pick_for_compare(d, run_id)
                d.find_element(By.ID, "compare-button").click()
                wait_for(d, lambda dr: dr.find_elements(By.CSS_SELECTOR, "#compare-table tbody tr"), 30,
                         "the compare table")
                show(d, "runs-list")
                settle()
                shoot(d, out, "compare")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
