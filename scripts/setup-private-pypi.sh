#!/usr/bin/env bash
# Prepare a data directory for the bundled index (`releasekit server run`). Idempotent: a second
# run changes nothing and says so; existing users, certificates and settings are never replaced.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: scripts/setup-private-pypi.sh [--user NAME] [--tls HOSTNAME] [--compose] [--host HOST] [--port PORT] [DATA_DIR]

Creates DATA_DIR (default .releasekit-data) with:
  packages/ logs/ run/      the packages directory, the server log and its pid file
  htpasswd                  the first user (role admin), bcrypt cost 12, mode 0600
  tls/cert.pem tls/key.pem  with --tls HOSTNAME: a self-signed certificate (key mode 0600)
  settings.toml             for `releasekit server run --config DATA_DIR/settings.toml`
  metrics-token             with --compose: the bearer token Prometheus scrapes /metrics with (0600)
  prometheus/ grafana/      with --compose: their data, owned by you (deploy/compose/compose.yaml)

The password comes from $PYPI_ADMIN_PASSWORD, or is generated and shown once.
Environment: RELEASEKIT (the releasekit command; default .venv/bin/releasekit, else releasekit),
PYPI_ADMIN_USER (default admin), PYPI_ADMIN_PASSWORD.
EOF
}

die() {
    echo "error: $1" >&2
    [ $# -lt 2 ] || echo "  hint: $2" >&2
    exit 1
}

user=${PYPI_ADMIN_USER:-admin}
tls_host=
compose=0
host=127.0.0.1
port=8080
data_dir=
while [ $# -gt 0 ]; do
    case "$1" in
        -h | --help) usage; exit 0 ;;
        --user) [ $# -ge 2 ] || die "--user needs a name"; user=$2; shift 2 ;;
        --tls) [ $# -ge 2 ] || die "--tls needs a host name" "e.g. --tls pypi.internal"; tls_host=$2; shift 2 ;;
        --compose) compose=1; shift ;;
        --host) [ $# -ge 2 ] || die "--host needs an address"; host=$2; shift 2 ;;
        --port) [ $# -ge 2 ] || die "--port needs a number"; port=$2; shift 2 ;;
        -*) usage >&2; exit 2 ;;
        *) [ -z "$data_dir" ] || { usage >&2; exit 2; }; data_dir=$1; shift ;;
    esac
done
data_dir=${data_dir:-.releasekit-data}
case "$port" in '' | *[!0-9]*) die "--port must be a number, not '$port'" ;; esac
case "$user" in '' | *[!A-Za-z0-9._@-]*) die "user name '$user' has unusual characters" "use letters, digits, . _ @ -" ;; esac

if [ -z "${RELEASEKIT:-}" ]; then
    if [ -x .venv/bin/releasekit ]; then RELEASEKIT=.venv/bin/releasekit; else RELEASEKIT=releasekit; fi
fi
command -v "$RELEASEKIT" >/dev/null 2>&1 \
    || die "releasekit command '$RELEASEKIT' not found" "pip install 'releasekit[server]', or set RELEASEKIT=/path/to/releasekit"

changed=0
note() { echo "$1"; changed=1; }

for sub in "" packages logs run; do
    if [ ! -d "$data_dir/$sub" ]; then
        mkdir -p "$data_dir/$sub"
        note "created $(printf '%s/%s' "${data_dir%/}" "$sub" | sed 's,/$,,')"
    fi
done
data_dir=$(cd "$data_dir" && pwd)  # settings need absolute paths: the server resolves them from its cwd
passwords=$data_dir/htpasswd

if [ -f "$passwords" ] && awk -F: -v u="$user" '$1 == u { found = 1 } END { exit !found }' "$passwords"; then
    echo "user $user already in $passwords (unchanged)"
else
    generated=0
    password=${PYPI_ADMIN_PASSWORD:-}
    if [ -z "$password" ]; then
        password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))' 2>/dev/null \
            || openssl rand -hex 16) || die "cannot generate a password" "set PYPI_ADMIN_PASSWORD"
        generated=1
    fi
    printf '%s\n' "$password" | "$RELEASEKIT" server user add "$user" --role admin --password-stdin -P "$passwords" >/dev/null
    note "added user $user (role admin, bcrypt) to $passwords"
    if [ "$generated" = 1 ]; then
        echo "  password for $user (shown once, store it now): $password"
    fi
fi

if [ -n "$tls_host" ]; then
    cert=$data_dir/tls/cert.pem
    key=$data_dir/tls/key.pem
    if [ -f "$cert" ] && [ -f "$key" ]; then
        echo "TLS certificate $cert already exists (unchanged)"
    else
        command -v openssl >/dev/null 2>&1 \
            || die "--tls needs openssl, which is not installed" "install openssl, or bring your own cert.pem/key.pem into $data_dir/tls"
        case "$tls_host" in
            *[!0-9.]*) san="DNS:$tls_host" ;;
            *) san="IP:$tls_host" ;;
        esac
        mkdir -p "$data_dir/tls"
        # umask first, so the private key is never readable by others, not even for a moment.
        (umask 077 && openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 825 \
            -subj "/CN=$tls_host" -addext "subjectAltName=$san" \
            -keyout "$key" -out "$cert" 2>/dev/null) \
            || die "openssl could not create the certificate" "run the openssl command by hand to see why"
        chmod 600 "$key"
        chmod 644 "$cert"
        note "created a self-signed certificate for $tls_host: $cert (key $key, mode 0600)"
    fi
fi

if [ "$compose" = 1 ]; then
    for sub in prometheus grafana; do
        if [ ! -d "$data_dir/$sub" ]; then
            mkdir -p "$data_dir/$sub"
            note "created $data_dir/$sub"
        fi
    done
    token_file=$data_dir/metrics-token
    if [ -f "$token_file" ]; then
        echo "metrics token $token_file already exists (unchanged)"
    else
        token=$(python3 -c 'import secrets; print(secrets.token_hex(24))' 2>/dev/null \
            || openssl rand -hex 24) || die "cannot generate a token" "write one into $token_file (openssl rand -hex 24)"
        (umask 077 && printf '%s\n' "$token" >"$token_file")
        note "wrote a metrics token to $token_file (mode 0600)"
    fi
fi

settings=$data_dir/settings.toml
toml_string() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }
if [ -f "$settings" ]; then
    echo "settings $settings already exist (unchanged)"
else
    {
        echo "# releasekit server settings, written by setup-private-pypi.sh"
        echo "# start: releasekit server run --config $settings"
        echo "[server]"
        echo "packages_dir = $(toml_string "$data_dir/packages")"
        echo "passwords = $(toml_string "$passwords")"
        echo 'authenticate = "update"'
        echo "host = $(toml_string "$host")"
        echo "port = $port"
    } >"$settings"
    note "wrote $settings"
fi

if [ "$changed" = 0 ]; then
    echo "nothing changed: $data_dir was already set up"
fi
cat <<EOF

Start the index:
  $RELEASEKIT server run --config $settings
or in the background (pid file and log in $data_dir):
  make pypi-server-start PYPI_DATA_DIR=$data_dir PYPI_PORT=$port
Add publishers:  $RELEASEKIT server user add NAME --role upload --password-stdin -P $passwords
EOF
if [ "$compose" = 1 ]; then
    echo "Compose stack: RELEASEKIT_DATA=$data_dir RELEASEKIT_UID=$(id -u) RELEASEKIT_GID=$(id -g) \\"
    echo "  docker compose -f deploy/compose/compose.yaml up -d   (see docs/deploy.md)"
fi
if [ -n "$tls_host" ]; then
    echo "TLS: terminate HTTPS in a reverse proxy with $data_dir/tls/cert.pem and key.pem;"
    echo "     clients trust the certificate with: releasekit client setup --index-url https://$tls_host/simple/ --ca-cert $data_dir/tls/cert.pem"
fi
