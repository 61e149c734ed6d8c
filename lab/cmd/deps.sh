# shellcheck shell=bash
# lab/lab deps [--series T]: install the host packages the lab needs
# (apt-get), with the cross compilers of bisect-build --arch, and ndctl's
# or xfstests' with NDCTL_SRC or XFSTESTS_SRC. The packages are the same
# for every target: --series is checked and changes nothing. Sourced by
# lab/lab.

cmd_deps() {
	while [[ $# -gt 0 ]]; do
		case $1 in
		--series) need_value "$1" $# "${2:-}"; target_check "$2"; shift 2 ;;
		*) die "deps takes no options but --series (got: $1)" \
			"run 'lab/lab deps'; NDCTL_SRC or XFSTESTS_SRC add their packages" ;;
		esac
	done
	deps_ensure cross
	[[ -z ${NDCTL_SRC:-} ]] || deps_ensure ndctl
	[[ -z ${XFSTESTS_SRC:-} ]] || deps_ensure xfstests
}
