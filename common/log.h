/* Logging for both binaries: one line per message to stderr or syslog.
 * The daemon (LOG_STYLE_DAEMON) prefixes a UTC timestamp, level and the
 * calling function; the CLI (LOG_STYLE_CLI) prints "sftca: level: text". */
#ifndef SFTCA_LOG_H
#define SFTCA_LOG_H

enum log_level { LOG_LVL_DEBUG = 0, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR, LOG_LVL_QUIET };
enum log_style { LOG_STYLE_CLI = 0, LOG_STYLE_DAEMON, LOG_STYLE_SYSLOG };

/* Set program name, output style and the lowest level printed. */
void log_init(const char *ident, enum log_style style, enum log_level min_level);
void log_set_level(enum log_level min_level);
enum log_level log_get_level(void);

/* Write one line; control characters in the text are replaced so that
 * caller-supplied strings cannot forge log lines. */
void sftca_log(enum log_level level, const char *func, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Drain the OpenSSL error queue into the log as errors, after a line that
 * says what was being attempted. */
void log_openssl_errors(const char *func, const char *what);

#define log_debug(...) sftca_log(LOG_LVL_DEBUG, __func__, __VA_ARGS__)
#define log_info(...) sftca_log(LOG_LVL_INFO, __func__, __VA_ARGS__)
#define log_warn(...) sftca_log(LOG_LVL_WARN, __func__, __VA_ARGS__)
#define log_error(...) sftca_log(LOG_LVL_ERROR, __func__, __VA_ARGS__)
#define log_crypto(what) log_openssl_errors(__func__, (what))

#endif
