"""The OCI runtime driver: container requests become OCI bundles (pure: ``oci_config``), and
bundles become containers through crun or runc (side effects, in ``runtime.py`` and
``bundle.py`` only).

Used only by execute, observe, reconcile, the daemon and image builds.
"""

from stackd.drivers.runtime.base import ContainerRuntime
from stackd.drivers.runtime.boundary import StdioTarget
from stackd.drivers.runtime.bundle import read_config, remove_bundle, write_bundle
from stackd.drivers.runtime.host import CgroupMode, probe_host_limits
from stackd.drivers.runtime.request import (
    HOST,
    PRIVATE,
    ContainerRequest,
    Device,
    HostLimits,
    Mount,
    Namespaces,
    Resources,
    Rlimit,
    User,
)
from stackd.drivers.runtime.runtime import (
    ContainerNotFound,
    ContainerNotRunning,
    OciRuntime,
    RuntimeInfo,
    detect,
    probe,
)
from stackd.drivers.runtime.spec import oci_config

__all__ = [
    "HOST",
    "PRIVATE",
    "CgroupMode",
    "ContainerNotFound",
    "ContainerNotRunning",
    "ContainerRequest",
    "ContainerRuntime",
    "Device",
    "HostLimits",
    "Mount",
    "Namespaces",
    "OciRuntime",
    "Resources",
    "Rlimit",
    "RuntimeInfo",
    "StdioTarget",
    "User",
    "detect",
    "oci_config",
    "probe",
    "probe_host_limits",
    "read_config",
    "remove_bundle",
    "write_bundle",
]
