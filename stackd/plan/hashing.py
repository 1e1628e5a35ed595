"""Configuration hashes: when is an existing container (network, group) no longer what the file asks for.

A hash is the full sha256 hex digest (64 characters) of a canonical JSON text (sorted keys, no
whitespace), so dict order in the file never matters; list order does.

``hash_parts(stack, service)`` hashes each top-level key of the service separately, so that the
planner can say which keys changed; ``service_hash`` is the hash of those parts. The container
records both (labels), and the planner compares them with what it finds.

In the service hash — everything that changes the container, e.g.:
- every service key whose value is not its default (``image``, ``command``, ``environment``,
  ``ports``, ``volumes``, ``networks`` (the attachments, aliases, addresses), ``restart``,
  ``network_mode``, ``deploy`` (without ``replicas``), ...). Keys left at their default are
  skipped, so a new model field with a default does not change existing hashes;
- ``environment`` already holds the contents of the ``env_file`` files (the loader folds them
  in), so a changed env file changes the hash through ``environment``;
- ``secrets`` / ``configs``: the mounts plus the top-level definition of each source, including
  its ``digest`` (of the file's contents) when the loader sets one, so a changed secret file
  recreates the container.

Out of the service hash — what does not change the container or is handled elsewhere:
- ``scale``, ``deploy.replicas`` (the number of containers, not their content);
- ``depends_on``, ``profiles`` (ordering and selection);
- ``build`` and ``pull_policy`` (how the image is obtained: a new image is detected by its id);
- ``env_file`` paths (their contents count, through ``environment``);
- ``name`` (the identity of the service, not its configuration);
- definitions of the networks and volumes the service uses: a changed network is its own
  resource (``network_hash``), recreated together with the containers on it; a volume's data
  is never recreated implicitly. The group's limits are in ``group_hash`` (changed live).

Pure: reads the model, hashes bytes; no I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from stackd.plan.names import get, stack_networks
from stackd.spec.models import Stack

EXCLUDED_KEYS = frozenset({"name", "scale", "depends_on", "profiles", "build", "pull_policy", "env_file"})


def digest(value: Any) -> str:
    """sha256 hex of the canonical JSON text of ``value``."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def hash_parts(stack: Stack, name: str) -> dict[str, str]:
    """One hash per top-level key of service ``name`` that is in the hash (see the module doc)."""
    svc = stack.services[name]
    data: dict[str, Any] = svc.model_dump(mode="json", exclude_defaults=True, exclude=set(EXCLUDED_KEYS))
    deploy = data.get("deploy")
    if isinstance(deploy, dict):
        deploy = {k: v for k, v in deploy.items() if k != "replicas"}
        if deploy:
            data["deploy"] = deploy
        else:
            del data["deploy"]
    for key, defs in (("secrets", stack.secrets), ("configs", stack.configs)):
        if key in data:
            sources = sorted({str(get(m, "source")) for m in data[key]})
            data[key] = {"mounts": data[key], "sources": {s: _definition(defs.get(s)) for s in sources}}
    return {key: digest(data[key]) for key in sorted(data)}


def service_hash(stack: Stack, name: str) -> str:
    """The configuration hash of service ``name``'s containers."""
    return digest(hash_parts(stack, name))


def changed_keys(recorded: Mapping[str, str], wanted: Mapping[str, str]) -> list[str]:
    """Keys whose part hash differs (or that appear on one side only), sorted."""
    return sorted(k for k in {*recorded, *wanted} if recorded.get(k) != wanted.get(k))


def network_hash(stack: Stack, name: str) -> str:
    """Hash of a network's definition (the implicit ``default`` network hashes as an empty one)."""
    return digest(_definition(stack_networks(stack).get(name)))


def group_hash(stack: Stack, name: str) -> str:
    """Hash of a group's limits (keys left at their default are skipped)."""
    return digest(stack.groups[name].model_dump(mode="json", exclude_defaults=True))


def _definition(defn: Any) -> Any:
    if defn is None:
        return {}
    out: dict[str, Any]
    if isinstance(defn, BaseModel):
        out = defn.model_dump(mode="json", exclude_defaults=True)
    else:
        out = {str(k): v for k, v in dict(defn).items() if v is not None}
    fingerprint = get(defn, "digest")
    if fingerprint is not None:
        out["digest"] = fingerprint
    return out
