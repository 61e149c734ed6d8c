// SPDX-License-Identifier: GPL-2.0
/*
 * daxpage lab smoke checks for a file system mounted with -o dax=always.
 *
 * The directory comes from $DAX_TEST_DIR. Unlike the series' selftests,
 * which skip on a non-DAX directory, these checks fail there: the lab only
 * runs them on mounts it made with dax=always, so a missing S_DAX is a bug.
 *
 * Built by the lab against kselftest_harness.h of the kernel under test.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kselftest_harness.h"

#ifndef STATX_ATTR_DAX
#define STATX_ATTR_DAX 0x00200000
#endif

#define SZ_2M (2UL << 20)

static const char *tracefs_candidates[] = {
	"/sys/kernel/tracing",
	"/sys/kernel/debug/tracing",
};

static const char *tracefs(void)
{
	char path[PATH_MAX];
	unsigned int i;

	for (i = 0; i < sizeof(tracefs_candidates) / sizeof(tracefs_candidates[0]); i++) {
		snprintf(path, sizeof(path), "%s/trace", tracefs_candidates[i]);
		if (access(path, W_OK) == 0)
			return tracefs_candidates[i];
	}
	return NULL;
}

static int write_file(const char *dir, const char *name, const char *val)
{
	char path[PATH_MAX];
	ssize_t len = strlen(val);
	int fd, ret = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_TRUNC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, len) != len)
		ret = -errno;
	close(fd);
	return ret;
}

/* Map @len bytes of @fd at a virtual address aligned to @align. */
static void *mmap_aligned(int fd, size_t len, size_t align, int prot)
{
	char *area, *aligned;

	area = mmap(NULL, len + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		return MAP_FAILED;
	aligned = (char *)(((unsigned long)area + align - 1) & ~(align - 1));
	return mmap(aligned, len, prot, MAP_SHARED | MAP_FIXED, fd, 0);
}

FIXTURE(daxdir) {
	char path[PATH_MAX];
	int fd;
};

FIXTURE_SETUP(daxdir)
{
	const char *dir = getenv("DAX_TEST_DIR");

	ASSERT_NE(NULL, dir) TH_LOG("set DAX_TEST_DIR to a directory on a dax=always mount");
	snprintf(self->path, sizeof(self->path), "%s/smoke.XXXXXX", dir);
	self->fd = mkstemp(self->path);
	ASSERT_LE(0, self->fd) TH_LOG("mkstemp in %s: %s", dir, strerror(errno));
}

FIXTURE_TEARDOWN(daxdir)
{
	if (self->fd >= 0) {
		close(self->fd);
		unlink(self->path);
	}
}

/* Expect: statx() on a file of a dax=always mount reports STATX_ATTR_DAX. */
TEST_F(daxdir, statx_reports_dax)
{
	struct statx stx;

	ASSERT_EQ(0, statx(self->fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &stx));
	ASSERT_TRUE(stx.stx_attributes_mask & STATX_ATTR_DAX)
		TH_LOG("the file system does not report the DAX attribute at all");
	ASSERT_TRUE(stx.stx_attributes & STATX_ATTR_DAX)
		TH_LOG("%s is not a DAX file", self->path);
}

/*
 * The file size for pmd_write_fault: 64 MiB, or $DAX_SMOKE_PMD_MIB MiB
 * (rounded down to 2 MiB, at least 2 MiB) on a file system too small for
 * that.
 */
static size_t pmd_len(void)
{
	const char *v = getenv("DAX_SMOKE_PMD_MIB");
	unsigned long mib = v && *v ? strtoul(v, NULL, 10) : 64;

	return mib < 2 ? SZ_2M : (mib << 20) & ~(SZ_2M - 1);
}

/*
 * Expect: write faults on a 2 MiB-aligned mapping of a fully allocated file
 * are served by PMD mappings: fs_dax:dax_pmd_fault_done reports NOPAGE for
 * this process at least once. Allocation on a fresh file system is 2 MiB
 * aligned for most extents (the lab's mkfs options); one success is enough to show
 * that the PMD path works end to end.
 */
TEST_F(daxdir, pmd_write_fault)
{
	const size_t len = pmd_len();
	const char *tr = tracefs();
	char path[PATH_MAX], line[1024], tag[32];
	unsigned int nopage = 0, fallback = 0;
	char *p;
	size_t off;
	FILE *f;

	ASSERT_NE(NULL, tr) TH_LOG("tracefs is not mounted");
	ASSERT_EQ(0, fallocate(self->fd, 0, 0, len)) TH_LOG("fallocate: %s", strerror(errno));
	p = mmap_aligned(self->fd, len, SZ_2M, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);

	ASSERT_EQ(0, write_file(tr, "events/fs_dax/dax_pmd_fault_done/enable", "1"));
	ASSERT_EQ(0, write_file(tr, "trace", ""));
	for (off = 0; off < len; off += SZ_2M)
		p[off] = 1;
	ASSERT_EQ(0, write_file(tr, "events/fs_dax/dax_pmd_fault_done/enable", "0"));

	snprintf(path, sizeof(path), "%s/trace", tr);
	snprintf(tag, sizeof(tag), "-%d ", getpid());
	f = fopen(path, "r");
	ASSERT_NE(NULL, f);
	while (fgets(line, sizeof(line), f)) {
		if (!strstr(line, "dax_pmd_fault_done") || !strstr(line, tag))
			continue;
		if (strstr(line, "NOPAGE"))
			nopage++;
		else if (strstr(line, "FALLBACK"))
			fallback++;
	}
	fclose(f);
	TH_LOG("dax_pmd_fault_done: %u NOPAGE, %u FALLBACK", nopage, fallback);
	ASSERT_LE(1, nopage);
	for (off = 0; off < len; off += SZ_2M)
		ASSERT_EQ(1, p[off]);
	ASSERT_EQ(0, munmap(p, len));
}

/* Expect: data written through a shared DAX mapping is what read() returns. */
TEST_F(daxdir, mmap_write_read_back)
{
	const size_t len = 4 * SZ_2M;
	char *p, buf[4096];
	size_t off, i;

	ASSERT_EQ(0, ftruncate(self->fd, len));
	p = mmap_aligned(self->fd, len, SZ_2M, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, p);
	for (off = 0; off < len; off++)
		p[off] = (char)(off * 7 + 3);
	ASSERT_EQ(0, msync(p, len, MS_SYNC));
	ASSERT_EQ(0, munmap(p, len));
	for (off = 0; off < len; off += sizeof(buf)) {
		ASSERT_EQ((ssize_t)sizeof(buf), pread(self->fd, buf, sizeof(buf), off));
		for (i = 0; i < sizeof(buf); i++)
			ASSERT_EQ((char)((off + i) * 7 + 3), buf[i]);
	}
}

TEST_HARNESS_MAIN
