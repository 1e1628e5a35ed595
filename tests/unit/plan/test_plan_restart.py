"""Restart policies and backoff: which exited containers restart, when, and when the policy gives up."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest

from stackd.plan.restart import (
    Backoff,
    ContainerRestartState,
    Decision,
    GiveUp,
    Leave,
    RestartAt,
    RestartNow,
    RestartPolicy,
    crash_looping,
    decide,
)
from stackd.spec.models import Service


def _service(**keys: Any) -> Service:
    return Service.model_validate({"name": "web", "image": "nginx", **keys})


def _scheduled(decision: Decision) -> tuple[float, int, str]:
    """``(at, attempt, why)`` of a ``RestartAt``, with ``at`` rounded to a microsecond."""
    assert isinstance(decision, RestartAt), decision
    return round(decision.at, 6), decision.attempt, decision.why


def _exited(code: int | None, *, user: bool = False, restarts: int = 0, start: float = 0.0,
            end: float = 1.0, next_at: float | None = None) -> ContainerRestartState:
    return ContainerRestartState(state="exited", exit_code=code, stopped_by_user=user, restarts=restarts,
                                 last_start=start, last_exit=end, next_attempt_at=next_at)


# ------------------------------------------------------------------------------ policy, exit code, user stop

POLICIES = ["no", "always", "unless-stopped", "on-failure", "on-failure:3"]
EXIT_CODES: list[int | None] = [0, 1, 2, 137, 143, None]


def _expect_restart(policy: str, code: int | None, user: bool) -> bool:
    if user or policy == "no":
        return False
    return not (policy.startswith("on-failure") and code == 0)


@pytest.mark.parametrize("user", [False, True])
@pytest.mark.parametrize("code", EXIT_CODES)
@pytest.mark.parametrize("policy", POLICIES)
def test_every_policy_exit_code_and_user_stop(policy: str, code: int | None, user: bool) -> None:
    decision = decide(RestartPolicy.parse(policy), _exited(code, user=user), now=50.0)
    if _expect_restart(policy, code, user):
        assert decision == RestartNow(attempt=1, why=decision.why)
    else:
        assert isinstance(decision, Leave)
        if user:
            assert decision.why == "stopped by the user"


@pytest.mark.parametrize("state", ["running", "paused", "created", "dead"])
@pytest.mark.parametrize("policy", POLICIES)
def test_only_exited_containers_are_restarted(policy: str, state: Any) -> None:
    seen = ContainerRestartState(state=state, exit_code=1, last_start=0.0, last_exit=1.0)
    assert isinstance(decide(RestartPolicy.parse(policy), seen, now=50.0), Leave)


def test_sigkill_is_a_failure_and_says_so() -> None:
    decision = decide(RestartPolicy.parse("on-failure"), _exited(137), now=50.0)
    assert isinstance(decision, RestartNow)
    assert "killed by SIGKILL (exit code 137)" in decision.why


def test_on_failure_leaves_a_clean_exit_and_says_why() -> None:
    decision = decide(RestartPolicy.parse("on-failure:3"), _exited(0), now=50.0)
    assert decision == Leave("exited with code 0; restart policy on-failure:3 restarts only after a failure")


def test_always_restarts_after_a_daemon_start_but_unless_stopped_does_not() -> None:
    stopped = _exited(143, user=True)
    for policy, restarts in (("always", True), ("unless-stopped", False), ("on-failure", False),
                             ("no", False)):
        decision = decide(RestartPolicy.parse(policy), stopped, now=50.0, daemon_start=True)
        assert isinstance(decision, RestartNow) is restarts, policy
        # during normal passes a user stop always wins
        assert isinstance(decide(RestartPolicy.parse(policy), stopped, now=50.0), Leave)


# ------------------------------------------------------------------------------------------ backoff


def test_backoff_doubles_from_100ms_up_to_the_cap() -> None:
    waits = [Backoff().delay(k) for k in range(10)]
    assert waits == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0, 10.0])
    assert Backoff().delay(100_000) == 10.0
    assert [Backoff(initial=1, factor=3, cap=20).delay(k) for k in range(4)] == [1, 3, 9, 20]


def test_with_immediate_first_the_waits_start_at_the_second_restart_in_a_row() -> None:
    quick = Backoff(immediate_first=True)
    assert [quick.delay(k) for k in range(5)] == pytest.approx([0.0, 0.1, 0.2, 0.4, 0.8])
    first = decide(RestartPolicy.parse("always"), _exited(137, restarts=0, start=0.0, end=50.0), 50.0, quick)
    assert first == RestartNow(attempt=1, why="killed by SIGKILL (exit code 137); restart 1 (always)")
    second = decide(RestartPolicy.parse("always"), _exited(137, restarts=1, start=50.0, end=51.0), 51.0,
                    quick)
    assert _scheduled(second)[:2] == (51.1, 2)


def test_backoff_refuses_nonsense_settings() -> None:
    bad: list[dict[str, Any]] = [{"initial": -1.0}, {"factor": 0.5}, {"initial": 5.0, "cap": 1.0},
                                 {"reset_after": -1.0}]
    for settings in bad:
        with pytest.raises(ValueError, match="backoff needs"):
            Backoff(**settings)


def _crash_loop(policy: RestartPolicy, failures: int, run: float = 1.0,
                backoff: Backoff | None = None) -> list[Decision]:
    """Let a container fail ``failures`` times, each run lasting ``run`` s, as the reconciler would."""
    decisions: list[Decision] = []
    state = ContainerRestartState(state="exited", exit_code=1, last_start=0.0, last_exit=run)
    now = run
    for _ in range(failures):
        decision = decide(policy, state, now, backoff)
        decisions.append(decision)
        if isinstance(decision, RestartAt):  # the reconciler records the time and asks again then
            state = replace(state, next_attempt_at=decision.at)
            now = decision.at
            decision = decide(policy, state, now, backoff)
        if not isinstance(decision, RestartNow):
            break
        state = replace(state, restarts=decision.attempt, last_start=now, last_exit=now + run,
                        next_attempt_at=None)
        now += run
    return decisions


def test_a_crash_loop_waits_longer_each_time_up_to_the_cap() -> None:
    decisions = _crash_loop(RestartPolicy.parse("always"), 10)
    gaps: list[float] = []
    end = 1.0  # each run lasts 1 s; the wait is counted from the exit
    for decision in decisions:
        assert isinstance(decision, RestartAt)
        gaps.append(decision.at - end)
        end = decision.at + 1.0
    assert gaps == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0, 10.0])
    assert [d.attempt for d in decisions if isinstance(d, RestartAt)] == list(range(1, 11))


def test_the_wait_is_counted_from_the_exit_and_is_kept_across_passes() -> None:
    policy = RestartPolicy.parse("always")
    state = _exited(1, restarts=4, start=99.0, end=100.0)
    first = decide(policy, state, now=100.5)
    assert _scheduled(first) == (101.6, 5, "crash loop, next try in 1.1 s")
    assert isinstance(first, RestartAt)
    recorded = replace(state, next_attempt_at=first.at)
    assert decide(policy, recorded, now=101.0) == replace(first, why="crash loop, next try in 0.6 s")
    due = decide(policy, recorded, now=first.at)
    assert due == RestartNow(attempt=5, why="exited with code 1; restart 5 (always)")


def test_crash_loop_message_names_the_wait() -> None:
    decision = decide(RestartPolicy.parse("always"), _exited(1, restarts=4, start=9.0, end=10.0), now=10.0)
    assert isinstance(decision, RestartAt)
    assert decision.why == "crash loop, next try in 1.6 s"
    early = decide(RestartPolicy.parse("on-failure:5"), _exited(1, restarts=1, start=9.0, end=10.0), now=10.0)
    assert _scheduled(early) == (10.2, 2, "exited with code 1; restart 2 of 5 in 0.2 s (on-failure:5)")


def test_an_unknown_exit_time_schedules_from_now() -> None:
    state = ContainerRestartState(state="exited", exit_code=1, restarts=2)
    assert _scheduled(decide(RestartPolicy.parse("always"), state, now=7.0)) == (
        7.4, 3, "exited with code 1; restart 3 in 0.4 s (always)")


def test_a_stable_run_resets_the_wait_and_the_count() -> None:
    policy = RestartPolicy.parse("always")
    stable = decide(policy, _exited(1, restarts=7, start=0.0, end=10.0), now=10.0)
    assert _scheduled(stable)[:2] == (10.1, 1)
    quick = decide(policy, _exited(1, restarts=7, start=0.0, end=9.99), now=9.99)
    assert _scheduled(quick) == (19.99, 8, "crash loop, next try in 10 s")
    configured = decide(policy, _exited(1, restarts=7, start=0.0, end=2.0), 2.0, Backoff(reset_after=2.0))
    assert isinstance(configured, RestartAt)
    assert configured.attempt == 1


# ------------------------------------------------------------------------------------------ give up


def test_on_failure_3_gives_up_on_the_fourth_failure() -> None:
    decisions = _crash_loop(RestartPolicy.parse("on-failure:3"), 10)
    assert [type(d).__name__ for d in decisions] == ["RestartAt", "RestartAt", "RestartAt", "GiveUp"]
    assert decisions[-1] == GiveUp("exited with code 1; gave up after 3 restarts (on-failure:3)")


def test_a_stable_run_gives_on_failure_its_attempts_back() -> None:
    decision = decide(RestartPolicy.parse("on-failure:3"), _exited(1, restarts=3, start=0.0, end=60.0), 61.0)
    assert decision == RestartNow(attempt=1, why="exited with code 1; restart 1 of 3 (on-failure:3)")


def test_always_and_plain_on_failure_never_give_up() -> None:
    for policy in ("always", "unless-stopped", "on-failure", "on-failure:0"):
        decision = decide(RestartPolicy.parse(policy), _exited(1, restarts=1000), now=10_000.0)
        assert isinstance(decision, RestartNow), policy
        assert decision.attempt == 1001


# ------------------------------------------------------------------------------- reading the policy


@pytest.mark.parametrize(("text", "mode", "limit"), [
    ("no", "no", None), ("always", "always", None), ("unless-stopped", "unless-stopped", None),
    ("on-failure", "on-failure", None), ("on-failure:3", "on-failure", 3),
    ("on-failure:0", "on-failure", None),
])
def test_restart_key_is_read(text: str, mode: str, limit: int | None) -> None:
    policy = RestartPolicy.of(_service(restart=text))
    assert (policy.mode, policy.max_attempts, policy.delay, policy.window, policy.source) == (
        mode, limit, 0.0, None, "restart")


def test_no_restart_key_means_no() -> None:
    assert RestartPolicy.of(_service()) == RestartPolicy(mode="no")


@pytest.mark.parametrize("bad", ["", "sometimes", "on-failure:", "on-failure:x", "always:3", "no:1"])
def test_parse_refuses_what_is_not_a_policy(bad: str) -> None:
    with pytest.raises(ValueError, match="not a restart policy"):
        RestartPolicy.parse(bad)


@pytest.mark.parametrize(("given", "expected"), [
    ({"condition": "none"}, RestartPolicy(mode="no")),
    ({"condition": "on-failure"}, RestartPolicy(mode="on-failure")),
    ({"condition": "any"}, RestartPolicy(mode="always")),
    ({}, RestartPolicy(mode="always")),
    ({"max_attempts": 0}, RestartPolicy(mode="always")),
    ({"condition": "on-failure", "max_attempts": 2, "delay": "1m30s", "window": "2m"},
     RestartPolicy(mode="on-failure", max_attempts=2, delay=90.0, window=120.0)),
])
def test_deploy_restart_policy_is_mapped(given: dict[str, Any], expected: RestartPolicy) -> None:
    policy = RestartPolicy.of(_service(deploy={"restart_policy": given}))
    assert policy == replace(expected, source="deploy.restart_policy")


def test_deploy_restart_policy_wins_over_restart() -> None:
    both = _service(restart="always",
                    deploy={"restart_policy": {"condition": "on-failure", "max_attempts": 1}})
    assert (RestartPolicy.of(both).mode, RestartPolicy.of(both).max_attempts) == ("on-failure", 1)
    only_replicas = _service(restart="on-failure:2", deploy={"replicas": 2})
    assert RestartPolicy.of(only_replicas) == RestartPolicy(mode="on-failure", max_attempts=2)


def test_deploy_delay_is_the_least_wait_and_max_attempts_limits_any() -> None:
    policy = RestartPolicy.of(_service(deploy={"restart_policy": {"delay": "5s", "max_attempts": 2}}))
    first = decide(policy, _exited(0, start=0.0, end=1.0), now=1.0)
    assert isinstance(first, RestartAt)
    assert first.at == pytest.approx(6.0)
    late = decide(policy, _exited(0, restarts=7, start=0.0, end=1.0), now=1.0, backoff=Backoff(cap=60.0))
    assert isinstance(late, GiveUp)
    assert late.why == "exited with code 0; gave up after 7 restarts (always (at most 2 restarts) " \
                       "from deploy.restart_policy)"


def test_deploy_window_decides_what_a_stable_run_is() -> None:
    given = {"condition": "on-failure", "max_attempts": 2, "window": "1m"}
    policy = RestartPolicy.of(_service(deploy={"restart_policy": given}))
    after_30s = decide(policy, _exited(1, restarts=2, start=0.0, end=30.0), now=31.0)
    assert isinstance(after_30s, GiveUp)  # 30 s is stable for Docker's rule, not for this window
    after_60s = decide(policy, _exited(1, restarts=2, start=0.0, end=60.0), now=61.0)
    assert after_60s == RestartNow(attempt=1, why=after_60s.why)


# ----------------------------------------------------------------------------------- crash looping


def test_crash_looping_needs_quick_restarts_in_a_row() -> None:
    assert crash_looping(_exited(1, restarts=3, start=0.0, end=1.0))
    assert not crash_looping(_exited(1, restarts=2, start=0.0, end=1.0))
    assert not crash_looping(_exited(1, restarts=3, start=0.0, end=10.0))  # the last run was stable
    assert not crash_looping(_exited(1, restarts=9, user=True))
    assert crash_looping(_exited(1, restarts=1), Backoff(crash_loop_after=1))


def test_a_running_container_crash_loops_only_while_its_run_is_young() -> None:
    running = ContainerRestartState(state="running", restarts=5, last_start=100.0)
    assert crash_looping(running, now=105.0)
    assert not crash_looping(running, now=110.0)
    assert not crash_looping(running)  # without a time it cannot tell
    assert not crash_looping(replace(running, state="paused"), now=105.0)


# ------------------------------------------------------------------------------------- determinism


def test_decisions_read_no_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_clock() -> float:
        raise AssertionError("the restart decision read the clock")

    for name in ("time", "monotonic", "perf_counter", "time_ns", "monotonic_ns"):
        monkeypatch.setattr(time, name, no_clock)
    policy = RestartPolicy.parse("on-failure:5")
    state = _exited(1, restarts=2, start=10.0, end=11.0)
    answers = [decide(policy, state, now=11.2) for _ in range(3)]
    assert answers[0] == answers[1] == answers[2]
    assert _scheduled(answers[0]) == (11.4, 3, "exited with code 1; restart 3 of 5 in 0.2 s (on-failure:5)")
    assert crash_looping(state) is False
