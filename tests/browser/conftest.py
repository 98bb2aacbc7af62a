"""Real-browser tests (issue 8): pytest-playwright driving Debian's Chromium, never a
browser of Playwright's own. `make test` installs the `chromium` package when missing;
without it these tests skip and say why. On failure the page's screenshot and its console
log are saved in the test's output folder (pytest-playwright's --output, test-results/)."""

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("PERCPU_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",  # we run as root in CI
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: `make test` installs Debian's chromium "
                    f"package (apt-get install chromium), or set PERCPU_CHROMIUM")
    return {**browser_type_launch_args, "executable_path": CHROMIUM,
            "args": CHROMIUM_FLAGS, "headless": True}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1400, "height": 1000}}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def console(page, output_path, request):
    """The page's console messages and page errors; written out, with a screenshot, if the
    test fails."""
    messages: list[str] = []
    page.on("console", lambda m: messages.append(f"[{m.type}] {m.text}"))
    page.on("pageerror", lambda e: messages.append(f"[pageerror] {e}"))
    yield messages
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        out = Path(output_path)
        out.mkdir(parents=True, exist_ok=True)
        (out / "console.log").write_text("\n".join(messages) + "\n")
        try:
            page.screenshot(path=str(out / "failure.png"), full_page=True)
        except Exception as exc:  # the page may be gone; the log still says what happened
            (out / "screenshot-failed.txt").write_text(repr(exc))


@pytest.fixture
def shot(page, output_path):
    """shot(name): a screenshot of the current step in the test's output folder."""
    out = Path(output_path)
    out.mkdir(parents=True, exist_ok=True)
    counter = iter(range(1, 100))

    def take(name: str) -> Path:
        path = out / f"{next(counter):02d}-{name}.png"
        page.screenshot(path=str(path))
        return path
    return take
