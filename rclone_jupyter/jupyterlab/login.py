"""JupyterLab's login, throttled: the login page is on the public internet (the gateway's auth is off).

After MAX_FAILURES wrong passwords within WINDOW seconds from one client address, every login attempt from
that address gets 429 (with Retry-After) for LOCKOUT seconds, the good password included (otherwise the
answer would still tell a guesser when it is right). The lockout is logged with the address; once it is over
the good password works at once. Runs inside JupyterLab's server: `daemon/jupyter_process.py` configures it as
`PasswordIdentityProvider.login_handler_class` and passes the numbers through `ServerApp.tornado_settings`.

Behind a proxy every client may share one address (the proxy's): a guesser then also locks out the user for
LOCKOUT seconds, which is the price of not trusting client-supplied X-Forwarded-For headers.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.auth.login import LoginFormHandler

SETTINGS_KEY = "rclone_jupyter_login"  # the key in tornado's settings
MAX_FAILURES = 5
WINDOW = 60.0
LOCKOUT = 60.0
MAX_CLIENTS = 10_000  # addresses remembered at most: a flood of addresses cannot fill the memory


class Throttle:
    """Failed logins per client: `blocked(client)` says how many seconds it must still wait (0: none)."""

    def __init__(self, max_failures: int = MAX_FAILURES, window: float = WINDOW, lockout: float = LOCKOUT,
                 clock: Callable[[], float] = time.monotonic):
        self.max_failures, self.window, self.lockout, self.clock = max_failures, window, lockout, clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._locked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def blocked(self, client: str) -> float:
        with self._lock:
            until = self._locked_until.get(client, 0.0)
            left = until - self.clock()
            if left > 0:
                return left
            if until:
                del self._locked_until[client]  # the wait is over: a fresh start
                self._failures.pop(client, None)
            return 0.0

    def failed(self, client: str) -> bool:
        """Record a failed login; return True if this one locks the client out."""
        now = self.clock()
        with self._lock:
            times = self._failures.pop(client, None) or deque()
            self._failures[client] = times  # most recent last
            times.append(now)
            while times and now - times[0] > self.window:
                times.popleft()
            while len(self._failures) > MAX_CLIENTS:
                self._failures.popitem(last=False)
            if len(times) >= self.max_failures:
                self._locked_until[client] = now + self.lockout
                times.clear()
                return True
            return False

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)


_throttles: dict[tuple, Throttle] = {}


def throttle_for(settings: dict) -> Throttle:
    """One Throttle per server (per configuration), shared by every request."""
    numbers = settings.get(SETTINGS_KEY) or {}
    key = (int(numbers.get("max_failures", MAX_FAILURES)), float(numbers.get("window", WINDOW)),
           float(numbers.get("lockout", LOCKOUT)))
    if key not in _throttles:
        _throttles[key] = Throttle(*key)
    return _throttles[key]


class ThrottledLoginHandler(LoginFormHandler):
    """jupyter_server's login form, with failed logins throttled per client address."""

    @allow_unauthenticated  # the login form is reached before logging in (as the handler it extends)
    def post(self):
        throttle = throttle_for(self.settings)
        client = self.request.remote_ip or "unknown"
        wait = throttle.blocked(client)
        if wait:
            self.log.warning("rclone-jupyter: login from %s refused: locked out for %.0f more s after too many "
                             "failed logins", client, wait)
            self.set_status(429)
            self.set_header("Retry-After", str(int(wait) + 1))
            self._render(message={"error": f"Too many failed logins. Try again in {int(wait) + 1} s."})
            return
        user = self.current_user = self.identity_provider.process_login_form(self)
        if user is None:
            if throttle.failed(client):
                self.log.warning("rclone-jupyter: %d failed logins from %s within %.0f s: refusing logins from "
                                 "it for %.0f s", throttle.max_failures, client, throttle.window, throttle.lockout)
            else:
                self.log.info("rclone-jupyter: failed login from %s", client)
            self.set_status(401)
            self._render(message={"error": "Invalid credentials"})
            return
        throttle.succeeded(client)
        self.log.info(f"User {user.username} logged in.")
        self.identity_provider.set_login_cookie(self, user)
        self._redirect_safe(self.get_argument("next", default=self.base_url))
