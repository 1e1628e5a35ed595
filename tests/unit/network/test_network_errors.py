"""Foreign failures are classified by whether retrying can help."""

from __future__ import annotations

import errno

import pytest

from stackd.drivers.network.errors import IpamError, classify
from stackd.errors import PermanentDriverError, TransientDriverError


@pytest.mark.parametrize("code", [errno.EBUSY, errno.EAGAIN, errno.ENOBUFS, errno.EINTR])
def test_busy_and_interrupted_are_transient(code: int) -> None:
    assert isinstance(classify(code, "x"), TransientDriverError)


@pytest.mark.parametrize("code", [errno.EPERM, errno.EEXIST, errno.EOPNOTSUPP, errno.EINVAL, None])
def test_everything_else_is_permanent(code: int | None) -> None:
    err = classify(code, "add link stk-1: Operation not permitted")
    assert isinstance(err, PermanentDriverError) and not isinstance(err, TransientDriverError)
    assert str(err) == "add link stk-1: Operation not permitted"


def test_a_command_message_alone_can_say_transient() -> None:
    assert isinstance(classify(None, "Could not process rule: Device or resource busy"), TransientDriverError)


def test_ipam_errors_are_permanent() -> None:
    assert issubclass(IpamError, PermanentDriverError)
