// SPDX-License-Identifier: GPL-2.0
/*
 * daxpage lab: a media error under a file on an fsdax mount, injected with
 * nfit_test's ARS emulation, and what fs/dax makes of it.
 *
 * Environment:
 *   DAX_TEST_DIR      a directory on a file system mounted with dax=always,
 *                     made on the whole block device below (no partition)
 *   DAX_MEDIA_NS      the fsdax namespace of that block device (for
 *                     "ndctl inject-error")
 *   DAX_MEDIA_BDEV    its block device name (pmemN), whose sysfs badblocks
 *                     list shows the injected sector
 *   DAX_MEDIA_BUS     the namespace's bus (nfit_test.0), scrubbed if the
 *                     injection's notification does not list the sector
 *
 * The cases run in order and share one file, "media_error.file": inject
 * marks the page at MEDIA_OFF bad, the others need that. The lab runs
 * this only on nfit_test in real-memmap mode, where the namespace has a
 * ZONE_DEVICE memmap and the pmem driver's bad-block rules apply.
 *
 * Built by the lab against kselftest_harness.h of the kernel under test.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/fiemap.h>
#include <linux/fs.h>

#include "kselftest_harness.h"

#ifndef STATX_ATTR_DAX
#define STATX_ATTR_DAX 0x00200000
#endif

#ifndef BUS_MCEERR_AR
#define BUS_MCEERR_AR 4
#endif

#define PAGE		4096UL
#define FILE_LEN	(4UL << 20)
#define MEDIA_OFF	(1UL << 20)	/* the page that goes bad */
#define GOOD_OFF	(2UL << 20)	/* a page that stays good */

extern char **environ;

static const char *env_or_null(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

static void file_path(char *buf, size_t len)
{
	snprintf(buf, len, "%s/media_error.file", getenv("DAX_TEST_DIR"));
}

/* The byte at file offset @off: pattern generation @gen. */
static unsigned char pat(unsigned long off, int gen)
{
	return (unsigned char)((off >> 9) * 7 + gen * 0x31 + 1);
}

static void fill(unsigned char *buf, size_t len, unsigned long off, int gen)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = pat(off + i, gen);
}

/* The first offset in [off, off + len) whose byte is not generation @gen, or -1. */
static long mismatch(const unsigned char *buf, size_t len, unsigned long off, int gen)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (buf[i] != pat(off + i, gen))
			return (long)(off + i);
	return -1;
}

/* The device byte address of file offset @off (FIEMAP), or -1. */
static long long phys_of(int fd, unsigned long off)
{
	union {
		struct fiemap fm;
		char buf[sizeof(struct fiemap) + sizeof(struct fiemap_extent)];
	} u;
	struct fiemap_extent *fe = &u.fm.fm_extents[0];

	memset(&u, 0, sizeof(u));
	u.fm.fm_start = off;
	u.fm.fm_length = PAGE;
	u.fm.fm_flags = FIEMAP_FLAG_SYNC;
	u.fm.fm_extent_count = 1;
	if (ioctl(fd, FS_IOC_FIEMAP, &u.fm) || u.fm.fm_mapped_extents != 1)
		return -1;
	if (fe->fe_logical > off || fe->fe_logical + fe->fe_length <= off ||
	    (fe->fe_flags & (FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_ENCODED |
			     FIEMAP_EXTENT_UNWRITTEN)))
		return -1;
	return (long long)(fe->fe_physical + (off - fe->fe_logical));
}

/*
 * Run argv (searched in PATH) with its standard output on /dev/null, so
 * that it stays out of the TAP (its errors still show); its exit status,
 * or -1.
 */
static int run(char *const argv[])
{
	posix_spawn_file_actions_t fa;
	int status, rc;
	pid_t pid;

	if (posix_spawn_file_actions_init(&fa))
		return -1;
	rc = posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0) ||
	     posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc)
		return -1;
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/* Is sector @s in /sys/block/@bdev/badblocks? 1, 0, or -1 if unreadable. */
static int listed_bad(const char *bdev, unsigned long long s)
{
	unsigned long long start, num;
	char path[PATH_MAX];
	int found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/block/%s/badblocks", bdev);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fscanf(f, "%llu %llu", &start, &num) == 2)
		if (s >= start && s < start + num)
			found = 1;
	fclose(f);
	return found;
}

/* Poll for @want (1: listed, 0: gone) for up to @sec seconds. */
static int wait_listed(const char *bdev, unsigned long long s, int want, int sec)
{
	int i, r = -1;

	for (i = 0; i < sec * 10; i++) {
		r = listed_bad(bdev, s);
		if (r == want || r < 0)
			return r;
		usleep(100000);
	}
	return r;
}

static sigjmp_buf bus_jmp;
static volatile sig_atomic_t bus_code;

static void bus_handler(int sig, siginfo_t *si, void *uc)
{
	bus_code = si->si_code;
	siglongjmp(bus_jmp, 1);
}

/*
 * Read the page at @off of a shared mapping: 0 with the data in @buf, or
 * the si_code of the SIGBUS the read raised.
 */
static int map_read(int fd, unsigned long off, unsigned char *buf)
{
	struct sigaction sa = { .sa_sigaction = bus_handler, .sa_flags = SA_SIGINFO };
	struct sigaction old;
	volatile unsigned char *p;
	int ret = 0;

	p = mmap(NULL, FILE_LEN, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -1;
	sigaction(SIGBUS, &sa, &old);
	bus_code = 0;
	if (sigsetjmp(bus_jmp, 1) == 0)
		memcpy(buf, (const void *)(p + off), PAGE);
	else
		ret = bus_code ? bus_code : -1;
	sigaction(SIGBUS, &old, NULL);
	munmap((void *)p, FILE_LEN);
	return ret;
}

FIXTURE(media) {
	char path[PATH_MAX];
	const char *ns, *bdev;
	unsigned long long sector;
	unsigned char buf[PAGE];
	int fd;
};

FIXTURE_SETUP(media)
{
	self->fd = -1;
	self->ns = env_or_null("DAX_MEDIA_NS");
	self->bdev = env_or_null("DAX_MEDIA_BDEV");
	ASSERT_NE(NULL, env_or_null("DAX_TEST_DIR"))
		TH_LOG("DAX_TEST_DIR is not set");
	ASSERT_NE(NULL, self->ns) TH_LOG("DAX_MEDIA_NS is not set");
	ASSERT_NE(NULL, self->bdev) TH_LOG("DAX_MEDIA_BDEV is not set");
	file_path(self->path, sizeof(self->path));
	self->fd = open(self->path, O_RDWR | O_CREAT, 0600);
	ASSERT_LE(0, self->fd) TH_LOG("open %s: %s", self->path, strerror(errno));
}

FIXTURE_TEARDOWN(media)
{
	if (self->fd >= 0)
		close(self->fd);
}

/*
 * Expect: the file is DAX; after "ndctl inject-error" on the sector under
 * the page at MEDIA_OFF (and a scrub, if the notification does not come),
 * the pmem block device lists that sector as bad.
 */
TEST_F_TIMEOUT(media, inject, 180)
{
	char block[32], count[] = "--count=1", *argv[6];
	unsigned char *data = malloc(FILE_LEN);
	struct statx stx;
	long long phys;
	int r;

	ASSERT_NE(NULL, data);
	ASSERT_EQ(0, ftruncate(self->fd, 0));
	fill(data, FILE_LEN, 0, 0);
	ASSERT_EQ((ssize_t)FILE_LEN, pwrite(self->fd, data, FILE_LEN, 0));
	free(data);
	ASSERT_EQ(0, fsync(self->fd));
	ASSERT_EQ(0, statx(self->fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &stx));
	ASSERT_TRUE(stx.stx_attributes & STATX_ATTR_DAX)
		TH_LOG("%s is not DAX", self->path);

	phys = phys_of(self->fd, MEDIA_OFF);
	ASSERT_LE(0, phys) TH_LOG("FIEMAP found no block under offset %lu", MEDIA_OFF);
	self->sector = phys / 512;
	TH_LOG("offset %lu is at sector %llu of %s", MEDIA_OFF, self->sector, self->bdev);
	ASSERT_EQ(0, listed_bad(self->bdev, self->sector)) TH_LOG("already bad");

	snprintf(block, sizeof(block), "--block=%llu", self->sector);
	argv[0] = "ndctl";
	argv[1] = "inject-error";
	argv[2] = block;
	argv[3] = count;
	argv[4] = (char *)self->ns;
	argv[5] = NULL;
	ASSERT_EQ(0, run(argv)) TH_LOG("ndctl inject-error %s %s %s failed", block, count, self->ns);

	r = wait_listed(self->bdev, self->sector, 1, 10);
	if (r == 0) {
		char *bus = (char *)env_or_null("DAX_MEDIA_BUS");
		char *scrub[] = { "ndctl", "start-scrub", bus, NULL };
		char *wait[] = { "ndctl", "wait-scrub", bus, NULL };

		TH_LOG("not listed after 10 s: scrubbing");
		run(scrub);
		run(wait);
		r = wait_listed(self->bdev, self->sector, 1, 30);
	}
	ASSERT_EQ(1, r) TH_LOG("sector %llu not in /sys/block/%s/badblocks", self->sector,
			       self->bdev);
}

/*
 * Expect: a load from the bad page through a shared mapping raises SIGBUS
 * with BUS_MCEERR_AR (fs/dax gets -EHWPOISON and faults VM_FAULT_HWPOISON);
 * a good page of the same file maps and reads its data.
 */
TEST_F(media, mmap_read_sigbus)
{
	ASSERT_EQ(0, map_read(self->fd, GOOD_OFF, self->buf));
	ASSERT_EQ(-1, mismatch(self->buf, PAGE, GOOD_OFF, 0));
	ASSERT_EQ(BUS_MCEERR_AR, map_read(self->fd, MEDIA_OFF, self->buf))
		TH_LOG("reading the bad page through mmap did not raise SIGBUS/BUS_MCEERR_AR");
}

/* Expect: read(2) of the bad page fails with EIO; of a good page, works. */
TEST_F(media, pread_eio)
{
	ASSERT_EQ((ssize_t)PAGE, pread(self->fd, self->buf, PAGE, GOOD_OFF));
	ASSERT_EQ(-1, mismatch(self->buf, PAGE, GOOD_OFF, 0));
	errno = 0;
	ASSERT_EQ(-1, pread(self->fd, self->buf, PAGE, MEDIA_OFF));
	ASSERT_EQ(EIO, errno);
}

/*
 * Expect: pwrite(2) of the whole bad page succeeds (fs/dax retries with
 * DAX_RECOVERY_WRITE, the pmem driver clears the poison), the sector
 * leaves the badblocks list, and the new data reads back through read(2)
 * and mmap; the pages around it keep their old data.
 */
TEST_F(media, pwrite_clears)
{
	char path[PATH_MAX];
	long long phys;

	phys = phys_of(self->fd, MEDIA_OFF);
	ASSERT_LE(0, phys);
	self->sector = phys / 512;
	ASSERT_EQ(1, listed_bad(self->bdev, self->sector))
		TH_LOG("sector %llu is not bad (did inject fail?)", self->sector);
	fill(self->buf, PAGE, MEDIA_OFF, 1);
	ASSERT_EQ((ssize_t)PAGE, pwrite(self->fd, self->buf, PAGE, MEDIA_OFF))
		TH_LOG("pwrite over the bad page: %s", strerror(errno));
	ASSERT_EQ(0, wait_listed(self->bdev, self->sector, 0, 5))
		TH_LOG("sector %llu still in /sys/block/%s/badblocks", self->sector, self->bdev);
	memset(self->buf, 0, PAGE);
	ASSERT_EQ((ssize_t)PAGE, pread(self->fd, self->buf, PAGE, MEDIA_OFF));
	ASSERT_EQ(-1, mismatch(self->buf, PAGE, MEDIA_OFF, 1));
	memset(self->buf, 0, PAGE);
	ASSERT_EQ(0, map_read(self->fd, MEDIA_OFF, self->buf));
	ASSERT_EQ(-1, mismatch(self->buf, PAGE, MEDIA_OFF, 1));
	ASSERT_EQ((ssize_t)PAGE, pread(self->fd, self->buf, PAGE, MEDIA_OFF - PAGE));
	ASSERT_EQ(-1, mismatch(self->buf, PAGE, MEDIA_OFF - PAGE, 0));
	ASSERT_EQ((ssize_t)PAGE, pread(self->fd, self->buf, PAGE, MEDIA_OFF + PAGE));
	ASSERT_EQ(-1, mismatch(self->buf, PAGE, MEDIA_OFF + PAGE, 0));
	strcpy(path, self->path);
	close(self->fd);
	self->fd = -1;
	ASSERT_EQ(0, unlink(path));
}

TEST_HARNESS_MAIN
