#!/usr/bin/env bash
# Restore an archive made by backup-packages.sh into an empty directory, verify every file
# against the manifest, and rebuild the index caches with `releasekit server reindex`.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: scripts/restore-packages.sh ARCHIVE.tar.gz EMPTY_DIR

EMPTY_DIR (missing or empty) becomes a data directory:
  EMPTY_DIR/packages/        the distribution files with their yank state and API tokens
  EMPTY_DIR/htpasswd(.roles.toml)   users and roles, when the backup was of a data directory
  EMPTY_DIR/settings.toml, metrics-token, tls/   settings (paths rewritten to EMPTY_DIR) and TLS
Everything is unpacked and checked against MANIFEST.sha256 in a temp directory next to
EMPTY_DIR first, so a bad archive leaves EMPTY_DIR untouched. Then serve it:
  releasekit server run EMPTY_DIR/packages [-P EMPTY_DIR/htpasswd]
  make pypi-server-start PYPI_DATA_DIR=EMPTY_DIR
  scripts/setup-private-pypi.sh EMPTY_DIR   (writes settings.toml; keeps the restored users)
Environment: RELEASEKIT (the releasekit command; default .venv/bin/releasekit, else releasekit).
EOF
}

die() {
    echo "error: $1" >&2
    [ $# -lt 2 ] || echo "  hint: $2" >&2
    exit 1
}

case "${1:-}" in -h | --help) usage; exit 0 ;; esac
[ $# -eq 2 ] || { usage >&2; exit 2; }
archive=$1
target=${2%/}

[ -f "$archive" ] || die "archive $archive not found" "pass a file made by scripts/backup-packages.sh"
if [ -e "$target" ]; then
    [ -d "$target" ] || die "$target exists and is not a directory" "pass a new or empty directory"
    if [ -n "$(ls -A "$target")" ]; then
        die "$target is not empty; refusing to restore over existing files" \
            "restore into a new directory, check it, then swap it in (nothing was changed)"
    fi
fi
if [ -z "${RELEASEKIT:-}" ]; then
    if [ -x .venv/bin/releasekit ]; then RELEASEKIT=.venv/bin/releasekit; else RELEASEKIT=releasekit; fi
fi
command -v "$RELEASEKIT" >/dev/null 2>&1 \
    || die "releasekit command '$RELEASEKIT' not found (needed for reindex)" \
        "pip install 'releasekit[server]', or set RELEASEKIT=/path/to/releasekit"
if command -v sha256sum >/dev/null 2>&1; then
    sha256_check() { sha256sum --quiet -c MANIFEST.sha256; }
elif command -v shasum >/dev/null 2>&1; then
    sha256_check() { shasum -a 256 --quiet -c MANIFEST.sha256; }
else
    die "neither sha256sum nor shasum is installed" "install coreutils (sha256sum)"
fi

say() { echo "$1" >&2; }

say "checking the members of $archive"
# Only our own layout may come out of the archive: no absolute paths, no `..`, one top dir.
members=$(tar -tzf "$archive") || die "$archive is not a readable tar.gz" "check the file; was the copy complete?"
while IFS= read -r member; do
    case "$member" in
        releasekit-backup | releasekit-backup/*) ;;
        *) die "$archive holds $member, outside releasekit-backup/" "this is not an archive made by backup-packages.sh" ;;
    esac
    case "/$member/" in */../*) die "$archive holds a path with '..': $member" ;; esac
done <<<"$members"

parent=$(dirname "$target")
mkdir -p "$parent"
stage=$(mktemp -d "$parent/.restore-packages.XXXXXX")
trap 'rm -rf "$stage"' EXIT
say "unpacking $(printf '%s\n' "$members" | wc -l | tr -d ' ') entries"
tar -xzf "$archive" -C "$stage"
root=$stage/releasekit-backup
if [ ! -f "$root/MANIFEST.sha256" ] || [ ! -d "$root/packages" ]; then
    die "$archive has no MANIFEST.sha256 or packages/" "this is not an archive made by backup-packages.sh"
fi

say "verifying every file against MANIFEST.sha256"
(cd "$root" && sha256_check) >&2 || die "files in $archive do not match its manifest" \
    "the archive is damaged; use another backup (nothing was restored)"
listed=$(sed 's/^[0-9a-f]*  //' "$root/MANIFEST.sha256" | LC_ALL=C sort)
present=$(cd "$root" && find . -type f ! -name MANIFEST.sha256 | sed 's|^\./||' | LC_ALL=C sort)
[ "$listed" = "$present" ] || die "$archive holds files its manifest does not list" \
    "the archive was altered; use another backup (nothing was restored)"

rm -f "$root/MANIFEST.sha256"
say "rebuilding the catalogue, metadata and pages (releasekit server reindex)"
"$RELEASEKIT" server reindex -D "$root/packages" >&2 \
    || die "reindex of the restored packages failed" "see the message above (nothing was restored)"
dist_count=$(find "$root/packages" -mindepth 1 -maxdepth 1 -type f ! -name '.*' | wc -l | tr -d ' ')

# settings.toml names the backed-up data directory: point it at the restored one.
source_abs=$(sed -n 's/^source: //p' "$root/BACKUP-INFO" 2>/dev/null | head -n 1)
if [ -f "$root/settings.toml" ] && [ -n "$source_abs" ]; then
    target_abs=$(cd "$parent" && pwd)/$(basename "$target")
    awk -v old="\"$source_abs/" -v new="\"$target_abs/" '{
        out = ""; while ((i = index($0, old)) > 0) { out = out substr($0, 1, i - 1) new; $0 = substr($0, i + length(old)) }
        print out $0 }' "$root/settings.toml" >"$root/settings.toml.new"
    chmod --reference="$root/settings.toml" "$root/settings.toml.new" 2>/dev/null || true
    mv "$root/settings.toml.new" "$root/settings.toml"
    say "settings.toml now points at $target_abs"
fi

# Swap into place: a missing target is one rename; an empty one receives each top-level entry.
if [ -e "$target" ]; then
    for entry in "$root"/* "$root"/.[!.]*; do
        [ ! -e "$entry" ] || mv -- "$entry" "$target/"
    done
else
    mv -- "$root" "$target"
fi
echo "restored $dist_count distribution file(s) into $target/packages (manifest verified, reindexed)"
passwords=
[ ! -f "$target/htpasswd" ] || passwords=" -P $target/htpasswd"
echo "serve it: $RELEASEKIT server run $target/packages$passwords"
