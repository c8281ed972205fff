"""Whether `sentinel serve` may listen where it was asked to: never reachable from other machines unguarded.

A loopback interface is only reachable from this host. Any other (``0.0.0.0``, a LAN address, a host
name) needs a bearer token (``serve.token``), or an explicit ``--insecure`` (``serve.insecure``) for a
network that is guarded otherwise.

Example:
    >>> require_guarded("0.0.0.0", token_set=False, insecure=False)
    Traceback (most recent call last):
    flows.errors.SettingsError: serve.host 0.0.0.0 is reachable from other machines and ...
"""

from __future__ import annotations

import ipaddress

from flows.errors import SettingsError


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost: it may resolve anywhere
        return False


def require_guarded(host: str, token_set: bool, insecure: bool) -> None:
    """Refuse a non-loopback `host` without a token, unless `insecure`.

    Raises:
        SettingsError: the service would answer anyone who can reach `host`.
    """
    if is_loopback(host) or token_set or insecure:
        return
    raise SettingsError(
        f"serve.host {host} is reachable from other machines and serve.token is not set: set "
        "SENTINEL_SERVE__TOKEN, or pass --insecure (serve.insecure) to serve it unguarded"
    )
