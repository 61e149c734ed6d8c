# shellcheck shell=bash
# lab/lab bisect-build [--series T] [--arch A] [--allmodconfig]: build every
# prefix of a target's series on its base and name the first that breaks;
# without --series, every target that has patches, in turn. Sourced by
# lab/lab.

cmd_bisect_build() {
	local arch=x86_64 allmod=0 target="" t failed=0 built=0 name
	local -a targets=()
	while [[ $# -gt 0 ]]; do
		case $1 in
		--series) need_value "$1" $# "${2:-}"; target_check "$2"; target=$2; shift 2 ;;
		--arch) need_value "$1" $# "${2:-}"; arch=$2; shift 2 ;;
		--allmodconfig) allmod=1; shift ;;
		*) die "unknown option $1 for bisect-build" "see 'lab/lab help'" ;;
		esac
	done
	if [[ -z $target ]]; then
		targets_all targets
	fi
	case $arch in
	x86_64 | s390 | arm64 | arm64-64k | ppc64le | riscv64) ;;
	*) die "unknown --arch $arch" "use x86_64, s390, arm64, arm64-64k, ppc64le or riscv64" ;;
	esac
	[[ $allmod == 0 || $arch == x86_64 ]] ||
		die "--allmodconfig is for x86_64 only" "drop --arch, or drop --allmodconfig"
	path_check "DAXPAGE_CACHE" "$CACHE"
	lab_env_check
	LOCK_OWNER="lab/lab bisect-build --arch $arch"
	if [[ $arch == x86_64 ]]; then deps_ensure; else deps_ensure cross "$arch"; fi
	require_free_disk "$CACHE" 20
	name=$arch
	[[ $allmod == 0 ]] || name=x86_64-allmod
	if [[ -n $target ]]; then
		bisect_target "$target" "$arch" "$allmod" "$name"
		return
	fi
	for t in "${targets[@]}"; do
		target_use "$t"
		if [[ -z $(series_patches) ]]; then
			log "bisect-build: series/$t has no patches: nothing to build"
			continue
		fi
		log "bisect-build: series/$t ($name)"
		built=$((built + 1))
		subshell_rc bisect_target "$t" "$arch" "$allmod" "$name"
		if [[ $SUBSHELL_RC != 0 ]]; then
			warn "bisect-build of series/$t failed (logs: $CACHE/bisect-$t-$name/)"
			failed=1
		fi
	done
	((built > 0)) || die "no target under series/ has patches" "nothing to bisect; add a series first"
	return "$failed"
}

# bisect_target TARGET ARCH ALLMOD NAME: the base of TARGET, then each
# prefix of its series, in the worktree wt/bisect-TARGET-NAME (logs in
# $CACHE/bisect-TARGET-NAME/).
bisect_target() {
	local t=$1 arch=$2 allmod=$3 name=$4 p="(base)" i n logf
	local -a ps
	target_use "$t"
	LOCK_OWNER="lab/lab bisect-build --series $t --arch $arch"
	base_prepare
	mapfile -t ps < <(series_patches)
	[[ ${#ps[@]} -gt 0 ]] || die "series/$t has no patches" "nothing to bisect; name a target that has some"
	RUN_LOG_DIR=$CACHE/bisect-$t-$name
	mkdir -p "$RUN_LOG_DIR"
	KDIR=$CACHE/wt/bisect-$t-$name
	lab_lock "wt-${KDIR##*/}" "worktree ${KDIR#"$CACHE"/}"
	worktree "$KDIR" "$BASE_COMMIT"
	git -C "$KDIR" am --abort >/dev/null 2>&1 || true
	n=${#ps[@]}
	for ((i = 0; i <= n; i++)); do
		if ((i > 0)); then
			p=${ps[i - 1]}
			git -C "$KDIR" "${GIT_ID[@]}" am -q "$p" >"$RUN_LOG_DIR/am.log" 2>&1 ||
				{ git -C "$KDIR" am --abort || true; cat "$RUN_LOG_DIR/am.log" >&2
				  die "patch ${p##*/} does not apply" "rebase series/$t"; }
			log "[$i/$n] ${p##*/}"
		else
			log "[0/$n] base"
		fi
		logf=$RUN_LOG_DIR/build-$i.log
		if [[ $allmod == 1 ]]; then
			if ((i == 0)); then
				allmod_targets "${ps[@]}" >"$RUN_LOG_DIR/targets"
				log "allmodconfig: $(wc -l <"$RUN_LOG_DIR/targets") objects (files the series touches or that include a header it changes; $RUN_LOG_DIR/targets)"
			fi
			build_locked allmod_build "$i" "$logf" "$RUN_LOG_DIR/targets" || die "allmodconfig build breaks at patch $i/$n: ${p##*/} (log: $logf)" \
				"fix that patch so that it builds on its own"
		elif [[ $arch == x86_64 ]]; then
			((i == 0)) && configure
			(build_kernel "$logf") || die "build breaks at patch $i/$n: ${p##*/} (log: $logf)" \
				"fix that patch so that it builds on its own"
		else
			build_locked cross_build "$arch" "$i" "$logf" || die "$arch build breaks at patch $i/$n: ${p##*/} (log: $logf)" \
				"fix that patch so that it builds on its own"
		fi
	done
	ok "all $n prefixes of series/$t build ($name)"
}

# cross_want ARCH: the config symbols (SYM=y or SYM=m) a cross build needs
# to compile the DAX code, set once on top of the defconfig and checked
# again after every prefix's build (which re-syncs the config: no patch may
# turn the DAX code off on any arch). s390 gets dcssblk (FS_DAX through
# FS_DAX_LIMITED on 6.12, through ZONE_DEVICE on mainline) and erofs, the others the
# ZONE_DEVICE stack, with what it depends on (riscv's defconfig has no
# memory hotplug and no THP): pmem, device-dax, dm-writecache and erofs
# (the series touch fs/erofs; no defconfig here has it). arm64-64k
# is arm64 with 64 KiB pages, where a PMD maps 512 MiB: FS_DAX_PMD must
# stay set there too.
cross_want() {
	if [[ $1 == s390 ]]; then
		echo FS_DAX=y DCSSBLK=m DAX=y EROFS_FS=y
		return
	fi
	[[ $1 != arm64-64k ]] || echo -n "ARM64_64K_PAGES=y FS_DAX_PMD=y "
	echo MEMORY_HOTPLUG=y MEMORY_HOTREMOVE=y SPARSEMEM_VMEMMAP=y TRANSPARENT_HUGEPAGE=y \
		ZONE_DEVICE=y FS_DAX=y LIBNVDIMM=m BLK_DEV_PMEM=m DEV_DAX=m DEV_DAX_PMEM=m \
		MD=y BLK_DEV_DM=y DM_WRITECACHE=y EROFS_FS=y
}

# cross_check LOGFILE SYM=V...: fail (with the list) if a symbol is not
# set; an =m symbol may also be built in (as good for a build check).
cross_check() {
	local logf=$1 sym bad=""
	shift
	for sym in "$@"; do
		if [[ ${sym#*=} == y ]]; then
			grep -qx "CONFIG_$sym" "$KDIR/.config" || bad+=" $sym"
		else
			grep -qxE "CONFIG_${sym%=*}=[ym]" "$KDIR/.config" || bad+=" $sym"
		fi
	done
	[[ -z $bad ]] && return 0
	echo "these config symbols are not set:$bad" | tee -a "$logf" >&2
	return 1
}

# cross_build ARCH I LOGFILE: the arch's defconfig plus cross_want once
# (checked, so that the DAX code is never silently left out), then the
# directories the patch touched plus fs/ and mm/, and cross_want checked
# again.
cross_build() {
	local arch=$1 i=$2 logf=$3 dirs sym
	local -a want
	case $arch in
	s390) KARCH=s390 CROSS_COMPILE=s390x-linux-gnu- ;;
	arm64 | arm64-64k) KARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- ;;
	ppc64le) KARCH=powerpc CROSS_COMPILE=powerpc64le-linux-gnu- ;;
	riscv64) KARCH=riscv CROSS_COMPILE=riscv64-linux-gnu- ;;
	esac
	if ((i == 0)); then
		if [[ $arch == ppc64le ]]; then
			kmake ppc64le_defconfig >"$logf" 2>&1 || return 1
		else
			kmake defconfig >"$logf" 2>&1 || return 1
		fi
		read -r -a want <<<"$(cross_want "$arch")"
		for sym in "${want[@]}"; do
			if [[ ${sym#*=} == y ]]; then
				"$KDIR/scripts/config" --file "$KDIR/.config" -e "${sym%=*}"
			else
				"$KDIR/scripts/config" --file "$KDIR/.config" -m "${sym%=*}"
			fi
		done
		kmake olddefconfig >>"$logf" 2>&1 || return 1
		cross_check "$logf" "${want[@]}" || return 1
		kmake -j"$JOBS" prepare >>"$logf" 2>&1 || return 1
		dirs="fs/ mm/"
	else
		dirs=$(git -C "$KDIR" diff --name-only HEAD~1 HEAD -- '*.c' '*.h' |
			awk -F/ 'NF > 1 && $1 != "include" && $1 != "tools" && $1 != "Documentation" {
				d = $1; for (k = 2; k < NF; k++) d = d "/" $k; print d "/" }' | sort -u | tr '\n' ' ')
		dirs="fs/ mm/ $dirs"
	fi
	# shellcheck disable=SC2086
	kmake -j"$JOBS" $dirs >>"$logf" 2>&1 || return 1
	read -r -a want <<<"$(cross_want "$arch")"
	cross_check "$logf" "${want[@]}"
}

# allmod_targets PATCH...: the x86_64 objects to build for an allmodconfig
# check of the series: every .c file a patch touches, and every .c file that
# includes (directly, or through a header that includes it) a header a patch
# touches, as found in the base tree. Files that x86_64 never builds (other
# arches, drivers/s390, tools/, Documentation/) are left out.
allmod_targets() {
	local f h inc dir
	local -a queue
	local -A seen=()
	mapfile -t queue < <(sed -n 's|^diff --git a/\([^ ]*\) b/.*|\1|p' "$@" | sort -u)
	while ((${#queue[@]})); do
		f=${queue[0]}
		queue=("${queue[@]:1}")
		[[ -z ${seen[$f]:-} ]] || continue
		seen[$f]=1
		case $f in
		*.c) printf '%s\n' "${f%.c}.o" ;;
		include/*.h)
			inc=${f#include/}
			mapfile -t -O "${#queue[@]}" queue < <(git -C "$KDIR" grep -lF "#include <$inc>" -- '*.c' '*.h' || true)
			;;
		*.h)
			dir=${f%/*}
			h=${f##*/}
			mapfile -t -O "${#queue[@]}" queue < <(git -C "$KDIR" grep -lF "#include \"$h\"" -- "$dir/*.c" "$dir/*.h" || true)
			;;
		esac
	done | grep -vE '^(arch/[^x]|arch/x[^8]|drivers/s390/|tools/|Documentation/|samples/|scripts/)' | sort -u
}

# allmod_build I LOGFILE TARGETS: x86_64 allmodconfig (CONFIG_WERROR=y, so a
# new warning fails too) once, then the objects listed in the file TARGETS
# (from allmod_targets, for the whole series); kbuild rebuilds only what the
# patch changed.
allmod_build() {
	local i=$1 logf=$2 tfile=$3
	local -a targets=()
	if ((i == 0)); then
		kmake allmodconfig >"$logf" 2>&1 || return 1
		kmake -j"$JOBS" prepare >>"$logf" 2>&1 || return 1
	else
		: >"$logf"
	fi
	mapfile -t targets <"$tfile"
	if ((i == 0)); then
		# kbuild compiles a single-object target even when the config
		# does not select it, and some of the includers are for other
		# arches (fs/binfmt_elf_fdpic.c). What fails on the base is left
		# out of every later build, listed in TARGETS.excluded.
		kmake -k -j"$JOBS" "${targets[@]}" >>"$logf" 2>&1 || true
		sed -n 's|^make\[[0-9]*\]: \*\*\* \[scripts/Makefile.build:[0-9]*: \(.*\.o\)\] Error.*|\1|p' "$logf" |
			sort -u >"$tfile.excluded"
		printf '%s\n' "${targets[@]}" | grep -vxF -f "$tfile.excluded" >"$tfile.new" || true
		mv "$tfile.new" "$tfile"
		[[ ! -s $tfile.excluded ]] ||
			log "allmodconfig: $(wc -l <"$tfile.excluded") objects do not build on the base x86_64 allmodconfig (other arches, options x86_64 lacks), left out: $tfile.excluded"
		mapfile -t targets <"$tfile"
		[[ ${#targets[@]} -gt 0 ]] || return 1
	fi
	kmake -j"$JOBS" "${targets[@]}" >>"$logf" 2>&1
}
