"""Dockerfile parsing: every instruction, both forms, continuations, directives, heredocs, stages,
and errors that name the file and line."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from stackd.build.dockerfile import Dockerfile, parse_dockerfile, read_dockerfile
from stackd.build.instructions import (
    Add,
    Arg,
    ArgDef,
    Cmd,
    Command,
    Copy,
    Entrypoint,
    Env,
    Expose,
    Healthcheck,
    Instruction,
    Label,
    Maintainer,
    Run,
    Shell,
    StopSignal,
    User,
    Volume,
    Workdir,
)
from stackd.build.lexer import Heredoc
from stackd.errors import Pos, SpecError


def parse(text: str) -> Dockerfile:
    return parse_dockerfile(dedent(text).lstrip("\n"), "Dockerfile")


def body(text: str) -> list[Instruction]:
    """The instructions of a one-stage Dockerfile whose FROM is prepended."""
    return list(parse("FROM scratch\n" + dedent(text).lstrip("\n")).stages[0].instructions)


def one(text: str) -> Instruction:
    (instr,) = body(text)
    return instr


def problems(text: str) -> list[tuple[int, str]]:
    with pytest.raises(SpecError) as info:
        parse(text)
    out = []
    for p in info.value.problems:
        assert p.pos is not None and p.pos.file == "Dockerfile"
        out.append((p.pos.line, p.message + (f" ({p.hint})" if p.hint else "")))
    return out


# ------------------------------------------------------------------------------ instructions

def test_from_with_platform_and_name() -> None:
    df = parse("FROM --platform=linux/arm64 Debian:12 AS Build\n")
    stage = df.stages[0]
    assert (stage.index, stage.name) == (0, "build")
    assert (stage.from_.image, stage.from_.platform, stage.from_.line) == ("Debian:12", "linux/arm64", 1)


def test_run_shell_and_exec_forms() -> None:
    shell, exec_form, not_json = body("""
        RUN apt-get update && apt-get install -y curl
        RUN ["/bin/echo", "hello world"]
        RUN [ -f /etc/os-release ]
    """)
    assert isinstance(shell, Run)
    assert shell.command == Command(("apt-get update && apt-get install -y curl",), True)
    assert isinstance(exec_form, Run) and exec_form.command == Command(("/bin/echo", "hello world"), False)
    assert isinstance(not_json, Run) and not_json.command.shell_form  # not valid JSON: shell form
    assert shell.command.argv() == ("/bin/sh", "-c", "apt-get update && apt-get install -y curl")
    assert exec_form.command.argv(("bash", "-c")) == ("/bin/echo", "hello world")


def test_run_flags() -> None:
    run = one("RUN --mount=type=cache,target=/var/cache/apt --mount=type=tmpfs,target=/tmp \\\n"
              "    --network=none make")
    assert isinstance(run, Run)
    assert run.mounts == ("type=cache,target=/var/cache/apt", "type=tmpfs,target=/tmp")
    assert (run.network, run.command.args) == ("none", ("make",))


def test_copy_and_add_flags_sources_and_dest() -> None:
    copy, copy_json, add = body("""
        COPY --from=build --chown=app:app --chmod=0755 --link bin/a bin/b /usr/local/bin/
        COPY ["my file.txt", "/dst dir/"]
        ADD --checksum=sha256:abc --keep-git-dir=true https://example.org/x.tar.gz /opt/
    """)
    assert copy == Copy(sources=("bin/a", "bin/b"), dest="/usr/local/bin/", from_="build", chown="app:app",
                        chmod="0755", link=True, line=2, end_line=2)
    assert isinstance(copy_json, Copy)
    assert (copy_json.sources, copy_json.dest) == (("my file.txt",), "/dst dir/")
    assert isinstance(add, Add)
    assert (add.checksum, add.keep_git_dir) == ("sha256:abc", True)
    assert add.sources == ("https://example.org/x.tar.gz",)


def test_env_both_forms_keep_values_as_written() -> None:
    new, legacy = body("""
        ENV A=1 B="two words" C=a\\ b
        ENV PATH /usr/local/bin:$PATH
    """)
    assert isinstance(new, Env) and new.pairs == (("A", "1"), ("B", '"two words"'), ("C", "a\\ b"))
    assert isinstance(legacy, Env) and legacy.pairs == (("PATH", "/usr/local/bin:$PATH"),)


def test_arg_label_and_the_simple_ones() -> None:
    arg, label, workdir, user, expose, volume, volume_json, signal, maint = body("""
        ARG VERSION=1.0 DEBUG
        LABEL org.opencontainers.image.title="My app" version=$VERSION
        WORKDIR /srv/$NAME
        USER app:app
        EXPOSE 80 443/tcp 53/udp
        VOLUME /data /logs
        VOLUME ["/cache"]
        STOPSIGNAL SIGQUIT
        MAINTAINER Jane <jane@example.org>
    """)
    assert arg == Arg(args=(ArgDef("VERSION", "1.0"), ArgDef("DEBUG")), line=2, end_line=2)
    assert isinstance(label, Label) and label.pairs == (("org.opencontainers.image.title", '"My app"'),
                                                        ("version", "$VERSION"))
    assert isinstance(workdir, Workdir) and workdir.path == "/srv/$NAME"
    assert isinstance(user, User) and user.user == "app:app"
    assert isinstance(expose, Expose) and expose.ports == ("80", "443/tcp", "53/udp")
    assert isinstance(volume, Volume) and volume.paths == ("/data", "/logs")
    assert isinstance(volume_json, Volume) and volume_json.paths == ("/cache",)
    assert isinstance(signal, StopSignal) and signal.signal == "SIGQUIT"
    assert isinstance(maint, Maintainer) and maint.name == "Jane <jane@example.org>"


def test_cmd_entrypoint_shell() -> None:
    cmd, entry, empty, shell = body("""
        CMD ["nginx", "-g", "daemon off;"]
        ENTRYPOINT exec python -m app
        CMD []
        SHELL ["/bin/bash", "-o", "pipefail", "-c"]
    """)
    assert isinstance(cmd, Cmd) and cmd.command == Command(("nginx", "-g", "daemon off;"), False)
    assert isinstance(entry, Entrypoint) and entry.command == Command(("exec python -m app",), True)
    assert isinstance(empty, Cmd) and empty.command == Command((), False)
    assert isinstance(shell, Shell) and shell.shell == ("/bin/bash", "-o", "pipefail", "-c")


def test_healthcheck_forms_and_durations() -> None:
    shell, exec_form, none = body("""
        HEALTHCHECK --interval=1m30s --timeout=500ms --start-period=2s --start-interval=1.5s --retries=4 \\
            CMD curl -f http://localhost/ || exit 1
        HEALTHCHECK CMD ["pg_isready", "-U", "postgres"]
        HEALTHCHECK NONE
    """)
    assert shell == Healthcheck(test=("CMD-SHELL", "curl -f http://localhost/ || exit 1"),
                                interval=90_000_000_000, timeout=500_000_000, start_period=2_000_000_000,
                                start_interval=1_500_000_000, retries=4, line=2, end_line=3)
    assert isinstance(exec_form, Healthcheck) and exec_form.test == ("CMD", "pg_isready", "-U", "postgres")
    assert isinstance(none, Healthcheck) and none.test == ("NONE",)


def test_keywords_are_case_insensitive() -> None:
    run = one("run echo hi")
    assert isinstance(run, Run) and run.command.args == ("echo hi",)


# ---------------------------------------------------------------- continuations, comments, escape

def test_continuation_skips_comment_and_empty_lines_and_counts_lines() -> None:
    run, env = body("""
        RUN apt-get update \\
            # a comment inside the instruction

            && apt-get install -y \\
               curl
        ENV A=1
    """)
    assert isinstance(run, Run)
    assert run.command.args == ("apt-get update     && apt-get install -y        curl",)
    assert (run.line, run.end_line, env.line) == (2, 6, 7)


def test_trailing_blanks_after_the_escape_still_continue() -> None:
    run = one("RUN echo a \\  \n  b\n")
    assert isinstance(run, Run) and run.command.args == ("echo a   b",)


def test_escape_directive_backtick() -> None:
    df = parse("""
        # escape=`
        FROM scratch
        COPY C:\\src\\app `
             C:\\app\\
    """)
    copy = df.stages[0].instructions[0]
    assert df.escape == "`"
    assert isinstance(copy, Copy) and copy.sources == ("C:\\src\\app",) and copy.dest == "C:\\app\\"


def test_directives_only_count_at_the_top() -> None:
    df = parse("""
        # syntax=docker/dockerfile:1

        # escape=`
        FROM scratch
        RUN echo \\
          hi
    """)
    assert df.escape == "\\" and df.directives == {"syntax": "docker/dockerfile:1"}
    run = df.stages[0].instructions[0]
    assert isinstance(run, Run) and run.command.args == ("echo   hi",)


def test_bad_and_repeated_directives() -> None:
    assert problems("# escape=x\nFROM scratch\n") == [(1, "invalid escape character 'x' (use \\ or `)")]
    assert problems("# escape=`\n# escape=\\\nFROM scratch\n") == [
        (2, "only one escape parser directive can be used")]


def test_heredocs() -> None:
    run, copy, script, quoted = body("""
        RUN <<EOF
        apt-get update
        apt-get install -y curl
        EOF
        COPY <<-CONF /etc/app.conf
        \tkey = $VALUE
        \tCONF
        RUN python3 <<PY
        print("hi")
        PY
        RUN <<'EOF'
        echo $HOME
        EOF
    """)
    assert isinstance(run, Run)
    assert run.heredocs == (Heredoc("EOF", "apt-get update\napt-get install -y curl\n"),)
    assert run.script() == "apt-get update\napt-get install -y curl\n"
    assert (run.line, run.end_line) == (2, 5)
    assert isinstance(copy, Copy) and copy.sources == () and copy.dest == "/etc/app.conf"
    assert copy.heredocs == (Heredoc("CONF", "key = $VALUE\n", expand=True, chomp=True),)
    assert isinstance(script, Run) and script.script() == 'python3 <<PY\nprint("hi")\nPY\n'
    assert isinstance(quoted, Run) and quoted.heredocs[0].expand is False


def test_unterminated_heredoc() -> None:
    assert problems("FROM scratch\nRUN <<EOF\necho hi\n") == [
        (2, "unterminated heredoc <<EOF (end it with a line that holds only EOF)")]


def test_json_form_has_no_heredocs() -> None:
    run = one('RUN ["sh", "-c", "cat <<EOF"]')
    assert isinstance(run, Run) and run.heredocs == ()


# ------------------------------------------------------------------------------------ stages

def test_stages_by_index_and_name_and_targets() -> None:
    df = parse("""
        ARG BASE=debian:bookworm
        FROM $BASE AS builder
        RUN make
        FROM builder AS Test
        RUN make test
        FROM scratch
        COPY --from=builder /out /
    """)
    assert [(s.index, s.name) for s in df.stages] == [(0, "builder"), (1, "test"), (2, None)]
    assert df.global_args == (Arg(args=(ArgDef("BASE", "debian:bookworm"),), line=1, end_line=1),)
    assert df.stage("TEST") is df.stages[1] and df.stage("2") is df.stages[2]
    assert df.stage("nope") is None and df.stage("7") is None
    assert df.target() is df.stages[2] and df.target("Builder") is df.stages[0]
    with pytest.raises(SpecError, match=r"target stage 'nope' could not be found.*builder, test"):
        df.target("nope")


def test_read_dockerfile_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile.dev"
    path.write_text("FROM scratch\nBOGUS x\n")
    with pytest.raises(SpecError) as info:
        read_dockerfile(path)
    assert info.value.problems[0].pos == Pos(str(path), 2, 1)
    with pytest.raises(SpecError, match="cannot read the Dockerfile"):
        read_dockerfile(tmp_path / "missing")


# ------------------------------------------------------------------------------------ errors

def test_every_problem_is_reported_with_its_line() -> None:
    found = problems("""
        RUN echo before from
        FROM scratch
        RUNN echo typo
        COPY only-one
        HEALTHCHECK --interval=5x CMD true
        ONBUILD RUN echo
        EXPOSE
        SHELL /bin/bash -c
        COPY --form=build a b
    """)
    assert found == [
        (1, "RUN before the first FROM (only ARG may come before FROM)"),
        (3, "unknown instruction 'RUNN' (did you mean RUN?)"),
        (4, "COPY requires at least two arguments (sources and a destination)"),
        (5, "HEALTHCHECK --interval: invalid duration '5x' (durations look like 30s, 1m30s or 500ms)"),
        (6, "ONBUILD is not supported "
            "(put the instructions into the Dockerfiles of the images built on this one)"),
        (7, "EXPOSE requires at least one port (EXPOSE 80/tcp 53/udp)"),
        (8, 'SHELL requires the arguments to be in JSON form (SHELL ["/bin/bash", "-c"])'),
        (9, "COPY: unknown flag --form (accepted: --chmod, --chown, --exclude, --from, --link, --parents)"),
    ]


@pytest.mark.parametrize(("text", "message"), [
    ("FROM a b", "FROM requires either one or three arguments"),
    ("FROM a FOR b", "expected AS before the stage name"),
    ("FROM a AS 1st", "invalid name for build stage: '1st'"),
    ("FROM a AS x\nFROM b AS X", "duplicate stage name 'x' (it is already the name of the stage on line 1)"),
    ("FROM a\nENV", "ENV requires at least one argument"),
    ("FROM a\nENV A=1 B", "ENV: can't find = in 'B'"),
    ("FROM a\nENV =1", "ENV names can not be blank"),
    ("FROM a\nLABEL justakey", "LABEL justakey needs a value"),
    ("FROM a\nARG", "ARG requires at least one argument"),
    ("FROM a\nWORKDIR", "WORKDIR requires exactly one argument"),
    ("FROM a\nRUN", "RUN needs a command"),
    ("FROM a\nRUN --network=none --network=host x", "--network is given more than once"),
    ("FROM a\nRUN --network x", "--network needs a value"),
    ("FROM a\nCOPY --link=maybe a b", "--link takes true or false"),
    ("FROM a\nHEALTHCHECK NONE extra", "HEALTHCHECK NONE takes no arguments"),
    ("FROM a\nHEALTHCHECK RUN x", "unknown type 'RUN' in HEALTHCHECK"),
    ("FROM a\nHEALTHCHECK --timeout=10us CMD x", "cannot be less than 1ms"),
    ("FROM a\nHEALTHCHECK --retries=-1 CMD x", "--retries must be a non-negative integer"),
    ("FROM a\nENV --x=1 A=1", "ENV: unknown flag --x (accepted: none)"),
    ("", "the Dockerfile has no instructions"),
    ("# only a comment\n", "the Dockerfile has no instructions"),
    ("ARG A=1\n", "the Dockerfile has no FROM instruction"),
])
def test_errors(text: str, message: str) -> None:
    found = problems(text)
    assert any(message in m for _, m in found), found


def test_crlf_line_ends_and_byte_order_mark() -> None:
    df = parse_dockerfile("\ufeff# escape=`\r\nFROM scratch\r\nRUN echo a `\r\n  b\r\n", "Dockerfile")
    (run,) = df.stages[0].instructions
    assert df.escape == "`"
    assert isinstance(run, Run) and run.command.args == ("echo a   b",) and (run.line, run.end_line) == (3, 4)
