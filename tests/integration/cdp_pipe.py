"""A headless Chromium driven over the DevTools protocol on a pipe, with the standard
library only (for tests/integration/test_control_browser.py).

`chromium --remote-debugging-pipe` reads commands on its file descriptor 3 and writes
answers and events on 4, one JSON object per message, each ended by a NUL byte. The
browser is started with its own profile in a temporary directory and a proxy that
refuses everything (127.0.0.1:9), which Chromium bypasses for loopback addresses only:
the page under test on 127.0.0.1 is reachable, nothing else is.

    b = Browser(chromium, tmpdir)
    page = b.open_page(width=360, height=740, mobile=True)
    page.navigate("http://127.0.0.1:5580/")
    page.wait_for("document.title", 5, "the title")
    b.close()
"""
import json
import os
import select
import subprocess
import time


class BrowserError(Exception):
    pass


def _high_fd(fd):
    """The same pipe end on a descriptor above 10, so that putting the two ends on 3 and 4
    in the child cannot overwrite one with the other."""
    import fcntl
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


class Browser:
    def __init__(self, chromium, tmp, stderr_path):
        to_browser_r, to_browser_w = (_high_fd(f) for f in os.pipe())
        from_browser_r, from_browser_w = (_high_fd(f) for f in os.pipe())

        def onto_3_and_4():
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        profile = os.path.join(tmp, "chromium-profile")
        os.makedirs(profile, exist_ok=True)
        self.stderr = open(stderr_path, "w")
        self.proc = subprocess.Popen(
            [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--no-default-browser-check", "--user-data-dir=" + profile,
             "--remote-debugging-pipe", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--disable-extensions",
             "--disable-dev-shm-usage", "--mute-audio", "--proxy-server=http://127.0.0.1:9",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self.stderr, stderr=self.stderr,
            preexec_fn=onto_3_and_4, pass_fds=(3, 4))
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.w = to_browser_w
        self.r = from_browser_r
        self.buf = b""
        self.next_id = 0
        self.answers = {}
        self.events = []  # (sessionId or None, method, params), in arrival order

    def _pump(self, timeout):
        """Reads what the browser wrote within `timeout` s; False when nothing came."""
        ready, _, _ = select.select([self.r], [], [], max(0.0, timeout))
        if not ready:
            return False
        chunk = os.read(self.r, 1 << 16)
        if not chunk:
            raise BrowserError("chromium closed its DevTools pipe (exit code %s)" %
                               self.proc.poll())
        self.buf += chunk
        while b"\0" in self.buf:
            raw, self.buf = self.buf.split(b"\0", 1)
            msg = json.loads(raw)
            if "id" in msg:
                self.answers[msg["id"]] = msg
            else:
                self.events.append((msg.get("sessionId"), msg.get("method"),
                                    msg.get("params", {})))
        return True

    def call(self, method, params=None, session=None, timeout=10.0):
        self.next_id += 1
        mid = self.next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self.w, data):]
        deadline = time.monotonic() + timeout
        while mid not in self.answers:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"no answer to {method} within {timeout} s")
            self._pump(left)
        answer = self.answers.pop(mid)
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def drain(self):
        """Takes in whatever events are waiting, without blocking."""
        while self._pump(0):
            pass

    def open_page(self, width, height, mobile):
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget",
                            {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        for domain in ("Page", "Runtime", "Log"):
            page.call(domain + ".enable")
        page.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 2 if mobile else 1,
                   "mobile": mobile})
        return page

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except (BrowserError, OSError):
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self.r, self.w):
            try:
                os.close(fd)
            except OSError:
                pass
        self.stderr.close()


class Page:
    def __init__(self, browser, session):
        self.b = browser
        self.session = session

    def call(self, method, params=None, timeout=10.0):
        return self.b.call(method, params, self.session, timeout)

    def navigate(self, url, timeout=10.0):
        self.b.drain()
        start = len(self.b.events)
        answer = self.call("Page.navigate", {"url": url})
        if answer.get("errorText"):
            raise BrowserError(f"cannot load {url}: {answer['errorText']}")
        deadline = time.monotonic() + timeout
        while not any(s == self.session and m == "Page.loadEventFired"
                      for s, m, _ in self.b.events[start:]):
            if time.monotonic() > deadline:
                raise BrowserError(f"{url} did not finish loading within {timeout} s")
            self.b._pump(deadline - time.monotonic())

    def evaluate(self, expression):
        """The expression's value (JSON-able; promises awaited); page exceptions raise."""
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                           "awaitPromise": True})
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise BrowserError(f"{expression!r} threw: " +
                               d.get("exception", {}).get("description", d.get("text", "")))
        return r["result"].get("value")

    def wait_for(self, expression, timeout, what):
        """Polls `expression` every 0.1 s until it is truthy and returns it; on timeout
        raises with `what` and the last value seen."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"{what}: not within {timeout} s (last: {value!r})")
            time.sleep(0.1)

    def mouse(self, kind, x, y, buttons):
        self.call("Input.dispatchMouseEvent",
                  {"type": kind, "x": x, "y": y, "button": "left", "buttons": buttons,
                   "clickCount": 1 if kind != "mouseMoved" else 0})

    def drag(self, x0, y, x1, steps=8):
        """Press at (x0, y), move to (x1, y) in `steps` moves with the button held, release:
        what a hand on a mouse does to a slider."""
        self.mouse("mouseMoved", x0, y, 0)
        self.mouse("mousePressed", x0, y, 1)
        for i in range(1, steps + 1):
            self.mouse("mouseMoved", x0 + (x1 - x0) * i / steps, y, 1)
        self.mouse("mouseReleased", x1, y, 0)

    def problems(self):
        """What the page complained about so far: uncaught exceptions, console errors,
        error log entries (CSP violations, failed loads) and dialogs (alert). The browser's
        own request for /favicon.ico (404: the page has no icon) is not the page's."""
        self.b.drain()
        out = []
        for s, m, p in self.b.events:
            if s != self.session:
                continue
            if m == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                out.append("exception: " + d.get("exception", {}).get("description",
                                                                      d.get("text", "")))
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console.error: " + " ".join(str(a.get("value", a.get(
                    "description", ""))) for a in p.get("args", [])))
            elif (m == "Log.entryAdded" and p["entry"].get("level") == "error" and
                  not p["entry"].get("url", "").endswith("/favicon.ico")):
                out.append("log: " + p["entry"].get("text", "") + " " +
                           p["entry"].get("url", ""))
            elif m == "Page.javascriptDialogOpening":
                out.append("dialog: " + p.get("message", ""))
        return out
