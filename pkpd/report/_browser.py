"""Headless Chromium, driven through the DevTools protocol over a pipe: print a page to PDF,
take a screenshot, check what the page loaded.

Why Chromium and not WeasyPrint: the PDF is then printed by the same engine that shows the
HTML, so both are the same document (CSS, fonts, figures); Chromium is one Debian package
(``apt-get install chromium``), where WeasyPrint needs Pango and its own CSS subset. Why the
protocol over a pipe (``--remote-debugging-pipe``: JSON messages ended by a NUL byte on file
descriptors 3 and 4) and not ``--print-to-pdf``: it needs no extra Python package and no
network port, and it waits on events (the page's ``load``), never on a clock; it also gives
the console messages and exceptions of the page, which the browser test asserts are none.

The browser is found as ``PKPD_CHROMIUM`` or the first of :data:`NAMES` on the PATH.
"""

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome", "headless_shell")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
         "--remote-debugging-pipe")
TIMEOUT_S = 120          # a browser that answers nothing for this long is stuck; the caller gets an error
A4_IN = (8.27, 11.69)
MARGIN_IN = 0.6


class BrowserError(RuntimeError):
    """The browser could not be started or did not answer."""


def find_browser():
    """Path of a Chromium executable, or None: ``PKPD_CHROMIUM``, else the first of NAMES on the PATH."""
    given = os.environ.get("PKPD_CHROMIUM")
    if given:
        return given if shutil.which(given) else None
    return next((found for found in map(shutil.which, NAMES) if found), None)


def _above_4(descriptor):
    """`descriptor` moved to a number above 4, so that the child's dup2 onto 3 and 4 never
    overwrites a descriptor it still has to copy (nor keeps a close-on-exec one as it is)."""
    moved = fcntl.fcntl(descriptor, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(descriptor)
    return moved


@dataclass
class PageState:
    """What a page did while it loaded: console messages (level, text) and uncaught exceptions."""
    console: list = field(default_factory=list)
    exceptions: list = field(default_factory=list)


class Browser:
    """One headless Chromium process with one page; use as a context manager.

    Examples
    --------
    >>> with Browser() as browser:                      # doctest: +SKIP
    ...     state = browser.open(Path("report.html"))
    ...     Path("report.pdf").write_bytes(browser.pdf())
    """

    def __init__(self, executable=None):
        self.executable = executable or find_browser()
        if self.executable is None:
            raise BrowserError("no Chromium found (set PKPD_CHROMIUM or install it: apt-get install chromium)")
        self._profile = tempfile.TemporaryDirectory(prefix="pkpd-chromium-")
        to_browser, self._write_fd = map(_above_4, os.pipe())
        self._read_fd, from_browser = map(_above_4, os.pipe())

        def descriptors():  # the protocol's fixed numbers in the child: 3 reads commands, 4 writes answers
            os.dup2(to_browser, 3)
            os.dup2(from_browser, 4)

        try:
            self._process = subprocess.Popen(
                [self.executable, *FLAGS, f"--user-data-dir={self._profile.name}", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                preexec_fn=descriptors, close_fds=False)
        except OSError as error:
            self._profile.cleanup()
            raise BrowserError(f"{self.executable}: {error.strerror}") from None
        finally:
            os.close(to_browser)
            os.close(from_browser)
        self._reader = os.fdopen(self._read_fd, "rb", buffering=0)
        self._buffer = b""
        self._next_id = 0
        self._events = []
        self._session = None

    def __enter__(self):
        target = self._call("Target.createTarget", url="about:blank")["targetId"]
        self._session = self._call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self._call(f"{domain}.enable", session=True)
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """End the browser and remove its profile folder."""
        try:
            self._call("Browser.close")
        except (BrowserError, OSError):
            pass
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._reader.close()
        try:
            os.close(self._write_fd)
        except OSError:
            pass
        self._profile.cleanup()

    # -- the protocol --------------------------------------------------------

    def _send(self, method, params, session):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        os.write(self._write_fd, json.dumps(message).encode() + b"\0")
        return self._next_id

    def _receive(self):
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._reader], [], [], TIMEOUT_S)
            chunk = self._reader.read(1 << 20) if ready else b""
            if not chunk:
                raise BrowserError(f"{self.executable} stopped answering (exit code {self._process.poll()})")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def _call(self, method, session=False, **params):
        number = self._send(method, params, session)
        while True:
            message = self._receive()
            if message.get("id") == number:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error'].get('message')}")
                return message.get("result", {})
            self._events.append(message)

    def _wait_for(self, method):
        """Events up to and including the first `method` event (those before it are kept)."""
        while True:
            for index, event in enumerate(self._events):
                if event.get("method") == method:
                    seen, self._events = self._events[:index + 1], self._events[index + 1:]
                    return seen
            self._events.append(self._receive())

    # -- pages ---------------------------------------------------------------

    def open(self, path):
        """Load a local HTML file and wait for its ``load`` event (every image decoded or failed).

        Returns
        -------
        PageState
            Console messages and exceptions seen while loading.
        """
        self._events = []
        self._call("Page.navigate", session=True, url=Path(path).resolve().as_uri())
        state = PageState()
        for event in self._wait_for("Page.loadEventFired"):
            self._collect(event, state)
        for event in self._events:  # anything logged in the same turn as load
            self._collect(event, state)
        self._events = []
        return state

    @staticmethod
    def _collect(event, state):
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(arg.get("value", arg.get("description", ""))) for arg in params.get("args", []))
            state.console.append((params.get("type", "log"), text))
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            state.console.append((entry.get("level", "info"), entry.get("text", "")))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            state.exceptions.append(details.get("exception", {}).get("description") or details.get("text", ""))

    def evaluate(self, expression):
        """The JSON value of a JavaScript expression in the page."""
        result = self._call("Runtime.evaluate", session=True, expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"evaluate: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def screenshot(self, width=1000):
        """PNG bytes of the whole page at `width` CSS pixels."""
        height = int(self.evaluate("document.documentElement.scrollHeight"))
        self._call("Emulation.setDeviceMetricsOverride", session=True, width=width, height=min(height, 16000),
                   deviceScaleFactor=1, mobile=False)
        data = self._call("Page.captureScreenshot", session=True, format="png", captureBeyondViewport=True)["data"]
        return base64.b64decode(data)

    def pdf(self, footer=""):
        """The page printed to PDF (A4, page numbers and `footer` text at the foot of each page)."""
        foot = ('<div style="font-size:7px;width:100%;padding:0 0.6in;color:#555;display:flex;'
                f'justify-content:space-between"><span>{footer}</span>'
                '<span><span class="pageNumber"></span> / <span class="totalPages"></span></span></div>')
        data = self._call("Page.printToPDF", session=True, paperWidth=A4_IN[0], paperHeight=A4_IN[1],
                          marginTop=MARGIN_IN, marginBottom=MARGIN_IN, marginLeft=MARGIN_IN, marginRight=MARGIN_IN,
                          printBackground=True, displayHeaderFooter=True, headerTemplate="<span></span>",
                          footerTemplate=foot, preferCSSPageSize=False)["data"]
        return base64.b64decode(data)
