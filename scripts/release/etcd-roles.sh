#!/bin/sh
# Sets up etcd's users and roles for Flotilla (least privilege) and turns auth on. Run it once per
# cluster against an etcd started with --client-cert-auth, as etcd's root (by client certificate):
#
#   ETCDCTL_ENDPOINTS=https://10.0.0.11:2379 ETCDCTL_CACERT=ca.pem \
#   ETCDCTL_CERT=root.pem ETCDCTL_KEY=root-key.pem ./etcd-roles.sh
#
# Users have no password: etcd takes the user from the client certificate's CN (etcd-certs.sh).
#   overlayd     read   $NETWORK/config          write  $NETWORK/subnets/  (leases, flannel layout)
#   dnsd         read   $SKYDNS/                 (answers only)
#   registrator  write  $SKYDNS/, $WITHDRAWN/    (dnsd --docker: announces containers)
#   announce     write  $SKYDNS/, $WITHDRAWN/    (sidekicks; the withdrawn prefix holds records
#                                                 taken out of DNS by a failing health check)
#   logsd        write  $LOGS/                   (logsd aggregator --announce: its query address)
#   root         everything (operators: dnsctl, etcdctl; keep its key off the hosts)
# "write" here is readwrite: a transaction's compare reads the key it writes.
# NETWORK=/coreos.com/network SKYDNS=/skydns WITHDRAWN=/flotilla/dns/withdrawn LOGS=/flotilla/logs
# can be changed through the environment (FLOTILLA_NETWORK_PREFIX, FLOTILLA_SKYDNS_PREFIX, ...).
# Safe to run again: existing users and roles are kept, permissions granted again.
set -eu
case ${1:-} in -h | --help) sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;; esac
[ $# -eq 0 ] || { echo "etcd-roles.sh: no arguments (settings through ETCDCTL_* variables)" >&2; exit 2; }
network=${FLOTILLA_NETWORK_PREFIX:-/coreos.com/network}
skydns=${FLOTILLA_SKYDNS_PREFIX:-/skydns}
withdrawn=${FLOTILLA_WITHDRAWN_PREFIX:-/flotilla/dns/withdrawn}
logs=${FLOTILLA_LOGS_PREFIX:-/flotilla/logs}
e() { etcdctl "$@" >/dev/null; }
# Adding what exists already is not an error on a second run.
add() {
  out=$(etcdctl "$@" 2>&1) && return 0
  case $out in *"already exists"*) return 0 ;; esac
  echo "etcd-roles.sh: etcdctl $*: $out" >&2
  exit 1
}
for u in root overlayd dnsd registrator announce logsd; do add user add "$u" --no-password; done
for r in root overlayd dnsd registrator announce logsd; do add role add "$r"; done
e user grant-role root root
e role grant-permission overlayd read "$network/config"
e role grant-permission overlayd readwrite --prefix "$network/subnets/"
e role grant-permission dnsd read --prefix "$skydns/"
for r in registrator announce; do
  e role grant-permission "$r" readwrite --prefix "$skydns/"
  e role grant-permission "$r" readwrite --prefix "$withdrawn/"
done
e role grant-permission logsd readwrite --prefix "$logs/"
for u in overlayd dnsd registrator announce logsd; do e user grant-role "$u" "$u"; done
add auth enable
echo "etcd auth enabled: roles root overlayd dnsd registrator announce logsd"
