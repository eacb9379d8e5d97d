#!/usr/bin/env bash
# Back up the bundled index: a consistent tar.gz of the packages directory, its catalogue state
# and (for a data directory) its users, with a sha256 manifest of every file.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: scripts/backup-packages.sh DATA_OR_PACKAGES_DIR ARCHIVE.tar.gz

DATA_OR_PACKAGES_DIR is a data directory made by setup-private-pypi.sh (it has packages/) or a
packages directory itself. The archive holds, under releasekit-backup/:
  packages/*                 every distribution file
  packages/.releasekit/*     catalogue, yank state (yanked.json), API tokens (tokens.json)
  htpasswd, htpasswd.roles.toml   users and roles (data directories only)
  settings.toml, metrics-token, tls/cert.pem, tls/key.pem   settings and TLS (data directories)
  BACKUP-INFO, MANIFEST.sha256    where it came from; sha256 of every file (sha256sum -c format)
Page and metadata caches (.releasekit/simple, .releasekit/metadata) are left out: restore
rebuilds them with `releasekit server reindex`.

Consistency: the index may keep running. Files are only ever added, replaced or removed by
atomic rename, so the script lists every file (inode, size, mtime), copies them, lists again,
and accepts the copy only when both lists match; otherwise it retries (5 times) and then gives
up. The archive is written to a temp name and renamed, mode 0600 (it holds password hashes
and the TLS key). Progress goes to stderr; 10k files take seconds (batched tar and sha256sum).
Restore with scripts/restore-packages.sh ARCHIVE EMPTY_DIR.
EOF
}

die() {
    echo "error: $1" >&2
    [ $# -lt 2 ] || echo "  hint: $2" >&2
    exit 1
}

case "${1:-}" in -h | --help) usage; exit 0 ;; esac
[ $# -eq 2 ] || { usage >&2; exit 2; }
source_dir=${1%/}
archive=$2

[ -d "$source_dir" ] || die "$source_dir is not a directory" "pass the data directory or the packages directory the index serves"
if [ -d "$source_dir/packages" ]; then
    data_dir=$source_dir
    packages=$source_dir/packages
else
    data_dir=
    packages=$source_dir
fi
[ ! -e "$archive" ] || die "$archive already exists" "choose a new archive name, or remove the old one first"
archive_dir=$(dirname "$archive")
if [ ! -d "$archive_dir" ] || [ ! -w "$archive_dir" ]; then
    die "cannot write into $archive_dir" "create it, or choose another place for the archive"
fi

if command -v sha256sum >/dev/null 2>&1; then
    sha256_command=(sha256sum --)
elif command -v shasum >/dev/null 2>&1; then
    sha256_command=(shasum -a 256 --)
else
    die "neither sha256sum nor shasum is installed" "install coreutils (sha256sum)"
fi

say() { echo "$1" >&2; }

# What a backup holds, one path per line: data-directory members relative to $data_dir, package
# members relative to $packages. Users, settings, the metrics token and the TLS material belong
# to a data directory; dot-files at the packages top are upload temp files, temp state files
# being written; sub-directories of .releasekit are caches that reindex rebuilds.
data_members() {
    [ -n "$data_dir" ] || return 0
    for name in htpasswd htpasswd.roles.toml settings.toml metrics-token tls/cert.pem tls/key.pem; do
        [ ! -f "$data_dir/$name" ] || echo "$name"
    done
}
package_members() {
    (
        cd "$packages"
        find . -mindepth 1 -maxdepth 1 -type f ! -name '.*'
        [ ! -d .releasekit ] || find .releasekit -mindepth 1 -maxdepth 1 -type f ! -name '.*'
    ) | sed 's|^\./||' | LC_ALL=C sort
}

# Identity of every listed file (inode, size, mtime), in one stat per batch, GNU then BSD stat.
# An atomic rename always brings a new inode, so a replaced file is seen even within a second.
identities() {
    (cd "$1" && tr '\n' '\0' <"$2" | xargs -0 -r stat -c '%n %i %s %Y' -- 2>/dev/null \
        || tr '\n' '\0' <"$2" | xargs -0 stat -f '%N %i %z %m' -- 2>/dev/null) || true
}
snapshot() {
    identities "$packages" "$stage/packages.list"
    [ -z "$data_dir" ] || identities "$data_dir" "$stage/data.list"
}

# Copy the listed files with tar, in batches of $BATCH so progress shows on large directories.
BATCH=2000
copy_list() {  # SOURCE_DIR LIST TARGET_DIR TOTAL DONE_SO_FAR -> prints the new count
    local source=$1 list=$2 target=$3 total=$4 done=$5 chunk
    rm -f "$stage"/chunk.*
    split -l "$BATCH" "$list" "$stage/chunk."
    for chunk in "$stage"/chunk.*; do
        [ -s "$chunk" ] || continue
        tar -cf - -C "$source" -T "$chunk" | tar -xpf - -C "$target" || return 1
        done=$((done + $(wc -l <"$chunk")))
        [ "$total" -lt "$BATCH" ] || say "  copied $done/$total files"
    done
    echo "$done"
}

stage=$(mktemp -d "${TMPDIR:-/tmp}/releasekit-backup.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root=$stage/releasekit-backup

attempt=0
while :; do
    attempt=$((attempt + 1))
    rm -rf "$root"
    mkdir -p "$root/packages/.releasekit"
    package_members >"$stage/packages.list"
    data_members >"$stage/data.list"
    total=$(( $(wc -l <"$stage/packages.list") + $(wc -l <"$stage/data.list") ))
    say "copying $total files from $source_dir"
    before=$(snapshot)
    copied=0
    if done_count=$(copy_list "$packages" "$stage/packages.list" "$root/packages" "$total" 0) \
        && { [ -z "$data_dir" ] || copy_list "$data_dir" "$stage/data.list" "$root" "$total" "$done_count" >/dev/null; }; then
        copied=1
    fi
    after=$(snapshot)
    if [ "$copied" = 1 ] && [ "$before" = "$after" ]; then
        break
    fi
    [ "$attempt" -lt 5 ] || die "$packages kept changing during 5 copy attempts (uploads in progress?)" \
        "retry at a quiet moment, or stop the index first (make pypi-server-stop)"
    say "the packages directory changed while copying; retrying ($attempt/5)"
done

dist_count=$(find "$root/packages" -mindepth 1 -maxdepth 1 -type f | wc -l | tr -d ' ')
{
    echo "source: $(cd "$source_dir" && pwd)"
    echo "kind: $([ -n "$data_dir" ] && echo data || echo packages)"
    echo "created: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "files: $dist_count"
} >"$root/BACKUP-INFO"
say "hashing $total files"
(cd "$root" && find . -type f | sed 's|^\./||' | LC_ALL=C sort) >"$stage/all.list"
rm -f "$stage"/chunk.*
split -l "$BATCH" "$stage/all.list" "$stage/chunk."
hashed=0
for chunk in "$stage"/chunk.*; do
    [ -s "$chunk" ] || continue
    (cd "$root" && tr '\n' '\0' <"$chunk" | xargs -0 "${sha256_command[@]}") >>"$stage/MANIFEST.sha256" \
        || die "hashing the copied files failed"
    hashed=$((hashed + $(wc -l <"$chunk")))
    [ "$total" -lt "$BATCH" ] || say "  hashed $hashed/$total files"
done
mv "$stage/MANIFEST.sha256" "$root/MANIFEST.sha256"

say "compressing into $archive"
temp_archive="$archive.partial.$$"
# umask only for the archive file: restored directories keep ordinary modes for the server user.
# Wheels and sdists are compressed already: gzip -1 costs little and gains as much as -9.
(umask 077 && tar -cf - -C "$stage" releasekit-backup | gzip -1 >"$temp_archive") \
    || { rm -f "$temp_archive"; die "tar failed writing $archive"; }
mv -- "$temp_archive" "$archive"
echo "backed up $dist_count distribution file(s) from $packages"
echo "archive: $archive ($("${sha256_command[@]}" "$archive" | cut -d' ' -f1))"
echo "restore: scripts/restore-packages.sh $archive EMPTY_DIR"
