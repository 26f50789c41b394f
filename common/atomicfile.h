/* Crash-safe file replacement. A reader (or a crash) sees either the old
 * content or the new, never a mix: new data goes to a temporary file in the
 * same directory, is fsynced, renamed over the target, and the directory is
 * fsynced. The previous file is kept as NAME.backup.<stamp> (a hard link,
 * so it costs no copy); an existing backup is never overwritten (".1",
 * ".2", ... are appended instead). */
#ifndef SFTCA_ATOMICFILE_H
#define SFTCA_ATOMICFILE_H

#include <stddef.h>

struct af_file {
	const char *name;   /* file name inside the directory, no '/' */
	const void *data;
	size_t len;
	unsigned mode;      /* e.g. 0644, or 0600 for keys */
};

/* UTC timestamp for backup names, e.g. "20261128T101500Z". */
void af_backup_stamp(char out[32]);

/* Replace (or create) dir/f->name. backup_stamp NULL = no backup. Once the
 * directory is open, everything happens through its descriptor. */
int af_write(const char *dir, const struct af_file *f, const char *backup_stamp)
	__attribute__((warn_unused_result));
/* af_write, but a dir that is a symbolic link is refused (SFTCA_ERR_INVALID):
 * for directories in a tree others may write in (an FMC's certs_pushed). */
int af_write_nofollow(const char *dir, const struct af_file *f, const char *backup_stamp)
	__attribute__((warn_unused_result));

/* How a file stays as its directory had it: a replaced file keeps its
 * mode and owner; a new one takes those of the first of follow (sibling
 * names, NULL-ended) that is there, and af_file's mode only when none is.
 * The owner is set only as root or when it is ours already; a warning
 * says so when it cannot be kept. */
struct af_keep {
	const char *follow[3];
};

/* af_write_nofollow, the mode and owner kept as keep says. */
int af_write_keep(const char *dir, const struct af_file *f, const struct af_keep *keep,
		  const char *backup_stamp) __attribute__((warn_unused_result));

/* Move dir/name aside as its backup (nothing to do, and *moved = 0, when
 * it does not exist): a file that no longer says what is true. */
int af_retire(const char *dir, const char *name, const char *backup_stamp, int *moved)
	__attribute__((warn_unused_result));

/* Replace several files of one directory together: all old or all new,
 * even across a crash. The directory is rebuilt beside itself (other
 * regular files hard-linked, backups linked in) and swapped in with one
 * renameat2(RENAME_EXCHANGE). Falls back to af_write() in order, with a
 * warning, where that is impossible (entries that are not regular files, a
 * filesystem without hard links or exchange). A directory that does not
 * exist is created (mode 0755) with the files in it. A directory that is a
 * symbolic link is refused (SFTCA_ERR_INVALID); the stage beside it has a
 * random name. */
int af_write_set(const char *dir, const struct af_file *files, size_t n, const char *backup_stamp)
	__attribute__((warn_unused_result));
/* af_write_set, each file's mode and owner kept as keep[i] says (keep has
 * n entries); what a new file follows is what its siblings were before. */
int af_write_set_keep(const char *dir, const struct af_file *files, const struct af_keep *keep,
		      size_t n, const char *backup_stamp) __attribute__((warn_unused_result));

#endif
