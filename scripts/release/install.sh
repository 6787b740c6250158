#!/bin/sh
# Installs (or upgrades) this Flotilla release on a host: run it as root from the unpacked tarball.
#
#   tar -xzf flotilla-<version>-linux-x64.tar.gz && ./flotilla-<version>-linux-x64/install.sh [--fleet]
#
# - the release goes to /opt/flotilla/releases/<version>; /opt/flotilla/{bin,node,app,units} point
#   at it through /opt/flotilla/current, switched in one rename (the units run /opt/flotilla/bin/*);
# - the units go to /etc/systemd/system, the Docker drop-in to docker.service.d; with --fleet only
#   the drop-in is installed, and fleet schedules the units (fleetctl start /opt/flotilla/units/…);
# - /etc/flotilla (site settings, secrets) is created once, mode 0700, and never overwritten; the
#   log shared key and query token are made there when absent (mode 0600; copy them to every host);
# - systemd is reloaded when it runs; nothing is started (systemctl enable --now …, or fleetctl).
# Safe to run again, and to run a newer release over an older one. FLOTILLA_ROOT=/some/dir installs
# under that directory instead of / (for tests and image builds); it skips the systemd reload.
set -eu
fleet=0
for arg in "$@"; do
  case $arg in
    --fleet) fleet=1 ;;
    -h | --help) sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown argument \"$arg\" (--fleet, --help)" >&2; exit 2 ;;
  esac
done
here=$(cd "$(dirname "$0")" && pwd)
root=${FLOTILLA_ROOT:-}
version=$(cat "$here/VERSION")
prefix=$root/opt/flotilla
units=$root/etc/systemd/system

for d in bin node app units; do
  [ -e "$here/$d" ] || { echo "install.sh: $here/$d missing: unpack the whole tarball" >&2; exit 1; }
done
"$here/node/bin/node" -e 'process.exit(0)' || {
  echo "install.sh: the bundled runtime $here/node/bin/node does not run on this host" >&2
  exit 1
}

mkdir -p "$prefix/releases"
if [ "$here" != "$prefix/releases/$version" ]; then
  rm -rf "$prefix/releases/$version.new"
  cp -a "$here" "$prefix/releases/$version.new"
  rm -rf "$prefix/releases/$version"
  mv "$prefix/releases/$version.new" "$prefix/releases/$version"
fi
ln -sfn "releases/$version" "$prefix/current.new"
mv -T "$prefix/current.new" "$prefix/current"
for d in bin node app units; do
  if [ -e "$prefix/$d" ] && [ ! -L "$prefix/$d" ]; then
    # An install from before releases/ (a plain directory): keep it aside, once.
    rm -rf "$prefix/$d.old" && mv "$prefix/$d" "$prefix/$d.old"
  fi
  ln -sfn "current/$d" "$prefix/$d"
done
# Keep the two newest releases besides the current one.
ls -1t "$prefix/releases" | grep -vx "$version" | tail -n +3 | while read -r old; do
  rm -rf "${prefix:?}/releases/$old"
done

mkdir -p "$units/docker.service.d"
if [ "$fleet" = 0 ]; then
  for u in "$here"/units/*.service; do cp "$u" "$units/"; done
fi
cp "$here/units/docker.service.d/"*.conf "$units/docker.service.d/"

if [ ! -d "$root/etc/flotilla" ]; then
  mkdir -p "$root/etc/flotilla"
  chmod 0700 "$root/etc/flotilla"
fi
# The cluster-wide log secrets (docs/operations.md, "Secrets"): the forward-protocol shared key
# (agents -> aggregator) and the query token (logs, the page). Made once when absent, mode 0600,
# never overwritten. Every host needs the same two files: install on one host, then copy
# /etc/flotilla/logs-shared-key and /etc/flotilla/logs-token to the others (before install.sh
# runs there, or over what it made) and restart logsd.
for s in logs-shared-key logs-token; do
  f=$root/etc/flotilla/$s
  [ -s "$f" ] && continue
  (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$f.new" && echo >>"$f.new")
  chmod 0600 "$f.new"
  mv "$f.new" "$f"
  echo "made $f (cluster-wide secret: copy it to every host)"
done
mkdir -p "$root/var/cache/flotilla"
# Warm Node's compile cache for every command (the first start of an agent is then as fast as the next).
if [ -z "$root" ]; then
  for b in "$prefix"/bin/*; do "$b" --version >/dev/null 2>&1 || true; done
  if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
fi
echo "flotilla $version installed in $prefix (units in $units)"
