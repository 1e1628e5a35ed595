"""Measure the spec layer and the planner on a generated 1000-service stack with an overlay.

Prints numbers, asserts nothing: ``python bench/spec_speed.py [--services N] [--repeat R]``.
Measured: ``stack config`` as a user runs it (a new process: interpreter start + imports + load +
print), the load alone in-process, and planning against an empty host and against a host that
already matches (the no-op plan a reconciler computes every resync).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for the tests' fake host

from stackd.plan import Observed, UpOptions, plan
from stackd.spec.loader import load
from stackd.spec.options import ProjectOptions
from tests.unit.plan.plan_fixtures import up_from_scratch


def write_stack(directory: Path, n: int) -> None:
    base = ["name: bench", "x-stackd:", "  groups:", "    background: {cpu_weight: 100, memory: 1g}",
            "services:"]
    for i in range(n):
        dep = f"\n    depends_on: [svc{i - 1}]" if i % 10 else ""
        base.append(f"""  svc{i}:
    image: example/app:{i % 7}
    command: ["serve", "--port", "${{PORT:-80}}", "--id", "{i}"]
    environment:
      ROLE: worker
      INDEX: "{i}"
      LOG_LEVEL: ${{LOG_LEVEL:-info}}
    ports: ["{20000 + i}:80"]
    volumes: ["data{i % 50}:/data", "./conf:/etc/app:ro"]
    healthcheck: {{test: ["CMD", "true"], interval: 5s}}
    cgroup_parent: background{dep}""")
    base.append("volumes:")
    base.extend(f"  data{i}: {{}}" for i in range(50))
    (directory / "stack.yaml").write_text("\n".join(base) + "\n")
    overlay = ["services:"]
    for i in range(0, n, 2):
        overlay.append(f"""  svc{i}:
    environment:
      LOG_LEVEL: warn
    mem_limit: 256m""")
    (directory / "stack.prod.yaml").write_text("\n".join(overlay) + "\n")
    (directory / ".env.prod").write_text("PORT=8080\n")


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    samples = []
    result: object = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stackd-bench-") as tmp:
        d = Path(tmp)
        write_stack(d, args.services)
        options = ProjectOptions(envs=("prod",), cwd=tmp, environ={})
        t_load_gc, _ = timed(lambda: load(options), args.repeat)
        gc.disable()  # as the `stack` process runs (stackd.cli.main turns the cyclic GC off)
        t_load, loaded = timed(lambda: load(options), args.repeat)
        stack = loaded.stack  # type: ignore[attr-defined]
        t_empty, _ = timed(lambda: plan(stack, Observed.empty(stack.name), UpOptions()), args.repeat)
        running = up_from_scratch(stack).observed  # the host after `up`, as a fake records it
        t_noop, noop = timed(lambda: plan(stack, running, UpOptions()), args.repeat)
        stack_cmd = [sys.executable, "-m", "stackd.cli", "--env", "prod", "config"]
        plan_cmd = [sys.executable, "-m", "stackd.cli", "--env", "prod", "up", "--dry-run"]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STACK_", "COMPOSE_"))}
        t_cli, _ = timed(lambda: subprocess.run(stack_cmd, cwd=tmp, env=env, check=True,
                                                stdout=subprocess.DEVNULL), args.repeat)
        t_plan_cli, _ = timed(lambda: subprocess.run(plan_cmd, cwd=tmp, env=env, check=True,
                                                     stdout=subprocess.DEVNULL), args.repeat)
        t_startup, _ = timed(lambda: subprocess.run([sys.executable, "-c", "import stackd.cli.commands"],
                                                    check=True), args.repeat)
    n = args.services
    print(f"services: {n} (+ overlay touching {len(range(0, n, 2))}), median of {args.repeat} runs")
    print(f"stack --env prod config (new process, incl. YAML out): {t_cli * 1000:8.1f} ms")
    print(f"  of which interpreter start + imports:               {t_startup * 1000:8.1f} ms")
    print(f"stack --env prod up --dry-run (new process):           {t_plan_cli * 1000:8.1f} ms")
    print(f"load (discover, parse, interpolate, merge, validate):  {t_load * 1000:8.1f} ms")
    print(f"  the same with the cyclic GC on (as a daemon would):    {t_load_gc * 1000:8.1f} ms")
    print(f"plan against an empty host:                            {t_empty * 1000:8.1f} ms")
    print(f"plan against a matching host ({len(noop.ops)} ops):              "  # type: ignore[attr-defined]
          f"{t_noop * 1000:8.1f} ms")
    print(f"load + plan:                                           {(t_load + t_empty) * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
