/* Reading a log as a stream in bounded chunks, plain or gzip-compressed
 * (recognised by its magic bytes 1f 8b, not by its name; concatenated gzip
 * members are read in turn). The whole file is never held in memory. */
#ifndef SFTCA_LOGREAD_H
#define SFTCA_LOGREAD_H

#include <stddef.h>

/* Pass every byte of fd (decompressed when it is gzip) to sink, in pieces.
 * name is for messages; *gzipped tells which it was. Returns 0;
 * SFTCA_ERR_IO when reading fails; SFTCA_ERR_INVALID for gzip data that is
 * corrupt or truncated (what came before was passed on); or the first
 * non-zero value sink returned. */
int logread_fd(int fd, const char *name, int (*sink)(void *arg, const char *buf, size_t len),
	       void *arg, int *gzipped) __attribute__((warn_unused_result));

#endif
