"""The image driver: a store of OCI images whose layers are unpacked once and used as overlayfs
lower directories, plus import/export of OCI-layout and ``docker save`` archives.

Modules: ``store`` (the store and its on-disk layout), ``layers`` (layer tar <-> directory, with
overlayfs whiteouts), ``whiteouts`` (how deletions are written; real and fake), ``archive``
(import/export), ``oci``/``config``/``names``/``digests`` (pure parsing and checking),
``fsutil`` (confined path resolution, atomic writes), ``records`` (what the store returns).
There is no builder, registry client or runtime here, and none may be added: those build on
this package. Nothing here decides which images a stack needs; callers (execute, observe,
the daemon) do.
"""

from stackd.drivers.images.archive import export_archive, import_archive
from stackd.drivers.images.config import Healthcheck, ImageConfig
from stackd.drivers.images.digests import Digest
from stackd.drivers.images.errors import ArchiveError, ImageError, ImageNotFoundError
from stackd.drivers.images.layers import LayerInfo, diff_to_tar, unpack_layer
from stackd.drivers.images.names import normalize_name
from stackd.drivers.images.records import GcReport, ImageRef, ImageSummary, NewImage
from stackd.drivers.images.store import DEFAULT_ROOT, ImageStore
from stackd.drivers.images.whiteouts import MemoryWhiteouts, OverlayWhiteouts, Whiteouts

__all__ = [
    "DEFAULT_ROOT",
    "ArchiveError",
    "Digest",
    "GcReport",
    "Healthcheck",
    "ImageConfig",
    "ImageError",
    "ImageNotFoundError",
    "ImageRef",
    "ImageStore",
    "ImageSummary",
    "LayerInfo",
    "MemoryWhiteouts",
    "NewImage",
    "OverlayWhiteouts",
    "Whiteouts",
    "diff_to_tar",
    "export_archive",
    "import_archive",
    "normalize_name",
    "unpack_layer",
]
