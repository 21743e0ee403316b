/*
 * recfile.c: record framing, the validating scanner, and file chores shared by txnlog.c and
 * snapshot.c. See recfile.h for the format.
 */
#include "recfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "err.h"

int (*recfile_fdatasync)(int fd) = fdatasync;
int (*recfile_ftruncate)(int fd, off_t len) = ftruncate;

/* All bytes zero? Comparing the range with itself shifted by one does it at memcmp speed. */
static int all_zero(const uint8_t *p, size_t n) { return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0); }

void rec_scan_init(struct rec_scan *s, const void *p, size_t n, size_t plen, int zero_ends)
{
	s->p = p;
	s->n = n;
	s->plen = plen;
	s->zero_ends = zero_ends;
	s->off = 0;
	s->status = REC_OK;
	s->fd = -1;
}

/* Is [off, n) all zeros? With the file's fd, only its data regions need reading. */
static int tail_zero(const struct rec_scan *s, size_t off)
{
	if (s->fd < 0)
		return all_zero(s->p + off, s->n - off);
	size_t pos = off;
	while (pos < s->n) {
		off_t d = lseek(s->fd, (off_t)pos, SEEK_DATA);
		if (d < 0)
			/* ENXIO: no data from pos on. Anything else: no SEEK_DATA here, read it all. */
			return errno == ENXIO ? 1 : all_zero(s->p + pos, s->n - pos);
		if ((size_t)d >= s->n)
			return 1;
		off_t h = lseek(s->fd, d, SEEK_HOLE);
		size_t he = h < 0 || (size_t)h > s->n ? s->n : (size_t)h;
		if (!all_zero(s->p + d, he - (size_t)d))
			return 0;
		pos = he;
	}
	return 1;
}

static int stop(struct rec_scan *s, int status)
{
	s->status = status;
	return 0;
}

int rec_scan_next(struct rec_scan *s, struct rec *r)
{
	if (s->status != REC_OK)
		return 0;
	size_t left = s->n - s->off;
	const uint8_t *h = s->p + s->off;
	if (left == 0)
		return stop(s, REC_END);
	if (left < 4)
		/* Not even a length: fine if it is the zero padding, torn otherwise. */
		return stop(s, s->zero_ends && all_zero(h, left) ? REC_END : REC_TORN);
	uint32_t len = rec_le32(h);
	if (len == 0 && s->zero_ends)
		/*
		 * The end, if the rest is the zeros it was preallocated with. Anything else there was
		 * written by a batch whose start never reached the disk: never synced, so never
		 * acknowledged, and not to be trusted.
		 */
		return stop(s, tail_zero(s, s->off) ? REC_END : REC_GARBAGE);
	if (len > REC_MAX_PAYLOAD)
		return stop(s, REC_TOOBIG);
	size_t size = REC_HDR + s->plen + len;
	if (left < size)
		return stop(s, REC_TORN);
	if (XXH64(h + REC_HDR, s->plen + len, 0) != rec_le64(h + 4))
		return stop(s, REC_BADSUM);
	r->off = s->off;
	r->size = size;
	r->body = h + REC_HDR;
	r->payload = r->body + s->plen;
	r->len = len;
	s->off += size;
	return 1;
}

const char *rec_status_text(int status)
{
	switch (status) {
	case REC_OK: return "no fault";
	case REC_END: return "end of records";
	case REC_TORN: return "record runs past the end of the file (torn write)";
	case REC_TOOBIG: return "record length over the maximum (corrupt length)";
	case REC_BADSUM: return "checksum mismatch";
	case REC_GARBAGE: return "non-zero bytes after the end-of-records mark (torn write)";
	}
	return "unknown fault";
}

void rec_frame(uint8_t hdr[REC_HDR], const void *body, size_t body_len, size_t plen)
{
	rec_put32(hdr, (uint32_t)(body_len - plen));
	rec_put64(hdr + 4, XXH64(body, body_len, 0));
}

int recfile_parse_name(const char *name, const char *prefix, const char *suffix, uint64_t *zxid)
{
	size_t pl = strlen(prefix), sl = strlen(suffix);
	if (strncmp(name, prefix, pl) != 0 || strlen(name) != pl + 16 + sl || strcmp(name + pl + 16, suffix) != 0)
		return 0;
	uint64_t v = 0;
	for (const char *c = name + pl; c < name + pl + 16; c++) {
		int d;
		if (*c >= '0' && *c <= '9')
			d = *c - '0';
		else if (*c >= 'a' && *c <= 'f')
			d = *c - 'a' + 10;
		else
			return 0;
		v = v << 4 | (uint64_t)d;
	}
	*zxid = v;
	return 1;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int recfile_list(const char *dir, const char *prefix, const char *suffix, uint64_t **out, size_t *n)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	uint64_t *v = NULL;
	size_t cnt = 0, cap = 0;
	struct dirent *e;
	errno = 0;
	while ((e = readdir(d))) {
		uint64_t z;
		if (!recfile_parse_name(e->d_name, prefix, suffix, &z))
			continue;
		if (cnt == cap) {
			size_t nc = cap ? cap * 2 : 16;
			uint64_t *nv = realloc(v, nc * sizeof(*v));
			if (!nv) {
				free(v);
				closedir(d);
				errno = ENOMEM;
				return -1;
			}
			v = nv;
			cap = nc;
		}
		v[cnt++] = z;
	}
	int rerr = errno;
	closedir(d);
	if (rerr) {
		free(v);
		errno = rerr;
		return -1;
	}
	if (cnt)
		qsort(v, cnt, sizeof(*v), cmp_u64);
	*out = v;
	*n = cnt;
	return 0;
}

int recfile_pwrite_all(int fd, const void *p, size_t n, uint64_t off)
{
	const uint8_t *c = p;
	while (n) {
		ssize_t w = pwrite(fd, c, n, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) {
			errno = ENOSPC;
			return -1;
		}
		c += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

int recfile_write_all(int fd, const void *p, size_t n)
{
	const uint8_t *c = p;
	while (n) {
		ssize_t w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) {
			errno = ENOSPC;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

int recfile_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	int e = errno;
	close(fd);
	errno = e;
	return rc;
}

int recfile_mkdirs(const char *dir)
{
	size_t n = strlen(dir);
	char *p = malloc(n + 1);
	if (!p) {
		errno = ENOMEM;
		return -1;
	}
	memcpy(p, dir, n + 1);
	/* Make each ancestor in turn; the ones that exist already are fine. */
	for (char *c = p + 1;; c++) {
		if (*c == '/' || *c == 0) {
			char save = *c;
			*c = 0;
			if (mkdir(p, 0755) < 0 && errno != EEXIST) {
				int e = errno;
				free(p);
				errno = e;
				return -1;
			}
			*c = save;
			if (!save)
				break;
		}
	}
	free(p);
	struct stat st;
	if (stat(dir, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

int recfile_map(const char *path, const uint8_t **p, size_t *n, int *fdp)
{
	*p = NULL;
	*n = 0;
	if (fdp)
		*fdp = -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	if (st.st_size == 0) {
		if (fdp)
			*fdp = fd;
		else
			close(fd);
		return 0;
	}
	void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	int e = errno;
	if (m == MAP_FAILED) {
		close(fd);
		errno = e;
		return -1;
	}
	if (fdp)
		*fdp = fd;
	else
		close(fd);
	(void)madvise(m, (size_t)st.st_size, MADV_SEQUENTIAL);
	*p = m;
	*n = (size_t)st.st_size;
	return 0;
}

void recfile_unmap(const uint8_t *p, size_t n)
{
	if (p)
		munmap((void *)p, n);
}

int rec_io_code(int e) { return e == ENOSPC || e == EDQUOT ? COORD_ENOSPC : COORD_EIO; }

const char *rec_io_advice(int e)
{
	return e == ENOSPC || e == EDQUOT ? "free space on that disk" : "check the disk (dmesg) and the permissions";
}
