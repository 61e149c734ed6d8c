# shellcheck shell=bash
# Host packages. Everything comes from Debian's mirror with apt-get; the one
# package bookworm lacks (virtme-ng) is taken from trixie, pinned low so that
# nothing else is upgraded from there. The mirror URI is the one the system's
# own apt sources already use: the lab never names a mirror itself.

DEPS_BOOKWORM=(build-essential bc bison flex libelf-dev libssl-dev ccache cpio kmod python3
	qemu-system-x86 udev ndctl daxctl jq xfsprogs e2fsprogs shellcheck git rsync xz-utils
	dpkg-dev perl util-linux procps python3-ply python3-git dmsetup liburing-dev)
DEPS_CROSS=(gcc-s390x-linux-gnu gcc-aarch64-linux-gnu gcc-powerpc64le-linux-gnu gcc-riscv64-linux-gnu)
# The ndctl suite (NDCTL_SRC only): what ndctl's meson build with the tests
# needs, and what its test scripts call in the guest (the guest is the host's
# root file system, so they are installed on the host). bookworm has no
# systemd-dev: the build passes -Dsystemd=disabled instead.
DEPS_NDCTL_BUILD=(meson ninja-build pkgconf cmake libkmod-dev libudev-dev uuid-dev libjson-c-dev
	libkeyutils-dev libiniparser-dev libtraceevent-dev libtracefs-dev bash-completion)
DEPS_NDCTL_RUN=(jq e2fsprogs xfsprogs parted trace-cmd fio dmsetup keyutils bsdextrautils xxd
	uuid-runtime kmod hostname)
# xfstests (XFSTESTS_SRC only): its build (plain make runs libtoolize,
# autoconf and configure; the headers are the ones its configure requires or
# uses when present: xfs, acl, uuid, aio, io_uring, gdbm, libcap), and the
# programs its tests call that the base packages lack. Without the optional
# ones the tests that need them report "not run".
DEPS_XFSTESTS_BUILD=(autoconf automake libtool libtool-bin make gcc pkgconf xfslibs-dev uuid-dev
	libacl1-dev libattr1-dev libaio-dev liburing-dev libgdbm-dev libgdbm-compat-dev libcap-dev)
DEPS_XFSTESTS_RUN=(xfsprogs e2fsprogs acl attr bc fio gawk psmisc quota xfsdump uuid-runtime
	dmsetup perl python3 kmod)
# Commands that prove the packages above are installed.
DEPS_CMDS=(gcc make bc bison flex ccache cpio depmod modinfo python3 qemu-system-x86_64 udevadm
	ndctl jq mkfs.xfs mkfs.ext4 shellcheck git vng dpkg-deb perl dmsetup)

APT_SRC=/etc/apt/sources.list.d/daxpage-trixie.sources
APT_PREF=/etc/apt/preferences.d/daxpage-trixie

deps_missing() {
	local c
	for c in "${DEPS_CMDS[@]}"; do
		command -v "$c" >/dev/null 2>&1 || printf '%s\n' "$c"
	done
	[[ -f /usr/include/gelf.h ]] || echo libelf-dev
	[[ -f /usr/include/openssl/ssl.h ]] || echo libssl-dev
	# selftests/mm builds the io_uring cases of gup_longterm and cow (fixed
	# buffers pin the DAX pages long-term) only when liburing is there:
	# without it the suite would quietly run about 450 cases fewer.
	[[ -f /usr/include/liburing.h ]] || echo liburing-dev
	# checkpatch's SPDX check runs scripts/spdxcheck.py with Debian's python3.
	/usr/bin/python3 -c 'import ply, git' 2>/dev/null || echo python3-ply/python3-git
}

# deps_pkgs_missing PKG...: the packages dpkg does not have installed. (For
# the ndctl group: libraries and headers have no one command to probe.)
deps_pkgs_missing() {
	local p
	for p in "$@"; do
		[[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == *"ok installed" ]] || printf '%s\n' "$p"
	done
}

# mirror_uri: the first Debian URI of the system's apt sources.
mirror_uri() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[[ -r $f ]] || continue
		awk '/^URIs:/ && $2 ~ /debian\/?$/ {print $2; exit}' "$f"
	done | head -n1
	grep -hE '^deb .*/debian/? ' /etc/apt/sources.list 2>/dev/null | awk '{print $2; exit}'
}

deps_trixie_source() {
	local uri
	[[ -f $APT_SRC ]] && return 0
	uri=$(mirror_uri | head -n1)
	[[ -n $uri ]] || die "found no Debian mirror in /etc/apt/sources.list{,.d}" \
		"configure apt for Debian, then run 'make deps' again"
	cat >"$APT_SRC" <<-EOF
		# Added by the daxpage lab: virtme-ng and linux-source-7.3 only.
		Types: deb
		URIs: $uri
		Suites: trixie trixie-backports
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF
	cat >"$APT_PREF" <<-EOF
		# Added by the daxpage lab: never upgrade from trixie implicitly.
		Package: *
		Pin: release n=trixie
		Pin-Priority: 100

		Package: *
		Pin: release n=trixie-backports
		Pin-Priority: 100
	EOF
	APT_UPDATED=0
}

apt_update() {
	[[ ${APT_UPDATED:-0} == 1 ]] && return 0
	apt-get update -q >"$CACHE/apt-update.log" 2>&1 ||
		die "apt-get update failed (log: $CACHE/apt-update.log)" "check the network path to the Debian mirror"
	APT_UPDATED=1
}

apt_install() {
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" \
		>>"$CACHE/apt-install.log" 2>&1 ||
		die "apt-get install $* failed (log: $CACHE/apt-install.log)" \
			"read the log; 'apt-get update' and 'make deps' may help"
}

# cross_gcc ARCH: the name of Debian's cross gcc for a bisect-build --arch.
cross_gcc() {
	case $1 in
	s390) echo s390x-linux-gnu-gcc ;;
	arm64) echo aarch64-linux-gnu-gcc ;;
	ppc64le) echo powerpc64le-linux-gnu-gcc ;;
	riscv64) echo riscv64-linux-gnu-gcc ;;
	esac
}

# deps_ensure [cross [ARCH]|ndctl|xfstests]: install what is missing; quick when
# nothing is. The groups come on top of the base packages: cross for
# bisect-build --arch, ndctl for NDCTL_SRC, xfstests for XFSTESTS_SRC.
deps_ensure() {
	local group=${1:-} c missing fix="run 'sudo make deps' once, then retry as yourself"
	mkdir -p "$CACHE"
	missing=$(deps_missing)
	if [[ $group == cross ]]; then
		# Only the compiler of the arch asked for (all four without one).
		for c in s390x-linux-gnu-gcc aarch64-linux-gnu-gcc powerpc64le-linux-gnu-gcc riscv64-linux-gnu-gcc; do
			[[ -z ${2:-} || $c == "$(cross_gcc "$2")" ]] || continue
			command -v "$c" >/dev/null || missing+=" $c"
		done
	fi
	if [[ $group == ndctl ]]; then
		missing+=" $(deps_pkgs_missing "${DEPS_NDCTL_BUILD[@]}" "${DEPS_NDCTL_RUN[@]}" | xargs)"
		fix="run 'sudo NDCTL_SRC=DIR lab/lab deps' once, then retry as yourself"
	fi
	if [[ $group == xfstests ]]; then
		missing+=" $(deps_pkgs_missing "${DEPS_XFSTESTS_BUILD[@]}" "${DEPS_XFSTESTS_RUN[@]}" | xargs)"
		fix="run 'sudo XFSTESTS_SRC=DIR lab/lab deps' once, then retry as yourself"
	fi
	deps_trixie_source
	# (no "| grep -q" on apt-cache: with pipefail its SIGPIPE counts as failure)
	if [[ -z ${missing// /} && $(apt-cache policy linux-source-7.3 2>/dev/null) == *Candidate* ]]; then
		return 0
	fi
	[[ $(id -u) -eq 0 ]] || die "missing host tools: $(echo "$missing" | xargs)" "$fix"
	log "installing host packages (missing: $(echo "$missing" | xargs))"
	APT_UPDATED=0
	apt_update
	apt_install "${DEPS_BOOKWORM[@]}"
	# virtme-ng is Architecture: all; take only it from trixie.
	apt_install virtme-ng/trixie
	[[ $group == cross ]] && apt_install "${DEPS_CROSS[@]}"
	[[ $group == ndctl ]] && apt_install "${DEPS_NDCTL_BUILD[@]}" "${DEPS_NDCTL_RUN[@]}"
	[[ $group == xfstests ]] && apt_install "${DEPS_XFSTESTS_BUILD[@]}" "${DEPS_XFSTESTS_RUN[@]}"
	missing=$(deps_missing | xargs)
	[[ $group == ndctl ]] && missing+=" $(deps_pkgs_missing "${DEPS_NDCTL_BUILD[@]}" "${DEPS_NDCTL_RUN[@]}" | xargs)"
	[[ $group == xfstests ]] && missing+=" $(deps_pkgs_missing "${DEPS_XFSTESTS_BUILD[@]}" "${DEPS_XFSTESTS_RUN[@]}" | xargs)"
	[[ -z ${missing// /} ]] || die "still missing after apt-get: $(echo "$missing" | xargs)" \
		"install them by hand and report the package name in an issue"
	ok "host packages installed"
}
