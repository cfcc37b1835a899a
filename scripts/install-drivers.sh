#!/usr/bin/env bash
# install-drivers.sh installs the PostgreSQL drivers of the driver matrix
# (internal/drivers, TestDriverMatrix):
#
#   - from Debian, with apt-get, when missing: python3-psycopg (psycopg 3),
#     python3-asyncpg, libpostgresql-jdbc-java (pgJDBC), and
#     default-jdk-headless when no JDK is installed (java runs the JDBC
#     script as a single source file, which needs the jdk.compiler module);
#     nodejs and npm when node is missing;
#   - from npm, pinned, into $WAYPOINT_DRIVERS_DIR/node (default
#     /opt/waypoint-drivers/node), when missing or at another version:
#     pg (node-postgres), pg-copy-streams (COPY for node-postgres) and
#     postgres (postgres.js). Nothing is installed globally or into the
#     repository.
#
# Idempotent: with everything present it changes nothing and prints nothing.
# Needs root (or sudo). Without either it says what is missing and exits 0,
# so that `make test` still runs (the matrix then skips those drivers), but
# under CI=true it fails.
set -euo pipefail

readonly NPM_PACKAGES=(pg@8.23.1 pg-copy-streams@7.0.0 postgres@3.4.9)
readonly NODE_DIR="${WAYPOINT_DRIVERS_DIR:-/opt/waypoint-drivers}/node"

log() { printf 'install-drivers: %s\n' "$*" >&2; }

in_ci() { [[ "${CI:-}" =~ ^(1|t|T|true|TRUE|True)$ ]]; }

# can_root reports whether we are root or may sudo without a password.
can_root() {
	[ "$(id -u)" -eq 0 ] || sudo -n true 2>/dev/null
}

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# cannot explains that pkgs could not be installed; fatal under CI=true.
cannot() {
	log "cannot install $* (not root and no sudo); the driver matrix skips what needs them"
	if in_ci; then exit 1; fi
}

deb_installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# have_jdk reports whether java can compile and run a source file: a JDK,
# whose javac sits next to its java (a JRE has no compiler).
have_jdk() {
	local java
	java=$(command -v java) || return 1
	[ -x "$(dirname "$(readlink -f "$java")")/javac" ]
}

install_apt_packages() {
	local pkgs=() p
	for p in python3-psycopg python3-asyncpg libpostgresql-jdbc-java; do
		deb_installed "$p" || pkgs+=("$p")
	done
	have_jdk || pkgs+=(default-jdk-headless)
	command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
	command -v npm >/dev/null 2>&1 || pkgs+=(npm)
	[ "${#pkgs[@]}" -eq 0 ] && return 0
	if ! can_root; then
		cannot "${pkgs[*]}"
		return 0
	fi
	log "apt-get installing ${pkgs[*]}"
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
}

# npm_ok reports whether every pinned package is installed at its version.
npm_ok() {
	command -v node >/dev/null 2>&1 || return 1
	node -e '
		const fs = require("fs"), path = require("path");
		const [dir, ...specs] = process.argv.slice(1);
		for (const spec of specs) {
			const at = spec.lastIndexOf("@");
			const file = path.join(dir, "node_modules", spec.slice(0, at), "package.json");
			if (!fs.existsSync(file) || JSON.parse(fs.readFileSync(file, "utf8")).version !== spec.slice(at + 1)) process.exit(1);
		}
	' "$NODE_DIR" "${NPM_PACKAGES[@]}"
}

# writable reports whether we can create or write $NODE_DIR ourselves.
writable() {
	local d=$NODE_DIR
	while [ ! -e "$d" ]; do d=$(dirname "$d"); done
	[ -w "$d" ]
}

install_npm_packages() {
	npm_ok && return 0
	command -v npm >/dev/null 2>&1 || { cannot "${NPM_PACKAGES[*]} (npm is missing)"; return 0; }
	local sudo=()
	if ! writable; then
		if ! can_root; then
			cannot "${NPM_PACKAGES[*]} into $NODE_DIR"
			return 0
		fi
		[ "$(id -u)" -eq 0 ] || sudo=(sudo)
	fi
	log "npm installing ${NPM_PACKAGES[*]} into $NODE_DIR"
	"${sudo[@]}" mkdir -p "$NODE_DIR"
	"${sudo[@]}" npm install --prefix "$NODE_DIR" --no-save --no-audit --no-fund --ignore-scripts \
		--loglevel=error "${NPM_PACKAGES[@]}" >/dev/null
	"${sudo[@]}" chmod -R a+rX "$NODE_DIR"
	npm_ok || { log "npm packages in $NODE_DIR are not the pinned versions"; exit 1; }
}

install_apt_packages
install_npm_packages
