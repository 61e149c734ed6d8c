// SPDX-License-Identifier: GPL-2.0
/*
 * daxbench - fault, copy, fork and GUP costs on a file in a DAX mount.
 *
 * usage: daxbench -f FILE [-F FILE] [-s MIB] [-r REPS] [-b MIB] [-d BLOCKDEV]
 *
 *   -f FILE      path prefix on the DAX mount: FILE.pte and FILE.pmd are
 *                created and removed at the end
 *   -F FILE      path prefix on a DAX mount that supports FICLONE (xfs with
 *                reflink=1; optional, without it the two read figures are
 *                not measured): FILE.priv, FILE.src and FILE.clone
 *   -s MIB       file size for the fault and fork figures (default 1024)
 *   -r REPS      repetitions of every figure (default 5)
 *   -b MIB       buffer size for the copy and O_DIRECT figures and the
 *                file size of the two read figures (default 256)
 *   -d BLOCKDEV  block device to O_DIRECT-read from for the GUP figure
 *                (optional; without it that figure is not measured)
 *
 * Prints one JSON object on stdout: every figure with its unit, all samples,
 * their minimum and median, and the inode number of each file (as the
 * fs_dax trace events print it), so that the caller can tell from the
 * trace how each file was mapped. Every figure is a time (per fault, per fork, per
 * MiB copied, per 4 KiB read), so lower is better throughout. Progress goes
 * to stderr.
 *
 * Under QEMU TCG the lab runs this with -icount, so CLOCK_MONOTONIC in the
 * guest counts executed instructions, not host time: the figures compare
 * kernels by the work they do, not by how fast the host was at that moment.
 * The copy figures therefore count instructions per MiB, not media speed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>

#define KIB		1024UL
#define MIB		(1024UL * KIB)
#define PTE_SIZE	(4 * KIB)
#define PMD_SIZE	(2 * MIB)
#define MAX_REPS	64

static const char *file, *rfile;
static char pte_path[4096], pmd_path[4096];
static char priv_path[4096], src_path[4096], clone_path[4096];
static size_t size = 1024 * MIB;
static size_t bufsize = 256 * MIB;
static int reps = 5;
static const char *blockdev;
static int nfigs;

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("daxbench: ", stderr);
	vfprintf(stderr, fmt, ap);
	if (errno)
		fprintf(stderr, ": %s", strerror(errno));
	fputc('\n', stderr);
	va_end(ap);
	if (pte_path[0])
		unlink(pte_path);
	if (pmd_path[0])
		unlink(pmd_path);
	if (priv_path[0])
		unlink(priv_path);
	if (clone_path[0])
		unlink(clone_path);
	if (src_path[0])
		unlink(src_path);
	exit(1);
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Print one figure as a JSON member of the "figures" array. */
static void emit(const char *name, const char *unit, const char *what,
		 double *s, int n)
{
	double sorted[MAX_REPS];
	double median;
	int i;

	memcpy(sorted, s, n * sizeof(*s));
	qsort(sorted, n, sizeof(*sorted), cmp_double);
	median = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
	printf("%s\n    {\"name\": \"%s\", \"unit\": \"%s\", \"what\": \"%s\", \"samples\": [",
	       nfigs++ ? "," : "", name, unit, what);
	for (i = 0; i < n; i++)
		printf("%s%.1f", i ? ", " : "", s[i]);
	printf("], \"min\": %.1f, \"median\": %.1f}", sorted[0], median);
	fflush(stdout);
	fprintf(stderr, "daxbench: %-16s min %12.1f  median %12.1f  %s\n",
		name, sorted[0], median, unit);
}

/*
 * Map @len bytes of @fd at a virtual address whose offset from a 2 MiB
 * boundary is @skew: 0 lets the kernel use PMD mappings, 4 KiB rules them
 * out (a PMD needs the file offset and the address congruent modulo 2 MiB).
 */
static char *map_file(int fd, size_t len, size_t skew, int prot)
{
	char *area, *want, *p;

	area = mmap(NULL, len + 2 * PMD_SIZE, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (area == MAP_FAILED)
		die("mmap reserve");
	want = (char *)(((uintptr_t)area + PMD_SIZE - 1) & ~(PMD_SIZE - 1)) + skew;
	p = mmap(want, len, prot, MAP_SHARED | MAP_FIXED, fd, 0);
	if (p == MAP_FAILED)
		die("mmap of a bench file");
	/* Give back the reservation around the mapping. */
	if (want > area)
		munmap(area, want - area);
	munmap(want + len, area + len + 2 * PMD_SIZE - (want + len));
	return p;
}

static volatile unsigned long sink;

/* Read one byte in every @step bytes: the first touch of each page faults. */
static void touch(const char *p, size_t len, size_t step)
{
	unsigned long sum = 0;
	size_t off;

	for (off = 0; off < len; off += step)
		sum += p[off];
	sink = sum;
}

static void fault_figure(int fd, const char *name, size_t skew, size_t step,
			 const char *what)
{
	double s[MAX_REPS], t;
	char *p;
	int r;

	for (r = 0; r < reps; r++) {
		p = map_file(fd, size, skew, PROT_READ);
		t = now_ns();
		touch(p, size, step);
		s[r] = (now_ns() - t) / (size / step);
		munmap(p, size);
	}
	emit(name, "ns/fault", what, s, reps);
}

/*
 * Map all of @fd (@len bytes) 2 MiB aligned and read one byte of every
 * 4 KiB page, @reps times, each time in a new mapping: time per MiB read.
 * A kernel that maps the file by PMDs takes one fault per 2 MiB here, one
 * that maps it by PTEs one per 4 KiB, so this is what mapping a file by
 * PTEs instead of PMDs costs a reader that touches all of it.
 */
static void read_figure(int fd, size_t len, const char *name, const char *what)
{
	double s[MAX_REPS], t;
	char *p;
	int r;

	for (r = 0; r < reps; r++) {
		p = map_file(fd, len, 0, PROT_READ);
		t = now_ns();
		touch(p, len, PTE_SIZE);
		s[r] = (now_ns() - t) / 1e3 / (len / MIB);
		if (p[len - 1] != 0x5a) {
			errno = 0;
			die("%s: read %#x where the file holds 0x5a", name, p[len - 1]);
		}
		munmap(p, len);
	}
	emit(name, "us/MiB", what, s, reps);
}

static void fork_figure(int fd, const char *name, size_t skew, size_t step,
			const char *what)
{
	double s[MAX_REPS], t;
	int r, status;
	pid_t pid;
	char *p;

	p = map_file(fd, size, skew, PROT_READ);
	touch(p, size, step);
	for (r = 0; r < reps; r++) {
		t = now_ns();
		pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0)
			_exit(p[size - 1] == 0x5a ? 0 : 1);
		if (waitpid(pid, &status, 0) != pid)
			die("waitpid");
		s[r] = (now_ns() - t) / 1e3;
		if (!WIFEXITED(status) || WEXITSTATUS(status)) {
			errno = 0;
			die("%s: the child read wrong data through the inherited mapping", name);
		}
	}
	munmap(p, size);
	emit(name, "us/fork", what, s, reps);
}

static void *anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (p == MAP_FAILED)
		die("mmap %zu bytes of anonymous memory", len);
	return p;
}

static void copy_figures(int fd)
{
	double rd[MAX_REPS], wr[MAX_REPS], an[MAX_REPS], t;
	char *dax, *a, *b;
	int r;

	dax = map_file(fd, bufsize, 0, PROT_READ | PROT_WRITE);
	a = anon(bufsize);
	b = anon(bufsize);
	memset(a, 0x5a, bufsize);
	touch(dax, bufsize, PTE_SIZE);
	for (r = 0; r < reps; r++) {
		t = now_ns();
		memcpy(b, dax, bufsize);
		rd[r] = (now_ns() - t) / 1e3 / (bufsize / MIB);
		t = now_ns();
		memcpy(dax, a, bufsize);
		wr[r] = (now_ns() - t) / 1e3 / (bufsize / MIB);
		t = now_ns();
		memcpy(b, a, bufsize);
		an[r] = (now_ns() - t) / 1e3 / (bufsize / MIB);
	}
	if (memcmp(dax, a, bufsize)) {
		errno = 0;
		die("the DAX mapping does not hold what was copied into it");
	}
	emit("dax_read", "us/MiB", "memcpy from a prefaulted DAX mapping to anonymous memory", rd, reps);
	emit("dax_write", "us/MiB", "memcpy from anonymous memory into a prefaulted DAX mapping", wr, reps);
	emit("anon_copy", "us/MiB", "memcpy between two anonymous buffers (reference)", an, reps);
	munmap(dax, bufsize);
	munmap(a, bufsize);
	munmap(b, bufsize);
}

/*
 * O_DIRECT reads from a block device into a buffer: the block layer pins
 * the buffer's pages with GUP. Done into the DAX mapping and, for
 * reference, into anonymous memory, in 1 MiB requests.
 */
static void gup_figures(int fd)
{
	double dx[MAX_REPS], an[MAX_REPS];
	const size_t chunk = MIB;
	char *bufs[2];
	double *out[2] = { dx, an };
	size_t off;
	int bfd, r, k;
	double t;

	bfd = open(blockdev, O_RDONLY | O_DIRECT);
	if (bfd < 0)
		die("open %s O_DIRECT", blockdev);
	bufs[0] = map_file(fd, bufsize, 0, PROT_READ | PROT_WRITE);
	touch(bufs[0], bufsize, PTE_SIZE);
	bufs[1] = anon(bufsize);
	for (r = 0; r < reps; r++) {
		for (k = 0; k < 2; k++) {
			t = now_ns();
			for (off = 0; off < bufsize; off += chunk)
				if (pread(bfd, bufs[k] + off, chunk, off) != (ssize_t)chunk)
					die("O_DIRECT read of %s at %zu", blockdev, off);
			out[k][r] = (now_ns() - t) / (bufsize / PTE_SIZE);
		}
	}
	emit("gup_odirect_dax", "ns/4KiB", "O_DIRECT pread (1 MiB requests) from a block device into a DAX mapping", dx, reps);
	emit("gup_odirect_anon", "ns/4KiB", "the same into anonymous memory (reference)", an, reps);
	munmap(bufs[0], bufsize);
	munmap(bufs[1], bufsize);
	close(bfd);
}

/* The inode number of @fd, or 0 for no file (-1). */
static unsigned long ino_of(int fd)
{
	struct stat st;

	if (fd < 0)
		return 0;
	if (fstat(fd, &st))
		die("fstat");
	return st.st_ino;
}

/*
 * Allocate the file in one go, so that the file system can hand out
 * 2 MiB-aligned extents (xfs with a 2 MiB stripe unit), then write every
 * block, so that faults find written extents rather than unwritten ones, and
 * make that stable.
 */
static int create_file(const char *path, size_t len)
{
	size_t off;
	char *blk;
	int fd, err;

	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		die("create %s", path);
	err = posix_fallocate(fd, 0, len);
	if (err) {
		errno = err;
		die("fallocate %zu bytes for %s", len, path);
	}
	blk = malloc(MIB);
	if (!blk)
		die("malloc");
	memset(blk, 0x5a, MIB);
	for (off = 0; off < len; off += MIB)
		if (pwrite(fd, blk, MIB, off) != (ssize_t)MIB)
			die("write %s", path);
	if (fsync(fd))
		die("fsync %s", path);
	free(blk);
	return fd;
}

int main(int argc, char **argv)
{
	struct utsname u;
	int opt, pte_fd, pmd_fd, priv_fd, src_fd, clone_fd;

	while ((opt = getopt(argc, argv, "f:F:s:r:b:d:")) != -1) {
		switch (opt) {
		case 'f': file = optarg; break;
		case 'F': rfile = optarg; break;
		case 's': size = strtoul(optarg, NULL, 0) * MIB; break;
		case 'r': reps = atoi(optarg); break;
		case 'b': bufsize = strtoul(optarg, NULL, 0) * MIB; break;
		case 'd': blockdev = optarg; break;
		default:
			fprintf(stderr, "usage: %s -f FILE [-F FILE] [-s MIB] [-r REPS] [-b MIB] [-d BLOCKDEV]\n",
				argv[0]);
			return 2;
		}
	}
	if (!file || !size || size % PMD_SIZE || !bufsize || bufsize % MIB ||
	    reps < 1 || reps > MAX_REPS) {
		fprintf(stderr, "daxbench: need -f; sizes in whole MiB (-s a multiple of 2); 1 <= reps <= %d\n",
			MAX_REPS);
		return 2;
	}
	/*
	 * Two files: DAX entries outlive munmap(), and a file that was
	 * faulted by PTEs keeps order-0 entries that make every later PMD
	 * fault on it fall back (grab_mapping_entry()).
	 */
	snprintf(pte_path, sizeof(pte_path), "%s.pte", file);
	snprintf(pmd_path, sizeof(pmd_path), "%s.pmd", file);
	pte_fd = create_file(pte_path, size);
	pmd_fd = create_file(pmd_path, size > bufsize ? size : bufsize);
	priv_fd = src_fd = clone_fd = -1;
	if (rfile) {
		snprintf(priv_path, sizeof(priv_path), "%s.priv", rfile);
		snprintf(src_path, sizeof(src_path), "%s.src", rfile);
		snprintf(clone_path, sizeof(clone_path), "%s.clone", rfile);
		priv_fd = create_file(priv_path, bufsize);
		/*
		 * The source is written by write(2) only and never mapped:
		 * its blocks become shared by FICLONE before any DAX entry
		 * exists for them, so the clone's faults are the first to
		 * map them.
		 */
		src_fd = create_file(src_path, bufsize);
		clone_fd = open(clone_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
		if (clone_fd < 0)
			die("create %s", clone_path);
		if (ioctl(clone_fd, FICLONE, src_fd))
			die("FICLONE %s to %s (-F needs xfs with reflink=1)", src_path, clone_path);
	}
	uname(&u);
	printf("{\"kernel\": \"%s\", \"size_mib\": %zu, \"buffer_mib\": %zu, \"reps\": %d,\n",
	       u.release, size / MIB, bufsize / MIB, reps);
	printf("  \"inodes\": {\"pte\": \"%#lx\", \"pmd\": \"%#lx\", \"private\": \"%#lx\", \"reflinked\": \"%#lx\"},\n",
	       ino_of(pte_fd), ino_of(pmd_fd), ino_of(priv_fd), ino_of(clone_fd));
	printf("  \"figures\": [");

	fault_figure(pte_fd, "pte_fault", PTE_SIZE, PTE_SIZE,
		     "first read of each 4 KiB page, mapping not 2 MiB aligned (PTEs only)");
	fault_figure(pmd_fd, "pmd_fault", 0, PMD_SIZE,
		     "first read of each 2 MiB, mapping 2 MiB aligned (PMDs)");
	fork_figure(pte_fd, "fork_pte", PTE_SIZE, PTE_SIZE,
		    "fork+exit+wait with the whole file mapped shared by PTEs");
	fork_figure(pmd_fd, "fork_pmd", 0, PMD_SIZE,
		    "fork+exit+wait with the whole file mapped shared by PMDs");
	copy_figures(pmd_fd);
	if (blockdev)
		gup_figures(pmd_fd);
	if (rfile) {
		read_figure(priv_fd, bufsize, "read_private",
			    "read every 4 KiB of a file of its own, mapping 2 MiB aligned");
		read_figure(clone_fd, bufsize, "read_reflinked",
			    "the same on a FICLONE of such a file (its blocks shared)");
		close(priv_fd);
		close(clone_fd);
		close(src_fd);
		unlink(priv_path);
		unlink(clone_path);
		unlink(src_path);
	}
	printf("\n  ]\n}\n");
	close(pte_fd);
	close(pmd_fd);
	unlink(pte_path);
	unlink(pmd_path);
	return 0;
}
