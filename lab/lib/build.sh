# shellcheck shell=bash
# Configure, build and stage a kernel with the nfit_test modules.

KMAKE_VARS=(KBUILD_BUILD_TIMESTAMP=2000-01-01 KBUILD_BUILD_USER=daxpage KBUILD_BUILD_HOST=lab)

# Symbols that must come out exactly as requested (nfit_test's config_check.c
# and the suite's needs); checked after every configure.
REQUIRED_M=(LIBNVDIMM BLK_DEV_PMEM ND_BTT ND_PFN ACPI_NFIT DEV_DAX DEV_DAX_PMEM X86_PMEM_LEGACY DEV_DAX_KMEM)
REQUIRED_Y=(ZONE_DEVICE FS_DAX TRANSPARENT_HUGEPAGE MEMORY_FAILURE XFS_FS EXT4_FS NVDIMM_SECURITY_TEST
	ENCRYPTED_KEYS IO_STRICT_DEVMEM FTRACE EVENT_TRACING DEBUG_VM VIRTIO_CONSOLE NET_9P_VIRTIO 9P_FS
	OVERLAY_FS DEVTMPFS BLK_DEV_DM DM_WRITECACHE)

kmake() {
	make -C "$KDIR" ARCH="${KARCH:-x86_64}" CC="ccache ${CROSS_COMPILE:-}gcc" \
		${CROSS_COMPILE:+CROSS_COMPILE=$CROSS_COMPILE} "${KMAKE_VARS[@]}" "$@"
}

# configure KDIR: merge the fragments onto allnoconfig, then verify them.
configure() {
	local -a frags=("$LAB_DIR/config/lean.config" "$LAB_DIR/config/daxpage.config")
	local f line sym want got bad=0 newcfg
	[[ ${LAB_DEBUG:-0} == 1 ]] && frags+=("$LAB_DIR/config/debug.config")
	newcfg=$(mktemp "$CACHE/config.XXXXXX")
	# merge_config.sh writes .config in place; keep the old one when nothing
	# changed so that kbuild does not re-run syncconfig for nothing.
	[[ -f $KDIR/.config ]] && cp -p "$KDIR/.config" "$newcfg.old"
	(cd "$KDIR" && ARCH=x86_64 CC="ccache gcc" scripts/kconfig/merge_config.sh -n "${frags[@]}") \
		>"$RUN_LOG_DIR/config.log" 2>&1 ||
		die "merge_config.sh failed (see $RUN_LOG_DIR/config.log)" "fix the fragments in lab/config/"
	if [[ -f $newcfg.old ]] && cmp -s "$KDIR/.config" "$newcfg.old"; then
		cp -p "$newcfg.old" "$KDIR/.config"
	fi
	rm -f "$newcfg" "$newcfg.old"
	for f in "${frags[@]}"; do
		while IFS= read -r line; do
			case $line in
			CONFIG_*=*)
				sym=${line%%=*}
				want=$line
				got=$(grep -E "^$sym=" "$KDIR/.config" || true)
				if [[ $got != "$want" ]]; then
					warn "config: ${f##*/} asks $want, got ${got:-"$sym unset"}"
					bad=1
				fi
				;;
			esac
		done <"$f"
	done
	for sym in "${REQUIRED_M[@]}"; do
		grep -qx "CONFIG_$sym=m" "$KDIR/.config" || { warn "config: CONFIG_$sym must be =m"; bad=1; }
	done
	for sym in "${REQUIRED_Y[@]}"; do
		grep -qx "CONFIG_$sym=y" "$KDIR/.config" || { warn "config: CONFIG_$sym must be =y"; bad=1; }
	done
	if [[ $bad -ne 0 ]]; then
		die "required config symbols did not stick (listed above; merge log: $RUN_LOG_DIR/config.log)" \
			"add the missing dependencies to lab/config/lean.config or daxpage.config"
	fi
}

# objcount_key: what decides how many objects a build from scratch makes:
# the kernel's VERSION.PATCHLEVEL and the config (lab, or lab + debug).
objcount_key() {
	local v p
	v=$(awk '/^VERSION = / {print $3; exit}' "$KDIR/Makefile")
	p=$(awk '/^PATCHLEVEL = / {print $3; exit}' "$KDIR/Makefile")
	printf '%s.%s-%s\n' "$v" "$p" "$([[ ${LAB_DEBUG:-0} == 1 ]] && echo debug || echo lab)"
}

# objcount_expected KEY: "COUNT HOW" for a build from scratch: the count of
# this cache's last such build, else the figure in lab/config/objcount
# (measured on a cold cache), else nothing.
objcount_expected() {
	local key=$1 n
	if [[ -s $CACHE/objcount.$key ]]; then
		echo "$(<"$CACHE/objcount.$key") as-last-time"
		return
	fi
	n=$(awk -v k="$key" '$1 == k {print $2; exit}' "$LAB_DIR/config/objcount" 2>/dev/null)
	[[ -z $n ]] || echo "$n estimate"
}

# build_from_scratch DIR: true when the kernel tree DIR has no object of the
# kernel yet. Configure already builds host tools (scripts/kconfig/*.o), and
# the kernel build more under scripts/ and tools/, so those do not count; a
# build that failed half-way does (its count would be too low to expect).
build_from_scratch() {
	[[ -z $(find "$1" \( -path "$1/scripts" -o -path "$1/tools" \) -prune -o -name '*.o' -print -quit) ]]
}

# build_locked CMD...: run CMD holding $CACHE/build.lock, so that no two
# kernel builds share the machine's cores (every kernel build of the lab
# goes through it: build_kernel, and bisect-build's cross and allmodconfig
# builds; anyone else can take the lock with flock $CACHE/build.lock).
# Waits for the holder, saying so. Returns CMD's status; 1 if the lock
# file cannot be opened.
build_locked() {
	local rc=0
	{
		if ! flock -n 9; then
			log "another kernel build holds $CACHE/build.lock: waiting for it"
			flock 9 || return 1
		fi
		"$@" || rc=$?
	} 9>"$CACHE/build.lock" || return 1
	return "$rc"
}

# kernel_make: in $KDIR, bzImage, modules and the nfit_test modules.
kernel_make() {
	kmake -j"$JOBS" bzImage modules &&
		kmake -j"$JOBS" M=tools/testing/nvdimm modules
}

# build_kernel LOGFILE: kernel_make, holding the build lock, with progress.
build_kernel() {
	local logf=$1 total=0 how="" watcher rc=0 scratch=0 key
	key=$(objcount_key)
	build_from_scratch "$KDIR" && scratch=1
	[[ $scratch == 0 ]] || read -r total how <<<"$(objcount_expected "$key") "
	[[ $scratch == 0 || -n ${how:-} ]] || how=from-scratch,-no-figure-for-$key-yet
	progress_watch "$logf" build "${total:-0}" "${how//-/ }" &
	watcher=$!
	# A wait for the lock is logged in LOGFILE; the progress line shows it
	# as a growing time at 0 objects.
	build_locked kernel_make >"$logf" 2>&1 || rc=$?
	kill "$watcher" 2>/dev/null || true
	wait "$watcher" 2>/dev/null || true
	if [[ $rc -ne 0 ]]; then
		grep -E 'error:|Error [0-9]' "$logf" | head -n 20 >&2 || true
		die "kernel build failed in $KDIR (log: $logf)" \
			"fix the first error above; the failing patch can be found with 'make bisect-build'"
	fi
	# Only a build from scratch tells how many objects there are.
	if [[ $scratch == 1 ]]; then
		grep -cE '^  (CC|AS|LD) ' "$logf" >"$CACHE/objcount.$key" || true
		log "build: $(<"$CACHE/objcount.$key") objects from scratch"
	fi
	KVER=$(kmake -s kernelrelease)
}

# stage_modules STAGE: production modules in $STAGE/prod, production plus
# the nfit_test overrides (updates/, preferred by depmod) in $STAGE/test.
stage_modules() {
	local stage=$1 m path
	rm -rf "$stage.new"
	mkdir -p "$stage.new/prod" "$stage.new/test"
	kmake INSTALL_MOD_PATH="$stage.new/prod" modules_install >/dev/null
	kmake INSTALL_MOD_PATH="$stage.new/test" modules_install >/dev/null
	kmake INSTALL_MOD_PATH="$stage.new/test" M=tools/testing/nvdimm modules_install >/dev/null
	depmod -b "$stage.new/prod" -F "$KDIR/System.map" -ae "$KVER"
	depmod -b "$stage.new/test" -F "$KDIR/System.map" -ae "$KVER"
	for m in libnvdimm nd_pmem nd_btt nd_e820 nfit device_dax dax_pmem nfit_test nfit_test_iomap; do
		path=$(modinfo -b "$stage.new/test" -k "$KVER" -n "$m" 2>/dev/null) ||
			die "staged test modules lack $m" "check the nfit_test build log"
		[[ $path == */updates/* ]] ||
			die "test staging resolves $m to $path, not to updates/" "check depmod and the M= install"
	done
	rm -rf "$stage"
	mv "$stage.new" "$stage"
}
