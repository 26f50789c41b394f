#include "logread.h"

#include "errors.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define CHUNK 65536

static int read_some(int fd, const char *name, unsigned char *buf, size_t cap, size_t *got)
{
	ssize_t n;

	do
		n = read(fd, buf, cap);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		log_error("%s: read: %s", name, strerror(errno));
		return SFTCA_ERR_IO;
	}
	*got = (size_t)n;
	return 0;
}

/* Top up z's input when it is empty; *eof once the file has no more. */
static int refill(int fd, const char *name, z_stream *z, unsigned char *in, int *eof)
{
	size_t got;
	int r;

	if (z->avail_in > 0 || *eof)
		return 0;
	if ((r = read_some(fd, name, in, CHUNK, &got)) != 0)
		return r;
	*eof = got == 0;
	z->next_in = in;
	z->avail_in = (uInt)got;
	return 0;
}

static int read_gzip(int fd, const char *name, unsigned char *in, size_t have, char *out,
		     int (*sink)(void *, const char *, size_t), void *arg)
{
	z_stream z;
	unsigned long long total = 0;
	int eof = 0, r, zr;

	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 15 + 16) != Z_OK) /* gzip wrapper only */
		return SFTCA_ERR_NOMEM;
	z.next_in = in;
	z.avail_in = (uInt)have;
	for (;;) {
		size_t produced;

		if ((r = refill(fd, name, &z, in, &eof)) != 0)
			goto out;
		z.next_out = (unsigned char *)out;
		z.avail_out = CHUNK;
		zr = inflate(&z, Z_NO_FLUSH);
		if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
			log_error("%s: gzip data is corrupt after %llu bytes (%s)", name,
				  total, z.msg ? z.msg : "inflate failed");
			r = SFTCA_ERR_INVALID;
			goto out;
		}
		produced = CHUNK - z.avail_out;
		total += produced;
		if (produced > 0 && (r = sink(arg, out, produced)) != 0)
			goto out;
		if (zr == Z_STREAM_END) {
			if ((r = refill(fd, name, &z, in, &eof)) != 0)
				goto out;
			if (z.avail_in == 0)
				break;
			if (z.next_in[0] != 0x1f) {
				log_warn("%s: %u bytes after the gzip data ignored", name, z.avail_in);
				break;
			}
			inflateReset(&z); /* another gzip member follows */
			continue;
		}
		if (eof && z.avail_in == 0 && produced == 0) {
			log_error("%s: gzip data is truncated after %llu bytes", name, total);
			r = SFTCA_ERR_INVALID;
			goto out;
		}
	}
	r = 0;
out:
	inflateEnd(&z);
	return r;
}

int logread_fd(int fd, const char *name, int (*sink)(void *arg, const char *buf, size_t len),
	       void *arg, int *gzipped)
{
	unsigned char *in = malloc(CHUNK);
	char *out = malloc(CHUNK);
	size_t have = 0, got;
	int r = SFTCA_ERR_NOMEM;

	*gzipped = 0;
	if (in == NULL || out == NULL)
		goto out;
	/* Enough of the start to see the magic (reads may be short on pipes). */
	do {
		if ((r = read_some(fd, name, in + have, CHUNK - have, &got)) != 0)
			goto out;
		have += got;
	} while (got > 0 && have < 2);
	if (have >= 2 && in[0] == 0x1f && in[1] == 0x8b) {
		*gzipped = 1;
		r = read_gzip(fd, name, in, have, out, sink, arg);
		goto out;
	}
	while (have > 0) {
		if ((r = sink(arg, (const char *)in, have)) != 0)
			goto out;
		if ((r = read_some(fd, name, in, CHUNK, &have)) != 0)
			goto out;
	}
	r = 0;
out:
	free(in);
	free(out);
	return r;
}
