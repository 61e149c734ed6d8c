#!/usr/bin/env bats
# The lab's apt logic (lab/lib/deps.sh) against fixture apt configurations:
# every layout Debian 12 and 13 use (deb822 only, legacy sources.list only,
# both, neither). Nothing here touches the machine's own /etc/apt.

bats_require_minimum_version 1.5.0

setup() {
	load helper
	lab_source
}

deb822_bookworm() {
	cat >"$LAB_APT_ETC/sources.list.d/debian.sources" <<-'X'
		Types: deb
		# a comment inside the stanza
		URIs: http://mirror.test/debian
		Suites: bookworm bookworm-updates
		Components: main
		Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

		Types: deb
		URIs: http://mirror.test/debian-security
		Suites: bookworm-security
		Components: main
	X
}

@test "deb822 only (Debian 12 cloud image): the mirror is found" {
	os_release bookworm
	deb822_bookworm
	run -0 mirror_uri
	[ "$output" = "http://mirror.test/debian" ]
	run -0 deps_trixie_suites
	[ "$output" = "trixie trixie-backports" ]
}

@test "deb822 only: the regression (a script under set -euo pipefail) no longer exits silently" {
	os_release bookworm
	deb822_bookworm
	# shellcheck disable=SC2016 # expanded by the inner bash
	run -0 bash -c 'set -euo pipefail
		source "$1/lib/common.sh"; source "$1/lib/deps.sh"
		deps_trixie_source; echo done' sh "$BATS_TEST_DIRNAME/.."
	[ "${lines[-1]}" = "done" ]
	grep -qx 'URIs: http://mirror.test/debian' "$LAB_APT_ETC/sources.list.d/daxpage-trixie.sources"
	grep -qx 'Suites: trixie trixie-backports' "$LAB_APT_ETC/sources.list.d/daxpage-trixie.sources"
	grep -qx 'Pin: release n=trixie' "$LAB_APT_ETC/preferences.d/daxpage-trixie"
	grep -qx 'Pin: release n=trixie-backports' "$LAB_APT_ETC/preferences.d/daxpage-trixie"
	[ "$(grep -c 'Pin-Priority: 100' "$LAB_APT_ETC/preferences.d/daxpage-trixie")" -eq 2 ]
}

@test "legacy sources.list only: the mirror is found (options in brackets too)" {
	os_release bookworm
	cat >"$LAB_APT_ETC/sources.list" <<-'X'
		# deb http://commented.test/debian bookworm main
		deb-src http://src.test/debian bookworm main
		deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg arch=amd64] http://legacy.test/debian/ bookworm main
		deb http://legacy.test/debian-security bookworm-security main
	X
	run -0 mirror_uri
	[ "$output" = "http://legacy.test/debian/" ]
	deps_trixie_source
	grep -qx 'URIs: http://legacy.test/debian/' "$LAB_APT_ETC/sources.list.d/daxpage-trixie.sources"
}

@test "legacy .list file in sources.list.d only: the mirror is found" {
	os_release bookworm
	echo 'deb http://list.test/debian bookworm main' >"$LAB_APT_ETC/sources.list.d/debian.list"
	run -0 mirror_uri
	[ "$output" = "http://list.test/debian" ]
}

@test "both layouts: the host's release suite decides, wherever it is" {
	os_release bookworm
	echo 'deb http://legacy.test/debian-security bookworm-security main' >"$LAB_APT_ETC/sources.list"
	cat >"$LAB_APT_ETC/sources.list.d/debian.sources" <<-'X'
		Types: deb
		URIs: http://a.test/mirror/
		Suites: bookworm
		Components: main
	X
	run -0 mirror_uri
	[ "$output" = "http://a.test/mirror/" ]
}

@test "neither: one line of cause and one of fix, exit 1, nothing written" {
	os_release bookworm
	run -1 deps_trixie_source
	[[ ${lines[0]} == *"ERROR:"*"apt has no Debian archive source"* ]]
	[[ ${lines[1]} == *"fix:"*"configure apt for a Debian mirror"* ]]
	[ "${#lines[@]}" -eq 2 ]
	[ ! -e "$LAB_APT_ETC/sources.list.d/daxpage-trixie.sources" ]
}

@test "disabled stanzas and deb-src only stanzas do not count" {
	os_release bookworm
	cat >"$LAB_APT_ETC/sources.list.d/debian.sources" <<-'X'
		Types: deb
		URIs: http://off.test/debian
		Suites: bookworm
		Enabled: no

		Types: deb-src
		URIs: http://src.test/debian
		Suites: bookworm
	X
	run -0 mirror_uri
	[ -z "$output" ]
	run -1 deps_trixie_source
}

@test "deb822 values continued on indented lines, field names in any case" {
	os_release bookworm
	cat >"$LAB_APT_ETC/sources.list.d/x.sources" <<-'X'
		types: deb deb-src
		uris:
		 http://cont.test/debian
		suites: bookworm
		 bookworm-updates
		components: main
	X
	run -0 apt_entries
	[ "$output" = $'http://cont.test/debian bookworm\nhttp://cont.test/debian bookworm-updates' ]
}

@test "Debian 13 (trixie configured): only trixie-backports is added and pinned" {
	os_release trixie
	cat >"$LAB_APT_ETC/sources.list.d/debian.sources" <<-'X'
		Types: deb
		URIs: http://t.test/debian
		Suites: trixie trixie-updates
		Components: main
	X
	run -0 deps_trixie_suites
	[ "$output" = trixie-backports ]
	deps_trixie_source
	grep -qx 'Suites: trixie-backports' "$LAB_APT_ETC/sources.list.d/daxpage-trixie.sources"
	run -1 grep -qx 'Pin: release n=trixie' "$LAB_APT_ETC/preferences.d/daxpage-trixie"
	grep -qx 'Pin: release n=trixie-backports' "$LAB_APT_ETC/preferences.d/daxpage-trixie"
}

@test "both suites already configured: nothing is written" {
	os_release trixie
	printf 'deb http://t.test/debian trixie main\ndeb http://t.test/debian trixie-backports main\n' \
		>"$LAB_APT_ETC/sources.list"
	run -0 deps_trixie_source
	[ ! -e "$LAB_APT_ETC/sources.list.d/daxpage-trixie.sources" ]
}

@test "the lab's own file, once written, is kept as it is" {
	os_release bookworm
	deb822_bookworm
	deps_trixie_source
	echo '# edited' >>"$LAB_APT_ETC/sources.list.d/daxpage-trixie.sources"
	deps_trixie_source
	grep -qx '# edited' "$LAB_APT_ETC/sources.list.d/daxpage-trixie.sources"
}

@test "no os-release: a source whose path ends in /debian is taken" {
	rm -f "$LAB_OS_RELEASE"
	deb822_bookworm
	run -0 mirror_uri
	[ "$output" = "http://mirror.test/debian" ]
}
