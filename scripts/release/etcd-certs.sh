#!/bin/sh
# Issues the certificates for etcd with client-certificate auth (openssl only), into DIR:
#
#   etcd-certs.sh DIR --ip 10.0.0.11 [--ip 10.0.0.12 ...] [--dns etcd.example] [--client NAME ...]
#
#   ca.pem, ca-key.pem        the cluster's etcd CA (keep ca-key.pem off the hosts once done)
#   server.pem, server-key.pem  etcd's serving certificate, valid for every --ip and --dns
#                               (and 127.0.0.1, localhost); also used for peer traffic
#   <NAME>.pem, <NAME>-key.pem  one client certificate per identity, CN=NAME: etcd maps the CN
#                               to the etcd user NAME (etcd-roles.sh creates the users and roles)
#
# Default clients: root overlayd dnsd registrator announce logsd. Existing files are kept, so a
# second run only adds what is missing (a new --client, say); delete a file to issue it again.
# Keys are written mode 0600. ETCD_CERT_DAYS (default 825) sets the validity.
set -eu
usage() { sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
[ $# -ge 1 ] || { usage >&2; exit 2; }
case $1 in -h | --help) usage; exit 0 ;; esac
dir=$1
shift
ips=127.0.0.1
dnsnames=localhost
clients=
while [ $# -gt 0 ]; do
  case $1 in
    --ip) ips="$ips $2"; shift 2 ;;
    --dns) dnsnames="$dnsnames $2"; shift 2 ;;
    --client) clients="$clients $2"; shift 2 ;;
    *) echo "etcd-certs.sh: unknown argument \"$1\" (--ip, --dns, --client)" >&2; exit 2 ;;
  esac
done
[ -n "$clients" ] || clients="root overlayd dnsd registrator announce logsd"
days=${ETCD_CERT_DAYS:-825}
command -v openssl >/dev/null || { echo "etcd-certs.sh: openssl not found" >&2; exit 1; }
mkdir -p "$dir"
umask 077

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

if [ ! -s "$dir/ca.pem" ]; then
  key "$dir/ca-key.pem"
  openssl req -x509 -new -key "$dir/ca-key.pem" -sha256 -days "$days" -subj "/CN=flotilla etcd CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -out "$dir/ca.pem"
fi

# sign NAME CN EXTFILE-CONTENT
sign() {
  key "$dir/$1-key.pem"
  openssl req -new -key "$dir/$1-key.pem" -subj "/CN=$2" -out "$dir/$1.csr"
  printf '%s\n' "$3" >"$dir/$1.ext"
  openssl x509 -req -in "$dir/$1.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" -CAcreateserial \
    -sha256 -days "$days" -extfile "$dir/$1.ext" -out "$dir/$1.pem" 2>/dev/null
  rm -f "$dir/$1.csr" "$dir/$1.ext"
}

if [ ! -s "$dir/server.pem" ]; then
  san=
  for ip in $ips; do san="$san,IP:$ip"; done
  for n in $dnsnames; do san="$san,DNS:$n"; done
  sign server etcd "subjectAltName=${san#,}
extendedKeyUsage=serverAuth,clientAuth
keyUsage=critical,digitalSignature,keyEncipherment"
fi
for c in $clients; do
  case $c in *[!A-Za-z0-9_.-]*) echo "etcd-certs.sh: --client \"$c\": letters, digits, _ . - only" >&2; exit 2 ;; esac
  [ -s "$dir/$c.pem" ] && continue
  sign "$c" "$c" "extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature"
done
chmod 0644 "$dir"/*.pem
chmod 0600 "$dir"/*-key.pem
echo "etcd certificates in $dir (CA, server for$ips${dnsnames:+ $dnsnames}, clients:$clients)"
