/* FAILED_PUSH files: one line per file that did not reach a device, in the
 * vendor's format "FTD_UUID FTD_NAME FTD_IP SOURCE_PATH_ON_FMC
 * DESTINATION_PATH_ON_FTD" (whitespace-separated). sftca writes the same
 * format, so either tool's file can drive `sftca push --retry`. */
#ifndef SFTCA_FAILEDPUSH_H
#define SFTCA_FAILEDPUSH_H

#include <stddef.h>

struct failed_device {
	char uuid[40];
	char name[128];
	char ip[64];
};

struct failed_list {
	struct failed_device *v;   /* one entry per device (lines merged) */
	size_t n;
};

/* Read a FAILED_PUSH file: blank lines and lines starting with '#' are
 * skipped; anything else must have 5 fields and a canonical UUID first, or
 * the whole file is refused with "FILE line N: ..." (SFTCA_ERR_INVALID). */
int failedpush_load(const char *path, struct failed_list *out) __attribute__((warn_unused_result));
int failedpush_parse(const char *name, const char *text, size_t len, struct failed_list *out)
	__attribute__((warn_unused_result));
void failedpush_free(struct failed_list *l);
/* The entry for a device, matched by UUID when given, else by name, else by
 * IP; NULL if none (or if name/IP match entries with different UUIDs). */
const struct failed_device *failedpush_find(const struct failed_list *l, const char *uuid,
					    const char *name, const char *ip);

struct failedpush_writer;
/* Start a FAILED_PUSH file (written atomically when closed). */
struct failedpush_writer *failedpush_open(const char *path);
/* The lines for one failed device: cacert.pem, sftunnel-key.pem,
 * sftunnel-cert.pem, like the vendor's tool. Names with whitespace are
 * written with '_' so the line stays five fields. Thread-safe. */
int failedpush_add(struct failedpush_writer *w, const char *uuid, const char *name, const char *ip,
		   const char *bundle_src, const char *pair_src_dir, const char *dst_dir);
enum { FAILEDPUSH_NONE, FAILEDPUSH_WRITTEN, FAILEDPUSH_CLEARED };
/* Write the file if anything was added (*written = FAILEDPUSH_WRITTEN);
 * otherwise, when clear_stale (the run reached every device it meant to),
 * move a previous file aside as its backup (_CLEARED), or leave things as
 * they are (_NONE). */
int failedpush_close(struct failedpush_writer *w, int clear_stale, int *written)
	__attribute__((warn_unused_result));

#endif
