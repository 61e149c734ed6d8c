# shellcheck shell=bash
# Shared by the lab's bats tests: a private cache and apt fixture per test,
# and the lab's libraries sourced as lab/lab sources them.

lab_source() {
	export DAXPAGE_CACHE=$BATS_TEST_TMPDIR/cache
	export LAB_APT_ETC=$BATS_TEST_TMPDIR/etc-apt
	export LAB_OS_RELEASE=$BATS_TEST_TMPDIR/os-release
	mkdir -p "$LAB_APT_ETC/sources.list.d" "$LAB_APT_ETC/preferences.d"
	# shellcheck source=lab/lib/common.sh
	source "$BATS_TEST_DIRNAME/../lib/common.sh"
	# shellcheck source=lab/lib/deps.sh
	source "$BATS_TEST_DIRNAME/../lib/deps.sh"
	# shellcheck source=lab/lib/guest.sh
	source "$BATS_TEST_DIRNAME/../lib/guest.sh"
}

# os_release CODENAME: the fixture's /etc/os-release.
os_release() {
	printf 'PRETTY_NAME="Debian GNU/Linux"\nID=debian\nVERSION_CODENAME=%s\n' "$1" >"$LAB_OS_RELEASE"
}
