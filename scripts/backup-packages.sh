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
  BACKUP-INFO, MANIFEST.sha256    where it came from; sha256 of every file (sha256sum -c format)
Page and metadata caches (.releasekit/simple, .releasekit/metadata) are left out: restore
rebuilds them with `releasekit server reindex`.

Consistency: the index may keep running. Files are only ever added, replaced or removed by
atomic rename, so the script lists every file (inode, size, mtime), copies them, lists again,
and accepts the copy only when both lists match; otherwise it retries (5 times) and then gives
up. The archive is written to a temp name and renamed, mode 0600 (it holds password hashes).
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
    sha256() { sha256sum -- "$@"; }
elif command -v shasum >/dev/null 2>&1; then
    sha256() { shasum -a 256 -- "$@"; }
else
    die "neither sha256sum nor shasum is installed" "install coreutils (sha256sum)"
fi

# Identity of a file: inode, size, mtime (GNU stat, then BSD stat). An atomic rename always
# brings a new inode, so a replaced file is seen even within the same second.
identity() { stat -c '%i %s %Y' -- "$1" 2>/dev/null || stat -f '%i %z %m' -- "$1"; }

# What a backup holds, as paths relative to the backup root, one per line.
members() {
    if [ -n "$data_dir" ]; then
        for name in htpasswd htpasswd.roles.toml; do
            [ ! -f "$data_dir/$name" ] || echo "$name"
        done
    fi
    # Dot-files at the top are upload temp files (`.releasekit-upload-*`); `.tmp-*` are state
    # files being written. Sub-directories of .releasekit are caches that reindex rebuilds.
    find "$packages" -mindepth 1 -maxdepth 1 -type f ! -name '.*' | while IFS= read -r path; do
        echo "packages/${path#"$packages"/}"
    done
    if [ -d "$packages/.releasekit" ]; then
        find "$packages/.releasekit" -mindepth 1 -maxdepth 1 -type f ! -name '.tmp-*' \
            | while IFS= read -r path; do echo "packages/${path#"$packages"/}"; done
    fi
}

source_of() {
    case "$1" in
        packages/*) echo "$packages/${1#packages/}" ;;
        *) echo "$data_dir/$1" ;;
    esac
}

snapshot() {
    members | LC_ALL=C sort | while IFS= read -r member; do
        printf '%s %s\n' "$member" "$(identity "$(source_of "$member")" 2>/dev/null || echo gone)"
    done
}

stage=$(mktemp -d "${TMPDIR:-/tmp}/releasekit-backup.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root=$stage/releasekit-backup

attempt=0
while :; do
    attempt=$((attempt + 1))
    rm -rf "$root"
    mkdir -p "$root/packages/.releasekit"
    before=$(snapshot)
    copied=1
    while IFS= read -r member; do
        [ -n "$member" ] || continue
        cp -p -- "$(source_of "$member")" "$root/$member" 2>/dev/null || copied=0
    done <<<"$(members)"
    after=$(snapshot)
    if [ "$copied" = 1 ] && [ "$before" = "$after" ]; then
        break
    fi
    [ "$attempt" -lt 5 ] || die "$packages kept changing during 5 copy attempts (uploads in progress?)" \
        "retry at a quiet moment, or stop the index first (make pypi-server-stop)"
    echo "the packages directory changed while copying; retrying ($attempt/5)" >&2
done

dist_count=$(find "$root/packages" -mindepth 1 -maxdepth 1 -type f | wc -l | tr -d ' ')
{
    echo "source: $(cd "$source_dir" && pwd)"
    echo "kind: $([ -n "$data_dir" ] && echo data || echo packages)"
    echo "created: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "files: $dist_count"
} >"$root/BACKUP-INFO"
(
    cd "$root"
    files=$(find . -type f | sed 's|^\./||' | LC_ALL=C sort)
    while IFS= read -r member; do sha256 "$member"; done <<<"$files" >MANIFEST.sha256
)

temp_archive="$archive.partial.$$"
# umask only for the archive file: restored directories keep ordinary modes for the server user.
(umask 077 && tar -czf "$temp_archive" -C "$stage" releasekit-backup) \
    || { rm -f "$temp_archive"; die "tar failed writing $archive"; }
mv -- "$temp_archive" "$archive"
echo "backed up $dist_count distribution file(s) from $packages"
echo "archive: $archive ($(sha256 "$archive" | cut -d' ' -f1))"
echo "restore: scripts/restore-packages.sh $archive EMPTY_DIR"
