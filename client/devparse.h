/* What a device's shell prints, parsed: network input, kept apart from the
 * SSH code (devconn.c, push.c) so that it can be fuzzed on its own. */
#ifndef SFTCA_DEVPARSE_H
#define SFTCA_DEVPARSE_H

#include <stddef.h>

/* What the interactive shell may print for one command (the terminal's echo
 * of a file sent as base64 included) before the device is given up. */
#define SHELLBUF_MAX (1024 * 1024)

/* What the escape filter of the interactive shell is in the middle of. */
enum esc_state { ESC_NONE, ESC_START, ESC_CSI, ESC_STRING, ESC_STRING_ESC };

/* The interactive shell's output, carriage returns and terminal escape
 * sequences dropped. buf is NULL or NUL-terminated at len; it never holds
 * more than SHELLBUF_MAX bytes (overflow is set instead). */
struct shellbuf {
	char *buf;
	size_t len, cap;
	size_t scanned;       /* buf before this holds no marker: not searched again */
	enum esc_state esc;
	int overflow;         /* the device printed more than SHELLBUF_MAX */
};

void shellbuf_append(struct shellbuf *b, const char *data, size_t n);
/* The marker in what arrived since the last search (a marker may straddle
 * the old end), or NULL. */
char *shellbuf_find_marker(struct shellbuf *b, const char *marker);
/* Index of the prompt the buffer ends with (trailing spaces trimmed), or -1. */
int shellbuf_prompt(const struct shellbuf *b, const char *const *prompts, int n);
/* Empty it (the memory is kept). */
void shellbuf_reset(struct shellbuf *b);
/* Wipe (it may hold a key's base64) and free. */
void shellbuf_free(struct shellbuf *b);

/* After the end marker: the exit status digits and "__". */
int shell_status_complete(const char *after);
/* The output between the begin and end markers of buf (which must hold end
 * followed by a complete status) into out (truncated to outlen-1), the
 * status after end into *status. buf is cut at end. -1 when begin is not
 * before end. */
int shell_extract(char *buf, const char *begin, const char *end, char *out, size_t outlen,
		  int *status);

/* An exec channel's output (a direct device's command), n more bytes of
 * it, into out (outlen bytes, *used of them filled): kept NUL-terminated,
 * what does not fit dropped. Bytes are kept as they came, a NUL too: the
 * parsers then stop at it, which can only fail the push of a device that
 * prints one (no command push runs does). */
void shell_out_append(char *out, size_t outlen, size_t *used, const char *data, size_t n);

/* "sha256  name" lines (sha256sum's output) into one lowercase hex digest
 * per name ("" when absent). */
void shell_parse_sums(const char *out, const char *const *names, int n, char (*sums)[65]);

/* How a device lists a file's mode and owner: stat -c SHELL_STAT_FORMAT. */
#define SHELL_STAT_TAG "SFTCA-STAT"
#define SHELL_STAT_FORMAT SHELL_STAT_TAG " %a %u %g %n"

/* One file's mode and owner as the device listed them. */
struct shell_stat {
	int present;               /* a well-formed line named the file */
	unsigned mode;             /* permission bits, at most 07777 */
	unsigned long uid, gid;    /* at most 2^32 - 1 */
};

/* "SFTCA-STAT MODE UID GID NAME" lines (MODE octal) into one entry per
 * name; a name without such a line, or with a malformed one, is not
 * present. */
void shell_parse_stats(const char *out, const char *const *names, int n, struct shell_stat *st);

/* The device's UUID from the FTD CLI's "show version" (the line
 * "UUID                      : <uuid>") into uuid (uuidlen bytes), as
 * printed, lowercased. 0, or -1 when there is no such line or its value is
 * not a canonical UUID. */
int shell_parse_version_uuid(const char *out, char *uuid, size_t uuidlen);
/* The value of show version's "Model                     : ..." line (the
 * FMC's CLI says "... Management Center ..."), blanks trimmed; 0, or -1
 * when there is none or it does not fit in modellen. */
int shell_parse_version_model(const char *out, char *model, size_t modellen);
/* An identity file (sftca push/devices resolve --identity-file): lines as
 * show version prints them ("UUID : <uuid>", optionally "Model : ..."), or
 * the UUID alone on the first line that is not blank. The UUID into uuid as
 * for shell_parse_version_uuid, the model ("" when none) into model. */
int shell_parse_identity_file(const char *out, char *uuid, size_t uuidlen, char *model,
			      size_t modellen);

#endif
