#!/usr/bin/env bash
# The burst benchmark's baseline: what a careful shell script does to upload
# every finished WAV dropped into a folder, with no durability at all (no
# state, no retry, no settle rule, no checksum). inotifywait reports each
# file once it is closed after writing; xargs runs the uploads at the same
# concurrency as the daemon; each upload asks the API for a signed URL,
# then PUTs the file with curl, exactly as the daemon's requests do.
#
#   burst.sh DIR API_URL CONCURRENCY     (API key in $CRYOMIX_API_KEY)
#
# Prints "<epoch ms> <HTTP status> <path>" when each upload has finished.
# Runs until stopped (the harness ends its process group).
set -u

if [ "${1:-}" = "--one" ]; then
  file=$2 api=$3
  name=${file##*/}
  read -r session < /proc/sys/kernel/random/uuid
  answer=$(curl -sS -X POST "$api/api/signed-url/multi-upload" \
    -H "X-Api-Key: $CRYOMIX_API_KEY" -H "Session-Id: $session" -H 'Source: Mastering API' \
    -H 'Content-Type: application/json' \
    --data "{\"object_names\":[\"$name\"],\"content_type\":\"audio/wav\",\"expiration_seconds\":900}")
  pattern='"upload_object_names":\{"[^"]*":"([^"]*)"'
  status=000
  if [[ $answer =~ $pattern ]]; then
    status=$(curl -sS -o /dev/null -w '%{http_code}' -T "$file" -H 'Content-Type: audio/wav' "${BASH_REMATCH[1]}")
  fi
  now=${EPOCHREALTIME//[.,]/}
  echo "${now:0:13} $status $file"
  exit 0
fi

if [ $# -ne 3 ]; then
  echo "usage: $0 DIR API_URL CONCURRENCY" >&2
  exit 2
fi
dir=$1 api=$2 concurrency=$3
# close_write: a file written in place; moved_to: one renamed into the folder.
inotifywait -m -e close_write -e moved_to --format '%w%f' --include '\.[wW][aA][vV]$' "$dir" |
  xargs -d '\n' -P "$concurrency" -I{} "$0" --one {} "$api"
