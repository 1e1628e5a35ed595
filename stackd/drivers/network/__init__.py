"""The network driver: every stack network is a Linux bridge, every container a network namespace
joined to its bridges by veth pairs, addresses come from an IPAM, and port publishing and NAT are
one nftables table per stack, rendered from data and applied in one transaction.

Pure modules (no I/O, safe anywhere): ``names`` (host object names), ``ipam`` (subnets and
leases as data in, data out), ``nft`` (the nftables script of a stack), ``hosts`` (a container's
/etc/hosts). Side effects live only in ``links`` (pyroute2: bridges, namespaces, veths, addresses,
routes, sysctls), ``namespaces`` (making, removing and entering network namespaces from a short-lived
thread, without forking) and ``nftables`` (the ``nft`` command). Importing this package imports none
of them.
"""
