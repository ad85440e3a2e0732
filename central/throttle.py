"""Login throttling: lock-out after repeated failures, per account and per client address.

Pure and in memory (``now`` is passed in, in seconds). Each key (an officer's name or a
client address) keeps its failures within a sliding window; at ``limit`` failures it is
locked until ``lockout`` seconds after the last one. Memory is bounded: at most
``max_keys`` keys, the least recently failed forgotten first (an attacker cycling through
names can only push out other attackers' entries sooner; the per-address limit still holds
for the address doing it). Several console instances each keep their own counts.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from dataclasses import dataclass


@dataclass(frozen=True)
class ThrottlePolicy:
    account_limit: int = 5  # failures per officer name within the window
    address_limit: int = 20  # failures per client address within the window
    window: float = 900.0
    lockout: float = 900.0
    max_keys: int = 10_000


class LoginThrottle:
    def __init__(self, policy: ThrottlePolicy | None = None) -> None:
        self.policy = policy or ThrottlePolicy()
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _locked(self, key: str, limit: int, now: float) -> bool:
        times = self._failures.get(key)
        if times is None:
            return False
        if now - times[-1] >= self.policy.lockout + self.policy.window:
            del self._failures[key]  # long forgotten: free the memory
            return False
        # `times` holds the last `limit` failures: locked while they fell within one window
        # and the lock-out since the last of them has not run out.
        return (
            len(times) >= limit
            and times[-1] - times[0] <= self.policy.window
            and now - times[-1] < self.policy.lockout
        )

    def locked(self, account: str, address: str, now: float) -> bool:
        """True if either the account or the address is locked out right now."""
        with self._lock:
            return self._locked(f"a:{account.casefold()}", self.policy.account_limit, now) or (
                self._locked(f"c:{address}", self.policy.address_limit, now)
            )

    def failed(self, account: str, address: str, now: float) -> None:
        with self._lock:
            for key, limit in (
                (f"a:{account.casefold()}", self.policy.account_limit),
                (f"c:{address}", self.policy.address_limit),
            ):
                times = self._failures.pop(key, None) or deque(maxlen=limit)
                times.append(now)
                self._failures[key] = times  # most recently failed last
                while len(self._failures) > self.policy.max_keys:
                    self._failures.popitem(last=False)

    def succeeded(self, account: str) -> None:
        """A correct password (given while not locked) clears the account's failures."""
        with self._lock:
            self._failures.pop(f"a:{account.casefold()}", None)

    def __len__(self) -> int:
        return len(self._failures)
