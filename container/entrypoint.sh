#!/bin/sh
# The image's entry point. On the first start there is no config: it writes
# the annotated example where the config is expected and stops with exit
# status 78 ("fix the config, do not restart"), saying what to edit.
# Otherwise node replaces this shell (exec), so signals reach it directly.
set -eu
config=${CRYOMIX_WATCH_CONFIG:-/config/config.yaml}
if [ "${1:-}" = run ] && [ ! -e "$config" ]; then
  if cp /app/container/config.yaml "$config" 2>/dev/null; then
    echo "cryomix-watch: no config yet: wrote an example to $config; set folders[].path (and the http token), put the API key in the cryomix-api-key secret, then start the container again" >&2
  else
    echo "cryomix-watch: no config at $config, and the example could not be written there: mount a writable /config volume (owned by the container's user, $(id -u):$(id -g))" >&2
  fi
  exit 78
fi
exec node /app/dist/cli/bin.cjs "$@"
