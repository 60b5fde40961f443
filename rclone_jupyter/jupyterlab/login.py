"""JupyterLab's login, throttled: the login page is on the public internet (the gateway's auth is off).

Behind SaladCloud's gateway every client has the same address, so nothing may lock an address out: a guesser
would lock the owner out with it. Instead two rules, neither of which ever refuses the right password:

- **A failed login is answered late.** The first FREE_FAILURES failures from an address (within WINDOW
  seconds) are answered at once; each later one waits twice as long as the one before (1 s, 2 s, 4 s ...,
  at most `max_delay`, RCLONE_JUPYTER_LOGIN_LOCKOUT). A guesser who waits for each answer slows down at
  every failure; the right password is checked at once and gets in (a success is never delayed).
- **Password checks are capped for the whole server**: CHECKS_PER_SECOND, first come first served. A
  guesser who does not wait for answers (many connections at once) gets that many guesses a second and no
  more; the owner's attempt waits its turn (at most MAX_QUEUE_WAIT seconds, else 429 with Retry-After) and
  is then checked like any other. The cap also bounds the CPU the password hash can take.

Runs inside JupyterLab's server: `daemon/jupyter_process.py` configures it as
`PasswordIdentityProvider.login_handler_class` and passes the numbers through `ServerApp.tornado_settings`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.auth.login import LoginFormHandler

SETTINGS_KEY = "rclone_jupyter_login"  # the key in tornado's settings
FREE_FAILURES = 3  # failures answered at once: typos
FIRST_DELAY = 1.0
MAX_DELAY = 60.0
WINDOW = 600.0  # an address's failures are forgotten this long after its last one
CHECKS_PER_SECOND = 5.0
MAX_QUEUE_WAIT = 10.0  # longest wait for a turn; beyond it the answer is 429
MAX_CLIENTS = 10_000  # addresses remembered at most: a flood of addresses cannot fill the memory


class Throttle:
    """The two rules above, with the clock injectable. Thread-safe."""

    def __init__(self, max_delay: float = MAX_DELAY, *, free_failures: int = FREE_FAILURES,
                 first_delay: float = FIRST_DELAY, window: float = WINDOW,
                 checks_per_second: float = CHECKS_PER_SECOND, max_queue_wait: float = MAX_QUEUE_WAIT,
                 clock: Callable[[], float] = time.monotonic):
        self.max_delay, self.free_failures, self.first_delay = max_delay, free_failures, first_delay
        self.window, self.interval, self.max_queue_wait = window, 1.0 / checks_per_second, max_queue_wait
        self.clock = clock
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()  # client -> (count, last failure)
        self._next_check = 0.0  # the clock time of the next free turn for a password check
        self._lock = threading.Lock()

    def turn(self) -> float | None:
        """Reserve the next turn for a password check: the seconds to wait for it (0: now), or None when the
        queue is longer than `max_queue_wait` (nothing reserved: answer 429)."""
        now = self.clock()
        with self._lock:
            at = max(now, self._next_check)
            if at - now > self.max_queue_wait + 1e-9:  # float sums of the interval
                return None
            self._next_check = at + self.interval
            return at - now

    def retry_after(self) -> float:
        """Seconds until a new attempt would get a turn within `max_queue_wait`."""
        with self._lock:
            return max(0.0, self._next_check - self.clock() - self.max_queue_wait)

    def failed(self, client: str) -> float:
        """Record a failed login; return how many seconds its answer waits."""
        now = self.clock()
        with self._lock:
            count, last = self._failures.pop(client, (0, now))
            count = 1 if now - last > self.window else count + 1
            self._failures[client] = (count, now)  # most recent last
            while len(self._failures) > MAX_CLIENTS:
                self._failures.popitem(last=False)
        if count <= self.free_failures:
            return 0.0
        return min(self.first_delay * 2 ** min(count - self.free_failures - 1, 64), self.max_delay)

    def failures(self, client: str) -> int:
        with self._lock:
            count, last = self._failures.get(client, (0, 0.0))
            return count if self.clock() - last <= self.window else 0

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)


_throttles: dict[float, Throttle] = {}


def throttle_for(settings: dict) -> Throttle:
    """One Throttle per server (per configuration), shared by every request."""
    numbers = settings.get(SETTINGS_KEY) or {}
    max_delay = float(numbers.get("max_delay", MAX_DELAY))
    if max_delay not in _throttles:
        _throttles[max_delay] = Throttle(max_delay)
    return _throttles[max_delay]


class ThrottledLoginHandler(LoginFormHandler):
    """jupyter_server's login form, with password checks capped and failed logins answered late."""

    @allow_unauthenticated  # the login form is reached before logging in (as the handler it extends)
    async def post(self):
        throttle = throttle_for(self.settings)
        client = self.request.remote_ip or "unknown"
        wait = throttle.turn()
        if wait is None:
            retry = int(throttle.retry_after()) + 1
            self.log.warning("rclone-jupyter: login from %s refused: more than %.0f s of password checks are "
                             "queued (someone is guessing); try again in %d s", client, throttle.max_queue_wait,
                             retry)
            self.set_status(429)
            self.set_header("Retry-After", str(retry))
            self._render(message={"error": f"Too many logins at once. Try again in {retry} s."})
            return
        if wait:
            await asyncio.sleep(wait)
        user = self.current_user = self.identity_provider.process_login_form(self)
        if user is None:
            delay = throttle.failed(client)
            if delay:
                self.log.warning("rclone-jupyter: %d failed logins from %s; this answer waits %.0f s",
                                 throttle.failures(client), client, delay)
                await asyncio.sleep(delay)
            else:
                self.log.info("rclone-jupyter: failed login from %s", client)
            self.set_status(401)
            self._render(message={"error": "Invalid credentials"})
            return
        throttle.succeeded(client)
        self.log.info(f"User {user.username} logged in.")
        self.identity_provider.set_login_cookie(self, user)
        self._redirect_safe(self.get_argument("next", default=self.base_url))
