"""Turn every short syntax of a (single, interpolated) stack file into its one long form.

Runs on each file before the files are merged, so that merge rules see one shape per key
(compose-go does the same in ``transform``). Pure: tree in, new tree out, positions kept.

The canonical forms (the contract between this module, ``merge`` and ``models``):

services.<name>:
- ``build``: mapping (``build: ctx`` → ``{context: ctx}``); ``build.args``/``build.labels``: map
  ``K → str|None``; ``build.tags``/``build.platforms``/``build.cache_from``...: lists;
  ``build.extra_hosts``: map ``host → [ip, ...]``; ``build.additional_contexts``: map.
- ``command``, ``entrypoint``: list of strings (a string is shell-split, POSIX rules);
  ``null`` stays null; ``[]`` stays ``[]``.
- ``environment``, ``labels``, ``annotations``, ``sysctls``: map ``K → str|None``
  (``K=V`` list items split at the first ``=``; a bare ``K`` → ``None``; numbers/bools → str;
  ``true``/``false`` → ``"true"``/``"false"``).
- ``env_file``: list of ``{path: str, required: bool (default true), format?: str}``.
- ``extra_hosts``: map ``host → [ip, ...]`` (``h=ip`` and ``h:ip`` items; IPv6 in brackets allowed).
- ``dns``, ``dns_search``, ``dns_opt``, ``tmpfs``: list of strings.
- ``depends_on``: map ``svc → {condition (default service_started), required (default true),
  restart?: bool}``.
- ``networks``: map ``name → mapping | None`` (a list ``[a]`` → ``{a: None}``).
- ``ports``: list of ``{target: int, published: str|None, host_ip: str|None, protocol: "tcp"|"udp"
  (default tcp), mode: "ingress", name?, app_protocol?}``; short syntax
  ``[HOST_IP:][HOST[-HOST2]:]CONTAINER[-CONTAINER2][/PROTO]`` is parsed, ranges expanded to one
  entry per port; an int → ``{target: int}``.
- ``expose``: list of strings.
- ``volumes``: list of ``{type: bind|volume|tmpfs|npipe|cluster|image, source?: str, target: str,
  read_only?: bool, bind?: {...}, volume?: {...}, tmpfs?: {...}, consistency?: str}`` from
  ``SOURCE:TARGET[:MODE]``: a source starting with ``.``, ``/`` or ``~`` is a bind, otherwise a
  named volume; no source → anonymous volume; mode ``ro``/``rw`` → read_only, ``z``/``Z`` →
  ``bind.selinux``; ``nocopy`` → ``volume.nocopy``; ``a:/a``-style single-letter sources follow
  compose-go (a Windows drive letter).
- ``volumes_from``: list of strings (``service`` or ``container:name`` with optional ``:ro``/``:rw``).
- ``secrets``, ``configs``: list of ``{source, target?, uid?, gid?, mode?}`` (short ``x`` → ``{source: x}``).
- ``ulimits``: map ``name → {soft: int, hard: int}`` (an int → soft = hard = int).
- ``healthcheck.test``: list (``"cmd"`` → ``["CMD-SHELL", "cmd"]``); durations stay strings.
- ``logging``, ``deploy`` and other mappings keep their shape (with their own inner forms above where
  they apply, e.g. ``deploy.labels`` map).
- ``profiles``, ``cap_add``, ``cap_drop``, ``security_opt``, ``group_add``, ``devices``...: lists.

Top level:
- ``networks.<n>``/``volumes.<n>``/``secrets.<n>``/``configs.<n>``: mapping (``null`` stays null);
  ``labels``, ``driver_opts``, ``ipam.options``: maps.

Anything not listed passes through unchanged. Errors (e.g. a port string that cannot be parsed)
are collected as ``Problem``s with the node's position and raised together as one ``SpecError``.
"""
