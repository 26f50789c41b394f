/* Making outside text (file names, certificate names, log lines) safe to
 * print and to put in JSON: valid UTF-8, no terminal control characters. */
#ifndef SFTCA_TEXTCLEAN_H
#define SFTCA_TEXTCLEAN_H

#include <stddef.h>

/* Keep tab, CR and LF as they are (for formats that escape them). */
#define TEXT_KEEP_CONTROLS 1

/* A malloc'd, NUL-terminated copy of len bytes of s in which every byte
 * that is not part of a valid UTF-8 sequence, every NUL and (unless
 * TEXT_KEEP_CONTROLS) every control character becomes '?'. NULL when out
 * of memory. */
char *text_clean(const char *s, size_t len, int flags);

/* Copy s into out (always NUL-terminated, cut short rather than split a
 * sequence) with every control character (C0, DEL, C1), every byte that is
 * not part of valid UTF-8 written as \xNN and a backslash as \\: text a
 * device sent can then neither act on the operator's terminal (OSC, CSI,
 * BEL) nor pass for something else. */
void text_escape(const char *s, char *out, size_t outlen);

/* Length of the valid UTF-8 sequence starting at s (at most avail bytes),
 * or 0 when s does not start one. */
size_t text_utf8_seq(const unsigned char *s, size_t avail);

#endif
