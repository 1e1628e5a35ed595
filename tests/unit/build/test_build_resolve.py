"""Build-arg and ENV substitution with Docker's scoping, stage references and ``--target``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from textwrap import dedent

import pytest

from stackd.build.dockerfile import parse_dockerfile
from stackd.build.instructions import Copy, Env, Expose, Instruction, Label, Run, User, Workdir
from stackd.build.resolve import BuildPlan, automatic_args, resolve
from stackd.errors import SpecError


def plan(text: str, *, args: Mapping[str, str] | None = None, target: str | None = None,
         image_env: Mapping[str, Sequence[str]] | None = None) -> BuildPlan:
    df = parse_dockerfile(dedent(text).lstrip("\n"), "Dockerfile")
    return resolve(df, build_args=args, target=target, platform="linux/arm64/v8", image_env=image_env)


def instructions(p: BuildPlan, index: int = -1) -> list[Instruction]:
    return [s.instruction for s in p.stages[index].steps]


def errors(text: str, target: str | None = None) -> list[tuple[int, str]]:
    with pytest.raises(SpecError) as info:
        plan(text, target=target)
    return [(p.pos.line if p.pos else 0, p.message) for p in info.value.problems]


def test_global_args_are_seen_by_from_only_until_declared_again() -> None:
    p = plan("""
        ARG IMAGE=debian
        ARG TAG=bookworm
        FROM $IMAGE:${TAG}-slim
        WORKDIR /src/$TAG
        ARG TAG
        WORKDIR /src/$TAG
    """)
    first, _, second = instructions(p)
    assert p.stages[0].base_image == "debian:bookworm-slim"
    assert isinstance(first, Workdir) and first.path == "/src/"
    assert isinstance(second, Workdir) and second.path == "/src/bookworm"


def test_build_args_override_defaults_everywhere() -> None:
    p = plan("""
        ARG TAG=bookworm
        FROM debian:$TAG
        ARG TAG
        ARG USER=app
        USER $USER
        LABEL tag=$TAG
    """, args={"TAG": "trixie", "USER": "root"})
    assert p.stages[0].base_image == "debian:trixie"
    _, _, user, label = instructions(p)
    assert isinstance(user, User) and user.user == "root"
    assert isinstance(label, Label) and label.pairs == (("tag", "trixie"),)


def test_stage_arg_default_is_substituted_and_later_assignment_wins() -> None:
    p = plan("""
        FROM scratch
        ENV BASE=/opt
        ARG DIR=$BASE/app
        WORKDIR $DIR
        ENV DIR=/srv
        WORKDIR $DIR
    """)
    _, _, w1, _, w2 = instructions(p)
    assert isinstance(w1, Workdir) and w1.path == "/opt/app"
    assert isinstance(w2, Workdir) and w2.path == "/srv"


def test_one_env_instruction_uses_the_values_from_before_it() -> None:
    p = plan("""
        FROM scratch
        ENV abc=hello
        ENV abc=bye def=$abc
        ENV ghi=$abc
    """)
    _, second, third = instructions(p)
    assert isinstance(second, Env) and second.pairs == (("abc", "bye"), ("def", "hello"))
    assert isinstance(third, Env) and third.pairs == (("ghi", "bye"),)


def test_env_of_the_base_image_and_of_a_parent_stage_carry_over_but_args_do_not() -> None:
    p = plan("""
        FROM debian:bookworm AS base
        ARG ONLY_HERE=x
        ENV PATH=/app/bin:$PATH
        FROM base
        LABEL path=$PATH only=${ONLY_HERE:-unset}
    """, image_env={"debian:bookworm": ["PATH=/usr/bin:/bin", "junk"]})
    (label,) = instructions(p, 1)
    assert p.stages[1].base_stage == 0 and p.stages[1].base_image is None
    assert isinstance(label, Label) and label.pairs == (("path", "/app/bin:/usr/bin:/bin"), ("only", "unset"))
    assert dict(p.stages[0].env) == {"PATH": "/app/bin:/usr/bin:/bin"}


def test_run_cmd_and_healthcheck_are_not_substituted_but_run_sees_args() -> None:
    p = plan("""
        FROM scratch
        ARG VERSION=1
        RUN echo $VERSION
        CMD echo $VERSION
    """, args={"VERSION": "2"})
    _, run_step, cmd_step = p.stages[0].steps
    assert isinstance(run_step.instruction, Run) and run_step.instruction.command.args == ("echo $VERSION",)
    assert run_step.build_args == (("VERSION", "2"),)
    assert cmd_step.instruction == p.stages[0].steps[2].instruction


def test_quotes_and_escapes_are_processed_when_substituting() -> None:
    p = plan("""
        FROM scratch
        ENV A="two words" B='$literal' C=a\\ b D="$A!"
    """)
    (env,) = instructions(p)
    # D sees A as it was before this instruction: unset
    assert isinstance(env, Env)
    assert env.pairs == (("A", "two words"), ("B", "$literal"), ("C", "a b"), ("D", "!"))


def test_copy_heredoc_bodies_are_substituted_unless_quoted() -> None:
    p = plan("""
        FROM scratch
        ARG NAME=web
        COPY <<EOF /a
        name: "$NAME"
        EOF
        COPY <<'EOF' /b
        name: $NAME
        EOF
    """)
    _, a, b = instructions(p)
    assert isinstance(a, Copy) and a.heredocs[0].content == 'name: "web"\n'
    assert isinstance(b, Copy) and b.heredocs[0].content == "name: $NAME\n"


def test_automatic_platform_args() -> None:
    assert automatic_args("linux/arm64/v8")["TARGETVARIANT"] == "v8"
    p = plan("""
        FROM --platform=$BUILDPLATFORM debian AS build
        ARG TARGETARCH
        LABEL arch=$TARGETARCH os=$TARGETOS
    """)
    _, label = instructions(p)
    assert p.stages[0].platform == "linux/arm64/v8"
    assert isinstance(label, Label) and label.pairs == (("arch", "arm64"), ("os", ""))


def test_expose_is_normalised() -> None:
    p = plan("FROM scratch\nARG P=8080\nEXPOSE $P 53/UDP 9000-9002\n")
    expose = instructions(p)[1]
    assert isinstance(expose, Expose)
    assert expose.ports == ("8080/tcp", "53/udp", "9000/tcp", "9001/tcp", "9002/tcp")


def test_target_selects_the_stages_it_needs() -> None:
    text = """
        FROM debian AS deps
        RUN make deps
        FROM deps AS build
        RUN make
        FROM debian AS docs
        RUN make docs
        FROM scratch AS final
        COPY --from=build /out /
        COPY --from=1 /more /
        COPY --from=nginx:latest /etc/nginx /etc/nginx
        FROM final AS broken
        RUN ${BROKEN
    """
    p = plan(text, target="final")
    assert [s.index for s in p.stages] == [0, 1, 3] and p.target == 3
    steps = p.stage(3).steps
    assert [s.stages for s in steps] == [(1,), (1,), ()]
    assert steps[2].images == ("nginx:latest",)
    assert [s.index for s in plan(text, target="docs").stages] == [2]
    with pytest.raises(KeyError):
        plan(text, target="docs").stage(0)


def test_run_mount_from_a_stage_is_a_dependency() -> None:
    p = plan("""
        FROM debian AS tools
        FROM debian AS unused
        FROM debian
        RUN --mount=type=bind,from=tools,source=/usr/bin,target=/tools /tools/x
    """)
    assert [s.index for s in p.stages] == [0, 2]


def test_unused_build_args_are_reported_except_proxies() -> None:
    p = plan("""
        ARG USED=1
        FROM debian
        ARG STAGE
    """, args={"USED": "1", "STAGE": "2", "TYPO": "3", "http_proxy": "http://proxy:3128"})
    assert p.unused_args == ("TYPO",)
    assert p.proxy_args == (("http_proxy", "http://proxy:3128"),)


def test_errors_name_the_line() -> None:
    assert errors("ARG EMPTY=\nFROM ${EMPTY}\n") == [
        (2, "FROM: the base image name '${EMPTY}' is empty after substitution")]
    text = """
        ARG UNUSED=1
        FROM debian AS base
        FROM debian AS a
        COPY --from=a /x /y
        COPY --from=5 /x /y
        EXPOSE 70000 http
        COPY --chmod=rwx a b
        STOPSIGNAL "not a signal"
        WORKDIR ${UNSET:-}
        USER ${NAME:?must be given}
        COPY --from=later /x /y
        FROM debian AS later
    """
    assert errors(text, target="a") == [
        (4, "COPY: stage 'a' is this stage or a later one (circular dependency)"),
        (5, "COPY: stage 5 is not an earlier stage (a stage can only use the ones before it)"),
        (6, "EXPOSE: invalid port range '70000'"),
        (7, "COPY: invalid --chmod value 'rwx'"),
        (8, "STOPSIGNAL: invalid signal 'not a signal'"),
        (9, "WORKDIR: the value is empty after substitution"),
        (10, "USER: NAME: must be given"),
        (11, "COPY: stage 'later' is this stage or a later one (circular dependency)"),
    ]


def test_problems_in_stages_the_target_does_not_need_are_ignored() -> None:
    p = plan("FROM debian AS other\nUSER ${X:?}\nFROM debian\n")
    assert [s.index for s in p.stages] == [1]
