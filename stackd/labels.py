"""Every label and annotation key stackd writes on what it makes (one place, one spelling).

Containers carry them as OCI annotations in their config.json, so that what is on the host can
be recognised and adopted without the store; the store keeps the same facts for speed.
"""

from __future__ import annotations

PREFIX = "io.stackd."

PROJECT = "io.stackd.project"
SERVICE = "io.stackd.service"
NUMBER = "io.stackd.number"
CONFIG_HASH = "io.stackd.config-hash"
CONFIG_PARTS = "io.stackd.config-parts"
GROUP = "io.stackd.group"
IMAGE = "io.stackd.image"
IMAGE_ID = "io.stackd.image-id"
NETWORK = "io.stackd.network"
VOLUME = "io.stackd.volume"
ONEOFF = "io.stackd.oneoff"
VERSION = "io.stackd.version"
# set by the user on a service: the daemon restarts its containers when they turn unhealthy
RESTART_ON_UNHEALTHY = "io.stackd.restart-on-unhealthy"

# Compose's own keys, written too so that tools reading Compose labels see the same project.
COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"
COMPOSE_NUMBER = "com.docker.compose.container-number"
