"""Binding a merged tree: the stack it gives, every mistake at its line, warnings, and back to data."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from stackd.errors import Pos, SpecError
from stackd.spec.models import Stack
from stackd.spec.tree import to_tree
from stackd.spec.validate import bind, to_compose_dict
from tests.unit.spec.bindhelp import bound, one, problems, tree_of, with_service

# nginx in front, postgres and redis behind (long form, as it leaves the canonical stage)
REALISTIC = """\
name: demo
x-stackd:
  groups:
    foreground: {cpu_weight: 300, memory: 256m, pids: 256}
    background: {cpu_weight: 100, memory: 768m, pids: 512}
x-common: &common
  restart: unless-stopped
services:
  web:
    <<: *common
    image: stackd-example/nginx:bookworm
    build: {context: ./examples/nginx}
    ports:
      - {target: 80, published: "8080", protocol: tcp, mode: ingress}
    depends_on:
      db: {condition: service_healthy, required: true}
      cache: {condition: service_started, required: true}
    environment: {APP_ENV: dev}
    configs:
      - {source: nginx_site, target: /etc/nginx/conf.d/default.conf}
    cgroup_parent: foreground
    mem_limit: 128m
  db:
    <<: *common
    image: stackd-example/postgres:bookworm
    env_file: [{path: ./examples/db.env, required: true}]
    environment: {POSTGRES_PASSWORD_FILE: /run/secrets/db_password}
    secrets: [{source: db_password}]
    volumes:
      - {type: volume, source: dbdata, target: /var/lib/postgresql/data}
    healthcheck:
      test: [CMD, pg_isready, -h, 127.0.0.1, -U, app]
      interval: 2s
      timeout: 2s
      retries: 15
      start_period: 5s
    cgroup_parent: background
    stop_grace_period: 20s
    networks: {default: {aliases: [database]}, back: null}
  cache:
    <<: *common
    image: stackd-example/redis:bookworm
    command: [redis-server, --save, ""]
    healthcheck: {test: [CMD, redis-cli, ping], interval: 2s, retries: 10}
    cgroup_parent: background
    networks: [back]
networks:
  back: {internal: true, x-note: kept out}
volumes:
  dbdata: {}
secrets:
  db_password: {file: ./examples/secrets/db_password.txt}
configs:
  nginx_site: {file: ./examples/nginx/default.conf}
"""




# ---------------------------------------------------------------------------------------- a realistic stack


def test_realistic_stack_binds() -> None:
    stack, warnings = bind(tree_of(REALISTIC), project="demo")
    assert warnings == []
    assert stack.name == "demo"
    assert list(stack.services) == ["web", "db", "cache"]
    web, db, cache = stack.services.values()
    assert web.ports[0].published == "8080" and web.ports[0].target == 80
    assert web.depends_on["db"].condition == "service_healthy"
    assert web.build is not None and web.build.context == "./examples/nginx"
    assert web.restart == db.restart == cache.restart == "unless-stopped"
    assert web.configs[0].target == "/etc/nginx/conf.d/default.conf"
    assert (web.group, db.group, cache.group) == ("foreground", "background", "background")
    assert db.healthcheck is not None and db.healthcheck.retries == 15
    assert db.volumes[0].source == "dbdata" and db.volumes[0].type == "volume"
    assert db.networks["default"].aliases == ["database"]
    assert set(db.networks) == {"default", "back"} and set(cache.networks) == {"back"}
    assert set(stack.networks) == {"back", "default"} and stack.networks["back"].internal is True
    assert stack.groups["foreground"].memory == 256 << 20
    assert set(stack.groups) == {"foreground", "background"}  # every service is in a declared group
    assert stack.secrets["db_password"].digest is None


# ---------------------------------------------------------------------------------------- schema errors


def test_unknown_key_with_suggestion_at_its_line() -> None:
    p = one(with_service("""\
        environment: {A: b}
        enviroment: {B: c}
        """))
    assert p.message == "unknown key `enviroment`"
    assert p.hint == "did you mean `environment`?"
    assert p.path == "services.web.enviroment"
    assert p.pos == Pos("stack.yaml", 5, 5)


def test_unknown_top_level_and_nested_keys() -> None:
    found = problems("""\
        servces: {}
        services:
          web:
            image: nginx
            healthcheck: {test: [CMD, "true"], intervall: 5s}
        """)
    assert [(p.path, p.hint) for p in found] == [
        ("servces", "did you mean `services`?"),
        ("services.web.healthcheck.intervall", "did you mean `interval`?"),
    ]


def test_wrong_type_says_what_was_expected_and_what_came() -> None:
    p = one(with_service("ports: [{target: abc}]\n"))
    assert (p.message, p.path, p.pos) == ("expected an integer, got 'abc'", "services.web.ports[0].target",
                                          Pos("stack.yaml", 4, 14))


def test_wrong_container_type() -> None:
    p = one(with_service("environment: just-text\n"))
    assert p.message == "expected a mapping, got 'just-text'" and p.path == "services.web.environment"


def test_union_alternatives_fold_into_one_message() -> None:
    p = one(with_service("gpus: some\n"))
    assert p.message == "expected one of `all` or a list, got 'some'"


def test_enum_with_suggestion() -> None:
    p = one(with_service("ports: [{target: 80, protocol: tpc}]\n"))
    assert p.message == "expected one of `tcp`, `udp`, got 'tpc'" and p.hint == "did you mean `tcp`?"


def test_suggestions_inside_union_alternatives() -> None:
    p = one(with_service("models: {llm: {endpoint_vars: URL}}\n", "\nmodels:\n  llm: {model: ai/x}\n"))
    assert (p.path, p.hint) == ("services.web.models.llm.endpoint_vars", "did you mean `endpoint_var`?")


def test_missing_required_key_points_at_the_mapping() -> None:
    p = one(with_service("volumes: [{type: volume, source: data}]\n", "\nvolumes: {data: {}}\n"))
    assert p.message == "missing required key `target`"
    assert p.path == "services.web.volumes[0].target" and p.pos == Pos("stack.yaml", 4, 15)


@pytest.mark.parametrize(("body", "path", "text"), [
    ("stop_grace_period: 1m30x\n", "services.web.stop_grace_period", "expected a duration"),
    ("stop_grace_period: 10\n", "services.web.stop_grace_period", "a unit is missing"),
    ("healthcheck: {interval: soon}\n", "services.web.healthcheck.interval", "expected a duration"),
    ("mem_limit: 12q\n", "services.web.mem_limit", "expected a size"),
    ("shm_size: -1\n", "services.web.shm_size", "cannot be negative"),
    ("deploy: {resources: {limits: {memory: big}}}\n", "services.web.deploy.resources.limits.memory",
     "expected a size"),
])
def test_bad_duration_or_size_at_its_line(body: str, path: str, text: str) -> None:
    p = one(with_service(body))
    assert p.path == path and text in p.message and p.pos is not None and p.pos.line == 4


def test_group_errors_are_reported_under_x_stackd() -> None:
    found = problems("""\
        x-stackd:
          groupz: {}
          groups:
            bg: {cpu_weight: 0, memory: 1q, cpu: 2}
        """)
    assert [(p.path, p.hint) for p in found] == [
        ("x-stackd.groupz", "did you mean `groups`?"),
        ("x-stackd.groups.bg.cpu_weight", ""),
        ("x-stackd.groups.bg.memory", ""),
        ("x-stackd.groups.bg.cpu", "did you mean `cpus`?"),
    ]
    assert found[1].message == "must be at least 1, got 0"
    assert all(p.pos is not None and p.pos.line == 4 for p in found[1:])


def test_fields_stackd_fills_cannot_be_written() -> None:
    found = problems("""\
        groups: {}
        services:
          web: {image: nginx, name: other}
        secrets:
          pw: {file: ./pw, digest: abc}
        """)
    assert [p.path for p in found] == ["groups", "services.web.name", "secrets.pw.digest"]
    assert all(p.message.startswith("unknown key") for p in found)


def test_invalid_resource_name() -> None:
    p = one("services:\n  'my web': {image: nginx}\n")
    assert p.message == "invalid name 'my web'" and p.path == "services.my web"


def test_no_pydantic_text_reaches_the_user() -> None:
    found = problems(with_service("""\
        ports: [{target: [1]}]
        cpus: many
        init: maybe
        scale: -1
        labels: 3
        """))
    assert len(found) == 5
    for p in found:
        assert "pydantic" not in p.render() and "http" not in p.render() and "Input should" not in p.render()


def test_bind_leaves_the_garbage_collector_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(gc, "disable", lambda: calls.append("disable"))
    monkeypatch.setattr(gc, "enable", lambda: calls.append("enable"))
    bind(tree_of(REALISTIC), project="demo")
    assert calls == []


# ---------------------------------------------------------------------------------------- two files


def test_problems_of_two_files_come_together() -> None:
    base = tree_of("""\
        services:
          web:
            image: nginx
            restart: sometimes
        """, "stack.yaml")
    overlay = tree_of("""\
        services:
          worker:
            image: app
            mem_limit: lots
            depends_on: {queue: {}}
        """, "stack.prod.yaml")
    services = base["services"].derive(base["services"].items())
    services["worker"] = overlay["services"]["worker"]
    services.key_pos["worker"] = overlay["services"].key_pos["worker"]
    merged = base.derive(base.items())
    merged["services"] = services
    with pytest.raises(SpecError) as info:
        bind(merged, project="demo")
    found = info.value.problems
    assert [(p.pos.file if p.pos else "", p.pos.line if p.pos else 0, p.path) for p in found] == [
        ("stack.prod.yaml", 4, "services.worker.mem_limit"),
        ("stack.prod.yaml", 5, "services.worker.depends_on.queue"),
        ("stack.yaml", 4, "services.web.restart"),
    ]


# ---------------------------------------------------------------------------------------- warnings


def test_unimplemented_keys_warn_with_their_position() -> None:
    _, warnings = bound("""\
        version: "3.9"
        services:
          web:
            image: nginx
            gpus: all
            x-anything: 1
            deploy: {replicas: 1, placement: {constraints: [a]}, resources: {limits: {cpus: 1}}}
            networks: {default: {aliases: [w], mac_address: "02:42:ac:11:00:02"}}
            logging: {driver: syslog}
            blkio_config: {weight: 300, device_read_bps: [{path: /dev/sda, rate: 1m}]}
        networks:
          default: {attachable: true}
        models:
          llm: {model: ai/smollm2}
        """)
    assert [(w.path, w.pos.line if w.pos else 0) for w in warnings] == [
        ("version", 1),
        ("services.web.gpus", 5),
        ("services.web.deploy.placement", 7),
        ("services.web.networks.default.mac_address", 8),
        ("services.web.logging.driver", 9),
        ("services.web.blkio_config.device_read_bps", 10),
        ("networks.default.attachable", 12),
        ("models", 13),
    ]
    assert warnings[1].message == "accepted by Compose but not implemented by stackd yet; ignored"
    assert warnings[1].render() == (
        "stack.yaml:5:5: services.web.gpus: accepted by Compose but not implemented by stackd yet; ignored")
    assert "obsolete" in warnings[0].message and "syslog" in warnings[4].message


def test_warning_messages_do_not_repeat_their_path() -> None:
    _, warnings = bound("""\
        version: "3.9"
        services:
          web:
            image: nginx
            links: [db]
            cgroup_parent: /system.slice
            logging: {driver: syslog}
            ports: [{target: 80, published: "80"}]
            deploy: {placement: {constraints: [a]}}
          db:
            image: postgres
            ports: [{target: 80, published: "80"}]
        networks:
          default: {attachable: true}
        """)
    assert len(warnings) == 7
    for w in warnings:
        leaf = w.path.rsplit(".", 1)[-1]
        assert w.path not in w.message and f"`{leaf}`" not in w.message, w.render()


def test_implemented_keys_do_not_warn() -> None:
    _, warnings = bound(with_service("""\
        logging: {driver: json-file, options: {max-size: 10m}}
        deploy: {resources: {limits: {cpus: 0.5, memory: 64m, pids: 10}, reservations: {memory: 32m}},
                 restart_policy: {condition: on-failure}, labels: {a: b}}
        networks: {default: {aliases: [a], ipv4_address: 10.0.0.5, priority: 10}}
        ulimits: {nofile: {soft: 1024, hard: 2048}}
        """))
    assert warnings == []


# ---------------------------------------------------------------------------------------- back to data


def rebind(stack: Stack) -> Stack:
    again, _ = bind(to_tree(to_compose_dict(stack), Pos("config", 1)), project=stack.name)
    return again


def test_compose_dict_round_trip() -> None:
    stack, _ = bind(tree_of(REALISTIC), project="demo")
    assert rebind(stack) == stack


def test_compose_dict_round_trip_of_many_keys() -> None:
    stack, _ = bound(with_service("""\
        build: {context: ., args: {V: "1"}, shm_size: 64m, ulimits: {nproc: {soft: 1, hard: 2}}}
        command: []
        entrypoint: [/init]
        ports: [{target: 53, published: "5353", protocol: udp, host_ip: 127.0.0.1, mode: host}]
        expose: ["9000"]
        tmpfs: [/run]
        ulimits: {nofile: {soft: 1024, hard: 2048}}
        healthcheck: {test: [NONE], disable: true}
        init: false
        memswap_limit: -1
        deploy: {replicas: 2, resources: {limits: {memory: 1g}}, restart_policy: {condition: any, delay: 5s}}
        volumes:
          - {type: tmpfs, target: /t, tmpfs: {size: 1m, mode: 1777}}
          - {type: bind, source: /src, target: /dst, read_only: true,
             bind: {selinux: z, create_host_path: true}}
        extra_hosts: {db: [10.0.0.2]}
        depends_on: {cache: {condition: service_started, required: false, restart: true}}
        """, """
networks:
  custom: {ipam: {config: [{subnet: 10.9.0.0/16, gateway: 10.9.0.1}]}, labels: {a: b}}
volumes:
  data: {driver_opts: {type: tmpfs, o: size=1m}}
configs:
  inline: {content: hello}
x-stackd:
  groups:
    default: {cpus: 2}
"""))
    again = rebind(stack)
    assert again == stack
    assert again.services["web"].command == [] and again.services["web"].init is False


@pytest.mark.parametrize(("groups", "parent", "expected"), [
    ("{}", "", {"default"}),                          # a service without cgroup_parent
    ("{bg: {}}", "cgroup_parent: bg\n", {"bg"}),      # every service in a declared group
    ("{bg: {}}", "cgroup_parent: /x.slice\n", {"bg", "default"}),  # an absolute path runs in default
    ("{bg: {}, default: {}}", "cgroup_parent: bg\n", {"bg", "default"}),  # declared: always there
    ("{default: {memory: 1g}}", "cgroup_parent: default\n", {"default"}),
])
def test_default_group_only_when_declared_or_used(groups: str, parent: str, expected: set[str]) -> None:
    stack, _ = bound(with_service(parent, f"\nx-stackd: {{groups: {groups}}}\n"))
    assert set(stack.groups) == expected
    assert rebind(stack) == stack


def test_implicit_default_group_is_not_written_back() -> None:
    stack, _ = bound(with_service(""))
    assert "x-stackd" not in to_compose_dict(stack)
    declared, _ = bound(with_service("cgroup_parent: bg\n", "\nx-stackd: {groups: {bg: {}, default: {}}}\n"))
    assert to_compose_dict(declared)["x-stackd"] == {"groups": {"bg": {}, "default": {}}}


def test_compose_dict_shape_and_order() -> None:
    stack, _ = bind(tree_of(REALISTIC), project="demo")
    stack = stack.model_copy(update={"secrets": {
        n: s.model_copy(update={"digest": "ab" * 32}) for n, s in stack.secrets.items()}})
    data = to_compose_dict(stack)
    assert list(data) == ["name", "services", "networks", "volumes", "secrets", "configs", "x-stackd"]
    assert data["name"] == "demo"
    web = data["services"]["web"]
    assert "name" not in web
    assert web["ports"] == [{"target": 80, "published": "8080", "protocol": "tcp", "mode": "ingress"}]
    assert web["networks"] == {"default": {}}
    assert web["depends_on"]["db"] == {"condition": "service_healthy", "required": True}  # restart unset
    assert data["secrets"] == {"db_password": {"file": "./examples/secrets/db_password.txt"}}
    assert data["x-stackd"] == {"groups": {
        "foreground": {"cpu_weight": 300, "memory": 256 << 20, "pids": 256},
        "background": {"cpu_weight": 100, "memory": 768 << 20, "pids": 512}}}

    def no_nulls(node: Any) -> bool:
        if isinstance(node, dict):
            return all(v is not None and no_nulls(v) for v in node.values())
        if isinstance(node, list):
            return all(no_nulls(v) for v in node)
        return True
    assert no_nulls(data)

