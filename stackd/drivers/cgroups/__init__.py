"""The cgroups driver: each named group of a stack (``x-stackd.groups``) is a cgroup at
``/stackd/<project>/<group>`` holding the group's limits, with the containers as leaves below it.

- ``detect``: how cgroups are mounted here (v1, v2 or hybrid); reads the host, writes nothing.
- ``limits`` and ``usage``: pure translation between limits/usage and control-file contents.
- ``paths``: pure naming and name checks.
- ``protocol``: the ``Cgroups`` Protocol the layers above use.
- ``driver``: the real implementation (the only module here, with ``cgfs``, that changes the host).
- ``fake``: an in-memory implementation for unit tests.

Used only by execute, observe, reconcile and the daemon; it must not import those layers.
"""

from stackd.drivers.cgroups.detect import CgroupLayout, detect, parse_layout
from stackd.drivers.cgroups.driver import CgroupDriver
from stackd.drivers.cgroups.fake import FakeCgroups
from stackd.drivers.cgroups.limits import GroupLimits, drift
from stackd.drivers.cgroups.protocol import Cgroups
from stackd.drivers.cgroups.usage import CgroupUsage

__all__ = [
    "CgroupDriver", "CgroupLayout", "CgroupUsage", "Cgroups", "FakeCgroups", "GroupLimits", "detect",
    "drift", "parse_layout",
]
