# shellcheck shell=bash
# Kernel trees: fetch the base, import it into git, apply the series.
#
# All trees live in one git repository, $CACHE/linux. The base of each
# target (a Debian linux-source package, series/TARGET/base.pin) is imported
# as a root commit with fixed author, committer and dates, tagged
# base-VERSION (~ as _), so that the same tarball always gives the same
# commit id: the pin records it and the cover letter names it. Builds happen
# in worktrees under $CACHE/wt/: TARGET-base, TARGET-series and the scratch
# tree am-TARGET.

REPO=$CACHE/linux
GIT_ID=(-c user.name="daxpage developers" -c user.email=daxpage@example.org)

# deb_fetch PKG VERSION: download PKG (VERSION if given and offered, else the
# candidate) into $CACHE/dl and print the .deb path.
deb_fetch() {
	local pkg=$1 want=$2 dl=$CACHE/dl deb
	mkdir -p "$dl"
	if [[ -n $want ]]; then
		deb=$(find "$dl" -maxdepth 1 -name "${pkg}_${want//\~/?}_all.deb" -print -quit)
		if [[ -z $deb ]] && (cd "$dl" && apt-get download -q "$pkg=$want" >"$dl/apt.log" 2>&1); then
			deb=$(find "$dl" -maxdepth 1 -name "${pkg}_${want//\~/?}_all.deb" -print -quit)
		fi
		if [[ -n $deb ]]; then
			printf '%s\n' "$deb"
			return 0
		fi
	fi
	(cd "$dl" && apt-get download -q "$pkg" >"$dl/apt.log" 2>&1) ||
		die "apt-get download $pkg failed: $(tail -n1 "$dl/apt.log")" \
			"run 'make deps' (it adds the Debian suites the lab needs and runs apt-get update)"
	deb=$(find "$dl" -maxdepth 1 -name "${pkg}_*_all.deb" -printf '%T@ %p\n' | sort -n | tail -n1 | cut -d' ' -f2-)
	[[ -n $deb ]] || die "downloaded $pkg but found no .deb in $dl" "remove $dl and retry"
	if [[ -n $want ]]; then
		warn "**************************************************************"
		warn "$pkg $want is no longer offered by the mirror;"
		warn "using $(dpkg-deb -f "$deb" Version) instead. Results record that version."
		warn "**************************************************************"
	fi
	printf '%s\n' "$deb"
}

# deb_tarball DEB: extract usr/src/linux-source-*.tar.xz from DEB next to it
# and print its path.
deb_tarball() {
	local deb=$1 tb
	tb=${deb%.deb}.tar.xz
	if [[ ! -s $tb ]]; then
		dpkg-deb --fsys-tarfile "$deb" | tar -xO --wildcards './usr/src/linux-source-*.tar.xz' >"$tb.part" ||
			die "could not extract the kernel tarball from $deb" "delete $deb and retry"
		mv "$tb.part" "$tb"
	fi
	printf '%s\n' "$tb"
}

# repo_init: create the cache's kernel repository, $REPO, unless it is
# there and git can read it. A repository that git cannot read (a run
# killed while it was being created or deleted) is made again: its base is
# imported again (about 2 minutes).
repo_init() {
	if [[ -d $REPO/.git ]] && git --git-dir="$REPO/.git" -c safe.directory="$REPO" rev-parse -q --git-dir >/dev/null 2>&1; then
		return 0
	fi
	[[ ! -e $REPO ]] || warn "$REPO is not a readable git repository (an interrupted run?): making it again"
	rm -rf "$REPO"
	git init -q -b daxpage "$REPO"
	git -C "$REPO" config gc.auto 0
	git -C "$REPO" config core.abbrev 12
}

# import_tarball TARBALL TAG MESSAGE: make TAG a root commit holding TARBALL's
# tree. Debian's tarball ignores everything at the top level (a .gitignore
# stanza for its packaging repository) and lacks the kernel's "!.gitignore"
# style exceptions, so a plain add would miss every dot-file. The import
# drops the stanza (so the kernel's own ignore rules apply to builds) and
# adds every file of the tarball with -f. The commit id is deterministic.
import_tarball() {
	local tb=$1 tag=$2 msg=$3 tmp tree commit
	if git -C "$REPO" rev-parse -q --verify "refs/tags/$tag^{commit}" >/dev/null; then
		return 0
	fi
	tmp=$(mktemp -d "$CACHE/import.XXXXXX")
	log "importing ${tb##*/} as $tag (one-time, ~2 min)"
	tar -xJf "$tb" -C "$tmp" --strip-components=1 ||
		{ rm -rf "$tmp"; die "could not unpack $tb" "delete it and retry"; }
	python3 - "$tmp/.gitignore" <<-'EOF'
		import sys
		p = sys.argv[1]
		s = open(p).read()
		i = s.find('#\n# Debian packaging')
		if i >= 0:
		    open(p, 'w').write(s[:i].rstrip('\n') + '\n')
	EOF
	GIT_INDEX_FILE=$tmp.index git -C "$REPO" --work-tree="$tmp" add -A -f .
	tree=$(GIT_INDEX_FILE=$tmp.index git -C "$REPO" write-tree)
	commit=$(GIT_AUTHOR_DATE='2000-01-01T00:00:00Z' GIT_COMMITTER_DATE='2000-01-01T00:00:00Z' \
		git -C "$REPO" "${GIT_ID[@]}" commit-tree "$tree" -m "$msg")
	git -C "$REPO" tag "$tag" "$commit"
	rm -rf "$tmp" "$tmp.index"
}

# base_tree_repo: the repository of --base-tree (BASE_TREE may be a worktree
# of it): its git common directory, less a trailing /.git.
base_tree_repo() {
	local r
	r=$(cd "$BASE_TREE" && git rev-parse --path-format=absolute --git-common-dir) || return
	printf '%s\n' "${r%/.git}"
}

# base_prepare: make sure the pinned base of the target (TARGET, PIN)
# exists; sets BASE_COMMIT, BASE_DESC and BASE_REPO. With BASE_TREE set (checked by run_parse_args
# before any work), uses that git tree instead. Holds the repository lock
# while it may import.
base_prepare() {
	lab_lock repo "the kernel repository $REPO"
	base_prepare_locked
	lab_unlock repo
}

base_prepare_locked() {
	local pkg ver sha deb tb got_sha pinned_commit
	if [[ -n ${BASE_TREE:-} ]]; then
		BASE_REPO=$(base_tree_repo)
		BASE_COMMIT=$(git -C "$BASE_TREE" rev-parse "${BASE_REV:-HEAD}^{commit}")
		BASE_DESC="$(git -C "$BASE_TREE" describe --tags --always "$BASE_COMMIT" 2>/dev/null) from $BASE_TREE"
		return 0
	fi
	pkg=$(read_pin BASE_PACKAGE)
	ver=$(read_pin BASE_VERSION)
	sha=$(read_pin BASE_TARBALL_SHA256)
	pinned_commit=$(read_pin BASE_COMMIT)
	repo_init
	BASE_REPO=$REPO
	if git -C "$REPO" rev-parse -q --verify "refs/tags/base-${ver//\~/_}^{commit}" >/dev/null; then
		BASE_COMMIT=$(git -C "$REPO" rev-parse "refs/tags/base-${ver//\~/_}^{commit}")
		BASE_DESC="$pkg $ver"
		return 0
	fi
	deb=$(deb_fetch "$pkg" "$ver")
	tb=$(deb_tarball "$deb")
	got_sha=$(sha256sum "$tb" | cut -d' ' -f1)
	local got_ver
	got_ver=$(dpkg-deb -f "$deb" Version)
	if [[ $got_ver == "$ver" && $got_sha != "$sha" ]]; then
		die "$pkg $ver tarball has sha256 $got_sha, the pin says $sha" \
			"delete $CACHE/dl and retry; if it persists the mirror changed the package: update series/$TARGET/base.pin"
	fi
	import_tarball "$tb" "base-${got_ver//\~/_}" "Linux $(tar_kernelversion "$tb") ($pkg $got_ver)"
	BASE_COMMIT=$(git -C "$REPO" rev-parse "refs/tags/base-${got_ver//\~/_}^{commit}")
	BASE_DESC="$pkg $got_ver"
	if [[ $got_ver == "$ver" && $BASE_COMMIT != "$pinned_commit" ]]; then
		warn "imported base is $BASE_COMMIT but series/$TARGET/base.pin says $pinned_commit (the import is not deterministic?)"
	fi
}

# tar_kernelversion TARBALL: VERSION.PATCHLEVEL.SUBLEVEL from its Makefile.
tar_kernelversion() {
	tar -xJOf "$1" --wildcards '*/Makefile' 2>/dev/null | awk -F' = ' '
		/^VERSION =/ {v=$2} /^PATCHLEVEL =/ {p=$2} /^SUBLEVEL =/ {s=$2}
		v != "" && p != "" && s != "" {print v "." p "." s; exit}'
}

# worktree DIR COMMIT: make DIR a worktree of the base repository at COMMIT.
# Files that already match COMMIT are not touched, so builds stay incremental.
# A DIR that git no longer knows as a worktree (its repository was made
# again) is made again.
worktree() {
	local dir=$1 commit=$2
	if [[ ! -e $dir/.git ]] || ! git -c safe.directory="$dir" -C "$dir" rev-parse -q --verify HEAD >/dev/null 2>&1; then
		rm -rf "$dir"
		mkdir -p "${dir%/*}"
		lab_lock repo "the kernel repository $BASE_REPO"
		git -C "$BASE_REPO" worktree prune
		git -C "$BASE_REPO" worktree add -q --detach "$dir" "$commit" ||
			die "could not create a worktree at $dir" "remove $dir and retry"
		lab_unlock repo
	else
		git -C "$dir" checkout -q -f --detach "$commit" ||
			die "could not check out $commit in $dir" "remove $dir and retry"
	fi
}

# am_dir: the target's scratch worktree, $CACHE/wt/am-TARGET (with
# --base-tree, wt/am-ext-TARGET). Its lock is am-TARGET either way.
am_dir() {
	if [[ -n ${BASE_TREE:-} ]]; then
		printf '%s\n' "$CACHE/wt/am-ext-$TARGET"
	else
		printf '%s\n' "$CACHE/wt/am-$TARGET"
	fi
}

# am_series: check out the base in the target's scratch worktree (am_dir)
# and git am every patch of series/TARGET/ there. Prints the resulting
# commit. Takes the lock of that worktree ("am-TARGET") and keeps it: a
# caller that goes on using the tree gives it back (lab_unlock am-TARGET)
# when it is done; called in a subshell, the lock ends with the subshell.
am_series() {
	local am p
	local -a ps
	am=$(am_dir)
	mapfile -t ps < <(series_patches)
	lab_lock "am-$TARGET" "the scratch worktree ${am#"$CACHE"/}"
	worktree "$am" "$BASE_COMMIT"
	git -C "$am" am --abort >/dev/null 2>&1 || true
	for p in "${ps[@]}"; do
		if ! am_one "$am" "$p"; then
			cat "$CACHE/am-$TARGET.log" >&2
			die "patch ${p##*/} does not apply to $BASE_DESC" \
				"rebase the series onto the base (see git's message above) and regenerate series/$TARGET/"
		fi
	done
	git -C "$am" rev-parse HEAD
}

# am_one DIR PATCH: git am PATCH in the worktree DIR; on failure the am is
# aborted and 1 returned. git's message goes to $CACHE/am-TARGET.log.
am_one() {
	git -C "$1" "${GIT_ID[@]}" am -q --keep-cr "$2" >"$CACHE/am-$TARGET.log" 2>&1 && return 0
	git -C "$1" am --abort >/dev/null 2>&1 || true
	return 1
}

# am_alone PATCH: check out the base in the target's scratch worktree
# (am_dir) and git am PATCH there alone, as a stable maintainer would apply
# a fix; 0 if it applies. The caller holds the lock am-TARGET.
am_alone() {
	local am
	am=$(am_dir)
	worktree "$am" "$BASE_COMMIT"
	git -C "$am" am --abort >/dev/null 2>&1 || true
	am_one "$am" "$1"
}

# apply_series DIR: move the build worktree DIR to base + series. Only the
# files that differ from what DIR has are rewritten, so builds stay
# incremental. Prints the new commit.
apply_series() {
	local dir=$1 head
	head=$(am_series)
	worktree "$dir" "$head"
	printf '%s\n' "$head"
}
