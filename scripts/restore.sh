#!/usr/bin/env bash
# Restore a dump made by scripts/backup.sh into a NEW database. See docs/operations.md.
#
#   scripts/restore.sh DUMP_FILE [TARGET_DATABASE_URL]
#
# TARGET_DATABASE_URL defaults to $DATABASE_URL. The target database must not exist:
# it is created (on the same server, through its "postgres" database), the dump's
# checksum is verified, and pg_restore runs in one transaction — so a failed restore
# leaves an empty database, never half of one. Point the platform's DATABASE_URL at
# the new database afterwards (or rename it, see docs/operations.md).
set -euo pipefail

die() { echo "restore: $*" >&2; exit 1; }

dump="${1:-}"
[ -n "$dump" ] || die "usage: scripts/restore.sh DUMP_FILE [TARGET_DATABASE_URL]"
[ -f "$dump" ] || die "no such file: $dump"
url="${2:-${DATABASE_URL:-}}"
[ -n "$url" ] || die "no target: pass TARGET_DATABASE_URL or set DATABASE_URL"
case "$url" in
  postgres://*|postgresql://*) ;;
  pgsql://*|postgis://*) url="postgresql://${url#*://}" ;;
  *) die "the target is not a PostgreSQL URL" ;;
esac
for tool in pg_restore psql sha256sum; do
  command -v "$tool" >/dev/null || die "$tool is not installed (Debian: apt-get install postgresql-client)"
done

if [ -f "$dump.sha256" ]; then
  (cd "$(dirname "$dump")" && sha256sum --check --quiet "$(basename "$dump").sha256") \
    || die "checksum mismatch: $dump is damaged"
else
  echo "restore: no $dump.sha256 beside the dump; its checksum is not verified" >&2
fi

path="${url%%\?*}"
query="${url#"$path"}"
db="${path##*/}"
server="${path%/*}"
[ -n "$db" ] || die "the target URL names no database"
case "$db" in *[!A-Za-z0-9_]*) die "database name must be letters, digits and _: $db" ;; esac
maintenance="$server/postgres$query"

exists="$(psql "$maintenance" -XAtc "SELECT 1 FROM pg_database WHERE datname = '$db'")" \
  || die "cannot reach the server"
[ -z "$exists" ] || die "database $db already exists: restore into a new one (drop it first if it is a failed attempt)"
psql "$maintenance" -Xqc "CREATE DATABASE \"$db\"" || die "cannot create database $db"

if ! pg_restore --dbname="$url" --no-owner --no-privileges --single-transaction \
    --exit-on-error "$dump"; then
  die "pg_restore failed; database $db is left empty (drop it before trying again)"
fi
psql "$url" -Xqc "ANALYZE" || true
echo "restore: $dump restored into database $db" >&2
