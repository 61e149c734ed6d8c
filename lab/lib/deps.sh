# shellcheck shell=bash
# Host packages. Everything comes from Debian's mirror with apt-get; the one
# package bookworm lacks (virtme-ng) is taken from trixie, pinned low so that
# nothing else is upgraded from there. The mirror URI is the one the system's
# own apt sources already use: the lab never names a mirror itself.

# gawk: Debian makes it /usr/bin/awk as soon as it is installed (xfstests
# needs it), and 7.3's build generates asm/cpufeaturemasks.h with awk; mawk
# orders the file differently, so installing gawk later made every 7.3 tree
# rebuild from scratch once. With gawk from the start the header is stable.
# erofs-utils: mkfs.erofs, with which the guest suite makes its erofs image.
DEPS_BOOKWORM=(build-essential bc bison flex libelf-dev libssl-dev ccache cpio kmod python3
	qemu-system-x86 udev ndctl daxctl jq xfsprogs e2fsprogs shellcheck git rsync xz-utils
	dpkg-dev perl util-linux procps python3-ply python3-git dmsetup liburing-dev bats gawk
	erofs-utils)
DEPS_CROSS=(gcc-s390x-linux-gnu gcc-aarch64-linux-gnu gcc-powerpc64le-linux-gnu gcc-riscv64-linux-gnu)
# The ndctl suite (NDCTL_SRC only): what ndctl's meson build with the tests
# needs, and what its test scripts call in the guest (the guest is the host's
# root file system, so they are installed on the host). bookworm has no
# systemd-dev: the build passes -Dsystemd=disabled instead. patch applies
# lab/ndctl-patches/.
DEPS_NDCTL_BUILD=(meson ninja-build pkgconf cmake libkmod-dev libudev-dev uuid-dev libjson-c-dev
	libkeyutils-dev libiniparser-dev libtraceevent-dev libtracefs-dev bash-completion patch)
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
	ndctl jq mkfs.xfs mkfs.ext4 mkfs.erofs shellcheck git vng dpkg-deb perl dmsetup bats gawk)

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

# apt's configuration. LAB_APT_ETC and LAB_OS_RELEASE exist for the lab's
# tests, which run the functions below against fixture directories.
APT_ETC=${LAB_APT_ETC:-/etc/apt}
OS_RELEASE=${LAB_OS_RELEASE:-/etc/os-release}
APT_SRC=$APT_ETC/sources.list.d/daxpage-trixie.sources
APT_PREF=$APT_ETC/preferences.d/daxpage-trixie

# apt_entries: one line "URI SUITE" per suite of every enabled binary ("deb")
# source apt has, from all three layouts Debian 12 and 13 use: deb822 files
# (sources.list.d/*.sources, the only layout of Debian 12 cloud images and
# of Debian 13), the legacy one-line sources.list and sources.list.d/*.list.
# Prints nothing when there are none; never fails.
apt_entries() {
	local -a deb822=() legacy=()
	local f
	for f in "$APT_ETC"/sources.list.d/*.sources; do
		[[ -r $f ]] && deb822+=("$f")
	done
	[[ -r $APT_ETC/sources.list ]] && legacy+=("$APT_ETC/sources.list")
	for f in "$APT_ETC"/sources.list.d/*.list; do
		[[ -r $f ]] && legacy+=("$f")
	done
	if ((${#deb822[@]})); then
		# Stanzas are separated by blank lines; field names are
		# case-insensitive; a value may go on over indented lines.
		awk '
		function flush(  nu, ns, u, s, i, j) {
			if (types ~ /(^| )deb( |$)/ && tolower(enabled) != "no") {
				nu = split(uris, u, " "); ns = split(suites, s, " ")
				for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++) print u[i], s[j]
			}
			types = ""; uris = ""; suites = ""; enabled = ""; last = ""
		}
		FNR == 1 && NR > 1 { flush() }
		/^[ \t]*#/ { next }
		/^[ \t]*$/ { flush(); next }
		/^[ \t]/ { if (last == "uris") uris = uris " " $0; else if (last == "suites") suites = suites " " $0; next }
		{
			k = tolower($0); sub(/:.*/, "", k); v = $0; sub(/^[^:]*:[ \t]*/, "", v)
			last = k
			if (k == "types") types = v
			else if (k == "uris") uris = v
			else if (k == "suites") suites = v
			else if (k == "enabled") enabled = v
		}
		END { flush() }
		' "${deb822[@]}"
	fi
	if ((${#legacy[@]})); then
		# deb [options] URI SUITE COMPONENT...
		awk '$1 == "deb" {
			i = 2
			if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
			if (i + 1 <= NF) print $i, $(i + 1)
		}' "${legacy[@]}"
	fi
	return 0
}

# host_codename: the Debian release this host runs (bookworm, trixie...), from
# os-release; empty when it does not say.
host_codename() {
	[[ -r $OS_RELEASE ]] || return 0
	awk -F= '$1 == "VERSION_CODENAME" { gsub(/"/, "", $2); print $2; exit }' "$OS_RELEASE"
}

# mirror_uri: the URI of the Debian archive apt already uses: the source of
# the host's own release suite (not -security, -updates or -backports), else
# any source whose path ends in /debian. Empty when apt has none.
mirror_uri() {
	local code
	code=$(host_codename)
	apt_entries | awk -v code="$code" '
		code != "" && $2 == code && !a { a = $1 }
		$1 ~ /\/debian\/?$/ && !b { b = $1 }
		END { if (a) print a; else if (b) print b }'
}

# deps_trixie_suites: the suites the lab adds to apt: trixie (virtme-ng, which
# bookworm lacks) and trixie-backports (linux-source-7.3), less those apt
# already has (on Debian 13, trixie itself). Prints them space-separated.
deps_trixie_suites() {
	local have s out=""
	have=$(apt_entries | awk '{print $2}' | sort -u)
	for s in trixie trixie-backports; do
		grep -qxF "$s" <<<"$have" || out+="$s "
	done
	printf '%s\n' "${out% }"
}

# deps_trixie_source: add the suites of deps_trixie_suites to apt, in a file
# of the lab's own, pinned low so that nothing else is taken from them
# implicitly. Nothing to do when the file exists or apt has both suites.
deps_trixie_source() {
	local uri suites s pins=""
	[[ -f $APT_SRC ]] && return 0
	suites=$(deps_trixie_suites)
	[[ -n $suites ]] || return 0
	uri=$(mirror_uri)
	[[ -n $uri ]] || die "apt has no Debian archive source (looked in $APT_ETC/sources.list, $APT_ETC/sources.list.d/*.list and *.sources)" \
		"configure apt for a Debian mirror (e.g. $APT_ETC/sources.list.d/debian.sources), run 'apt-get update', then 'make deps'"
	[[ -w $APT_ETC/sources.list.d || $(id -u) -eq 0 ]] ||
		die "the lab must add Debian $suites to apt and cannot write $APT_ETC/sources.list.d" \
			"run 'sudo make deps' once, then retry as yourself"
	mkdir -p "$APT_ETC/sources.list.d" "$APT_ETC/preferences.d"
	for s in $suites; do
		pins+=$'\n'"Package: *"$'\n'"Pin: release n=$s"$'\n'"Pin-Priority: 100"$'\n'
	done
	cat >"$APT_SRC.new" <<-EOF
		# Added by the daxpage lab: virtme-ng and linux-source-7.3 only.
		Types: deb
		URIs: $uri
		Suites: $suites
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
	EOF
	printf '# Added by the daxpage lab: never upgrade from these suites implicitly.\n%s' "$pins" >"$APT_PREF"
	mv "$APT_SRC.new" "$APT_SRC"
	APT_UPDATED=0
}

# deps_bases_offered: apt offers the base package of every target
# (BASE_PACKAGE of series/*/base.pin: linux-source-6.12 from bookworm,
# linux-source-7.3 from trixie-backports).
deps_bases_offered() {
	local t pkg
	for t in $(series_targets); do
		pkg=$(target_use "$t" && read_pin BASE_PACKAGE)
		# (no "| grep -q" on apt-cache: with pipefail its SIGPIPE counts as failure)
		[[ $(apt-cache policy "$pkg" 2>/dev/null) == *Candidate* ]] || return 1
	done
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
	arm64 | arm64-64k) echo aarch64-linux-gnu-gcc ;;
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
	if [[ -z ${missing// /} ]] && deps_bases_offered; then
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
