// SPDX-License-Identifier: GPL-2.0
/*
 * daxpage lab smoke checks for a device-dax character device ($DEVDAX,
 * for example /dev/dax1.0, created with a 2 MiB alignment).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"

#define SZ_2M (2UL << 20)
#define LEN (4 * SZ_2M)

FIXTURE(devdax) {
	int fd;
};

FIXTURE_SETUP(devdax)
{
	const char *dev = getenv("DEVDAX");

	ASSERT_NE(NULL, dev) TH_LOG("set DEVDAX to a device-dax character device");
	self->fd = open(dev, O_RDWR);
	ASSERT_LE(0, self->fd) TH_LOG("open %s: %s", dev, strerror(errno));
}

FIXTURE_TEARDOWN(devdax)
{
	close(self->fd);
}

static char *map(int fd)
{
	char *area, *p;

	area = mmap(NULL, LEN + SZ_2M, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		return MAP_FAILED;
	p = (char *)(((unsigned long)area + SZ_2M - 1) & ~(SZ_2M - 1));
	return mmap(p, LEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
}

/* Expect: a pattern written through one mapping is seen through a new one. */
TEST_F(devdax, write_remap_read)
{
	char *p = map(self->fd);
	size_t i;

	ASSERT_NE(MAP_FAILED, p);
	for (i = 0; i < LEN; i += 512)
		p[i] = (char)(i >> 9);
	ASSERT_EQ(0, munmap(p, LEN));
	p = map(self->fd);
	ASSERT_NE(MAP_FAILED, p);
	for (i = 0; i < LEN; i += 512)
		ASSERT_EQ((char)(i >> 9), p[i]);
	ASSERT_EQ(0, munmap(p, LEN));
}

/* Expect: a child's writes to a shared device-dax mapping reach the parent. */
TEST_F(devdax, fork_shared_write)
{
	char *p = map(self->fd);
	int status;
	pid_t pid;
	size_t i;

	ASSERT_NE(MAP_FAILED, p);
	memset(p, 0, LEN);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		for (i = 0; i < LEN; i += 4096)
			p[i] = 0x5a;
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	for (i = 0; i < LEN; i += 4096)
		ASSERT_EQ(0x5a, p[i]);
	ASSERT_EQ(0, munmap(p, LEN));
}

/* Expect: an unaligned length is refused (device-dax needs 2 MiB units here). */
TEST_F(devdax, unaligned_mmap_refused)
{
	void *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, self->fd, 4096);

	ASSERT_EQ(MAP_FAILED, p);
	ASSERT_EQ(EINVAL, errno);
}

TEST_HARNESS_MAIN
