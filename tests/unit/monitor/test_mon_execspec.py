"""The process spec of an exec and user resolution over /etc/passwd and /etc/group text."""

from __future__ import annotations

from typing import Any

import pytest

from stackd.drivers.monitor.execspec import UserSpec, exec_process, merge_env, resolve_user
from stackd.errors import PermanentDriverError

PASSWD = """root:x:0:0:root:/root:/bin/sh
# a comment
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
app:x:1000:1000::/home/app:/bin/sh
broken line
"""
GROUP = """root:x:0:
www-data:x:33:
app:x:1000:
docker:x:999:app,other
audio:x:29:www-data
staff:x:50:app
"""


@pytest.mark.parametrize(("spec", "expected"), [
    ("app", UserSpec(1000, 1000, (50, 999))),
    ("www-data", UserSpec(33, 33, (29,))),
    ("1000", UserSpec(1000, 1000, (50, 999))),
    ("4242", UserSpec(4242, 0)),  # an unknown uid is allowed, with group 0
    ("app:staff", UserSpec(1000, 50, (999,))),
    ("app:7", UserSpec(1000, 7, (50, 999))),
    ("33:33", UserSpec(33, 33, (29,))),
    ("0", UserSpec(0, 0)),
])
def test_resolve_user(spec: str, expected: UserSpec) -> None:
    assert resolve_user(spec, PASSWD, GROUP) == expected


def test_numeric_users_need_no_files() -> None:
    assert resolve_user("1:2") == UserSpec(1, 2)


@pytest.mark.parametrize(("spec", "message"), [
    ("nobody-here", "no user 'nobody-here'"),
    ("app:nogroup", "no group 'nogroup'"),
    (":33", "invalid user"),
])
def test_unknown_names_are_errors(spec: str, message: str) -> None:
    with pytest.raises(PermanentDriverError, match=message):
        resolve_user(spec, PASSWD, GROUP)


def test_merge_env_overrides_by_name_in_place() -> None:
    base = ["PATH=/bin", "A=1", "B=2"]
    assert merge_env(base, {"A": "x", "C": "3"}) == ["PATH=/bin", "A=x", "B=2", "C=3"]
    assert merge_env(base, ["B=", "D=a=b"]) == ["PATH=/bin", "A=1", "B=", "D=a=b"]
    assert merge_env(base, ()) == base
    with pytest.raises(PermanentDriverError, match="not the string"):
        merge_env(base, "A=2")


BASE: dict[str, Any] = {
    "terminal": False,
    "consoleSize": {"height": 10, "width": 10},
    "user": {"uid": 0, "gid": 0, "additionalGids": [10]},
    "args": ["nginx", "-g", "daemon off;"],
    "env": ["PATH=/usr/bin", "HOSTNAME=web"],
    "cwd": "/srv",
    "capabilities": {"bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"]},
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
    "noNewPrivileges": True,
}


def test_exec_process_keeps_the_containers_process_and_changes_what_was_asked() -> None:
    process = exec_process(BASE, ["sh", "-c", "echo hi"], env={"X": "1"}, user=UserSpec(33, 33, (29,)),
                           cwd="/tmp", tty=True)
    assert process["args"] == ["sh", "-c", "echo hi"]
    assert process["env"] == ["PATH=/usr/bin", "HOSTNAME=web", "X=1"]
    assert process["cwd"] == "/tmp"
    assert process["user"] == {"uid": 33, "gid": 33, "additionalGids": [29]}
    assert process["terminal"] is True
    assert "consoleSize" not in process
    for kept in ("capabilities", "rlimits", "noNewPrivileges"):
        assert process[kept] == BASE[kept]
    assert BASE["args"] == ["nginx", "-g", "daemon off;"]  # the input is not changed


def test_exec_process_defaults_keep_user_and_cwd() -> None:
    process = exec_process(BASE, ["true"])
    assert process["user"] == BASE["user"] and process["cwd"] == "/srv" and process["terminal"] is False
    process["capabilities"]["bounding"].append("CAP_SYS_ADMIN")
    assert BASE["capabilities"]["bounding"] == ["CAP_CHOWN"]  # a deep copy


def test_exec_process_refuses_nonsense() -> None:
    with pytest.raises(PermanentDriverError, match="needs a command"):
        exec_process(BASE, [])
    with pytest.raises(PermanentDriverError, match="absolute"):
        exec_process(BASE, ["true"], cwd="relative")
