#!/bin/sh
# The image's entry point. Run as root (Docker's default) with a host folder mounted on /bremen/log or
# /bremen/data that belongs to someone else, it runs the command as that folder's owner, so the files a run
# writes to the mounts belong to the user who started the container, not to root. BREMEN_AS_ROOT=1 keeps
# root; `docker run --user UID:GID` works as well (every folder the commands write by default is writable).
set -e
if [ "$(id -u)" = 0 ] && [ "${BREMEN_AS_ROOT:-0}" != 1 ]; then
  for dir in /bremen/log /bremen/data; do
    owner=$(stat -c %u:%g "$dir" 2>/dev/null || echo 0:0)
    uid=${owner%%:*}
    if [ "$uid" != 0 ]; then
      export HOME="/tmp/home-$uid" USER="${USER:-bremen}" LOGNAME="${LOGNAME:-bremen}"
      mkdir -p "$HOME" && chown "$owner" "$HOME"
      exec setpriv --reuid="$uid" --regid="${owner##*:}" --clear-groups -- "$@"
    fi
  done
fi
if [ "$(id -u)" != 0 ] && ! [ -w "${HOME:-/}" ]; then  # --user with an id the image has no account for
  export HOME="/tmp/home-$(id -u)" USER="${USER:-bremen}" LOGNAME="${LOGNAME:-bremen}"
  mkdir -p "$HOME"
fi
exec "$@"
