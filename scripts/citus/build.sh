#!/usr/bin/env bash
# Build and install Citus 13.2.2 (AGPL-3.0, unmodified source in citus-13.2.2.tar.gz) into the
# machine's PostgreSQL 15. Idempotent: does nothing when this Citus is already installed.
# Needs root (apt). Takes about a minute on 2 cores. Usage: scripts/citus/build.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
pg_config=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
if [ -x "$pg_config" ] && [ -f "$("$pg_config" --pkglibdir)/citus.so" ] \
   && grep -q "default_version = '13.2" "$("$pg_config" --sharedir)/extension/citus.control" 2>/dev/null; then
  echo "citus 13.2 already installed"; exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# The server-dev package may move the PostgreSQL 15 server to the newest minor release too.
apt-get install -y -qq --no-install-recommends postgresql-15 postgresql-server-dev-15 \
  libcurl4-openssl-dev liblz4-dev libzstd-dev libkrb5-dev libssl-dev make gcc patch >/dev/null
pg_config=/usr/lib/postgresql/15/bin/pg_config
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
tar -xzf "$here/citus-13.2.2.tar.gz" -C "$work"
cd "$work/citus-13.2.2"
# PostgreSQL 15.20 declares have_createdb_privilege() itself; Citus 13.2.2 carries its own copy.
if grep -q "have_createdb_privilege" "$("$pg_config" --includedir-server)/commands/dbcommands.h"; then
  patch -p1 -s < "$here/pg15-have-createdb-privilege.patch"
fi
PG_CONFIG=$pg_config ./configure -q >/dev/null
make -s -j"$(nproc)" with_llvm=no >/dev/null
make -s install with_llvm=no >/dev/null
echo "citus 13.2.2 installed into $("$pg_config" --pkglibdir)"
