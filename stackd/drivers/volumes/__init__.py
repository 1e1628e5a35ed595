"""The volumes driver: named volumes as directories under ``<data>/volumes`` (``driver``), the
copy-up that fills a new volume from the image (``copyup``), the check that a volume is not
mounted before it goes (``mounts``), and safe names (``names``).

It makes, fills, lists and removes volumes when asked; which volumes a stack needs and when to
copy up are decided above it (planner, execute).
"""

from stackd.drivers.volumes.driver import DEFAULT_ROOT, VolumeDriver, VolumeInfo
from stackd.drivers.volumes.errors import VolumeError, VolumeInUseError, VolumeNotFoundError
from stackd.drivers.volumes.mounts import MountUse, find_uses
from stackd.drivers.volumes.names import check_name

__all__ = [
    "DEFAULT_ROOT",
    "MountUse",
    "VolumeDriver",
    "VolumeError",
    "VolumeInUseError",
    "VolumeInfo",
    "VolumeNotFoundError",
    "check_name",
    "find_uses",
]
