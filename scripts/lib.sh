# shellcheck shell=bash
# Helpers shared by scripts/run and scripts/test. Source it from the
# repository root; it defines functions only.

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# as_root runs a command as root: directly when we are root, else via sudo.
as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root (or sudo) to run: $*"
	fi
}

# apt_install PKG...: install the Debian packages that are not installed yet.
# apt-get update runs at most once, and only when it is needed: when the
# package lists are empty, or when an install from the current lists fails.
_apt_updated=0
apt_install() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ "${#missing[@]}" -eq 0 ] && return 0
	command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get: install them by hand"
	export DEBIAN_FRONTEND=noninteractive
	if [ "$_apt_updated" -eq 0 ] && ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
		log "apt-get update"
		as_root apt-get update -qq
		_apt_updated=1
	fi
	log "apt-get install ${missing[*]}"
	if ! as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
		[ "$_apt_updated" -eq 0 ] || die "apt-get install ${missing[*]} failed"
		log "apt-get update (install failed with the current package lists)"
		as_root apt-get update -qq
		_apt_updated=1
		as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"
	fi
}

# ensure_go puts Go on PATH (it lives in /usr/local/go on our machines).
ensure_go() {
	if ! command -v go >/dev/null 2>&1; then
		[ -x /usr/local/go/bin/go ] || die "Go not found on PATH nor in /usr/local/go/bin; install Go 1.26"
		export PATH="/usr/local/go/bin:$PATH"
	fi
}

# ensure_build_deps installs what building the project needs besides Go:
# a C compiler for cgo (mattn/go-sqlite3, miekg/pkcs11) and SoftHSM2.
ensure_build_deps() {
	local pkgs=(softhsm2)
	command -v gcc >/dev/null 2>&1 || pkgs+=(gcc libc6-dev)
	apt_install "${pkgs[@]}"
	command -v softhsm2-util >/dev/null 2>&1 || die "softhsm2-util not found after installing softhsm2"
}
