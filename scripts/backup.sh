#!/usr/bin/env bash
# Back up the platform's PostgreSQL database: one pg_dump file (custom format), checked
# and with its SHA-256, written atomically. See docs/operations.md.
#
#   DATABASE_URL=postgres://user:pass@host:5432/mcoms scripts/backup.sh [OUT_DIR]
#
# OUT_DIR defaults to $BACKUP_DIR, else var/backups. BACKUP_KEEP (default 14) is how
# many dumps of this database are kept there; older ones are removed after a good dump.
# Prints the path of the new dump on the last line. Exits non-zero on any failure,
# leaving no partial file behind.
set -euo pipefail

die() { echo "backup: $*" >&2; exit 1; }

url="${DATABASE_URL:-}"
[ -n "$url" ] || die "DATABASE_URL is not set"
case "$url" in
  postgres://*|postgresql://*) ;;
  pgsql://*|postgis://*) url="postgresql://${url#*://}" ;;
  *) die "DATABASE_URL is not PostgreSQL (${url%%:*}); the SQLite file under var/ is copied instead" ;;
esac
for tool in pg_dump pg_restore sha256sum; do
  command -v "$tool" >/dev/null || die "$tool is not installed (Debian: apt-get install postgresql-client)"
done

out_dir="${1:-${BACKUP_DIR:-var/backups}}"
keep="${BACKUP_KEEP:-14}"
mkdir -p "$out_dir"

path="${url%%\?*}"
db="${path##*/}"
[ -n "$db" ] || die "DATABASE_URL names no database"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
file="$out_dir/mcoms-$db-$stamp.dump"
partial="$file.partial"
trap 'rm -f "$partial"' EXIT

# Custom format: compressed, restorable table by table, in parallel (pg_restore -j).
pg_dump --dbname="$url" --format=custom --compress=6 --no-owner --no-privileges \
  --file="$partial" || die "pg_dump failed"
# A dump pg_restore cannot list is no backup.
pg_restore --list "$partial" >/dev/null || die "the dump cannot be read back"
mv "$partial" "$file"
(cd "$out_dir" && sha256sum "$(basename "$file")" > "$(basename "$file").sha256")

if [ "$keep" -gt 0 ] 2>/dev/null; then
  # Newest first; everything after the first $keep goes (with its checksum).
  ls -1t "$out_dir"/mcoms-"$db"-*.dump 2>/dev/null | tail -n +"$((keep + 1))" | while read -r old; do
    rm -f "$old" "$old.sha256"
  done
fi

echo "backup: $(du -h "$file" | cut -f1) written" >&2
echo "$file"
