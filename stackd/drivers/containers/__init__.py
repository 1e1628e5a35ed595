"""Per-container assembly for the real host driver (``stackd.drivers.realhost``).

Pure modules (unit-tested on data): ``paths`` (where a container's files live), ``request``
(a service's container as a ``ContainerRequest``, with ``mounts``, ``sharing``
(``volumes_from``), ``resources`` and ``users``), ``attach`` (network mode, networks,
published ports), ``dnsfiles`` (hosts, resolv.conf, hostname), ``listing.state_of``/``record``
and ``info`` (the record kept beside each container), ``ports.conflicts`` (whether published
host ports are free) and
``hostcheck.problems`` (what the host lacks). Side effects: ``rootfs`` (overlay mounts),
``networks`` (bridges, veths, IPAM leases, nft), ``process`` (conmon, stop, kill), ``create``,
``teardown``, ``health`` (the last healthcheck result kept beside a container) and
``stackres`` (the project-wide half of ``RealHost``: groups, networks, volumes); ``ports`` and
``hostcheck`` read ``/proc`` and ask ``nft`` without changing anything.

Used only through ``RealHost``; it decides nothing about which containers should exist.
"""
