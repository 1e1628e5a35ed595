"""A pass parses the stored stack once per revision: the same revision gives the same parsed
desired state; a newer one is parsed again; none when nothing is kept."""

from __future__ import annotations

from pathlib import Path

import anyio

from stackd.reconcile.desired import Desired
from stackd.reconcile.passes import load_desired
from stackd.spec.models import Stack
from stackd.store import Store


def test_a_revision_is_parsed_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    stack = Stack.model_validate({"name": "demo", "services": {"web": {"image": "web:1"}}})
    cache: dict[str, Desired] = {}

    async def main() -> None:
        assert await load_desired(store, "demo", cache) is None
        store.add_stack_revision("demo", files=["stack.yaml"], stack_json=stack.model_dump_json())
        first = await load_desired(store, "demo", cache)
        assert first is not None and first.stack == stack and first.revision == 1
        assert await load_desired(store, "demo", cache) is first
        changed = stack.model_copy(update={"services": {}})
        store.add_stack_revision("demo", files=["stack.yaml"], stack_json=changed.model_dump_json(),
                                 options_json='{"services": ["web"]}')
        second = await load_desired(store, "demo", cache)
        assert second is not None and second.revision == 2 and second.stack.services == {}
        assert second.options.services == ("web",)
        fresh = await load_desired(store, "demo")  # without a cache: parsed, equal
        assert fresh == second and fresh is not second

    anyio.run(main)
    store.close()
