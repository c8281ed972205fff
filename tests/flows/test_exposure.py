"""`sentinel serve` never answers other machines unguarded: other hosts than loopback need a token."""

from __future__ import annotations

import pytest

from flows.errors import SettingsError
from flows.serving.exposure import require_guarded
from tests.flows.test_cli import _sentinel

pytestmark = pytest.mark.reliability  # a fault of the README's Reliability table


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.1.1", "::1", "localhost"])
def test_loopback_needs_no_token(host):
    require_guarded(host, token_set=False, insecure=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "sentinel.internal"])
def test_any_other_host_needs_a_token_or_insecure(host):
    with pytest.raises(SettingsError, match=rf"^serve.host {host} is reachable from other machines"):
        require_guarded(host, token_set=False, insecure=False)
    require_guarded(host, token_set=True, insecure=False)
    require_guarded(host, token_set=False, insecure=True)


def test_serve_on_all_interfaces_without_a_token_refuses_to_start_in_one_line(tmp_path):
    out = _sentinel("serve", "--host", "0.0.0.0", "--port", "9", tmp_path=tmp_path)
    lines = out.stdout.strip().splitlines()
    assert out.returncode == 1 and len(lines) == 1, out.stdout + out.stderr[-2000:]
    assert "serve.token is not set" in lines[0] and "--insecure" in lines[0]
