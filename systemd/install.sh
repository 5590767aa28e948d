#!/usr/bin/env bash
# Installs cryomix-watch as a systemd service, from a built checkout
# (npm ci && npm run build). Safe to re-run: after an upgrade, and whenever
# the folders in the config change (it regenerates the site drop-in).
#
#   sudo systemd/install.sh [--prefix DIR] [--api-key-file FILE]
#   sudo systemd/install.sh --uninstall [--purge]
#   DESTDIR=/tmp/pkg systemd/install.sh --prefix /usr      # packaging
#
# What goes where (PREFIX defaults to /usr/local):
#   PREFIX/lib/cryomix-watch/        the app: dist/, production node_modules/, package.json
#   PREFIX/bin/cryomix-watch         launcher (pins the node found now)
#   .../systemd/system/cryomix-watch.service, .../sysusers.d/cryomix-watch.conf
#   /etc/cryomix-watch/config.yaml   from config/config.example.yaml, only if absent
#   /etc/cryomix-watch/api-key       0600, root's: systemd reads it (LoadCredential=)
#   /etc/systemd/system/cryomix-watch.service.d/10-folders.conf   the site drop-in
#
# node_modules: the checkout's own, copied and pruned to production with
# `npm prune --omit=dev --offline`. No network, no compiler, and the native
# modules (better-sqlite3, koffi) are the ones already built for this node.
# So install with the node the service will run, on the machine (or the same
# distribution and architecture) it will run on.
set -euo pipefail

readonly NAME=cryomix-watch
readonly SHIPPED_EXEC=/usr/local/bin/cryomix-watch
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO

usage() {
  sed -n '2,9s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

die() {
  printf 'install.sh: %s\n' "$*" >&2
  exit 1
}

say() {
  printf '%s\n' "$*"
}

prefix=/usr/local
api_key_file=
uninstall=false
purge=false
while (($# > 0)); do
  case $1 in
    --prefix) (($# >= 2)) || die "--prefix needs a directory"; prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    --api-key-file) (($# >= 2)) || die "--api-key-file needs a file"; api_key_file=$2; shift 2 ;;
    --api-key-file=*) api_key_file=${1#--api-key-file=}; shift ;;
    --uninstall) uninstall=true; shift ;;
    --purge) purge=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

[[ $prefix == /* ]] || die "--prefix must be an absolute path, got: $prefix"
prefix=${prefix%/}
$purge && ! $uninstall && die "--purge only goes with --uninstall"

destdir=${DESTDIR:-}
if [[ -n $destdir ]]; then
  mkdir -p "$destdir"
  destdir=$(cd "$destdir" && pwd)
elif ((EUID != 0)); then
  die "run as root (it writes $prefix, /etc and creates a user), or set DESTDIR to stage a package"
fi

# /usr and /usr/local are on systemd's unit and sysusers search paths; any
# other prefix (/opt/...) is not, so the unit and user go under /etc then.
case $prefix in
  /usr | /usr/local) unit_dir=$prefix/lib/systemd/system; sysusers_dir=$prefix/lib/sysusers.d ;;
  *) unit_dir=/etc/systemd/system; sysusers_dir=/etc/sysusers.d ;;
esac
readonly app=$prefix/lib/$NAME
readonly launcher=$prefix/bin/$NAME
readonly unit=$unit_dir/$NAME.service
readonly sysusers=$sysusers_dir/$NAME.conf
readonly etc=/etc/$NAME
readonly dropin_dir=/etc/systemd/system/$NAME.service.d
readonly dropin=$dropin_dir/10-folders.conf
readonly state=/var/lib/$NAME

# systemctl only on a live system booted with systemd (sd_booted's test).
manage_systemd() {
  [[ -z $destdir && -d /run/systemd/system ]] && command -v systemctl >/dev/null
}

do_uninstall() {
  if manage_systemd; then
    systemctl disable --now "$NAME.service" 2>/dev/null || true
  fi
  rm -rf "$destdir$app" "$destdir$app.new"
  rm -f "$destdir$launcher" "$destdir$unit" "$destdir$dropin" "$destdir$sysusers"
  rmdir "$destdir$dropin_dir" 2>/dev/null || true
  say "removed $app, $launcher, $unit, $dropin, $sysusers"
  if $purge; then
    rm -rf "$destdir$etc" "$destdir$state"
    say "purged $etc (config and API key) and $state (upload history)"
  else
    say "kept $etc (config and API key) and $state (upload history); --uninstall --purge removes them"
  fi
  # A uid freed now could be reused by another account that would then own
  # whatever files the service left on shares.
  say "kept the user $NAME (userdel $NAME removes it)"
  if manage_systemd; then
    systemctl daemon-reload
  fi
}

node_binary() {
  local node=${NODE:-$(command -v node || true)}
  [[ -n $node && -x $node ]] || die "node not found: install Node.js 20.19 or later, or set NODE=/path/to/node"
  local version major minor
  version=$("$node" -p 'process.versions.node' 2>/dev/null || true)
  [[ $version =~ ^([0-9]+)\.([0-9]+) ]] || die "could not read a Node.js version from $node (it printed: ${version:-nothing}); set NODE=/path/to/node"
  major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}
  ((major > 20 || (major == 20 && minor >= 19))) || die "$node is Node.js $version; cryomix-watch needs 20.19 or later (package.json engines)"
  case $node in
    /home/* | /root/*) say "warning: $node is in a home directory, which the service user may not be able to read (ProtectHome=read-only); prefer a system-wide node (NODE=/usr/bin/node)" >&2 ;;
  esac
  printf '%s\n' "$node"
}

install_app() {
  [[ -f $REPO/dist/cli/bin.cjs ]] || die "$REPO/dist is missing: run npm ci && npm run build first"
  [[ -d $REPO/node_modules ]] || die "$REPO/node_modules is missing: run npm ci first"
  local stage=$destdir$app.new
  rm -rf "$stage"
  mkdir -p "$stage"
  cp -R "$REPO/dist" "$REPO/config" "$REPO/package.json" "$stage/"
  cp -R "$REPO/node_modules" "$stage/"
  # A checkout has its dev dependencies too, and the lock file to prune them by. An installed package
  # (npm install -g) has neither: only production dependencies, already.
  if [[ -f $REPO/package-lock.json ]]; then
    cp "$REPO/package-lock.json" "$stage/"
    # --logs-max=0: no debug log left in root's ~/.npm (a DESTDIR run touches nothing outside DESTDIR).
    (cd "$stage" && npm prune --omit=dev --offline --ignore-scripts --no-audit --no-fund --loglevel=error --logs-max=0 >/dev/null)
  fi
  # prune leaves the emptied scope folders (@types, @vitest…) behind.
  find "$stage/node_modules" -mindepth 1 -type d -empty -delete
  # Readable by the service user whatever umask the checkout was made with.
  chmod -R u=rwX,go=rX "$stage"
  # Swapped in whole, so a re-run never mixes two versions' files.
  rm -rf "$destdir$app.old"
  if [[ -d $destdir$app ]]; then mv "$destdir$app" "$destdir$app.old"; fi
  mv "$stage" "$destdir$app"
  rm -rf "$destdir$app.old"
  say "installed the app in $app"
}

install_launcher() {
  local node=$1
  mkdir -p "$destdir$(dirname "$launcher")"
  local tmp=$destdir$launcher.new
  # The node checked now, by absolute path: the service's PATH need not have it.
  printf '#!/bin/sh\n# Written by cryomix-watch systemd/install.sh\nexec %q %q "$@"\n' "$node" "$app/dist/cli/bin.cjs" >"$tmp"
  chmod 0755 "$tmp"
  mv "$tmp" "$destdir$launcher"
  say "installed $launcher (runs $node)"
}

install_user() {
  mkdir -p "$destdir$sysusers_dir"
  # u: a system user and a group of the same name; shell defaults to nologin.
  # The description is a passwd GECOS field: no colon, the passwd separator (systemd-sysusers refuses it).
  printf 'u %s - "cryomix-watch (uploads finished mixes)" %s\n' "$NAME" "$state" >"$destdir$sysusers.new"
  chmod 0644 "$destdir$sysusers.new"
  mv "$destdir$sysusers.new" "$destdir$sysusers"
  if [[ -n $destdir ]]; then
    say "wrote $sysusers (the package's postinst runs systemd-sysusers)"
  elif command -v systemd-sysusers >/dev/null; then
    systemd-sysusers "$sysusers"
    say "user $NAME present (systemd-sysusers)"
  elif id "$NAME" >/dev/null 2>&1; then
    say "user $NAME present"
  else
    useradd --system --user-group --home-dir "$state" --no-create-home --shell /usr/sbin/nologin "$NAME"
    say "created user $NAME (useradd)"
  fi
}

# StateDirectory= makes it at the service's first start; made now as well,
# the README's "check as the service user" can open the state DB before that.
install_state() {
  [[ -z $destdir ]] || return 0
  install -d -m 0700 -o "$NAME" -g "$NAME" "$state"
  say "state directory $state (0700, $NAME's)"
}

install_config() {
  mkdir -p "$destdir$etc"
  chmod 0755 "$destdir$etc"
  if [[ -e $destdir$etc/config.yaml ]]; then
    say "kept your $etc/config.yaml"
  else
    # It may hold http.token: readable by root and the service only. A package sets the group itself.
    if [[ -z $destdir ]]; then
      install -m 0640 -g "$NAME" "$REPO/config/config.example.yaml" "$destdir$etc/config.yaml"
    else
      install -m 0640 "$REPO/config/config.example.yaml" "$destdir$etc/config.yaml"
    fi
    say "installed $etc/config.yaml from config/config.example.yaml: set your folders in it"
  fi
}

# The key stays root's and 0600: systemd reads it as root for LoadCredential=
# and hands the service a private copy; the service user never reads this file.
install_key() {
  local key=$destdir$etc/api-key
  if [[ -n $api_key_file ]]; then
    [[ -f $api_key_file && -r $api_key_file ]] || die "--api-key-file: cannot read $api_key_file"
    local tmp=$key.new
    (umask 077 && cp "$api_key_file" "$tmp")
    chmod 0600 "$tmp"
    mv "$tmp" "$key"
    say "installed the API key in $etc/api-key (0600)"
  elif [[ -e $key ]]; then
    chmod 0600 "$key"
    say "kept the API key in $etc/api-key (0600)"
  else
    say "no API key yet: the service will not start until $etc/api-key exists (see next steps)"
  fi
}

install_unit() {
  mkdir -p "$destdir$unit_dir"
  grep -q "^ExecStart=$SHIPPED_EXEC " "$REPO/systemd/$NAME.service" || die "systemd/$NAME.service: ExecStart= is not $SHIPPED_EXEC …"
  sed "s#^ExecStart=$SHIPPED_EXEC #ExecStart=$launcher #" "$REPO/systemd/$NAME.service" >"$destdir$unit.new"
  chmod 0644 "$destdir$unit.new"
  mv "$destdir$unit.new" "$destdir$unit"
  say "installed $unit"
}

# Returns 1 when the config cannot be read: the rest is installed anyway,
# and any earlier drop-in is left as it was.
install_dropin() {
  local node=$1 tmp=$destdir$dropin.new
  mkdir -p "$destdir$dropin_dir"
  if ! "$node" "$destdir$app/dist/cli/bin.cjs" systemd-drop-in --config "$destdir$etc/config.yaml" >"$tmp"; then
    rm -f "$tmp"
    say "NOT written: $dropin (the config above needs fixing; then re-run this installer)" >&2
    return 1
  fi
  # Name the config where it will be, not where it was staged.
  if [[ -n $destdir ]]; then
    local staged=$destdir$etc/config.yaml
    sed -i "1s#from ${staged//#/\\#}\\.#from $etc/config.yaml.#" "$tmp"
  fi
  chmod 0644 "$tmp"
  mv "$tmp" "$destdir$dropin"
  say "wrote $dropin (the folders the service may write to)"
}

do_install() {
  local node problems=0
  node=$(node_binary)
  install_app
  install_launcher "$node"
  install_user
  install_state
  install_config
  install_key
  local first_install=0
  [[ -e $destdir$unit ]] || first_install=1
  install_unit
  install_dropin "$node" || problems=1
  if manage_systemd; then
    systemctl daemon-reload
    # Enabled once; a re-run (new folders, an upgrade) leaves an admin's `systemctl disable` alone.
    if ((first_install)); then
      systemctl enable "$NAME.service"
      say "systemd: $NAME enabled (not started)"
    fi
    # An upgrade or new folders take effect now if it was running; a stopped service stays stopped.
    systemctl try-restart "$NAME.service"
    say "systemd: reloaded"
  elif [[ -n $destdir ]]; then
    say "DESTDIR set: no systemctl daemon-reload/enable (the package does that)"
  else
    say "systemd is not running here: no systemctl daemon-reload/enable"
  fi
  cat <<EOF

Next steps:
  1. Put the API key in $etc/api-key, readable by root only:
       sudo sh -c 'umask 077; cat > $etc/api-key'     (paste the key, then Ctrl-D)
  2. Set your folders in $etc/config.yaml, then re-run this installer so the
     service may write to them (it regenerates $dropin).
     Shares owned by a group (NAS mounts): sudo systemctl edit $NAME, and add
       [Service]
       SupplementaryGroups=<the group that owns the share>
  3. Check as the service user, then start:
       sudo systemd-run --pipe --wait --quiet -p User=$NAME -p LoadCredential=cryomix-api-key:$etc/api-key $launcher check
     (with -p SupplementaryGroups=<group> for a group you gave the service)
       sudo systemctl start $NAME && systemctl status $NAME
EOF
  return "$problems"
}

if $uninstall; then
  do_uninstall
else
  do_install
fi
