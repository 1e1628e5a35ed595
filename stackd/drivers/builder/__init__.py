"""The image builder: a Dockerfile and a build context become an OCI image in stackd's store.

``build_image`` (``builder``) runs the pure build front end (``stackd.build``: parsing, argument
resolution, cache keys), then carries the steps out: RUN in a container of the OCI runtime on an
overlay of the stage's layers (``steps``, ``runstep``, ``mounts``), COPY/ADD as layer tars
written straight from the sources (``copyplan``, ``layertar``, ``fsview``), the other
instructions as changes of the image config (``state``). Results are cached per step
(``cache``); base images come from the store or a ``BaseImageSource`` (``bases``: Debian is
bootstrapped). Progress is reported as ``BuildEvent`` s and failures as ``BuildError`` s
(``events``). Used by execute and the daemon; it never decides whether an image should be built.
"""

from stackd.drivers.builder.bases import DEFAULT_SOURCES, BaseImageSource, DebianBootstrap, find_image
from stackd.drivers.builder.builder import build_image
from stackd.drivers.builder.cache import BuildCache
from stackd.drivers.builder.events import BuildError, BuildEvent, Progress, ignore_progress
from stackd.drivers.builder.mounts import Mounter, OverlayMounter, PlainMounter
from stackd.drivers.builder.runstep import BuildRuntime

__all__ = [
    "DEFAULT_SOURCES",
    "BaseImageSource",
    "BuildCache",
    "BuildError",
    "BuildEvent",
    "BuildRuntime",
    "DebianBootstrap",
    "Mounter",
    "OverlayMounter",
    "PlainMounter",
    "Progress",
    "build_image",
    "find_image",
    "ignore_progress",
]
