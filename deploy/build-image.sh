#!/usr/bin/env bash
# Build the service's image with podman where no image registry is reachable: the base image is
# made with debootstrap (Debian bookworm, minbase) and imported into podman, then the Dockerfile
# is built on it. With a registry, `docker build .` or `podman build .` is enough.
#
#   sudo deploy/build-image.sh            # -> localhost/porte-a-porte:latest
#   DEBIAN_MIRROR=http://my-mirror/debian sudo deploy/build-image.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${BASE_IMAGE:-localhost/porte-debian:bookworm}
TAG=${IMAGE_TAG:-localhost/porte-a-porte:latest}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

for tool in podman debootstrap; do
  command -v "$tool" >/dev/null || { echo "Missing $tool: sudo apt-get install -y podman debootstrap" >&2; exit 1; }
done
if ! podman image exists "$BASE"; then
  root=$(mktemp -d /var/tmp/porte-rootfs.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  echo "==> debootstrap bookworm (minbase) into $root"
  debootstrap --variant=minbase bookworm "$root" "$MIRROR" >/dev/null
  echo "deb $MIRROR bookworm main" > "$root/etc/apt/sources.list"
  echo "==> podman import -> $BASE"
  tar -C "$root" -c . | podman import - "$BASE" >/dev/null
fi
# The host's CA bundle is lent to the build (pip and apt over HTTPS through the same trust as
# this machine), never copied into the image.
echo "==> podman build -> $TAG"
# --isolation=chroot: RUN steps need no cgroups (a build host whose cgroups crun refuses).
podman build --network=host --isolation=chroot \
  --volume /etc/ssl/certs/ca-certificates.crt:/run/porte-host-ca.crt:ro \
  --build-arg PIP_CERT=/run/porte-host-ca.crt \
  --build-arg BASE_IMAGE="$BASE" -t "$TAG" .
echo "Built $TAG. Run it with: podman run --rm --network=host --env-file .env $TAG"
